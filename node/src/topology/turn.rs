//! Whose turn it is to enter the ring: the pure rules a fresh node follows
//! when many nodes start at once (a StatefulSet with parallel pod management,
//! every node seeding every other).
//!
//! A fresh node that has heard its seeds is *undecided*: JOINING with no
//! tokens, owning nothing. Then, from its view of the members:
//! - while another live member moves (JOINING with tokens, LEAVING,
//!   REPLACING), it waits: one topology change at a time;
//! - while the cluster has fewer than RF NORMAL nodes it is being formed:
//!   the `RF - normal` undecided live members with the lowest host ids become
//!   NORMAL at once (there is no data to stream yet), the others wait;
//! - otherwise it joins (claims tokens, streams) when no undecided live member
//!   has a lower host id: joins go one at a time, in host-id order.
//!
//! Every node applies the same rules to the same members (each heard all its
//! seeds before deciding), so they agree. Views lag, though, so two nodes may
//! still claim a join at once; [`yield_to`] settles that after the claim has
//! spread: the higher host id withdraws and waits again. Pure: no I/O.

use std::sync::Arc;

use crate::membership::{Member, MemberStatus};

/// What a fresh node does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Turn {
    /// Become NORMAL now with its own tokens (the cluster is being formed).
    Form,
    /// Claim tokens and join (stream, then NORMAL).
    Join,
    /// Not its turn; why, for the log and status.
    Wait(String),
}

/// True for a fresh node that has not decided yet: JOINING without tokens.
pub fn is_undecided(m: &Member) -> bool {
    m.status == MemberStatus::Joining && m.tokens.is_empty()
}

/// True for a member whose ranges are moving (an undecided node owns nothing, so it is not).
pub fn is_moving(m: &Member) -> bool {
    match m.status {
        MemberStatus::Joining => !m.tokens.is_empty(),
        MemberStatus::Leaving | MemberStatus::Replacing { .. } => true,
        MemberStatus::Normal | MemberStatus::Left => false,
    }
}

/// The turn of the undecided node `local` given `members` (its own view,
/// itself included), `alive` (its failure detector) and the largest RF.
pub fn turn(members: &[Arc<Member>], alive: impl Fn(&str) -> bool, local: &str, rf: usize) -> Turn {
    let live = |m: &&Arc<Member>| m.host_id != local && alive(&m.host_id);
    if let Some(m) = members.iter().filter(live).find(|m| is_moving(m)) {
        return Turn::Wait(format!("{} is {}; one topology change at a time", m.host_id, m.status.as_str()));
    }
    let normal = members.iter().filter(|m| m.status == MemberStatus::Normal && !m.tokens.is_empty()).count();
    let mut undecided: Vec<&str> = members
        .iter()
        .filter(|m| (m.host_id == local || alive(&m.host_id)) && is_undecided(m))
        .map(|m| m.host_id.as_str())
        .collect();
    undecided.sort_unstable();
    let ahead: Vec<&str> = undecided.iter().copied().take_while(|h| *h != local).collect();
    if normal < rf {
        let needed = rf - normal;
        if ahead.len() < needed {
            return Turn::Form;
        }
        return Turn::Wait(format!(
            "the cluster is being formed ({normal} of {rf} nodes NORMAL); {} form it first, then this node joins",
            ahead[..needed].join(", ")
        ));
    }
    match ahead.first() {
        None => Turn::Join,
        Some(first) => Turn::Wait(format!("{first} is waiting to join too and goes first (lower host id)")),
    }
}

