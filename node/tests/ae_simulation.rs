//! Deterministic simulation of anti-entropy: a partition that heals
//! converges through Merkle repair, and no acknowledged write is lost.
//!
//! 5 nodes at RF 3 over a lossy simulated network. While the cluster is cut
//! in two, concurrent clients put and delete keys at ONE and QUORUM through
//! coordinators on their own side. Nothing else may heal the replicas: hints
//! are stored but never replayed, and nothing reads through a coordinator
//! (so no read repair); the replicas are checked to disagree. Then the
//! partition heals and the nodes run their real `Repairer` (what
//! `RepairWorker` runs), whose exchange crosses the same lossy network (the
//! network's `SimConnector`; its own counters must show calls delivered and
//! lost, and the partition must have refused writes): one
//! node first (each range it repaired with both peers must then agree on all
//! three replicas, so a repair pushes as well as pulls), then every node,
//! round after round, until every range's trees agree. Comparing storage
//! directly:
//! (a) every replica of every key holds the same record;
//! (b) every acknowledged write is still a sibling, or was superseded by a
//!     write whose coordinator had seen it;
//! (c) nothing an acknowledged delete (or overwrite) removed comes back;
//! (d) one more repair moves nothing;
//! (e) the repair found differing buckets and moved records.
//! Ground truth for (b) and (c) is the cluster's `WriteLog`: every write a
//! coordinator applied, acknowledged or not, with the context it carried.
//!
//! Seeds: 8 by default, `RINGKV_SIM_SEEDS=N` runs N; a failing seed replays
//! exactly. `--nocapture` prints each seed's numbers.

mod sim;

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::time::Duration;

use bytes::Bytes;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use ringkv_node::antientropy::RepairStats;
use ringkv_node::error::KvError;
use ringkv_node::peer::Protocol;
use ringkv_node::replication::{ConsistencyLevel, ConsistencyLevel::*, PutOptions};
use ringkv_node::version::{Dot, VersionVector};
use sim::{KS, SimCluster, at, b};

/// Seeds the test runs: 8 in CI; `RINGKV_SIM_SEEDS=N` runs N (an opt-in soak).
fn seeds() -> std::ops::Range<u64> {
    0..std::env::var("RINGKV_SIM_SEEDS").ok().and_then(|v| v.parse().ok()).unwrap_or(8)
}

const KEYS: usize = 64;
const CLIENTS_PER_SIDE: usize = 3;
const OPS_PER_CLIENT: usize = 25;
/// Probability of losing each request and each reply, during the writes and the repair.
const LOSS: f64 = 0.02;
/// Repair rounds (one repair on every node) allowed before the trees must agree.
const MAX_ROUNDS: u32 = 8;

fn key(k: usize) -> Bytes {
    b(&format!("k{k:02}"))
}

/// A write its client got an acknowledgement for.
#[derive(Debug, Clone)]
struct Acked {
    key: Bytes,
    /// `None`: a delete.
    value: Option<Bytes>,
    /// The context the client was answered with.
    context: VersionVector,
    level: ConsistencyLevel,
}

/// What the clients saw while the cluster was cut in two.
#[derive(Debug, Default)]
struct Partitioned {
    acked: Vec<Acked>,
    failed: u32,
}

/// Errors a write may end with when replicas are cut off or messages lost; anything else is a bug.
fn is_availability_error(e: &KvError) -> bool {
    matches!(e, KvError::QuorumNotReached { .. } | KvError::Unavailable { .. } | KvError::Timeout { .. })
}

