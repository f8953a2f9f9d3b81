use super::*;
use crate::ring::NodeInfo;

fn ring(n: usize) -> Ring {
    (0..n).fold(Ring::empty(), |r, i| r.with_node(NodeInfo::new(format!("n{i}"), "", ""), 32).unwrap())
}

/// Tokens spread over the ring, plus every ring token and its neighbours (the edges).
fn probes(rings: &[&Ring]) -> Vec<Token> {
    let mut out: Vec<Token> = (0..3000u64).map(|i| crate::ring::token_of("probe", &i.to_be_bytes())).collect();
    for r in rings {
        for (t, _) in r.entries() {
            out.extend([t, t.wrapping_add(1), t.wrapping_sub(1)]);
        }
    }
    out
}

/// The law: a token is in a move to `h` exactly when `h` is in its write
/// preference list and not in its read one, and the move's sources are its read replicas.
fn check_moves_law(read: &Ring, write: &Ring, rf: usize, moves: &[RangeMove]) {
    for t in probes(&[read, write]) {
        let old = hosts(read, t, rf);
        let mut want: Vec<HostId> = hosts(write, t, rf).into_iter().filter(|h| !old.contains(h)).collect();
        want.sort();
        let mut covering: Vec<&RangeMove> = moves.iter().filter(|m| m.range.contains(t)).collect();
        covering.sort_by(|a, b| a.to.cmp(&b.to));
        let got: Vec<HostId> = covering.iter().map(|m| m.to.clone()).collect();
        assert_eq!(got, want, "gainers of token {t}");
        for m in covering {
            assert_eq!(m.sources, old, "sources of token {t}");
        }
    }
}

#[test]
fn join_moves_exactly_the_ranges_whose_replicas_change_to_the_new_node() {
    let before = ring(3);
    let after = before.with_node(NodeInfo::new("new", "", ""), 32).unwrap();
    let moves = pending_moves(&before, &after, 3);
    assert!(!moves.is_empty());
    assert!(moves.iter().all(|m| m.to.as_str() == "new" && !m.sources.iter().any(|s| s.as_str() == "new")));
    check_moves_law(&before, &after, 3, &moves);
    let moved = Ring::moved_fraction(&before, &after, 3);
    assert!((moved_width(&moves) - moved).abs() < 1e-9, "{} vs {moved}", moved_width(&moves));
    // Everything the new node replicates afterwards is streamed in: ~rf/n of the ring.
    let owned = after.ownership(3)[after.index_of("new").unwrap().get()];
    assert!((moved_width(&moves) - owned).abs() < 1e-9);
    assert!((owned - 0.75).abs() < 0.1, "new node replicates {owned}");
}

#[test]
fn leave_gives_each_changed_range_to_one_new_owner_streamed_from_the_old_replicas() {
    let before = ring(4);
    let after = before.without_node("n2").unwrap();
    let moves = pending_moves(&before, &after, 3);
    assert!(moves.iter().all(|m| m.to.as_str() != "n2" && m.sources.iter().any(|s| s.as_str() == "n2")));
    check_moves_law(&before, &after, 3, &moves);
    let moved = Ring::moved_fraction(&before, &after, 3);
    assert!(moved > 0.5, "a leaving node of 4 at rf 3 moves ~3/4: {moved}");
    assert!((moved_width(&moves) - moved).abs() < 1e-9);
}

#[test]
fn identical_rings_and_shrinking_replica_sets_move_nothing() {
    let r = ring(4);
    assert!(pending_moves(&r, &r, 3).is_empty());
    // Four nodes at rf 4 -> three at rf 4: every replica set shrinks, nobody gains.
    assert!(pending_moves(&r, &r.without_node("n0").unwrap(), 4).is_empty());
}

#[test]
fn a_second_node_gains_the_whole_ring_at_rf_above_one() {
    let (one, two) = (ring(1), ring(2));
    let moves = pending_moves(&one, &two, 3);
    assert!((moved_width(&moves) - 1.0).abs() < 1e-9);
    check_moves_law(&one, &two, 3, &moves);
}

#[test]
fn replace_streams_every_range_of_the_dead_node_from_the_others() {
    let r = ring(5);
    let moves = replace_moves(&r, 3, "n3");
    let dead = r.index_of("n3").unwrap();
    assert!((moved_width(&moves) - r.ownership(3)[dead.get()]).abs() < 1e-9);
    for t in probes(&[&r]) {
        let pref = hosts(&r, t, 3);
        let covering: Vec<&RangeMove> = moves.iter().filter(|m| m.range.contains(t)).collect();
        let is_replica = pref.iter().any(|h| h.as_str() == "n3");
        assert_eq!(covering.len(), usize::from(is_replica), "token {t}");
        for m in covering {
            let others: Vec<HostId> = pref.iter().filter(|h| h.as_str() != "n3").cloned().collect();
            assert_eq!(m.sources, others);
        }
    }
    assert!(replace_moves(&r, 3, "unknown").is_empty());
}

#[test]
fn replace_in_a_ring_of_rf_nodes_covers_the_whole_ring() {
    let moves = replace_moves(&ring(3), 3, "n1");
    assert!((moved_width(&moves) - 1.0).abs() < 1e-9);
}
