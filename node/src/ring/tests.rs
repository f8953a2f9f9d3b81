//! Ring tests: hand-built rings for exact placement, proptest for the laws
//! (distinct replicas, determinism, zone diversity, balance, minimal movement).

use std::collections::BTreeSet;

use proptest::prelude::*;

use super::*;

#[test]
fn token_is_stable_and_separates_keyspace_from_key() {
    assert_eq!(token_of("default", b"k"), token_of("default", b"k"));
    assert_ne!(token_of("ab", b"c"), token_of("a", b"bc"));
    assert_ne!(token_of("default", b"k1"), token_of("default", b"k2"));
}

/// `n` weight-1 nodes `n00..`, round-robin over `zones` zones, two racks each.
fn cluster(n: usize, zones: usize) -> Vec<NodeInfo> {
    (0..n)
        .map(|i| NodeInfo::new(format!("n{i:02}"), format!("z{}", i % zones), format!("r{}", (i / zones) % 2)))
        .collect()
}

fn ring(n: usize, zones: usize, vnodes: u32) -> Ring {
    Ring::initial(cluster(n, zones), vnodes).unwrap()
}

fn hosts(ring: &Ring, list: &[NodeIdx]) -> Vec<String> {
    list.iter().map(|&i| ring.node(i).unwrap().host_id.0.clone()).collect()
}

/// a(z1) @100, b(z1) @200, c(z2) @300, d(z3) @400.
fn hand_ring() -> Ring {
    Ring::builder()
        .node(NodeInfo::new("d", "z3", "r1"), [400])
        .node(NodeInfo::new("b", "z1", "r2"), [200])
        .node(NodeInfo::new("a", "z1", "r1"), [100])
        .node(NodeInfo::new("c", "z2", "r1"), [300])
        .build()
        .unwrap()
}

#[test]
fn preference_list_walks_clockwise_and_prefers_new_zones() {
    let r = hand_ring();
    // From 150: b(z1), c(z2), d(z3) — three zones, plain walk order.
    assert_eq!(hosts(&r, &r.preference_list(150, 3)), ["b", "c", "d"]);
    // From 50: a(z1), b(z1) skipped for c(z2), d(z3).
    assert_eq!(hosts(&r, &r.preference_list(50, 3)), ["a", "c", "d"]);
    // A token equal to a node's token belongs to that node.
    assert_eq!(hosts(&r, &r.preference_list(200, 1)), ["b"]);
    // Past the last token wraps to the first.
    assert_eq!(hosts(&r, &r.preference_list(401, 2)), ["a", "c"]);
    // rf 4 > zones: falls back to the repeated zone.
    assert_eq!(hosts(&r, &r.preference_list(50, 4)), ["a", "c", "d", "b"]);
    assert_eq!(hosts(&r, &r.stand_ins(50, 3).collect::<Vec<_>>()), ["b"]);
    assert_eq!(hosts(&r, &r.preference_list(50, 9)).len(), 4);
}

#[test]
fn racks_are_preferred_within_a_zone() {
    let r = Ring::builder()
        .node(NodeInfo::new("a", "z", "r1"), [100])
        .node(NodeInfo::new("b", "z", "r1"), [200])
        .node(NodeInfo::new("c", "z", "r2"), [300])
        .build()
        .unwrap();
    assert_eq!(hosts(&r, &r.preference_list(50, 2)), ["a", "c"]);
}

#[test]
fn ranges_of_are_start_exclusive_end_inclusive_and_merged() {
    let r = hand_ring();
    let a = r.index_of("a").unwrap();
    // a is primary for (400, 100] (wrapping) only.
    assert_eq!(r.ranges_of(a, 1), [TokenRange { start: 400, end: 100 }]);
    assert!(r.ranges_of(a, 1)[0].contains(0) && !r.ranges_of(a, 1)[0].contains(400));
    // Everyone replicates everything at rf = nodes.
    let all = r.ranges_of(a, 4);
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].width(), 1u128 << 64);
}

