//! Deterministic simulation of the replication protocol: many coordinators
//! in one process over a `SimTransport` with loss, delay, partitions and
//! crashes, seeded, on tokio's paused clock. This is where quorum overlap,
//! hinted handoff, read repair and sloppy quorum are proven.
//!
//! Every test runs several seeds and asserts that its faults fired (messages
//! lost, links cut, hints stored), so an inert harness fails instead of
//! passing. A failing seed replays exactly: rerun with that seed alone.

mod sim;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use ringkv_node::error::KvError;
use ringkv_node::membership::Liveness;
use ringkv_node::replication::{ConsistencyLevel::*, PutOptions, ReadResult};
use sim::{KS, SimCluster, at, b};

/// Seeds every test runs: 8 in CI; `RINGKV_SIM_SEEDS=N` runs N (an opt-in soak).
fn seeds() -> std::ops::Range<u64> {
    0..std::env::var("RINGKV_SIM_SEEDS").ok().and_then(|v| v.parse().ok()).unwrap_or(8)
}

/// The largest integer value among the live siblings of a read.
fn max_value(r: &ReadResult) -> u64 {
    r.siblings
        .iter()
        .filter_map(|s| s.value.as_ref())
        .filter_map(|v| std::str::from_utf8(v).ok()?.parse().ok())
        .max()
        .unwrap_or(0)
}

fn values(r: &ReadResult) -> Vec<Bytes> {
    let mut v: Vec<Bytes> = r.siblings.iter().filter_map(|s| s.value.clone()).collect();
    v.sort();
    v
}

fn put_at(level: ringkv_node::replication::ConsistencyLevel, context: Bytes) -> PutOptions {
    PutOptions { context, consistency: at(level), ..PutOptions::default() }
}

/// Errors a request may end with when replicas are lost or slow; anything else is a bug.
fn is_availability_error(e: &KvError) -> bool {
    matches!(e, KvError::QuorumNotReached { .. } | KvError::Unavailable { .. } | KvError::Timeout { .. })
}

/// What one run of the quorum workload saw.
#[derive(Debug, Default, PartialEq, Eq)]
struct QuorumRun {
    /// One line per completed operation, in completion order (for the determinism check).
    log: Vec<String>,
    /// Reads that returned less than the last write acknowledged before they started.
    lost_acks: Vec<String>,
    /// Reads that returned less than a read that completed before they started.
    went_back: Vec<String>,
    acked_writes: u32,
    ok_reads: u32,
    dropped: u64,
}

