//! Starting a cluster the documented way, all at once: every node gets all
//! the others as `--seeds` and they start at the same moment (a StatefulSet
//! with parallel pod management). The cluster must form (every node NORMAL,
//! none exits: joins queue instead of failing with RKV-TOPOLOGY-BUSY), and
//! `/readyz` must not say 200 before the node can take a write at the
//! default level (QUORUM): a QUORUM write sent the moment a node first
//! answers 200 must succeed.

use std::time::Duration;

use anyhow::{Context as _, Result, bail, ensure};
use ringkv_e2e::cluster::Cluster;
use ringkv_e2e::grpc;
use ringkv_proto::v1::ConsistencyLevel;

/// One cluster at a time, so that the timings mean something on a 2-core machine.
static ONE_CLUSTER_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// How long a node may take to answer `/readyz` 200 after its process started.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// Polls `/readyz` of node `i` until it first answers 200, then at once
/// writes one key at QUORUM through that node; returns the write's outcome.
async fn write_when_first_ready(http: String, grpc_endpoint: String, i: usize, round: usize) -> Result<Duration> {
    let client = reqwest::Client::builder().timeout(Duration::from_secs(2)).build()?;
    let mut kv = grpc::connect(&grpc_endpoint).await?;
    let started = tokio::time::Instant::now();
    loop {
        let ready = client.get(format!("{http}/readyz")).send().await.map(|r| r.status() == 200).unwrap_or(false);
        if ready {
            let key = format!("first-write-{round}-{i}");
            grpc::put_at(&mut kv, &key, "v", ConsistencyLevel::Quorum)
                .await
                .with_context(|| format!("node {i} answered /readyz 200, then refused a QUORUM write"))?;
            return Ok(started.elapsed());
        }
        if started.elapsed() > READY_TIMEOUT {
            bail!("node {i} never answered /readyz 200 within {READY_TIMEOUT:?}");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Starts `nodes` nodes at once at replication factor `rf`, once per entry
/// of `staggers` (node `i` starting `i × stagger` after the first, as pods
/// do); each time checks the first-ready writes and that the cluster forms.
async fn start_all_at_once(nodes: usize, rf: u32, staggers: &[Duration]) -> Result<()> {
    let _turn = ONE_CLUSTER_AT_A_TIME.lock().await;
    for (round, &stagger) in staggers.iter().enumerate() {
        eprintln!("rf {rf} round {round}: {nodes} nodes, each starting {stagger:?} after the previous one");
        let mut cluster = Cluster::test().nodes(nodes).rf(rf).stagger(stagger).start_all_at_once().await?;
        let watchers: Vec<_> = (0..nodes)
            .map(|i| {
                let node = cluster.node(i);
                tokio::spawn(write_when_first_ready(node.http_base(), node.grpc_endpoint(), i, round))
            })
            .collect();
        for (i, w) in watchers.into_iter().enumerate() {
            let ready_after = w.await.context("watcher panicked")?.with_context(|| {
                format!("rf {rf} round {round}: node {i}'s log:\n{}", cluster.node(i).stderr_tail(8))
            })?;
            eprintln!(
                "rf {rf} round {round}: node {i} ready after {ready_after:?}; the QUORUM write through it succeeded"
            );
        }
        let running = cluster.running();
        let exited: Vec<String> = (0..nodes)
            .filter(|i| !running.contains(i))
            .map(|i| format!("node {i} exited:\n{}", cluster.node(i).stderr_tail(20)))
            .collect();
        ensure!(exited.is_empty(), "rf {rf} round {round}: {}", exited.join("\n"));
        cluster.wait_all_alive().await.with_context(|| format!("rf {rf} round {round}: the cluster formed"))?;
        cluster.wait_all_normal().await.with_context(|| format!("rf {rf} round {round}: every node NORMAL"))?;
        for i in 0..nodes {
            ensure!(cluster.node_mut(i).is_running(), "rf {rf} round {round}: node {i} exited after forming");
            let log = cluster.node(i).stderr_log();
            ensure!(!log.contains("RKV-TOPOLOGY-BUSY"), "rf {rf} round {round}: node {i} was refused a join:\n{log}");
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_nodes_started_at_once_at_rf_1_form_one_cluster() -> Result<()> {
    // Staggered, the node that hears all its seeds first decides first: the
    // others then find a cluster of RF nodes and all try to join at once.
    start_all_at_once(3, 1, &[Duration::ZERO, Duration::from_secs(1), Duration::from_millis(500)]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_nodes_started_at_once_at_rf_3_are_ready_only_when_a_quorum_write_works() -> Result<()> {
    start_all_at_once(3, 3, &[Duration::ZERO, Duration::ZERO, Duration::from_millis(500)]).await
}