/// Every key written once at ALL on the healthy cluster.
async fn write_initial_values(c: &SimCluster, seed: u64) -> Vec<Acked> {
    let mut acked = Vec::new();
    for k in 0..KEYS {
        let (key, value) = (key(k), b(&format!("k{k:02}=initial")));
        let opts = PutOptions { consistency: at(All), ..PutOptions::default() };
        let w = c.node(k % c.nodes.len()).put(KS, key.clone(), value.clone(), opts).await;
        let w = w.unwrap_or_else(|e| panic!("seed {seed}: initial write of {key:?} at ALL: {e}"));
        let context = VersionVector::decode_context(&w.context).expect("context");
        acked.push(Acked { key, value: Some(value), context, level: All });
    }
    acked
}

/// One client: blind puts and deletes of random keys at ONE or QUORUM through random nodes of `side`.
async fn client(c: &SimCluster, seed: u64, id: usize, side: &[usize], out: &RefCell<Partitioned>) {
    let mut rng = StdRng::seed_from_u64(seed * 1000 + id as u64);
    for op in 0..OPS_PER_CLIENT {
        tokio::time::sleep(Duration::from_millis(rng.random_range(0..20))).await;
        let k = rng.random_range(0..KEYS);
        let via = side[rng.random_range(0..side.len())];
        let level = if rng.random_bool(0.5) { One } else { Quorum };
        let value = (!rng.random_bool(0.3)).then(|| b(&format!("k{k:02}=c{id}.{op}")));
        let written = match &value {
            Some(v) => {
                let opts = PutOptions { consistency: at(level), ..PutOptions::default() };
                c.node(via).put(KS, key(k), v.clone(), opts).await
            }
            None => c.node(via).delete(KS, key(k), Bytes::new(), at(level)).await,
        };
        let mut out = out.borrow_mut();
        match written {
            Ok(w) => {
                let context = VersionVector::decode_context(&w.context).expect("context");
                out.acked.push(Acked { key: key(k), value, context, level });
            }
            Err(e) => {
                assert!(is_availability_error(&e), "seed {seed}: unexpected write error {e}");
                out.failed += 1;
            }
        }
    }
}

/// Cuts the cluster in two (sides drawn from the seed) and runs every client to the end.
async fn write_while_partitioned(c: &SimCluster, seed: u64) -> Partitioned {
    let mut order: Vec<usize> = (0..c.nodes.len()).collect();
    order.shuffle(&mut StdRng::seed_from_u64(seed));
    let (left, right) = order.split_at(c.nodes.len() / 2);
    c.partition(left, right);
    let out = RefCell::new(Partitioned::default());
    let clients = (0..2 * CLIENTS_PER_SIDE).map(|id| {
        let side = if id < CLIENTS_PER_SIDE { left } else { right };
        client(c, seed, id, side, &out)
    });
    futures::future::join_all(clients).await;
    out.into_inner()
}

/// What the repair rounds did.
#[derive(Debug, Default)]
struct Repaired {
    rounds: u32,
    ranges_failed: u32,
    stats: RepairStats,
}

/// One repair on every node, in turn; its totals.
async fn repair_round(c: &SimCluster, seed: u64, into: &mut Repaired) {
    for i in 0..c.nodes.len() {
        let progress = c.repair(i).await.unwrap_or_else(|e| panic!("seed {seed}: repair on node {i}: {e}"));
        assert!(progress.done && progress.ranges_done == progress.ranges_total, "seed {seed}: {progress:?}");
        into.ranges_failed += progress.ranges_failed;
        into.stats.add(&progress.stats);
    }
    into.rounds += 1;
}

/// The first repair runs on one node alone. Every range it repaired with
/// both peers (no message of it lost) must then agree on all three replicas:
/// a repair pushes what the peers lack as well as pulling. Returns how many.
async fn repair_on_one_node(c: &SimCluster, seed: u64, into: &mut Repaired) -> usize {
    let node = (seed % c.nodes.len() as u64) as usize;
    let (mut complete, mut failed) = (Vec::new(), 0);
    let progress = c.repair_reporting(node, |p| {
        if let Some((_, range, _)) = p.last.as_ref().filter(|_| !p.done && p.ranges_failed == failed) {
            complete.push(*range);
        }
        failed = p.ranges_failed;
    });
    let progress = progress.await.unwrap_or_else(|e| panic!("seed {seed}: repair on node {node}: {e}"));
    into.ranges_failed += progress.ranges_failed;
    into.stats.add(&progress.stats);
    let ranges = c.ranges();
    for range in &complete {
        let replicas = &ranges.iter().find(|(r, _)| r == range).expect("a range of the ring").1;
        let disagree = c.trees_disagree(*range, replicas);
        assert!(!disagree, "seed {seed}: node {node} repaired {range:?} with both peers, yet {replicas:?} disagree");
    }
    complete.len()
}

