//! Anti-entropy: Merkle diff, incremental trees, repair between in-process
//! replicas, and the tombstone purge rule that depends on repairs.
//!
//! - `diff_finds_exactly_the_differing_buckets_and_exchange_merges`
//!   (property): for random pairs of record sets, the top-down diff of their
//!   trees is exactly the set of buckets whose contents differ, and after
//!   exchanging those buckets both replicas hold the merge of both sets.
//! - `incremental_tree_equals_rebuilt_tree` (property): after random writes
//!   (coordinated puts and deletes, raw puts, purges, batches touching a key
//!   twice) the tree kept on write equals a tree rebuilt from a scan.
//! - `writes_during_a_rebuild_are_counted_once` (property): writes between
//!   the pages of a rebuild scan, before and after its cursor.
//! - `three_replicas_converge_after_one_repair`: diverged replicas hold the
//!   same records after one repair that moved only the differing buckets;
//!   a second repair finds nothing.
//! - `tombstones_purge_only_after_gc_grace_and_a_later_repair`.
//! - `a_failing_peer_neither_skips_the_local_rebuild_nor_hides_what_moved`.

mod ae_support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use ae_support::*;
use bytes::Bytes;
use futures::future::BoxFuture;
use proptest::prelude::*;
use ringkv_node::antientropy::merkle::{bucket_of, diff, record_hash};
use ringkv_node::antientropy::trees::Contribution;
use ringkv_node::antientropy::{
    AeError, AntiEntropyPeer, Hash, KeyedRecord, MaxAge, MerkleTree, RepairRequest, TreeRef, TreeSummary, repair_range,
    sync_pair,
};
use ringkv_node::clock::ManualClock;
use ringkv_node::replication::{Consistency, PutOptions, RepairHistory};
use ringkv_node::ring::{TokenRange, token_of};
use ringkv_node::storage::{WriteBatch, WriteOp};
use ringkv_node::version::{ConflictMode, Record};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime")
}

fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::at_micros(START_US))
}

const T0_MS: i64 = START_US / 1000;

/// What two replicas hold for one key.
fn pair_case(case: u8, k: usize) -> (Option<Record>, Option<Record>) {
    let v = |s: &str| Some(format!("{s}-{k}"));
    let w = |node, counter, value: Option<String>| Some(write(node, counter, value.as_deref(), T0_MS + k as i64));
    match case {
        0 => (None, None),
        1 => (w(1, 1, v("a")), None),
        2 => (None, w(2, 1, v("b"))),
        3 => (w(1, 1, v("same")), w(1, 1, v("same"))),
        4 => (w(1, 1, v("a")), w(2, 1, v("b"))),
        5 => (w(1, 2, v("newer")), w(1, 1, v("older"))),
        _ => (w(1, 1, v("live")), w(1, 2, None)),
    }
}

fn tree_of(records: &BTreeMap<Bytes, Record>, range: TokenRange, depth: u32) -> MerkleTree {
    let mut t = MerkleTree::new(depth);
    for (key, record) in records.iter().filter(|(k, _)| range.contains(token_of(KS, k))) {
        let c = Contribution::of(KS, key, record);
        assert_eq!(c.hash, record_hash(KS, key, &record.encode()));
        t.insert(bucket_of(range, token_of(KS, key), depth), c.hash, c.bytes);
    }
    t
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn diff_finds_exactly_the_differing_buckets_and_exchange_merges(
        cases in proptest::collection::vec(0u8..7, 1..80),
        depth in 0u32..9,
        start in any::<u64>(),
    ) {
        let range = TokenRange { start, end: start };
        let (mut a, mut b) = (BTreeMap::new(), BTreeMap::new());
        let mut expected_merge = BTreeMap::new();
        let mut expected_buckets = BTreeSet::new();
        for (k, &case) in cases.iter().enumerate() {
            let key = Bytes::from(format!("key-{k}"));
            let (ra, rb) = pair_case(case, k);
            if ra != rb {
                expected_buckets.insert(bucket_of(range, token_of(KS, &key), depth));
            }
            let merged = match (&ra, &rb) {
                (Some(x), Some(y)) => { let mut m = x.clone(); m.merge(y, ConflictMode::Siblings); Some(m) }
                (x, y) => x.clone().or(y.clone()),
            };
            if let Some(m) = merged { expected_merge.insert(key.clone(), m); }
            if let Some(r) = ra { a.insert(key.clone(), r); }
            if let Some(r) = rb { b.insert(key, r); }
        }
        let found: BTreeSet<u32> = diff(&mut tree_of(&a, range, depth), &mut tree_of(&b, range, depth)).into_iter().collect();
        prop_assert_eq!(&found, &expected_buckets);

        let rt = runtime();
        let clock = clock();
        let nodes = replicas(2, 2, depth, &clock);
        for (key, r) in &a { put_raw(nodes[0].storage.as_ref(), std::str::from_utf8(key).expect("utf8"), Some(r.clone())); }
        for (key, r) in &b { put_raw(nodes[1].storage.as_ref(), std::str::from_utf8(key).expect("utf8"), Some(r.clone())); }
        let tree = TreeRef { keyspace: KS.into(), range, depth };
        let stats = rt.block_on(sync_pair(&nodes[0].local, &nodes[1].local, &tree, MaxAge::both(Duration::ZERO))).expect("sync");
        prop_assert_eq!(stats.buckets_differing, expected_buckets.len() as u64);
        prop_assert_eq!(&contents(nodes[0].storage.as_ref()), &expected_merge);
        prop_assert_eq!(&contents(nodes[1].storage.as_ref()), &expected_merge);
        let again = rt.block_on(sync_pair(&nodes[0].local, &nodes[1].local, &tree, MaxAge::both(Duration::MAX))).expect("sync");
        prop_assert_eq!(again.buckets_differing, 0, "the incrementally kept trees agree after the exchange");
    }
}