#[test]
fn construction_errors_are_reported() {
    let a = || NodeInfo::new("a", "z", "r");
    let dup_host = Ring::builder().node(a(), [1]).node(a(), [2]).build();
    assert!(matches!(dup_host, Err(RingError::DuplicateHostId { .. })));
    let no_tokens = Ring::builder().node(a(), []).build();
    assert!(matches!(no_tokens, Err(RingError::ZeroVnodes { .. })));
    let dup_token = Ring::builder().node(a(), [7]).node(NodeInfo::new("b", "z", "r"), [7]).build();
    assert!(matches!(dup_token, Err(RingError::DuplicateToken { token: 7, .. })));
    let same_node_dup = Ring::builder().node(a(), [7, 7]).build();
    assert!(matches!(same_node_dup, Err(RingError::DuplicateToken { token: 7, .. })));
    let zero_weight = Ring::initial([a().with_weight(0)], 16);
    assert!(matches!(zero_weight, Err(RingError::ZeroWeight { .. })));
    assert!(matches!(Ring::initial([a()], 0), Err(RingError::ZeroVnodes { .. })));
    let r = Ring::initial([a()], 4).unwrap();
    assert!(matches!(r.with_node(a(), 4), Err(RingError::DuplicateHostId { .. })));
    assert!(matches!(r.allocate_tokens(&a().with_weight(u32::MAX), 2), Err(RingError::TooManyTokens { .. })));
}

#[test]
fn empty_and_single_node_rings() {
    let empty = Ring::empty();
    assert!(empty.preference_list(5, 3).is_empty());
    assert_eq!(empty.stand_ins(5, 3).count(), 0);
    assert_eq!(Ring::moved_fraction(&empty, &empty, 3), 0.0);
    let one = ring(1, 1, 16);
    assert_eq!(one.token_count(), 16);
    assert_eq!(one.preference_list(5, 3).len(), 1);
    assert!((one.primary_ownership()[0] - 1.0).abs() < 1e-12);
    assert!((Ring::moved_fraction(&empty, &one, 1) - 1.0).abs() < 1e-12);
}

#[test]
fn gossiped_tokens_rebuild_the_same_ring() {
    let r = ring(5, 3, 64);
    let rebuilt = r.node_tokens().into_iter().rev().fold(Ring::builder(), |b, (n, t)| b.node(n, t)).build().unwrap();
    assert_eq!(r, rebuilt);
    let n3 = r.index_of("n03").unwrap();
    assert_eq!(r.tokens_of(n3).len(), 64);
    assert_eq!(r.without_node("n03").unwrap().node_count(), 4);
    assert_eq!(r.without_node("nope").unwrap(), r);
}

#[test]
fn weight_two_gets_twice_the_share() {
    let mut nodes = cluster(4, 2);
    nodes[1] = nodes[1].clone().with_weight(2);
    let r = Ring::initial(nodes, 256).unwrap();
    let own = r.primary_ownership();
    assert_eq!(r.tokens_of(r.index_of("n01").unwrap()).len(), 512);
    assert!((own[1] - 0.4).abs() < 0.01, "weight-2 node owns {}", own[1]);
    assert!(r.ownership_spread(1) <= 0.05, "spread {}", r.ownership_spread(1));
}

/// Prints the ownership-spread and moved-fraction tables for the report.
/// `cargo test -p ringkv-node --lib ring::tests::report -- --ignored --nocapture`
#[test]
#[ignore]
fn report() {
    let flat = |n: usize| (0..n).map(|i| NodeInfo::new(format!("n{i:02}"), "z", "r")).collect::<Vec<_>>();
    for vnodes in [16, 64, 256] {
        for n in [3, 5, 6, 9, 10] {
            let r = Ring::initial(flat(n), vnodes).unwrap();
            let zoned = ring(n, 3, vnodes);
            let grown = r.with_node(NodeInfo::new("zz-new", "z", "r"), vnodes).unwrap();
            println!(
                "vnodes {vnodes:3} nodes {n:2}: spread rf1 {:6.2}% rf3 {:6.2}% rf3/3 zones {:7.2}% | +1 node: moved rf1 {:.4} (1/(n+1) {:.4}) rf3 {:.4}",
                100.0 * r.ownership_spread(1),
                100.0 * r.ownership_spread(3),
                100.0 * zoned.ownership_spread(3),
                Ring::moved_fraction(&r, &grown, 1),
                1.0 / (n as f64 + 1.0),
                Ring::moved_fraction(&r, &grown, 3),
            );
        }
        // Baseline: every node's tokens seeded independently (random).
        let random = flat(10).into_iter().fold(Ring::builder(), |b, n| {
            let t = Ring::empty().allocate_tokens(&n, vnodes).unwrap();
            b.node(n, t)
        });
        let random = random.build().unwrap();
        println!(
            "vnodes {vnodes:3} nodes 10 random tokens: spread rf1 {:6.2}% rf3 {:6.2}%",
            100.0 * random.ownership_spread(1),
            100.0 * random.ownership_spread(3)
        );
    }
}