/// Repair rounds on every node until the trees of every range agree.
async fn repair_until_trees_agree(c: &SimCluster, seed: u64, mut repaired: Repaired) -> Repaired {
    while repaired.rounds < MAX_ROUNDS {
        repair_round(c, seed, &mut repaired).await;
        if c.ranges_disagreeing().0 == 0 {
            break;
        }
    }
    let (disagreeing, ranges) = c.ranges_disagreeing();
    assert_eq!(
        disagreeing, 0,
        "seed {seed}: after {} rounds {disagreeing} of {ranges} ranges disagree",
        repaired.rounds
    );
    repaired
}

/// (a): every key any node stores has the same record on each of its replicas.
fn assert_replicas_identical(c: &SimCluster, seed: u64) -> usize {
    let mut keys = BTreeSet::new();
    for i in 0..c.nodes.len() {
        let stored = c.nodes[i].parts.storage.scan(None, None, Some(KS), usize::MAX).expect("scan");
        keys.extend(stored.into_iter().map(|s| s.key));
    }
    for key in &keys {
        let replicas = c.replicas_of(key);
        let copies: Vec<_> = replicas.iter().map(|r| c.local(*r, key)).collect();
        assert!(copies[0].is_some(), "seed {seed}: {key:?} missing on replica {}", replicas[0]);
        assert!(copies.iter().all(|r| *r == copies[0]), "seed {seed}: replicas {replicas:?} of {key:?}: {copies:#?}");
    }
    keys.len()
}

/// What the converged records hold.
#[derive(Debug, Default)]
struct Outcome {
    live: usize,
    deleted: usize,
    with_siblings: usize,
    acks_superseded: usize,
}

/// The converged record of every key holds exactly the writes no later write
/// had seen, and every write applied anywhere is in its history.
fn assert_survivors_are_the_latest_writes(c: &SimCluster, seed: u64, outcome: &mut Outcome) {
    for key in (0..KEYS).map(key) {
        let writes = c.write_log().of_key(KS, &key);
        let record = c.local(c.replicas_of(&key)[0], &key).expect("every key was written");
        for w in &writes {
            assert!(record.clock.contains(w.dot), "seed {seed}: {key:?}: write {:?} never reached the replicas", w.dot);
        }
        let expected: Vec<Dot> =
            writes.iter().filter(|w| !writes.iter().any(|later| later.covers(w.dot))).map(|w| w.dot).collect();
        let kept: Vec<Dot> = record.siblings.iter().map(|s| s.dot).collect();
        let expected: BTreeSet<Dot> = expected.into_iter().collect();
        assert_eq!(kept.iter().copied().collect::<BTreeSet<_>>(), expected, "seed {seed}: siblings of {key:?}");
        for s in &record.siblings {
            let w = writes.iter().find(|w| w.dot == s.dot).expect("logged");
            assert_eq!(s.value, w.value, "seed {seed}: {key:?}: sibling {:?} holds another value", s.dot);
        }
        let live = record.siblings.iter().filter(|s| !s.is_tombstone()).count();
        outcome.live += usize::from(live > 0);
        outcome.deleted += usize::from(live == 0);
        outcome.with_siblings += usize::from(record.siblings.len() > 1);
    }
}

