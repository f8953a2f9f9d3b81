//! Node lifecycle with real processes: join, decommission, replace (and the
//! refusals), with every key checked while and after ranges move.
//!
//! Key count: `RINGKV_E2E_KEYS`, default 100 000 (the count: about a
//! minute per test in a debug build, loaded and checked in batches);
//! `removenode` uses at most 10 000. The tests take turns (one cluster at a
//! time) so that their timings mean something on a 2-core machine; they are
//! printed with `cargo test -p ringkv-e2e --test topology -- --nocapture`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, ensure};
use ringkv_e2e::cluster::Cluster;
use ringkv_e2e::node::{NodeOptions, NodeProcess};
use ringkv_e2e::{grpc, kvctl, wait_until};
use ringkv_proto::v1::ConsistencyLevel;
use serde_json::Value;

/// How long a join, decommission or replacement may take at the default key count.
const CHANGE_TIMEOUT: Duration = Duration::from_secs(120);

/// One cluster at a time (see the module docs).
static ONE_CLUSTER_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn key_count() -> usize {
    std::env::var("RINGKV_E2E_KEYS").ok().and_then(|v| v.parse().ok()).unwrap_or(100_000)
}

fn keys() -> Vec<String> {
    keys_up_to(usize::MAX)
}

fn keys_up_to(max: usize) -> Vec<String> {
    (0..key_count().min(max)).map(|i| format!("key-{i:07}")).collect()
}

fn value_of(key: &str) -> String {
    format!("value-of-{key}")
}

/// Keys per `BatchWrite` / `BatchGet` when loading and checking.
const BATCH: usize = 250;

