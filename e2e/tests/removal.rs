//! `kvctl removenode` is durable cluster state, with real processes: after
//! a dead node is removed, a surviving node that restarts and a brand-new
//! node both hold it LEFT (not NORMAL/DOWN with its tokens), the hints held
//! for it are dropped at once, and writes through any node leave no new
//! hints for it.
//!
//! Before the fix the removal only edited the live nodes' views: the
//! restarted node and the new one learned the dead node back from gossip as
//! NORMAL, and coordinators kept storing hints for it.

use std::time::Duration;

use anyhow::{Context as _, Result, ensure};
use ringkv_e2e::cluster::Cluster;
use ringkv_e2e::{grpc, kvctl, wait_until};
use ringkv_proto::v1::ConsistencyLevel;

/// How long a removal, a restart or a join may take to show everywhere.
const TIMEOUT: Duration = Duration::from_secs(60);

/// The state (`NORMAL`, `LEFT`, ...) node `observer` reports for `host_id`.
async fn state_of(cluster: &Cluster, observer: usize, host_id: &str) -> Result<Option<String>> {
    let status = cluster.status_json(observer).await?;
    let nodes = status["nodes"].as_array().with_context(|| format!("no nodes in {status}"))?;
    Ok(nodes.iter().find(|n| n["host_id"] == host_id).and_then(|n| n["state"].as_str()).map(str::to_owned))
}

/// Waits until every node of `observers` reports `host_id` LEFT; fails with what each said.
async fn wait_left(cluster: &Cluster, observers: &[usize], host_id: &str) -> Result<()> {
    let mut last = Vec::new();
    let waited = wait_until(TIMEOUT, &format!("nodes {observers:?} report {host_id} LEFT"), async || {
        last.clear();
        let mut all = true;
        for &o in observers {
            let state = state_of(cluster, o, host_id).await;
            all &= matches!(&state, Ok(Some(s)) if s == "LEFT");
            last.push(format!("node {o}: {state:?}"));
        }
        all
    })
    .await;
    waited.with_context(|| format!("last seen: {}", last.join(", ")))
}

/// Writes `count` keys at QUORUM through node `via`.
async fn write_keys(cluster: &Cluster, via: usize, prefix: &str, count: usize) -> Result<()> {
    let mut kv = grpc::connect(&cluster.node(via).grpc_endpoint()).await?;
    let pairs: Vec<(String, String)> = (0..count).map(|i| (format!("{prefix}-{i:04}"), format!("v{i}"))).collect();
    for batch in pairs.chunks(100) {
        grpc::put_many_at(&mut kv, batch, ConsistencyLevel::Quorum).await?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_removed_node_stays_left_after_restarts_and_for_new_nodes_and_gets_no_hints() -> Result<()> {
    let mut cluster = Cluster::test().nodes(4).rf(3).start().await?;
    cluster.wait_all_normal().await?;
    cluster.kill9(3)?;
    cluster.wait_liveness(&[0, 1, 2], 3, "DOWN").await?;
    let dead = cluster.host_id(3);

    // Writes while it is down leave hints for it (the fault fired).
    write_keys(&cluster, 0, "before", 300).await?;
    let held = cluster.pending_hints(0, 3).await?;
    ensure!(held > 0, "node 0 holds no hints for the dead node after 300 QUORUM writes");

    let out = kvctl(cluster.node(0).grpc_addr(), &["--json", "removenode", &dead]).await?;
    ensure!(out.success() && out.stdout.contains("LEFT"), "kvctl removenode: {out}");
    wait_left(&cluster, &[0, 1, 2], &dead).await?;
    // Failures are collected from here on, so that one run shows every way the removal is undone.
    let mut problems = Vec::new();
    let mut hints = 0;
    let dropped = wait_until(TIMEOUT, "node 0 drops the hints of the removed node", async || {
        hints = cluster.pending_hints(0, 3).await.unwrap_or(u64::MAX);
        hints == 0
    })
    .await;
    if let Err(e) = dropped {
        problems.push(format!("node 0 still holds {hints} hints (of {held}) for the removed node: {e:#}"));
    }

    // A survivor restarts (new port, new generation) and a brand-new node joins.
    cluster.kill9(1)?;
    cluster.restart(1).await?;
    let new = cluster.add_node().await?;
    if let Err(e) = wait_left(&cluster, &[0, 1, 2, new], &dead).await {
        problems.push(format!("after a restart and a join: {e:#}"));
    }
    let new_id = cluster.host_id(new);
    wait_until(
        TIMEOUT,
        "the new node is NORMAL",
        async || matches!(state_of(&cluster, new, &new_id).await, Ok(Some(s)) if s == "NORMAL"),
    )
    .await?;

    // Writes through every node, the restarted and the new one included, leave no hint for it.
    for via in [0, 1, 2, new] {
        write_keys(&cluster, via, &format!("after-{via}"), 100).await?;
    }
    for holder in [0, 1, 2, new] {
        let n = cluster.pending_hints(holder, 3).await?;
        if n != 0 {
            problems.push(format!("node {holder} holds {n} hints for the removed node"));
        }
        let state = state_of(&cluster, holder, &dead).await?;
        if state.as_deref() != Some("LEFT") {
            problems.push(format!("node {holder} reports the removed node {state:?}"));
        }
    }
    ensure!(problems.is_empty(), "the removal was undone:\n{}", problems.join("\n"));
    Ok(())
}