/// (b) and (c), from each client's acknowledgement.
fn assert_no_acknowledged_write_lost(c: &SimCluster, seed: u64, acked: &[Acked], outcome: &mut Outcome) {
    for a in acked {
        let writes = c.write_log().of_key(KS, &a.key);
        let w = writes.iter().find(|w| w.clock == a.context);
        let w = w.unwrap_or_else(|| panic!("seed {seed}: acknowledged write {a:?} is in no coordinator's log"));
        assert_eq!(w.value, a.value, "seed {seed}: {a:?} logged as {w:?}");
        let record = c.local(c.replicas_of(&a.key)[0], &a.key).expect("written");
        let kept = record.siblings.iter().any(|s| s.dot == w.dot);
        let superseded = writes.iter().any(|later| later.covers(w.dot));
        assert!(kept || superseded, "seed {seed}: (b) acknowledged write lost: {a:?}, record {record:?}");
        outcome.acks_superseded += usize::from(!kept);
        for s in record.siblings.iter().filter(|s| !s.is_tombstone()) {
            assert!(
                !w.covers(s.dot),
                "seed {seed}: (c) {:?} of {:?} came back after the acknowledged {}",
                s.value,
                a.key,
                if a.value.is_none() { "delete" } else { "overwrite" }
            );
        }
    }
}

/// The cluster after phase 1: diverged replicas, and what the clients were told.
#[derive(Debug)]
struct Diverged {
    acked: Vec<Acked>,
    failed: u32,
    /// Writes any coordinator applied (acknowledged or not).
    written: usize,
    hinted: u64,
    keys: usize,
}

/// Phase 1: initial values at ALL, then writes on both sides of a lossy
/// partition; proves the faults fired and the replicas diverged.
async fn diverge(c: &SimCluster, seed: u64) -> Diverged {
    let mut acked = write_initial_values(c, seed).await;
    c.net.set_drop_probability(LOSS);
    let before = c.net.stats();
    let cut = write_while_partitioned(c, seed).await;
    // The clients have their answers; replication and hinting may still be on the wire.
    assert!(c.settle(Duration::from_secs(30)).await, "seed {seed}: the network never went quiet");
    let faults = c.net.stats().since(&before);
    assert!(faults.refused_by_partition > 0, "seed {seed}: the partition cut nothing");
    assert!(faults.dropped > 0, "seed {seed}: the network lost nothing");
    let hinted: u64 = (0..c.nodes.len()).map(|i| c.hints_stored_for(i)).sum();
    assert!(hinted > 0, "seed {seed}: no write missed a replica");
    let keys = (0..KEYS).filter(|k| c.replicas_disagree(&key(*k))).count();
    assert!(keys > 0, "seed {seed}: the replicas never diverged; nothing for the repair to do");
    acked.extend(cut.acked);
    Diverged { acked, failed: cut.failed, written: c.write_log().len(), hinted, keys }
}

/// Phase 2: heal, repair on one node, then rounds on every node until the
/// trees agree, over the lossy network. Returns the repair and its lost messages.
async fn converge(c: &SimCluster, seed: u64) -> (Repaired, usize, u64) {
    c.heal();
    let (before, before_ae) = (c.net.stats(), c.net.stats_of(Protocol::AntiEntropy));
    let mut repaired = Repaired::default();
    let by_one_node = repair_on_one_node(c, seed, &mut repaired).await;
    assert!(by_one_node > 0, "seed {seed}: the first repair completed no range");
    let repaired = repair_until_trees_agree(c, seed, repaired).await;
    let lost = c.net.stats().since(&before).dropped;
    let exchange = c.net.stats_of(Protocol::AntiEntropy).since(&before_ae);
    assert!(exchange.delivered > 0, "seed {seed}: no anti-entropy call crossed the network: {exchange:?}");
    assert!(exchange.dropped > 0, "seed {seed}: the repair's exchange lost nothing: {exchange:?}");
    (repaired, by_one_node, lost)
}