/// Writes every key at QUORUM through `endpoint`: 8 writers in parallel,
/// each sending batches of [`BATCH`] puts.
async fn load(endpoint: &str, keys: &[String]) -> Result<()> {
    let started = Instant::now();
    let chunks: Vec<Vec<String>> = keys.chunks(keys.len().div_ceil(8).max(1)).map(<[String]>::to_vec).collect();
    let mut tasks = Vec::new();
    for chunk in chunks {
        let endpoint = endpoint.to_owned();
        tasks.push(tokio::spawn(async move {
            let mut kv = grpc::connect(&endpoint).await?;
            for batch in chunk.chunks(BATCH) {
                let pairs: Vec<(String, String)> = batch.iter().map(|k| (k.clone(), value_of(k))).collect();
                grpc::put_many_at(&mut kv, &pairs, ConsistencyLevel::Quorum).await?;
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await.context("writer panicked")??;
    }
    eprintln!("loaded {} keys at QUORUM in {:?}", keys.len(), started.elapsed());
    Ok(())
}

/// Reads every key at `level` through `endpoint`; fails listing the missing or wrong ones.
async fn check_all(endpoint: &str, keys: &[String], level: ConsistencyLevel) -> Result<()> {
    let mut kv = grpc::connect(endpoint).await?;
    let mut wrong = Vec::new();
    for batch in keys.chunks(BATCH) {
        let got = grpc::get_many_at(&mut kv, batch, level).await?;
        for (key, value) in batch.iter().zip(got) {
            match value {
                Some(v) if v == value_of(key).as_bytes() => {}
                other => wrong.push(format!("{key}: {other:?}")),
            }
        }
    }
    ensure!(
        wrong.is_empty(),
        "{} of {} keys missing or wrong at {} via {endpoint}, e.g. {:?}",
        wrong.len(),
        keys.len(),
        level.as_str_name(),
        &wrong[..wrong.len().min(5)]
    );
    Ok(())
}

/// Reads keys round-robin at QUORUM through `endpoint` until stopped; returns
/// how many reads ran and every failure (error, missing or wrong value).
fn reader(
    endpoint: String,
    keys: Arc<Vec<String>>,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<Result<(u64, Vec<String>)>> {
    tokio::spawn(async move {
        let mut kv = grpc::connect(&endpoint).await?;
        let (mut reads, mut failures) = (0u64, Vec::new());
        for key in keys.iter().cycle() {
            if stop.load(Ordering::SeqCst) {
                break;
            }
            match grpc::get_value_at(&mut kv, key, ConsistencyLevel::Quorum).await {
                Ok(Some(v)) if v == value_of(key).as_bytes() => {}
                other => failures.push(format!("{key}: {other:?}")),
            }
            reads += 1;
        }
        Ok((reads, failures))
    })
}

async fn stop_reader(
    stop: &AtomicBool,
    handle: tokio::task::JoinHandle<Result<(u64, Vec<String>)>>,
    what: &str,
) -> Result<()> {
    stop.store(true, Ordering::SeqCst);
    let (reads, failures) = handle.await.context("reader panicked")??;
    eprintln!("{what}: {reads} QUORUM reads during the change, {} failed", failures.len());
    ensure!(reads > 0, "{what}: the reader loop read nothing");
    ensure!(
        failures.is_empty(),
        "{what}: {} of {reads} reads failed, e.g. {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    Ok(())
}

/// The state node `observer` reports for `host_id` (`NORMAL`, `JOINING`, ...).
async fn state_of(cluster: &Cluster, observer: usize, host_id: &str) -> Option<String> {
    let status = cluster.status_json(observer).await.ok()?;
    status["nodes"]
        .as_array()?
        .iter()
        .find(|n| n["host_id"] == host_id)
        .and_then(|n| n["state"].as_str())
        .map(str::to_owned)
}

async fn wait_state(cluster: &Cluster, observers: &[usize], host_id: &str, state: &str) -> Result<()> {
    let what = format!("nodes {observers:?} report {host_id} {state}");
    wait_until(CHANGE_TIMEOUT, &what, async || {
        for &o in observers {
            if state_of(cluster, o, host_id).await.as_deref() != Some(state) {
                return false;
            }
        }
        true
    })
    .await
}

/// Primary ownership of `host_id` from `kvctl --json ring`: the share of the
/// token space whose first replica it is.
async fn primary_share(cluster: &Cluster, via: usize, host_id: &str) -> Result<f64> {
    let out = kvctl(cluster.node(via).grpc_addr(), &["--json", "ring"]).await?;
    ensure!(out.success(), "kvctl ring: {out}");
    let ring: Value = serde_json::from_str(out.stdout.trim())?;
    let mut tokens: Vec<(u64, String)> = ring["tokens"]
        .as_array()
        .context("no tokens")?
        .iter()
        .map(|t| {
            (t["token"].as_str().unwrap_or("0").parse().unwrap_or(0), t["host_id"].as_str().unwrap_or("").to_owned())
        })
        .collect();
    tokens.sort();
    let mut owned = 0u128;
    for (i, (t, h)) in tokens.iter().enumerate() {
        let prev = if i == 0 { tokens[tokens.len() - 1].0 } else { tokens[i - 1].0 };
        if h == host_id {
            owned += u128::from(t.wrapping_sub(prev));
        }
    }
    Ok(owned as f64 / 2f64.powi(64))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn join_and_decommission_keep_every_key_readable_at_quorum() -> Result<()> {
    let _turn = ONE_CLUSTER_AT_A_TIME.lock().await;
    let mut cluster = Cluster::test().nodes(3).rf(3).start().await?;
    let keys = Arc::new(keys());
    let entry = cluster.node(0).grpc_endpoint();
    load(&entry, &keys).await?;

    // Join a 4th node while a reader loop reads every key at QUORUM.
    let stop = Arc::new(AtomicBool::new(false));
    let reading = reader(entry.clone(), Arc::clone(&keys), Arc::clone(&stop));
    let started = Instant::now();
    let new = cluster.add_node().await?;
    let new_id = cluster.host_id(new);
    wait_state(&cluster, &[0, 1, 2, new], &new_id, "NORMAL").await.context("the new node becomes NORMAL")?;
    eprintln!("join of {} keys' ranges took {:?}", keys.len(), started.elapsed());
    stop_reader(&stop, reading, "join").await?;
    let metrics = cluster.metrics(new).await?;
    let streamed = ringkv_e2e::cluster::metric_sum(&metrics, "ringkv_streaming_records_total");
    ensure!(
        streamed as usize >= keys.len() / 2,
        "the new node streamed only {streamed} records of {}; its metrics: {:?}\nits log:\n{}",
        keys.len(),
        metrics.lines().filter(|l| l.contains("streaming")).collect::<Vec<_>>(),
        cluster.node(new).stderr_tail(30)
    );
    // The streaming rate, as the node measured it (records, bytes, seconds, MB/s).
    for line in cluster.node(new).stderr_log().lines().filter(|l| l.contains("streaming finished")) {
        eprintln!("new node: {line}");
    }
    let share = primary_share(&cluster, 0, &new_id).await?;
    ensure!((share - 0.25).abs() < 0.05, "the new node is primary for {share:.3} of the ring, not ~1/4");
    check_all(&cluster.node(new).grpc_endpoint(), &keys, ConsistencyLevel::Quorum).await?;

    // Decommission node 1 the same way.
    let leaving = cluster.host_id(1);
    let stop = Arc::new(AtomicBool::new(false));
    let reading = reader(entry.clone(), Arc::clone(&keys), Arc::clone(&stop));
    let started = Instant::now();
    // --no-wait: kvctl's own follow-up would outlast the harness's kvctl timeout at 100 K keys.
    let out = kvctl(cluster.node(1).grpc_addr(), &["--json", "decommission", "--no-wait"]).await?;
    ensure!(out.success() && out.stdout.contains("LEAVING"), "kvctl decommission: {out}");
    wait_state(&cluster, &[0, 2, new], &leaving, "LEFT").await?;
    wait_until(CHANGE_TIMEOUT, "the decommissioned process exits", async || !cluster.node_mut(1).is_running()).await?;
    eprintln!("decommission took {:?}", started.elapsed());
    stop_reader(&stop, reading, "decommission").await?;
    for via in [0, 2, new] {
        check_all(&cluster.node(via).grpc_endpoint(), &keys, ConsistencyLevel::Quorum).await?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kvctl_decommission_without_no_wait_reports_left_once_the_node_has_left() -> Result<()> {
    let _turn = ONE_CLUSTER_AT_A_TIME.lock().await;
    let mut cluster = Cluster::test().nodes(4).rf(3).start().await?;
    let keys = keys_up_to(2_000);
    load(&cluster.node(0).grpc_endpoint(), &keys).await?;
    let leaving = cluster.host_id(3);
    let started = Instant::now();
    // Without --no-wait kvctl follows the decommission to its end; the other
    // nodes learn of LEAVING by gossip only after the command has started.
    let out = kvctl(cluster.node(3).grpc_addr(), &["--json", "decommission"]).await?;
    ensure!(out.success(), "kvctl decommission (following it): {out}");
    let answer: Value = serde_json::from_str(out.stdout.trim()).with_context(|| format!("not JSON: {out}"))?;
    ensure!(answer["state"] == "LEFT" && answer["host_id"] == leaving.as_str(), "kvctl decommission: {out}");
    eprintln!("kvctl decommission followed the change to LEFT in {:?}", started.elapsed());
    wait_state(&cluster, &[0, 1, 2], &leaving, "LEFT").await?;
    wait_until(CHANGE_TIMEOUT, "the decommissioned process exits", async || !cluster.node_mut(3).is_running()).await?;
    check_all(&cluster.node(0).grpc_endpoint(), &keys, ConsistencyLevel::Quorum).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_wiped_node_comes_back_with_replace_and_serves_every_key_alone() -> Result<()> {
    let _turn = ONE_CLUSTER_AT_A_TIME.lock().await;
    let mut cluster = Cluster::test().nodes(3).rf(3).start().await?;
    let keys = keys();
    load(&cluster.node(0).grpc_endpoint(), &keys).await?;

    // Refusals: too few nodes left, removing a live node.
    let out = kvctl(cluster.node(2).grpc_addr(), &["decommission"]).await?;
    ensure!(
        !out.success() && out.stderr.contains("replication factor"),
        "decommission below RF must be refused: {out}"
    );
    let out = kvctl(cluster.node(0).grpc_addr(), &["removenode", &cluster.host_id(1)]).await?;
    ensure!(!out.success() && out.stderr.contains("alive"), "removenode of a live node must be refused: {out}");
    let scratch = tempfile::tempdir()?;
    let unknown = "0123456789abcdef0123456789abcdef".to_owned();
    for (bad, why) in [(cluster.host_id(1), "is alive"), (unknown, "no member has host id")] {
        let options = NodeOptions::new(scratch.path().join(&bad))
            .seeds([cluster.node(0).grpc_addr()])
            .arg("--replace")
            .arg(bad.clone());
        let refused = NodeProcess::start(options).await.err().map(|e| format!("{e:#}")).unwrap_or_default();
        ensure!(refused.contains(why), "--replace {bad} must be refused with {why:?}, got: {refused}");
    }

    // Node 2 loses its disk.
    cluster.kill9(2)?;
    cluster.wait_liveness(&[0, 1], 2, "DOWN").await?;
    let started = Instant::now();
    cluster.replace_wiped(2).await?;
    let id = cluster.host_id(2);
    wait_state(&cluster, &[0, 1, 2], &id, "NORMAL").await.context("the replacement becomes NORMAL")?;
    eprintln!("replacement streamed {} keys in {:?}", keys.len(), started.elapsed());
    for line in cluster.node(2).stderr_log().lines().filter(|l| l.contains("streaming finished")) {
        eprintln!("replacement: {line}");
    }

    // Alone, it must hold every key.
    cluster.kill9(0)?;
    cluster.kill9(1)?;
    check_all(&cluster.node(2).grpc_endpoint(), &keys, ConsistencyLevel::One).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn removenode_re_replicates_a_dead_nodes_ranges_from_the_survivors() -> Result<()> {
    let _turn = ONE_CLUSTER_AT_A_TIME.lock().await;
    // The 4th node joins while the cluster starts (the first three have RF nodes).
    let mut cluster = Cluster::test().nodes(4).rf(3).start().await?;
    let keys = keys_up_to(10_000);
    load(&cluster.node(0).grpc_endpoint(), &keys).await?;

    cluster.kill9(3)?;
    cluster.wait_liveness(&[0, 1, 2], 3, "DOWN").await?;
    let dead = cluster.host_id(3);
    let started = Instant::now();
    let out = kvctl(cluster.node(0).grpc_addr(), &["--json", "removenode", &dead]).await?;
    ensure!(out.success() && out.stdout.contains("LEFT"), "kvctl removenode: {out}");
    wait_state(&cluster, &[0, 1, 2], &dead, "LEFT").await?;
    eprintln!("removenode took {:?}", started.elapsed());
    let out = kvctl(cluster.node(0).grpc_addr(), &["removenode", &dead]).await?;
    ensure!(!out.success() && out.stderr.contains("already left"), "a second removenode must be refused: {out}");

    // At RF 3 on three survivors every key must now be on each of them: node 0
    // alone (the others killed) serves every key at ONE from its own copy.
    // Without the streaming it would lack the keys whose replicas were 1, 2 and 3.
    check_all(&cluster.node(1).grpc_endpoint(), &keys, ConsistencyLevel::Quorum).await?;
    cluster.kill9(1)?;
    cluster.kill9(2)?;
    check_all(&cluster.node(0).grpc_endpoint(), &keys, ConsistencyLevel::One).await
}