/// After claiming a join: the member (as it answers for itself) this node must
/// yield to, if any. A leaving or replacing member always wins; of two
/// claimed joins the lower host id wins.
pub fn yield_to<'a>(local: &str, others: impl IntoIterator<Item = &'a Member>) -> Option<&'a Member> {
    others.into_iter().filter(|m| m.host_id != local && is_moving(m)).find(|m| match m.status {
        MemberStatus::Joining => m.host_id.as_str() < local,
        _ => true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(host: &str, status: MemberStatus, tokens: &[u64]) -> Arc<Member> {
        Arc::new(Member {
            host_id: host.into(),
            node_id: 1,
            grpc_addr: "127.0.0.1:1".parse().unwrap(),
            http_addr: "127.0.0.1:2".parse().unwrap(),
            zone: String::new(),
            rack: String::new(),
            tokens: tokens.to_vec(),
            generation: 1,
            status,
        })
    }

    fn undecided(host: &str) -> Arc<Member> {
        member(host, MemberStatus::Joining, &[])
    }

    fn normal(host: &str) -> Arc<Member> {
        member(host, MemberStatus::Normal, &[1])
    }

    #[test]
    fn three_fresh_nodes_at_rf_1_one_forms_and_the_others_join_in_host_id_order() {
        let fresh = vec![undecided("a"), undecided("b"), undecided("c")];
        let all_alive = |_: &str| true;
        assert_eq!(turn(&fresh, all_alive, "a", 1), Turn::Form);
        assert!(matches!(turn(&fresh, all_alive, "b", 1), Turn::Wait(w) if w.contains("a form it first")));
        assert!(matches!(turn(&fresh, all_alive, "c", 1), Turn::Wait(_)));
        let formed = vec![normal("a"), undecided("b"), undecided("c")];
        assert_eq!(turn(&formed, all_alive, "b", 1), Turn::Join);
        assert!(matches!(turn(&formed, all_alive, "c", 1), Turn::Wait(w) if w.starts_with("b is waiting")));
        let joining = vec![normal("a"), member("b", MemberStatus::Joining, &[7]), undecided("c")];
        assert!(matches!(turn(&joining, all_alive, "c", 1), Turn::Wait(w) if w.starts_with("b is JOINING")));
        let joined = vec![normal("a"), normal("b"), undecided("c")];
        assert_eq!(turn(&joined, all_alive, "c", 1), Turn::Join);
    }

    #[test]
    fn at_rf_3_the_three_lowest_form_and_the_rest_join() {
        let fresh: Vec<_> = ["a", "b", "c", "d", "e"].into_iter().map(undecided).collect();
        let all_alive = |_: &str| true;
        for host in ["a", "b", "c"] {
            assert_eq!(turn(&fresh, all_alive, host, 3), Turn::Form, "{host}");
        }
        assert!(matches!(turn(&fresh, all_alive, "d", 3), Turn::Wait(w) if w.contains("a, b, c form it first")));
        // Formed one by one, the rule still picks the same nodes.
        let partly = vec![normal("a"), undecided("b"), undecided("c"), undecided("d")];
        assert_eq!(turn(&partly, all_alive, "c", 3), Turn::Form);
        assert!(matches!(turn(&partly, all_alive, "d", 3), Turn::Wait(_)));
    }

    #[test]
    fn dead_undecided_nodes_do_not_hold_the_queue() {
        let members = vec![normal("a"), undecided("b"), undecided("c")];
        assert_eq!(turn(&members, |h: &str| h != "b", "c", 1), Turn::Join);
        let moving = vec![normal("a"), member("b", MemberStatus::Leaving, &[1]), undecided("c")];
        assert_eq!(turn(&moving, |h: &str| h != "b", "c", 1), Turn::Join);
        assert!(matches!(turn(&moving, |_: &str| true, "c", 1), Turn::Wait(w) if w.contains("LEAVING")));
    }

    #[test]
    fn of_two_claimed_joins_the_higher_host_id_yields() {
        let (b, c) = (member("b", MemberStatus::Joining, &[1]), member("c", MemberStatus::Joining, &[2]));
        assert_eq!(yield_to("c", [&*b, &*c]).map(|m| m.host_id.as_str()), Some("b"));
        assert_eq!(yield_to("b", [&*b, &*c]), None);
        let leaving = member("z", MemberStatus::Leaving, &[3]);
        assert_eq!(yield_to("b", [&*leaving]).map(|m| m.host_id.as_str()), Some("z"));
        assert_eq!(yield_to("b", [&*undecided("a"), &*normal("a")]), None, "undecided and NORMAL do not move");
    }
}
