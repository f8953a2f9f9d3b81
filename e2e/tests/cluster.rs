//! Clustering acceptance test: three real nodes, replication factor 3.
//!
//! QUORUM writes through one node are read back at QUORUM through another;
//! a SIGKILLed replica is seen DOWN, QUORUM writes keep succeeding and leave
//! hints for it; once it is back the hints are replayed (the metrics prove
//! they fired), and with both other nodes killed it alone serves every write
//! at ONE with its exact value. With two of three replicas down a QUORUM
//! write fails with UNAVAILABLE instead of succeeding silently.

use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, ensure};
use ringkv_e2e::cluster::Cluster;
use ringkv_e2e::{grpc, kvctl, wait_until};
use ringkv_proto::v1::ConsistencyLevel;

/// Writes per phase (the test checks 2 × this many keys in the end).
const KEYS: usize = 200;
/// How long hints may take to reach a restarted node.
const REPLAY_TIMEOUT: Duration = Duration::from_secs(30);

fn value_of(key: &str) -> String {
    format!("value-of-{key}")
}

/// Writes `keys` at QUORUM through node `via`, each with [`value_of`].
async fn write_quorum(cluster: &Cluster, via: usize, keys: &[String]) -> Result<()> {
    let mut kv = grpc::connect(&cluster.node(via).grpc_endpoint()).await?;
    for key in keys {
        grpc::put_at(&mut kv, key, &value_of(key), ConsistencyLevel::Quorum)
            .await
            .with_context(|| format!("QUORUM write through node {via}"))?;
    }
    Ok(())
}

/// Reads `keys` at `level` through node `via`; fails listing every key that
/// is missing or has another value than [`value_of`].
async fn check_values(cluster: &Cluster, via: usize, keys: &[String], level: ConsistencyLevel) -> Result<()> {
    let mut kv = grpc::connect(&cluster.node(via).grpc_endpoint()).await?;
    let mut wrong = Vec::new();
    for key in keys {
        let got = grpc::get_value_at(&mut kv, key, level).await.with_context(|| format!("read through node {via}"))?;
        if got.as_deref() != Some(value_of(key).as_bytes()) {
            wrong.push((key.clone(), got));
        }
    }
    ensure!(
        wrong.is_empty(),
        "{} of {} keys missing or wrong at {} through node {via}, e.g. {:?}",
        wrong.len(),
        keys.len(),
        level.as_str_name(),
        &wrong[..wrong.len().min(10)]
    );
    Ok(())
}

/// Waits until nodes 0 and 2 hold no hint for node 1 (status and metrics
/// agree) and at least one of them replayed some: the hints really fired.
async fn wait_hints_replayed(cluster: &Cluster) -> Result<()> {
    let mut last = String::new();
    let waited = wait_until(REPLAY_TIMEOUT, "nodes 0 and 2 replayed every hint for node 1", async || {
        let (mut pending, mut replayed) = (0.0, 0.0);
        for holder in [0, 2] {
            let (Ok(status_pending), Ok(metric_pending), Ok(metric_replayed)) = (
                cluster.pending_hints(holder, 1).await,
                cluster.metric_sum(holder, "ringkv_hints_pending").await,
                cluster.metric_sum(holder, "ringkv_hints_replayed_total").await,
            ) else {
                last = format!("node {holder}: status or metrics unreadable");
                return false;
            };
            pending += status_pending as f64 + metric_pending;
            replayed += metric_replayed;
        }
        last = format!("pending {pending}, replayed {replayed}");
        pending == 0.0 && replayed > 0.0
    })
    .await;
    waited.with_context(|| format!("last seen: {last}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn quorum_writes_survive_a_dead_replica_through_hints() -> Result<()> {
    let started = Instant::now();
    let mut cluster = Cluster::test().nodes(3).rf(3).start().await?;
    println!("cluster converged after {:?}", started.elapsed());

    let before: Vec<String> = (0..KEYS).map(|i| format!("before-{i:03}")).collect();
    write_quorum(&cluster, 0, &before).await?;
    check_values(&cluster, 2, &before, ConsistencyLevel::Quorum).await?;

    cluster.kill9(1)?;
    cluster.wait_liveness(&[0, 2], 1, "DOWN").await?;
    println!("node 1 killed and seen DOWN after {:?}", started.elapsed());

    let during: Vec<String> = (0..KEYS).map(|i| format!("during-{i:03}")).collect();
    let (through_0, through_2) = during.split_at(KEYS / 2);
    write_quorum(&cluster, 0, through_0).await?;
    write_quorum(&cluster, 2, through_2).await?;
    let held = cluster.pending_hints(0, 1).await? + cluster.pending_hints(2, 1).await?;
    ensure!(held > 0, "nodes 0 and 2 hold no hint for the dead node 1 after {KEYS} QUORUM writes");
    println!("{held} hints held for node 1 after {:?}", started.elapsed());

    cluster.restart(1).await?;
    cluster.wait_all_alive().await?;
    wait_hints_replayed(&cluster).await?;
    println!("hints replayed after {:?}", started.elapsed());

    cluster.kill9(0)?;
    cluster.kill9(2)?;
    cluster.wait_liveness(&[1], 0, "DOWN").await?;
    cluster.wait_liveness(&[1], 2, "DOWN").await?;
    let all: Vec<String> = before.iter().chain(&during).cloned().collect();
    check_values(&cluster, 1, &all, ConsistencyLevel::One).await?;

    let refused = kvctl(cluster.node(1).grpc_addr(), &["--consistency", "QUORUM", "put", "lonely", "x"]).await?;
    ensure!(refused.code == Some(3), "QUORUM write with 2 of 3 replicas down did not exit 3: {refused}");
    ensure!(refused.stderr.contains("unavailable"), "QUORUM refusal is not UNAVAILABLE: {refused}");
    ensure!(refused.stderr.contains("required"), "QUORUM refusal does not say what was required: {refused}");
    println!("refused as expected: {}", refused.stderr.trim());
    println!("done after {:?}", started.elapsed());
    Ok(())
}