/// Merkle repair did it: nothing else ran (no write, no hint replayed, no
/// read repair), and (e) the repair found differing buckets and moved records.
/// (Not "at least one record per diverged key": a range repair that fails on
/// a lost reply reports nothing, though its merges may have happened.)
fn assert_only_merkle_repaired(c: &SimCluster, seed: u64, d: &Diverged, repaired: &Repaired) {
    assert_eq!(c.write_log().len(), d.written, "seed {seed}: a write was coordinated during the repair");
    assert_eq!((0..c.nodes.len()).map(|i| c.hints_replayed_to(i)).sum::<u64>(), 0, "seed {seed}: hints replayed");
    assert_eq!(c.read_repairs(), 0, "seed {seed}: a read repaired something");
    let s = repaired.stats;
    let moved = s.records_sent + s.records_repaired_here;
    assert!(s.buckets_differing > 0 && moved > 0, "seed {seed}: (e) the repair moved nothing: {s:?}");
}

/// (d): with the network clean, one more round compares every range and moves nothing.
async fn assert_second_repair_moves_nothing(c: &SimCluster, seed: u64) {
    c.net.set_drop_probability(0.0);
    let mut again = Repaired::default();
    repair_round(c, seed, &mut again).await;
    let a = again.stats;
    assert_eq!(again.ranges_failed, 0, "seed {seed}: {again:?}");
    assert_eq!((a.buckets_differing, a.records_received, a.records_sent), (0, 0, 0), "seed {seed}: (d) {a:?}");
}

fn count(acked: &[Acked], level: ConsistencyLevel, delete: bool) -> usize {
    acked.iter().filter(|a| a.level == level && a.value.is_none() == delete).count()
}

async fn partition_heals_through_merkle_repair(seed: u64) {
    let started = std::time::Instant::now();
    let c = SimCluster::new(seed).nodes(5).rf(3).delay_ms(1..=10).build();
    let d = diverge(&c, seed).await;
    let (repaired, by_one_node, lost) = converge(&c, seed).await;
    let stored = assert_replicas_identical(&c, seed);
    let mut outcome = Outcome::default();
    assert_survivors_are_the_latest_writes(&c, seed, &mut outcome);
    assert_no_acknowledged_write_lost(&c, seed, &d.acked, &mut outcome);
    assert!(outcome.deleted > 0 && outcome.live > 0, "seed {seed}: (c) checked nothing: {outcome:?}");
    assert_only_merkle_repaired(&c, seed, &d, &repaired);
    assert_second_repair_moves_nothing(&c, seed).await;

    let (a, s) = (&d.acked, repaired.stats);
    println!(
        "seed {seed}: acked puts ONE/QUORUM {}/{}, deletes {}/{}, failed {}; {} writes applied, {} hints never \
         replayed; {}/{KEYS} keys diverged; one node converged {by_one_node} ranges, then {} rounds ({} range \
         repairs failed, {lost} messages lost): {} buckets differed, {} records received, {} sent, {} merged here, \
         {} of {} bytes moved; {stored} keys: {} live, {} deleted, {} with siblings, {} acks superseded; {:?}",
        count(a, One, false),
        count(a, Quorum, false),
        count(a, One, true),
        count(a, Quorum, true),
        d.failed,
        d.written,
        d.hinted,
        d.keys,
        repaired.rounds,
        repaired.ranges_failed,
        s.buckets_differing,
        s.records_received,
        s.records_sent,
        s.records_repaired_here,
        s.bytes_transferred,
        s.bytes_compared,
        outcome.live,
        outcome.deleted,
        outcome.with_siblings,
        outcome.acks_superseded,
        started.elapsed(),
    );
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn healed_partition_converges_through_merkle_repair_without_losing_acknowledged_writes() {
    for seed in seeds() {
        partition_heals_through_merkle_repair(seed).await;
    }
}
