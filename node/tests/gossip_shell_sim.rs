//! Gossip and failure detection through the production shell: every node
//! runs the real `GossipWorker` (ticks, concurrent rounds, probes bounded by
//! the interval) over the one `SimNetwork` (`SimGossipTransport`), its
//! `GossipHandle` answering the others' SYNs, ACK2s and probes, so gossip
//! crosses the same fault pipeline as replica, anti-entropy and streaming
//! calls. Virtual time (tokio's paused clock) drives both the ticks and the
//! phi-accrual detector.
//!
//! One scenario per seed, under 5 % loss and 1..=20 ms delays: a cold
//! cluster converges (every view holds every member, alive); a crashed node
//! is convicted DOWN by all others; a node partitioned from the rest is
//! convicted on both sides; after the heal and the restart every node sees
//! every other alive again. Each phase asserts that its fault fired on the
//! gossip protocol's own counters. Conditions are waited on with virtual
//! deadlines, never fixed sleeps.
//!
//! How this differs from `gossip_sim.rs` (the sans-IO `Gossiper` core over
//! `gossip_net`): that one models TCP connections (retransmission after a
//! cut, reconnects), name resolution and clusters of 100 nodes, which this
//! network does not (a lost message here is simply lost); this one proves the
//! shell and its wiring (the worker's scheduling, the handle's event
//! application to the `ClusterView`) on the network the other protocols use.
//! The seed fixes the network's randomness and the gossip targets; the
//! worker's storage steps (load, saved membership) run on the blocking pool,
//! so a seed need not replay exactly, and the checks hold for any order.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ringkv_node::membership::{
    ClusterView, DetectorConfig, GossipHandle, GossipWorker, Gossiper, Liveness, Member, MemberStatus,
};
use ringkv_node::peer::{Protocol, SimGossipTransport, SimNetwork, SimStats};
use ringkv_node::storage::MemoryStorage;
use ringkv_node::worker::WorkerRunner;
use tokio_util::sync::CancellationToken;

const NODES: usize = 5;
const INTERVAL: Duration = Duration::from_secs(1);
/// Longest a phase may take in virtual time before the test fails.
const PHASE_DEADLINE: Duration = Duration::from_secs(60);

fn seeds() -> std::ops::Range<u64> {
    0..std::env::var("RINGKV_GOSSIP_SEEDS").ok().and_then(|v| v.parse().ok()).unwrap_or(3)
}

fn host(i: usize) -> String {
    format!("node-{i}")
}

fn member(i: usize) -> Member {
    let addr = SocketAddr::from(([10, 0, 0, i as u8 + 1], 7000));
    Member {
        host_id: host(i),
        node_id: i as u64 + 1,
        grpc_addr: addr,
        http_addr: addr,
        zone: String::new(),
        rack: String::new(),
        tokens: vec![(i as u64 + 1) * 1_000_003],
        generation: 1,
        status: MemberStatus::Normal,
    }
}

/// A cluster of real gossip workers over one network; node 0 is everyone's seed.
struct Cluster {
    net: Arc<SimNetwork>,
    views: Vec<Arc<ClusterView>>,
    runner: WorkerRunner,
}

impl Cluster {
    fn start(seed: u64, stop: &CancellationToken) -> Cluster {
        let net = Arc::new(SimNetwork::new(seed));
        net.set_delay(Duration::from_millis(1), Duration::from_millis(20));
        net.set_drop_probability(0.05);
        let mut runner = WorkerRunner::new(stop);
        let seed_addr = member(0).grpc_addr;
        let mut views = Vec::new();
        for i in 0..NODES {
            let m = member(i);
            let view = Arc::new(ClusterView::new(m.clone()));
            let core = Gossiper::new(&m, vec![seed_addr], DetectorConfig::default());
            let gossip = GossipHandle::new(core, Arc::clone(&view), None);
            net.serve_gossip(m.grpc_addr, &m.host_id, gossip.clone());
            let transport = Arc::new(SimGossipTransport::new(Arc::clone(&net), &m.host_id, INTERVAL));
            let storage = Arc::new(MemoryStorage::new());
            let worker = GossipWorker::new(gossip, transport, storage, "schema-1".into(), INTERVAL)
                .with_rng_seed(seed.wrapping_mul(31).wrapping_add(i as u64));
            runner.spawn(worker);
            views.push(view);
        }
        Cluster { net, views, runner }
    }

