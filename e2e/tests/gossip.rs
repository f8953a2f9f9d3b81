//! Gossip membership and phi-accrual failure detection with real processes.
//!
//! Three `kvnode serve` processes where nodes 1 and 2 list only node 0 as
//! their seed: everyone still sees everyone ALIVE (membership spread by
//! gossip, not by seeds). Then, for each victim in turn (node 1, then the
//! seed node 0 itself), SIGKILL it, time how long until every other node
//! reports it DOWN (at the default `phi_convict_threshold`, within 10 s),
//! restart it (new generation, new ports) and wait until every node sees
//! every member ALIVE at its new address again. The detection times are
//! printed; `RINGKV_E2E_GOSSIP_RUNS=N` kills N victims (default 2).

use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, ensure};
use ringkv_e2e::cluster::Cluster;

/// The failure detector must convict a dead node within this at the defaults.
const DETECTION_LIMIT: Duration = Duration::from_secs(10);
/// How long the test watches for the verdict before giving up (for a useful message).
const WATCH: Duration = Duration::from_secs(30);

/// Polls the status of every node in `observers` until each reports node
/// `target` DOWN; returns, per observer, the time from `since` to the first
/// poll where it did.
async fn time_until_down(
    cluster: &Cluster,
    observers: &[usize],
    target: usize,
    since: Instant,
) -> Result<Vec<Duration>> {
    let target_id = cluster.host_id(target);
    let mut seen: Vec<Option<Duration>> = vec![None; observers.len()];
    let mut last = Vec::new();
    while since.elapsed() < WATCH {
        last.clear();
        for (k, &observer) in observers.iter().enumerate() {
            if seen[k].is_some() {
                continue;
            }
            match cluster.status(observer).await {
                Ok(view) => {
                    if view.liveness_of(&target_id) == Some("DOWN") {
                        seen[k] = Some(since.elapsed());
                    }
                    last.push(format!("node {observer}: {view}"));
                }
                Err(e) => last.push(format!("node {observer}: {e:#}")),
            }
        }
        if seen.iter().all(Option::is_some) {
            return Ok(seen.into_iter().flatten().collect());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    anyhow::bail!(
        "nodes {observers:?} did not all report node {target} DOWN within {WATCH:?}; last seen:\n{}",
        last.join("\n")
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn gossip_spreads_membership_from_one_seed_and_detects_a_killed_node() -> Result<()> {
    let runs: usize = std::env::var("RINGKV_E2E_GOSSIP_RUNS").ok().and_then(|s| s.parse().ok()).unwrap_or(2);
    let started = Instant::now();
    // Nodes 1 and 2 get only node 0 as seed (see `Cluster`); start() waits until all see all ALIVE.
    let mut cluster = Cluster::test().nodes(3).rf(3).start().await?;
    println!("3 nodes seeded through node 0 see each other ALIVE after {:?}", started.elapsed());
    let gossip_rounds = cluster.metric_sum(2, "ringkv_gossip_rounds_total").await?;
    ensure!(gossip_rounds > 0.0, "node 2 reports no gossip round in its metrics");

    let mut measured = Vec::new();
    for run in 0..runs {
        let victim = [1, 0, 2][run % 3];
        let observers: Vec<usize> = (0..3).filter(|&i| i != victim).collect();
        cluster.kill9(victim)?;
        let killed_at = Instant::now();
        let times = time_until_down(&cluster, &observers, victim, killed_at).await?;
        println!("run {run}: node {victim} SIGKILLed; DOWN at nodes {observers:?} after {times:?}");
        let slowest = times.iter().copied().max().unwrap_or_default();
        ensure!(
            slowest <= DETECTION_LIMIT,
            "node {victim} took {slowest:?} to be DOWN everywhere (limit {DETECTION_LIMIT:?})"
        );
        let phi = cluster.metric_sum(observers[0], "ringkv_failure_detector_phi").await?;
        ensure!(phi >= 8.0, "node {}'s ringkv_failure_detector_phi does not show the conviction: {phi}", observers[0]);
        measured.push(slowest);

        let restarted = Instant::now();
        cluster.restart(victim).await?;
        cluster.wait_all_alive().await.with_context(|| format!("after restarting node {victim}"))?;
        println!("run {run}: node {victim} restarted and ALIVE everywhere after {:?}", restarted.elapsed());
    }
    println!("detection times (kill -> DOWN on every peer): {measured:?}");
    Ok(())
}