/// Sequential blind QUORUM writes of increasing values (one writer per key)
/// and QUORUM reads, all through random coordinators, interleaved in virtual time.
async fn quorum_workload(seed: u64, drop: f64) -> QuorumRun {
    let c = SimCluster::new(seed).nodes(5).rf(3).drop(drop).delay_ms(1..=20).build();
    let keys: Vec<Bytes> = (0..3).map(|k| b(&format!("key-{k}"))).collect();
    let acked: RefCell<BTreeMap<Bytes, u64>> = RefCell::default();
    let read_floor: RefCell<BTreeMap<Bytes, u64>> = RefCell::default();
    let run = RefCell::new(QuorumRun::default());
    let writer = |w: usize| {
        let (c, key, acked, run) = (&c, keys[w].clone(), &acked, &run);
        async move {
            let mut rng = StdRng::seed_from_u64(seed * 100 + w as u64);
            for v in 1..=20u64 {
                tokio::time::sleep(Duration::from_millis(rng.random_range(0..30))).await;
                let node = rng.random_range(0..c.nodes.len());
                let put = c.node(node).put(KS, key.clone(), b(&v.to_string()), put_at(Quorum, Bytes::new())).await;
                let mut run = run.borrow_mut();
                match put {
                    Ok(_) => {
                        acked.borrow_mut().insert(key.clone(), v);
                        run.acked_writes += 1;
                        run.log.push(format!("put {key:?}={v} via {node}: ok"));
                    }
                    Err(e) => {
                        assert!(is_availability_error(&e), "seed {seed}: unexpected write error {e}");
                        run.log.push(format!("put {key:?}={v} via {node}: {e}"));
                    }
                }
            }
        }
    };
    let reader = |r: usize| {
        let (c, keys, acked, read_floor, run) = (&c, &keys, &acked, &read_floor, &run);
        async move {
            let mut rng = StdRng::seed_from_u64(seed * 100 + 50 + r as u64);
            for _ in 0..30 {
                tokio::time::sleep(Duration::from_millis(rng.random_range(0..20))).await;
                let key = keys[rng.random_range(0..keys.len())].clone();
                let node = rng.random_range(0..c.nodes.len());
                let ack_floor = acked.borrow().get(&key).copied().unwrap_or(0);
                let seen_floor = read_floor.borrow().get(&key).copied().unwrap_or(0);
                let got = c.node(node).get(KS, key.clone(), at(Quorum)).await;
                let mut run = run.borrow_mut();
                match got {
                    Ok(read) => {
                        let v = max_value(&read);
                        run.ok_reads += 1;
                        run.log.push(format!("get {key:?} via {node}: {:?}", values(&read)));
                        if v < ack_floor {
                            run.lost_acks.push(format!("{key:?} via node {node}: read {v}, acknowledged {ack_floor}"));
                        }
                        if v < seen_floor {
                            run.went_back
                                .push(format!("{key:?} via node {node}: read {v} after a read of {seen_floor}"));
                        }
                        let mut floor = read_floor.borrow_mut();
                        let f = floor.entry(key).or_insert(0);
                        *f = (*f).max(v);
                    }
                    Err(e) => {
                        assert!(is_availability_error(&e), "seed {seed}: unexpected read error {e}");
                        run.log.push(format!("get {key:?} via {node}: {e}"));
                    }
                }
            }
        }
    };
    let writers = futures::future::join_all((0..keys.len()).map(writer));
    let readers = futures::future::join_all((0..2).map(reader));
    futures::join!(writers, readers);
    let mut run = run.into_inner();
    run.dropped = c.net.stats().dropped;
    run
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn quorum_reads_see_latest_acknowledged_write() {
    for seed in seeds() {
        let run = quorum_workload(seed, 0.05).await;
        assert!(run.dropped > 0, "seed {seed}: the network dropped nothing; the simulation is inert");
        assert!(run.acked_writes >= 30 && run.ok_reads >= 30, "seed {seed}: too few successes: {run:?}");
        assert!(run.lost_acks.is_empty(), "seed {seed}: acknowledged writes lost: {:#?}", run.lost_acks);
    }
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn quorum_reads_never_go_back() {
    // Seed 45 at 30 % loss is a counterexample found by this workload; see the targeted test below.
    for (seed, drop) in seeds().map(|s| (s, 0.05)).chain([(45, 0.3)]) {
        let run = quorum_workload(seed, drop).await;
        assert!(run.dropped > 0, "seed {seed}: the network dropped nothing");
        assert!(run.went_back.is_empty(), "seed {seed}, drop {drop}: reads went back: {:#?}", run.went_back);
    }
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn quorum_read_whose_repair_fails_is_not_returned() {
    // Every hop takes exactly 10 ms, so the crash below lands between a read's answer and its repair.
    let c = SimCluster::new(0).delay_ms(10..=10).build();
    let key = b("monotonic");
    let [a, b1, c1] = c.replicas_of(&key)[..] else { panic!("RF 3") };
    c.node(a).put(KS, key.clone(), b("1"), put_at(All, Bytes::new())).await.expect("write 1");
    // "2" reaches only `a`: its write fails, and its hints are never replayed.
    let others: Vec<usize> = (0..c.nodes.len()).filter(|i| *i != a).collect();
    c.partition(&[a], &others);
    c.node(a).put(KS, key.clone(), b("2"), put_at(Quorum, Bytes::new())).await.expect_err("write 2 fails");
    c.heal();
    // The read gets "2" from `a` and "1" from a peer at +20 ms; its repair would land at +30 ms.
    let crash_during_repair = async {
        tokio::time::sleep(Duration::from_millis(25)).await;
        c.net.crash(c.host(b1));
        c.net.crash(c.host(c1));
    };
    let (first, ()) = futures::join!(c.node(a).get(KS, key.clone(), at(Quorum)), crash_during_repair);
    assert!(c.net.stats().refused_by_crash > 0, "the repair was not refused");
    c.net.restart(c.host(b1));
    c.net.restart(c.host(c1));
    c.crash(a);
    let second = c.node(b1).get(KS, key.clone(), at(Quorum)).await.expect("second read");
    if let Ok(first) = first {
        // Expected: the first read fails (its value is on one replica only), or the second one sees "2" too.
        assert!(max_value(&second) >= max_value(&first), "read {:?} after {:?}", values(&second), values(&first));
    }
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn forwarded_write_with_a_lost_reply_is_not_reported_unavailable() {
    let c = SimCluster::new(0).delay_ms(10..=10).build();
    let key = b("forwarded");
    let replicas = c.replicas_of(&key);
    let outsider = c.non_replicas_of(&key)[0];
    // The forward reaches the first replica at +10 ms, which replicates and answers at +30 ms;
    // the outsider is cut off from every replica before the answer arrives at +40 ms.
    let cut = async {
        tokio::time::sleep(Duration::from_millis(35)).await;
        c.partition(&[outsider], &replicas);
    };
    let (put, ()) = futures::join!(c.node(outsider).put(KS, key.clone(), b("v"), put_at(Quorum, Bytes::new())), cut);
    assert!(c.net.stats().refused_by_partition > 0, "the cut refused nothing");
    let applied = replicas.iter().filter(|r| c.local_values(**r, &key) == [b("v")]).count();
    assert!(applied >= 2, "the write reached a quorum ({applied} replicas)");
    // Unavailable tells the client nothing was written; the outcome here is unknown (a timeout), not a refusal.
    assert!(!matches!(put, Err(KvError::Unavailable { .. })), "applied on {applied} replicas but got {put:?}");
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn same_seed_replays_the_same_run() {
    let (first, second) = (quorum_workload(3, 0.05).await, quorum_workload(3, 0.05).await);
    assert!(!first.log.is_empty());
    assert_eq!(first, second, "seed 3 ran differently twice: the simulation is not deterministic");
    assert_ne!(first.log, quorum_workload(4, 0.05).await.log, "different seeds should make different runs");
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn concurrent_writes_become_siblings_and_a_context_write_resolves_them() {
    for seed in seeds() {
        let c = SimCluster::new(seed).delay_ms(1..=20).build();
        let key = b("doc");
        let replicas = c.replicas_of(&key);
        let (left, right) = (replicas[0], replicas[1]);
        c.node(c.random_live_node()).put(KS, key.clone(), b("v0"), put_at(Quorum, Bytes::new())).await.expect("v0");
        let ctx_a = c.node(left).get(KS, key.clone(), at(Quorum)).await.expect("read a").context;
        let ctx_b = c.node(right).get(KS, key.clone(), at(Quorum)).await.expect("read b").context;
        assert_eq!(ctx_a, ctx_b, "seed {seed}: both clients read the same version");
        // The two coordinators cannot see each other's write while they make them.
        let before = c.net.stats();
        c.partition(&[left], &[right]);
        let (left_put, right_put) = futures::join!(
            c.node(left).put(KS, key.clone(), b("left"), put_at(Quorum, ctx_a)),
            c.node(right).put(KS, key.clone(), b("right"), put_at(Quorum, ctx_b)),
        );
        left_put.expect("left write");
        right_put.expect("right write");
        // The puts return at quorum; their messages across the cut may still be in flight.
        let cut = c.eventually(Duration::from_secs(1), |c| c.net.stats().since(&before).refused_by_partition > 0).await;
        assert!(cut, "seed {seed}: the partition cut nothing");
        c.heal();
        let read = c.node(c.random_live_node()).get(KS, key.clone(), at(Quorum)).await.expect("read siblings");
        assert_eq!(values(&read), vec![b("left"), b("right")], "seed {seed}: concurrent writes are siblings");
        let resolve = put_at(Quorum, read.context);
        c.node(c.random_live_node()).put(KS, key.clone(), b("merged"), resolve).await.expect("resolve");
        let read = c.node(c.random_live_node()).get(KS, key.clone(), at(All)).await.expect("read at ALL");
        assert_eq!(values(&read), vec![b("merged")], "seed {seed}: a write with the read's context resolves them");
        for r in replicas {
            assert_eq!(c.local_values(r, &key), vec![b("merged")], "seed {seed}: replica {r} converged");
        }
    }
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn down_node_gets_every_write_through_hints() {
    for seed in seeds() {
        let c = SimCluster::new(seed).delay_ms(1..=20).build();
        let down = (seed % 5) as usize;
        let keys = c.keys_replicated_by(down, "hinted", 20);
        c.crash(down);
        c.assert_crashed(down).await;
        for (i, key) in keys.iter().enumerate() {
            let via = c.random_live_node();
            let put = c.node(via).put(KS, key.clone(), b(&format!("v{i}")), put_at(Quorum, Bytes::new())).await;
            put.unwrap_or_else(|e| panic!("seed {seed}: write {i} via {via} with one replica down: {e}"));
        }
        // The client has its answer at quorum; the hint for the down replica is stored in the background.
        let hinted = c.eventually(Duration::from_secs(1), |c| c.hints_stored_for(down) >= keys.len() as u64);
        assert!(hinted.await, "seed {seed}: a hint per missed write");
        assert!(keys.iter().all(|k| c.local(down, k).is_none()), "seed {seed}: the crashed node really missed them");
        c.restart(down);
        let delivered = c.replay_hints().await;
        assert!(delivered >= keys.len() as u64, "seed {seed}: replay delivered {delivered}");
        assert_eq!(c.hints_replayed_to(down), c.hints_stored_for(down), "seed {seed}: every hint replayed");
        assert_eq!(c.hints_pending(), 0, "seed {seed}: nothing left to replay");
        for (i, key) in keys.iter().enumerate() {
            assert_eq!(c.local_values(down, key), vec![b(&format!("v{i}"))], "seed {seed}: {key:?} on node {down}");
        }
    }
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn read_repair_fixes_a_stale_replica() {
    for seed in seeds() {
        let c = SimCluster::new(seed).delay_ms(1..=20).build();
        let mut stale = Vec::new();
        for key in [b("repair-all"), b("repair-quorum")] {
            // Down and unreachable while the key is written; its hints are never replayed.
            let replicas = c.replicas_of(&key);
            let (missed, via) = (replicas[(seed % 3) as usize], replicas[(seed as usize + 1) % 3]);
            c.crash(missed);
            c.assert_crashed(missed).await;
            c.node(via).put(KS, key.clone(), b("fresh"), put_at(Quorum, Bytes::new())).await.expect("write");
            let hinted = c.eventually(Duration::from_secs(1), |c| c.hints_stored_for(missed) > 0).await;
            assert!(hinted, "seed {seed}: node {missed} missed the write");
            c.restart(missed);
            assert!(c.local(missed, &key).is_none(), "seed {seed}: node {missed} is stale");
            stale.push((key, missed));
        }
        let repairs = c.read_repairs();
        let (key, missed) = &stale[0];
        let read = c.node(c.random_live_node()).get(KS, key.clone(), at(All)).await.expect("read at ALL");
        assert_eq!(values(&read), vec![b("fresh")]);
        // At ALL the repair blocks the answer: the replica holds the value now.
        assert_eq!(c.local_values(*missed, key), vec![b("fresh")], "seed {seed}: node {missed} repaired at ALL");
        // At QUORUM a late answer is repaired in the background: wait for it, with a deadline.
        let (key, missed) = &stale[1];
        let read = c.node(c.random_live_node()).get(KS, key.clone(), at(Quorum)).await.expect("read at QUORUM");
        assert_eq!(values(&read), vec![b("fresh")]);
        let repaired = c.eventually(Duration::from_secs(2), |c| c.local_values(*missed, key) == [b("fresh")]).await;
        assert!(repaired, "seed {seed}: node {missed} repaired after a QUORUM read");
        assert!(c.read_repairs() >= repairs + 2, "seed {seed}: read repairs were not counted");
    }
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn partition_minority_cannot_reach_quorum() {
    for seed in seeds() {
        let c = SimCluster::new(seed).delay_ms(1..=20).build();
        let key = b("split");
        let replicas = c.replicas_of(&key);
        let (lonely, outsider) = (replicas[(seed % 3) as usize], c.non_replicas_of(&key)[(seed % 2) as usize]);
        c.node(lonely).put(KS, key.clone(), b("before"), put_at(Quorum, Bytes::new())).await.expect("write");
        for isolated in [lonely, outsider] {
            let others: Vec<usize> = (0..c.nodes.len()).filter(|i| *i != isolated).collect();
            c.partition(&[isolated], &others);
            let before = c.net.stats();
            // The failure detector has not noticed yet: the replica applies locally, then misses its quorum.
            let put = c.node(isolated).put(KS, key.clone(), b("unacked"), put_at(Quorum, Bytes::new())).await;
            let err = put.expect_err("an isolated coordinator must not reach QUORUM");
            assert!(
                matches!(err, KvError::QuorumNotReached { required: 2, .. } | KvError::Unavailable { .. }),
                "{err}"
            );
            // The puts return at quorum; their messages across the cut may still be in flight.
            let cut =
                c.eventually(Duration::from_secs(1), |c| c.net.stats().since(&before).refused_by_partition > 0).await;
            assert!(cut, "seed {seed}: the partition cut nothing");
            // Once it sees the others down, it refuses before applying anything.
            others.iter().for_each(|o| c.nodes[isolated].parts.view.set_liveness(c.host(*o), Liveness::Down));
            let put = c.node(isolated).put(KS, key.clone(), b("refused"), put_at(Quorum, Bytes::new())).await;
            let err = put.expect_err("refused");
            assert!(matches!(err, KvError::Unavailable { .. }), "seed {seed}: {err}");
            let read = c.node(isolated).get(KS, key.clone(), at(Quorum)).await;
            assert!(matches!(read, Err(KvError::Unavailable { .. })), "seed {seed}: {read:?}");
            others.iter().for_each(|o| c.nodes[isolated].parts.view.set_liveness(c.host(*o), Liveness::Alive));
            c.heal();
        }
        // Even after every hint is replayed and every replica read, the refused value never appears.
        c.replay_hints().await;
        let read = c.node(c.random_live_node()).get(KS, key.clone(), at(All)).await.expect("read at ALL");
        assert!(!values(&read).contains(&b("refused")), "seed {seed}: {:?}", values(&read));
        assert!((0..c.nodes.len()).all(|i| !c.local_values(i, &key).contains(&b("refused"))));
    }
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn sloppy_quorum_and_any() {
    for seed in seeds() {
        let c = SimCluster::new(seed).delay_ms(1..=20).build();
        let key = b("sloppy");
        let replicas = c.replicas_of(&key);
        let (up, outsider) = (replicas[(seed % 3) as usize], c.non_replicas_of(&key)[0]);
        let down: Vec<usize> = replicas.iter().copied().filter(|r| *r != up).collect();
        down.iter().for_each(|d| c.crash(*d));
        let err =
            c.node(outsider).put(KS, key.clone(), b("q"), put_at(Quorum, Bytes::new())).await.expect_err("QUORUM");
        assert!(matches!(err, KvError::Unavailable { required: 2, alive: 1 }), "seed {seed}: {err}");
        assert!(err.to_string().contains("2 required, 1 alive"), "{err}");
        c.node(outsider).put(KS, key.clone(), b("any-1"), put_at(Any, Bytes::new())).await.expect("ANY, one up");
        // With every replica down, ANY still succeeds: a hint on a stand-in is the only copy.
        c.crash(up);
        c.assert_crashed(up).await;
        let hints = c.hints_stored_for(up);
        let read = c.node(outsider).get(KS, key.clone(), at(One)).await;
        assert!(matches!(read, Err(KvError::Unavailable { .. })), "seed {seed}: {read:?}");
        let ctx = Bytes::new();
        c.node(outsider).put(KS, key.clone(), b("any-2"), put_at(Any, ctx)).await.expect("ANY, all replicas down");
        let hinted = c.eventually(Duration::from_secs(1), |c| c.hints_stored_for(up) > hints).await;
        assert!(hinted, "seed {seed}: the ANY write left no hint for node {up}");
        replicas.iter().for_each(|r| c.restart(*r));
        assert!(c.replay_hints().await > 0, "seed {seed}: nothing replayed");
        let read = c.node(c.random_live_node()).get(KS, key.clone(), at(Quorum)).await.expect("QUORUM read");
        // The second write was blind and its coordinator had never seen the first: both survive, as siblings.
        assert_eq!(values(&read), vec![b("any-1"), b("any-2")], "seed {seed}: every ANY write is readable at QUORUM");
    }
}

/// LIST and SCAN cover the whole cluster: on 5 nodes at RF 3 no node holds
/// every key, yet a listing through any node finds each live key exactly once,
/// skips deleted ones, and pages with its cursor. Keys whose only replicas are
/// crashed are the one documented gap.
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn list_and_scan_cover_every_node() {
    for seed in 0..4 {
        let cluster = SimCluster::new(seed).nodes(5).rf(3).delay_ms(1..=5).build();
        let keys: Vec<String> = (0..120).map(|i| format!("user:{i:03}")).collect();
        for k in &keys {
            cluster
                .node(0)
                .put("", b(k), b("v"), PutOptions { consistency: at(All), ..PutOptions::default() })
                .await
                .unwrap();
        }
        cluster.node(1).delete("", b("user:007"), Bytes::new(), at(All)).await.unwrap();
        let on_one_node = (0..5).map(|i| keys.iter().filter(|k| cluster.local(i, k.as_bytes()).is_some()).count());
        assert!(
            on_one_node.clone().all(|n| n < keys.len()),
            "seed {seed}: some node holds every key: {:?}",
            on_one_node.collect::<Vec<_>>()
        );

        let via = cluster.random_live_node();
        let mut listed = Vec::new();
        let mut cursor = None;
        loop {
            let page = cluster.node(via).list("", b("user:"), 25, cursor, false).await.unwrap();
            listed.extend(page.entries.into_iter().map(|e| String::from_utf8(e.key.to_vec()).unwrap()));
            match page.next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        let expected: Vec<String> = keys.iter().filter(|k| *k != "user:007").cloned().collect();
        assert_eq!(listed, expected, "seed {seed}: list through node {via}");

        let mut scanned = std::collections::BTreeSet::new();
        let mut cursor = None;
        loop {
            let page = cluster.node(via).scan("", 30, cursor, false).await.unwrap();
            for e in page.entries {
                assert!(scanned.insert(e.key.clone()), "seed {seed}: scan returned {:?} twice", e.key);
            }
            match page.next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        assert_eq!(scanned.len(), expected.len(), "seed {seed}: scan through node {via}");
    }
}

/// `sloppy = true`: with two of three replicas down, a QUORUM write succeeds on
/// the live replica plus a hint on a stand-in (Dynamo's sloppy quorum), where
/// the strict default refuses it; after recovery the value is on every replica.
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn sloppy_quorum_counts_stand_in_hints() {
    for seed in seeds() {
        let strict = SimCluster::new(seed).delay_ms(1..=10).build();
        let sloppy = SimCluster::new(seed).delay_ms(1..=10).sloppy(true).build();
        for (c, is_sloppy) in [(&strict, false), (&sloppy, true)] {
            let key = b("sloppy-w");
            let replicas = c.replicas_of(&key);
            let up = replicas[0];
            let down: Vec<usize> = replicas[1..].to_vec();
            down.iter().for_each(|d| c.crash(*d));
            let result = c.node(up).put(KS, key.clone(), b("v"), put_at(Quorum, Bytes::new())).await;
            if !is_sloppy {
                assert!(
                    matches!(result, Err(KvError::Unavailable { required: 2, alive: 1 })),
                    "seed {seed}: {result:?}"
                );
                continue;
            }
            result.unwrap_or_else(|e| panic!("seed {seed}: sloppy QUORUM write refused: {e}"));
            // The write returns at quorum (one hint); the other hint may still be on its way.
            let stored = |c: &SimCluster| down.iter().map(|d| c.hints_stored_for(*d)).sum::<u64>();
            let both = c.eventually(Duration::from_secs(1), |c| stored(c) >= 2).await;
            assert!(both, "seed {seed}: expected hints for both down replicas, got {}", stored(c));
            down.iter().for_each(|d| c.restart(*d));
            assert!(c.replay_hints().await >= 2, "seed {seed}: hints not replayed");
            for r in &replicas {
                assert_eq!(c.local_values(*r, &key), vec![b("v")], "seed {seed}: replica {r} after handoff");
            }
        }
    }
}

/// Zones as datacenters: with 6 nodes in 3 zones at RF 3 every key has one
/// replica per zone. With one zone's replica down, EACH_QUORUM is refused
/// (that zone has no quorum), QUORUM and LOCAL_QUORUM in a healthy zone
/// succeed; LOCAL_QUORUM on a cluster without zones is a clear INVALID_ARGUMENT.
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn zone_levels_follow_the_zones() {
    for seed in seeds() {
        let c = SimCluster::new(seed).nodes(6).zones(3).delay_ms(1..=5).build();
        let key = b("zoned");
        let replicas = c.replicas_of(&key);
        let zones: std::collections::BTreeSet<usize> = replicas.iter().map(|r| r % 3).collect();
        assert_eq!(zones.len(), 3, "seed {seed}: replicas {replicas:?} must span the 3 zones");
        let lost = replicas[0];
        c.crash(lost);
        let healthy = replicas.iter().copied().find(|r| *r != lost).expect("two replicas left");
        let each = c.node(healthy).put(KS, key.clone(), b("e"), put_at(EachQuorum, Bytes::new())).await;
        assert!(matches!(each, Err(KvError::Unavailable { required: 1, alive: 0 })), "seed {seed}: {each:?}");
        c.node(healthy).put(KS, key.clone(), b("l"), put_at(LocalQuorum, Bytes::new())).await.expect("LOCAL_QUORUM");
        c.node(healthy).put(KS, key.clone(), b("q"), put_at(Quorum, Bytes::new())).await.expect("QUORUM");
        let read = c.node(healthy).get(KS, key.clone(), at(LocalQuorum)).await.expect("LOCAL_QUORUM read");
        assert_eq!(values(&read), vec![b("q")], "seed {seed}");

        let flat = SimCluster::new(seed).build();
        let err = flat.node(0).get(KS, key.clone(), at(LocalQuorum)).await.expect_err("no zones");
        assert!(matches!(err, KvError::Consistency(_)), "seed {seed}: {err}");
        assert!(err.to_string().contains("zones"), "{err}");
    }
}