#[derive(Debug, Clone)]
enum Op {
    RawPut(usize, u8),
    Purge(usize),
    Put(usize, u8),
    Delete(usize),
    BatchTwice(usize, u8, u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0usize..40, any::<u8>()).prop_map(|(k, v)| Op::RawPut(k, v)),
        (0usize..40).prop_map(Op::Purge),
        (0usize..40, any::<u8>()).prop_map(|(k, v)| Op::Put(k, v)),
        (0usize..40).prop_map(Op::Delete),
        (0usize..40, any::<u8>(), any::<u8>()).prop_map(|(k, v, w)| Op::BatchTwice(k, v, w)),
    ]
}

fn apply(rt: &tokio::runtime::Runtime, node: &TestReplica, op: &Op) {
    let key = |k: usize| format!("k{k}");
    match op {
        Op::RawPut(k, v) => put_raw(node.storage.as_ref(), &key(*k), Some(write(9, 1, Some(&v.to_string()), T0_MS))),
        Op::Purge(k) => put_raw(node.storage.as_ref(), &key(*k), None),
        Op::Put(k, v) => {
            let put = node.coordinator.put(KS, Bytes::from(key(*k)), Bytes::from(v.to_string()), PutOptions::default());
            rt.block_on(put).expect("put");
        }
        Op::Delete(k) => {
            rt.block_on(node.coordinator.delete(KS, Bytes::from(key(*k)), Bytes::new(), Consistency::default()))
                .expect("delete");
        }
        Op::BatchTwice(k, v, w) => {
            let put = |v: &u8| WriteOp::Put {
                keyspace: KS.into(),
                key: Bytes::from(key(*k)),
                record: write(8, 1, Some(&v.to_string()), T0_MS),
            };
            drop(node.storage.write(WriteBatch { ops: vec![put(v), put(w)] }).expect("batch"));
        }
    }
}