    /// How `observer` judges `target` now (unknown: not a member of its view yet).
    fn sees(&self, observer: usize, target: usize) -> Option<Liveness> {
        let view = &self.views[observer];
        view.member(&host(target)).map(|_| view.liveness(&host(target)))
    }

    /// Waits (virtual time) until `done` holds; false at the deadline.
    async fn wait_until(&self, done: impl Fn(&Cluster) -> bool) -> bool {
        let deadline = tokio::time::Instant::now() + PHASE_DEADLINE;
        while !done(self) {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        true
    }

    fn gossip_stats(&self) -> SimStats {
        self.net.stats_of(Protocol::Gossip)
    }
}

/// Every node in `observers` sees every node in `targets` as `liveness`.
fn all_see(c: &Cluster, observers: &[usize], targets: &[usize], liveness: Liveness) -> bool {
    observers.iter().all(|&o| targets.iter().filter(|&&t| t != o).all(|&t| c.sees(o, t) == Some(liveness)))
}

const ALL: [usize; NODES] = [0, 1, 2, 3, 4];

async fn converge(c: &Cluster, seed: u64) {
    let start = tokio::time::Instant::now();
    assert!(c.wait_until(|c| all_see(c, &ALL, &ALL, Liveness::Alive)).await, "seed {seed}: no convergence");
    let s = c.gossip_stats();
    assert!(s.delivered > 0 && s.dropped > 0, "seed {seed}: gossip did not cross the lossy network: {s:?}");
    println!("seed {seed}: converged in {:?} (virtual)", start.elapsed());
}

async fn crash_is_convicted(c: &Cluster, seed: u64) {
    let before = c.gossip_stats();
    let start = tokio::time::Instant::now();
    c.net.crash(&host(4));
    let others = [0, 1, 2, 3];
    assert!(c.wait_until(|c| all_see(c, &others, &[4], Liveness::Down)).await, "seed {seed}: crash not convicted");
    let s = c.gossip_stats().since(&before);
    assert!(s.refused_by_crash > 0, "seed {seed}: the crash refused no gossip: {s:?}");
    assert!(all_see(c, &others, &others, Liveness::Alive), "seed {seed}: a live node was convicted");
    println!("seed {seed}: crashed node DOWN everywhere after {:?}", start.elapsed());
}

async fn partition_is_convicted(c: &Cluster, seed: u64) {
    let before = c.gossip_stats();
    let start = tokio::time::Instant::now();
    c.net.partition(&[&host(0), &host(1), &host(2)], &[&host(3)]);
    let convicted =
        |c: &Cluster| all_see(c, &[0, 1, 2], &[3], Liveness::Down) && all_see(c, &[3], &[0, 1, 2], Liveness::Down);
    assert!(c.wait_until(convicted).await, "seed {seed}: the partition was not detected on both sides");
    let s = c.gossip_stats().since(&before);
    assert!(s.refused_by_partition > 0, "seed {seed}: the partition refused no gossip: {s:?}");
    println!("seed {seed}: partitioned node DOWN on both sides after {:?}", start.elapsed());
}

async fn heal_and_restart_recover(c: &Cluster, seed: u64) {
    let start = tokio::time::Instant::now();
    c.net.heal();
    c.net.restart(&host(4));
    assert!(c.wait_until(|c| all_see(c, &ALL, &ALL, Liveness::Alive)).await, "seed {seed}: no recovery");
    println!("seed {seed}: every node alive everywhere {:?} after the heal and restart", start.elapsed());
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn real_gossip_workers_detect_a_crash_and_a_partition_and_recover_over_the_sim_network() {
    for seed in seeds() {
        let stop = CancellationToken::new();
        let c = Cluster::start(seed, &stop);
        converge(&c, seed).await;
        crash_is_convicted(&c, seed).await;
        partition_is_convicted(&c, seed).await;
        heal_and_restart_recover(&c, seed).await;
        let report = c.runner.stop(Duration::from_secs(5)).await;
        assert!(report.aborted.is_empty(), "seed {seed}: workers did not stop: {report:?}");
    }
}