fn arb_nodes(max: usize) -> impl Strategy<Value = Vec<NodeInfo>> {
    (1..=max, 1usize..=4, 1usize..=3, "[a-z]{1,6}").prop_map(|(n, zones, racks, prefix)| {
        (0..n)
            .map(|i| NodeInfo::new(format!("{prefix}-{i}"), format!("z{}", i % zones), format!("r{}", i % racks)))
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn preference_lists_hold_min_rf_distinct_nodes(nodes in arb_nodes(8), vnodes in 1u32..32, rf in 1usize..6, t: u64) {
        let r = Ring::initial(nodes.clone(), vnodes).unwrap();
        let list = r.preference_list(t, rf);
        prop_assert_eq!(list.len(), rf.min(nodes.len()));
        prop_assert_eq!(list.iter().collect::<BTreeSet<_>>().len(), list.len());
        // The primary owner comes first.
        prop_assert_eq!(list[0], r.preference_list(t, 1)[0]);
    }

    #[test]
    fn same_inputs_give_the_same_ring(nodes in arb_nodes(8), vnodes in 1u32..64, rf in 1usize..5, t: u64) {
        let a = Ring::initial(nodes.clone(), vnodes).unwrap();
        let b = Ring::initial(nodes.iter().rev().cloned(), vnodes).unwrap();
        prop_assert_eq!(&a, &b);
        prop_assert_eq!(a.preference_list(t, rf), b.preference_list(t, rf));
        prop_assert_eq!(a.stand_ins(t, rf).collect::<Vec<_>>(), b.stand_ins(t, rf).collect::<Vec<_>>());
    }

    #[test]
    fn every_list_spans_three_zones(n in 3usize..10, vnodes in 1u32..64, t: u64) {
        let r = ring(n, 3, vnodes);
        let zones: BTreeSet<_> = r.preference_list(t, 3).iter().map(|&i| r.node(i).unwrap().zone.clone()).collect();
        prop_assert_eq!(zones.len(), 3);
    }

    #[test]
    fn stand_ins_are_everyone_else_once(nodes in arb_nodes(8), vnodes in 1u32..16, rf in 1usize..5, t: u64) {
        let r = Ring::initial(nodes, vnodes).unwrap();
        let list = r.preference_list(t, rf);
        let stand_ins: Vec<NodeIdx> = r.stand_ins(t, rf).collect();
        prop_assert!(stand_ins.iter().all(|s| !list.contains(s)));
        let all: BTreeSet<NodeIdx> = list.iter().chain(&stand_ins).copied().collect();
        prop_assert_eq!(all.len(), r.node_count());
        prop_assert_eq!(list.len() + stand_ins.len(), r.node_count());
    }

    #[test]
    fn ownership_and_ranges_agree(nodes in arb_nodes(6), vnodes in 1u32..16, rf in 1usize..4, t: u64) {
        let r = Ring::initial(nodes, vnodes).unwrap();
        let own = r.ownership(rf);
        let total: f64 = own.iter().sum();
        prop_assert!((total - rf.min(r.node_count()) as f64).abs() < 1e-9);
        let list = r.preference_list(t, rf);
        for (i, share) in own.iter().enumerate() {
            let idx = r.index_of(r.nodes()[i].host_id.as_str()).unwrap();
            let ranges = r.ranges_of(idx, rf);
            let width: u128 = ranges.iter().map(TokenRange::width).sum();
            prop_assert!((width as f64 / 2f64.powi(64) - share).abs() < 1e-9);
            prop_assert_eq!(ranges.iter().any(|rg| rg.contains(t)), list.contains(&idx));
        }
    }
}

proptest! {
    // Large rings are slow in debug builds; the inputs vary little anyway.
    #![proptest_config(ProptestConfig::with_cases(8))]

    #[test]
    fn ownership_spread_is_within_five_percent_at_256_vnodes(n in 3usize..=10, zones in 1usize..=3) {
        let r = ring(n, zones, 256);
        prop_assert!(r.ownership_spread(1) <= 0.05, "primary spread {}", r.ownership_spread(1));
    }

    #[test]
    fn adding_a_node_moves_about_its_share(n in 3usize..=10, v in 0usize..3) {
        let vnodes = [16, 64, 256][v];
        let before = ring(n, 3, vnodes);
        let after = before.with_node(NodeInfo::new("new", "z1", "r0"), vnodes).unwrap();
        let moved = Ring::moved_fraction(&before, &after, 1);
        let share = 1.0 / (n as f64 + 1.0);
        prop_assert!(moved > 0.0 && moved <= share + 0.03, "moved {moved}, share {share}");
        prop_assert!(moved >= share - 0.03, "the new node took too little: {moved}");
        // Only ranges the new node takes change primary owner.
        let new_idx = after.index_of("new").unwrap();
        prop_assert!((after.primary_ownership()[new_idx.get()] - moved).abs() < 1e-9);
    }
}