/// The tree's observable state: root, leaves, counts.
fn state(node: &TestReplica, range: TokenRange) -> (u128, Vec<u128>, u64, u64) {
    let mut built = node.trees.get(KS, range).expect("tree");
    (built.tree.root(), built.tree.leaves().to_vec(), built.tree.records(), built.tree.bytes())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn incremental_tree_equals_rebuilt_tree(
        before in proptest::collection::vec(op(), 0..20),
        after in proptest::collection::vec(op(), 1..60),
        start in any::<u64>(),
        end in any::<u64>(),
        depth in 0u32..7,
    ) {
        let rt = runtime();
        let clock = clock();
        let nodes = replicas(1, 1, depth, &clock);
        let node = &nodes[0];
        for op in &before { apply(&rt, node, op); }
        let tree = TreeRef { keyspace: KS.into(), range: TokenRange { start, end }, depth };
        rt.block_on(node.local.rebuild(&tree)).expect("build");
        for op in &after { apply(&rt, node, op); }
        let incremental = state(node, tree.range);
        rt.block_on(node.local.rebuild(&tree)).expect("rebuild");
        prop_assert_eq!(incremental, state(node, tree.range));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 8, ..ProptestConfig::default() })]

    #[test]
    fn writes_during_a_rebuild_are_counted_once(
        between in proptest::collection::vec(proptest::collection::vec((0usize..3000, 0u8..3), 0..30), 1..12),
    ) {
        let clock = clock();
        let nodes = replicas(1, 1, 8, &clock);
        let node = &nodes[0];
        for k in 0..3000 {
            put_raw(node.storage.as_ref(), &format!("k{k}"), Some(write(1, 1, Some("v"), T0_MS)));
        }
        let range = TokenRange { start: 17, end: 17 };
        node.trees.begin_rebuild(KS, range);
        let mut pages = 0;
        let mut writes = between.iter();
        loop {
            let (_, done) = node.trees.rebuild_page(node.storage.as_ref(), KS, range, T0_MS).expect("page");
            pages += 1;
            if done { break; }
            for &(k, kind) in writes.next().map(Vec::as_slice).unwrap_or(&[]) {
                let key = format!("k{k}");
                match kind {
                    0 => put_raw(node.storage.as_ref(), &key, Some(write(2, 1, Some("new"), T0_MS))),
                    1 => put_raw(node.storage.as_ref(), &key, None),
                    _ => put_raw(node.storage.as_ref(), &format!("new{k}"), Some(write(3, 1, Some("n"), T0_MS))),
                }
            }
        }
        prop_assert!(pages > 3, "the rebuild took {pages} pages; the test needs several");
        let during = state(node, range);
        let rt = runtime();
        rt.block_on(node.local.rebuild(&TreeRef { keyspace: KS.into(), range, depth: 8 })).expect("rebuild");
        prop_assert_eq!(during, state(node, range));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_converge_after_one_repair() {
    const N: usize = 2000;
    let clock = clock();
    let nodes = replicas(3, 3, 10, &clock);
    for k in 0..N {
        let r = write(1, 1, Some(&format!("v{k}")), T0_MS);
        for n in &nodes {
            put_raw(n.storage.as_ref(), &format!("k{k}"), Some(r.clone()));
        }
    }
    // Divergence: node 1 lost 10 keys and holds 3 newer tombstones; node 2
    // missed the newest write of 10 keys; node 0 alone has 5 new keys.
    let mut differing = BTreeSet::new();
    for k in 0..10 {
        put_raw(nodes[1].storage.as_ref(), &format!("k{k}"), None);
        differing.insert(k);
    }
    for k in 10..13 {
        put_raw(nodes[1].storage.as_ref(), &format!("k{k}"), Some(write(1, 2, None, T0_MS + 5)));
        differing.insert(k);
    }
    for k in 100..110 {
        let newer = write(1, 2, Some("newer"), T0_MS + 5);
        put_raw(nodes[0].storage.as_ref(), &format!("k{k}"), Some(newer.clone()));
        put_raw(nodes[1].storage.as_ref(), &format!("k{k}"), Some(newer));
        differing.insert(k);
    }
    for k in N..N + 5 {
        put_raw(nodes[0].storage.as_ref(), &format!("k{k}"), Some(write(1, 1, Some("extra"), T0_MS)));
        differing.insert(k);
    }
    let repairer = repairer(&nodes, 0, 0);
    let mut reports = Vec::new();
    let progress = repairer.run(RepairRequest::default(), |p| reports.push(p.clone())).await.expect("repair");

    let reference = contents(nodes[0].storage.as_ref());
    assert_eq!(reference.len(), N + 5);
    assert_eq!(contents(nodes[1].storage.as_ref()), reference, "node 1 converged");
    assert_eq!(contents(nodes[2].storage.as_ref()), reference, "node 2 converged");
    for k in 100..110 {
        let values: Vec<_> =
            reference[&Bytes::from(format!("k{k}"))].siblings.iter().map(|s| s.value.clone()).collect();
        assert_eq!(values, vec![Some(Bytes::from_static(b"newer"))], "the newer write won by version, not overwrite");
    }
    assert!(reference[&Bytes::from_static(b"k10")].siblings[0].is_tombstone(), "the newer tombstone spread");

    let s = progress.stats;
    println!("{progress:?}");
    assert_eq!(progress.ranges_failed, 0);
    assert_eq!(progress.ranges_done, progress.ranges_total);
    assert_eq!(reports.len() as u32, progress.ranges_total + 1, "one report per range and a final one");
    assert!(reports.windows(2).all(|w| w[0].ranges_done <= w[1].ranges_done), "progress only grows");
    // Each differing key costs at most one bucket per pair synced (0-1 and 0-2, then 0-1 again).
    let bound = 3 * differing.len() as u64;
    assert!(s.buckets_differing >= 18 && s.buckets_differing <= bound, "differing buckets {}", s.buckets_differing);
    assert!(s.records_received + s.records_sent <= 2 * bound, "records moved: {s:?}");
    assert!(s.bytes_transferred * 20 < s.bytes_compared, "only a small part of the data travelled: {s:?}");

    let again = repairer.run(RepairRequest::default(), |_| {}).await.expect("repair");
    assert_eq!((again.stats.buckets_differing, again.stats.records_received), (0, 0), "{again:?}");
    let ring = nodes[0].view.ring();
    let planned = repairer.plan(&RepairRequest::default()).expect("plan");
    assert_eq!(planned.len(), ring.token_count(), "RF 3 of 3: node 0 replicates every range");
    for p in planned {
        assert_eq!(repairer.history().last_full_sync(KS, p.range).expect("history"), Some(T0_MS));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tombstones_purge_only_after_gc_grace_and_a_later_repair() {
    let clock = clock();
    let nodes = replicas(3, 3, 6, &clock);
    let grace = Duration::from_secs(60);
    // node 1 still holds the live value the tombstone on node 0 deleted.
    put_raw(nodes[0].storage.as_ref(), "early", Some(write(1, 2, None, T0_MS)));
    put_raw(nodes[1].storage.as_ref(), "early", Some(write(1, 1, Some("old"), T0_MS - 10)));
    let repairer = repairer(&nodes, 0, 0);
    let history: Arc<dyn RepairHistory> = repairer.history().clone();
    let purge = |h: Arc<dyn RepairHistory>| nodes[0].coordinator.purge_pass(None, 1000, grace, h);
    let present = |n: usize, key: &str| nodes[n].storage.get(KS, key.as_bytes()).expect("get").is_some();

    clock.advance_ms(61_000);
    assert_eq!(purge(Arc::clone(&history)).await.expect("purge").0, 0, "past gc_grace but never repaired");
    assert!(present(0, "early"));

    // A repair at T0+62 s spreads the tombstone; a tombstone written after it is not covered.
    clock.advance_ms(1_000);
    repairer.run(RepairRequest::default(), |_| {}).await.expect("repair");
    assert!(nodes[1].storage.get(KS, b"early").expect("get").expect("record").siblings[0].is_tombstone());
    clock.advance_ms(1_000);
    put_raw(nodes[0].storage.as_ref(), "late", Some(write(1, 1, None, T0_MS + 63_000)));
    assert_eq!(purge(Arc::clone(&history)).await.expect("purge").0, 1, "early: gc_grace passed and repaired since");
    assert!(!present(0, "early") && present(0, "late"));

    clock.advance_ms(60_000);
    assert_eq!(purge(Arc::clone(&history)).await.expect("purge").0, 0, "late: past gc_grace, not repaired since");
    clock.advance_ms(1_000);
    repairer.run(RepairRequest::default(), |_| {}).await.expect("repair");
    // The peers still held "early" (each purges on its own schedule): the repair
    // handed the tombstone back, and it goes again with "late".
    assert_eq!(
        purge(Arc::clone(&history)).await.expect("purge").0,
        2,
        "late (and early again): repaired, past gc_grace"
    );
    assert!(!present(0, "late"));

    // Before gc_grace a tombstone stays even right after a repair.
    put_raw(nodes[0].storage.as_ref(), "fresh", Some(write(1, 1, None, clock_ms(&clock))));
    clock.advance_ms(1_000);
    repairer.run(RepairRequest::default(), |_| {}).await.expect("repair");
    // (early and late come back from the peers again and go again.)
    assert_eq!(purge(history).await.expect("purge").0, 2);
    assert!(present(0, "fresh"), "fresh: repaired but within gc_grace");
}

fn clock_ms(clock: &ManualClock) -> i64 {
    use ringkv_node::clock::Clock as _;
    clock.now_ms()
}

/// A peer whose every call fails, as one that went away mid-repair.
#[derive(Debug)]
struct Gone;

impl Gone {
    fn err<T: Send + 'static>() -> BoxFuture<'static, Result<T, AeError>> {
        Box::pin(async { Err(AeError::ShuttingDown) })
    }
}

impl AntiEntropyPeer for Gone {
    fn prepare_tree(&self, _: &TreeRef, _: Duration) -> BoxFuture<'static, Result<TreeSummary, AeError>> {
        Self::err()
    }
    fn tree_level(&self, _: &TreeRef, _: u32, _: Vec<u32>) -> BoxFuture<'static, Result<Vec<Hash>, AeError>> {
        Self::err()
    }
    fn bucket_records(&self, _: &TreeRef, _: Vec<u32>) -> BoxFuture<'static, Result<Vec<KeyedRecord>, AeError>> {
        Self::err()
    }
    fn merge_records(&self, _: &str, _: Vec<KeyedRecord>) -> BoxFuture<'static, Result<u32, AeError>> {
        Self::err()
    }
}

