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
        let new = hosts(write, t, rf);
        for m in covering {
            let mut sorted = m.sources.clone();
            sorted.sort();
            let mut want = old.clone();
            want.sort();
            assert_eq!(sorted, want, "sources of token {t} are its read replicas");
            let losers = old.iter().filter(|h| !new.contains(h)).count();
            assert!(m.sources[..losers].iter().all(|h| !new.contains(h)), "the replicas losing token {t} come first");
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

mod write_sets {
    //! The rings a [`ClusterView`] builds from member statuses, and the
    //! pending owners they give: exactly the gainers of [`pending_moves`].
    use super::*;
    use crate::membership::{ClusterView, Member, MemberStatus};

    fn member(host: &str, tokens: Vec<Token>, status: MemberStatus) -> Member {
        Member {
            host_id: host.into(),
            node_id: 1,
            grpc_addr: "127.0.0.1:1".parse().unwrap(),
            http_addr: "127.0.0.1:2".parse().unwrap(),
            zone: String::new(),
            rack: String::new(),
            tokens,
            generation: 1,
            status,
        }
    }

    /// A view of `base`'s nodes (NORMAL) plus `extra` with `status`.
    fn view(base: &Ring, extra: Option<(&str, Vec<Token>, MemberStatus)>) -> ClusterView {
        let mut nodes = base.node_tokens().into_iter();
        let (first, tokens) = nodes.next().unwrap();
        let v = ClusterView::new(member(first.host_id.as_str(), tokens, MemberStatus::Normal));
        for (n, t) in nodes {
            v.upsert(member(n.host_id.as_str(), t, MemberStatus::Normal));
        }
        if let Some((host, tokens, status)) = extra {
            v.upsert(member(host, tokens, status));
        }
        v
    }

    fn pending_of(v: &ClusterView, t: Token, rf: usize) -> Vec<HostId> {
        let Some(next) = v.pending_ring() else { return Vec::new() };
        let old = hosts(&v.ring(), t, rf);
        hosts(&next, t, rf).into_iter().filter(|h| !old.contains(h)).collect()
    }

    #[test]
    fn a_joining_node_is_a_pending_owner_of_exactly_the_ranges_it_gains() {
        let before = ring(3);
        let after = before.with_node(NodeInfo::new("new", "", ""), 32).unwrap();
        let tokens = after.tokens_of(after.index_of("new").unwrap());
        let v = view(&before, Some(("new", tokens, MemberStatus::Joining)));
        assert_eq!(*v.ring(), before, "reads keep the old owners");
        assert_eq!(*v.pending_ring().unwrap(), after, "writes also go to the new one");
        let moves = pending_moves(&before, &after, 3);
        for t in probes(&[&before, &after]) {
            let pending = pending_of(&v, t, 3);
            let in_moves = moves.iter().any(|m| m.range.contains(t));
            assert_eq!(pending.iter().any(|h| h.as_str() == "new"), in_moves, "token {t}");
            assert!(pending.len() <= 1);
        }
        // Once NORMAL, no transition is left.
        v.upsert(member("new", after.tokens_of(after.index_of("new").unwrap()), MemberStatus::Normal));
        assert!(v.pending_ring().is_none());
        assert_eq!(*v.ring(), after);
    }

    #[test]
    fn a_leaving_node_keeps_serving_reads_while_its_gainers_are_pending() {
        let all = ring(4);
        let (leaving, tokens) = all.node_tokens().into_iter().nth(2).unwrap();
        let others = all.without_node(leaving.host_id.as_str()).unwrap();
        let v = view(&others, Some((leaving.host_id.as_str(), tokens.clone(), MemberStatus::Leaving)));
        assert_eq!(*v.ring(), all);
        assert_eq!(*v.pending_ring().unwrap(), others);
        let moves = pending_moves(&all, &others, 3);
        for t in probes(&[&all]) {
            let mut pending = pending_of(&v, t, 3);
            pending.sort();
            let mut want: Vec<HostId> = moves.iter().filter(|m| m.range.contains(t)).map(|m| m.to.clone()).collect();
            want.sort();
            assert_eq!(pending, want, "token {t}");
        }
        v.upsert(member(leaving.host_id.as_str(), tokens, MemberStatus::Left));
        assert_eq!(*v.ring(), others, "LEFT leaves the ring");
        assert!(v.pending_ring().is_none());
    }

    #[test]
    fn a_replacing_node_keeps_its_place_and_serves_no_reads() {
        let r = ring(3);
        let (dead, tokens) = r.node_tokens().into_iter().nth(1).unwrap();
        let status = MemberStatus::Replacing { old_host_id: dead.host_id.0.clone() };
        let v = view(&r, Some((dead.host_id.as_str(), tokens, status)));
        assert_eq!(*v.ring(), r, "same host id, same tokens: same ring");
        assert!(v.pending_ring().is_none(), "no pending owner: it is a replica that receives writes");
        assert!(!v.member(dead.host_id.as_str()).unwrap().serves_reads());
        assert!(v.member("n0").unwrap().serves_reads());
    }

    #[test]
    fn a_fresh_node_without_tokens_is_in_no_ring() {
        let r = ring(3);
        let v = view(&r, Some(("fresh", Vec::new(), MemberStatus::Joining)));
        assert_eq!(*v.ring(), r);
        assert!(v.pending_ring().is_none());
    }
}