/// A full repair of a range whose first peer fails still rebuilds the local
/// tree (once) and syncs with the next peer; what that peer exchanged counts.
#[tokio::test]
async fn a_failing_peer_neither_skips_the_local_rebuild_nor_hides_what_moved() {
    let clock = clock();
    let nodes = replicas(3, 3, 8, &clock);
    for k in 0..200 {
        let r = write(1, 1, Some("v"), T0_MS);
        for n in &nodes {
            put_raw(n.storage.as_ref(), &format!("k{k}"), Some(r.clone()));
        }
    }
    let planned = repairer(&nodes, 0, 0).plan(&RepairRequest::default()).expect("plan");
    // A range where node 1 holds keys node 0 lacks.
    let range = planned[0].range;
    let tree = TreeRef { keyspace: KS.to_owned(), range, depth: nodes[0].trees.depth() };
    let in_range: Vec<String> =
        (0..200).map(|k| format!("k{k}")).filter(|k| range.contains(token_of(KS, k.as_bytes()))).collect();
    assert!(!in_range.is_empty(), "the first range holds some of the keys");
    for key in &in_range {
        put_raw(nodes[0].storage.as_ref(), key, None);
    }
    let local: Arc<dyn AntiEntropyPeer> = Arc::new(Arc::clone(&nodes[0].local));
    local.prepare_tree(&tree, Duration::MAX).await.expect("local tree");
    let built_before = nodes[0].trees.get(KS, range).expect("tree").built_at_ms;
    clock.advance_ms(5_000);

    let peers: Vec<(String, Arc<dyn AntiEntropyPeer>)> =
        vec![("gone".to_owned(), Arc::new(Gone)), ("node-1".to_owned(), Arc::new(Arc::clone(&nodes[1].local)))];
    let outcome = repair_range(local.as_ref(), &peers, &tree, Duration::ZERO).await;
    assert_eq!(outcome.failed.iter().map(|(h, _)| h.as_str()).collect::<Vec<_>>(), ["gone"]);
    let built_after = nodes[0].trees.get(KS, range).expect("tree").built_at_ms;
    assert_eq!(built_after, built_before + 5_000, "the local tree was rebuilt although the first peer failed");
    assert_eq!(outcome.stats.records_repaired_here, in_range.len() as u64, "{:?}", outcome.stats);
    for key in &in_range {
        assert!(contents(nodes[0].storage.as_ref()).contains_key(key.as_bytes()), "{key} came back from node 1");
    }
}

/// An abandoned rebuild (its repair was cancelled) stops collecting writes
/// and leaves the current tree as it was.
#[test]
fn an_abandoned_rebuild_is_dropped_and_the_current_tree_stays() {
    let clock = clock();
    let nodes = replicas(1, 1, 6, &clock);
    let trees = &nodes[0].trees;
    let range = TokenRange { start: 0, end: u64::MAX / 2 };
    trees.begin_rebuild(KS, range);
    assert_eq!(trees.rebuild_page(nodes[0].storage.as_ref(), KS, range, 1).expect("page"), (0, true));
    let current = trees.get(KS, range).expect("built").built_at_ms;
    trees.begin_rebuild(KS, range);
    trees.abandon_rebuild(KS, range);
    assert_eq!(
        trees.rebuild_page(nodes[0].storage.as_ref(), KS, range, 2).expect("page"),
        (0, true),
        "nothing is being built any more"
    );
    assert_eq!(trees.get(KS, range).expect("kept").built_at_ms, current, "the current tree stays");
    let other = TokenRange { start: u64::MAX / 2, end: u64::MAX };
    trees.begin_rebuild(KS, other);
    trees.abandon_rebuild(KS, other);
    assert!(trees.get(KS, other).is_none(), "a range with no tree yet has no slot left");
}
