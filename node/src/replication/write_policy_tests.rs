//! Table-driven and property tests of [`WritePolicy`].

use proptest::prelude::*;

use super::*;

const HOSTS: [&str; 3] = ["a", "b", "c"];

/// A policy over replicas a, b, c (a is this node) needing `w`, with stand-ins d, e.
fn policy(w: u32, sloppy: bool) -> WritePolicy {
    let targets: Vec<String> = HOSTS.iter().map(|h| (*h).to_owned()).collect();
    let hints = HintPolicy::new(vec!["d".into(), "e".into()], sloppy, false);
    WritePolicy::new(QuorumTracker::simple(targets.clone(), w), hints, targets)
}

fn direct(host: &str, ok: bool) -> WriteReply {
    WriteReply::Direct { host: host.into(), result: if ok { Ok(()) } else { Err("refused".into()) } }
}

fn hinted(host: &str, ok: bool) -> WriteReply {
    WriteReply::Hinted { host: host.into(), result: if ok { Ok(true) } else { Err("disk full".into()) } }
}

fn hint(target: &str, via: Option<&str>) -> Action {
    Action::Hint(HintFor { target: target.into(), via: via.map(str::to_owned) })
}

fn is_fail(next: &Next) -> bool {
    matches!(next, Next::Fail(_))
}

#[test]
fn the_start_sends_to_alive_replicas_and_hints_the_down_ones_in_stand_in_order() {
    let mut p = policy(2, false);
    let step = p.start("a", &|h| h != "b");
    assert_eq!(step.actions, vec![hint("b", Some("d")), Action::Send("c".into())]);
    assert_eq!(step.next, Next::Wait, "b failed, a and c may still reach W = 2");
    let mut p = policy(2, false);
    let step = p.start("a", &|h| h == "a");
    assert_eq!(step.actions, vec![hint("b", Some("d")), hint("c", Some("e"))]);
    assert!(is_fail(&step.next), "two of three down: QUORUM is out of reach at once");
}

/// (what, w, sloppy, down at the start, replies, the decision after each reply)
type Case = (&'static str, u32, bool, &'static [&'static str], Vec<WriteReply>, Vec<Next>);

#[test]
fn decisions_follow_the_level_and_the_sloppy_setting() {
    use Next::{Ack, Wait};
    let cases: Vec<Case> = vec![
        ("ONE acks on the local copy", 1, false, &[], vec![direct("a", true), direct("b", true)], vec![Ack, Wait]),
        ("QUORUM needs two", 2, false, &[], vec![direct("a", true), direct("b", true)], vec![Wait, Ack]),
        (
            "ALL waits for every one",
            3,
            false,
            &[],
            vec![direct("a", true), direct("b", true), direct("c", true)],
            vec![Wait, Wait, Ack],
        ),
        (
            "a strict hint does not count",
            2,
            false,
            &["c"],
            vec![direct("a", true), hinted("c", true)],
            vec![Wait, Wait],
        ),
        ("a sloppy hint counts", 2, true, &["c"], vec![direct("a", true), hinted("c", true)], vec![Wait, Ack]),
        (
            "a failed direct write waits for its hint when sloppy",
            2,
            true,
            &[],
            vec![direct("a", true), direct("b", false), hinted("b", true)],
            vec![Wait, Wait, Ack],
        ),
    ];
    for (what, w, sloppy, down, replies, expected) in cases {
        let mut p = policy(w, sloppy);
        let start = p.start("a", &|h| !down.contains(&h));
        assert_eq!(start.next, Wait, "{what}: undecided at the start");
        let got: Vec<Next> = replies.into_iter().map(|r| p.on_reply(r).next).collect();
        assert_eq!(got, expected, "{what}");
    }
}

#[test]
fn a_failed_direct_write_gets_a_hint_and_fails_the_strict_quorum() {
    let mut p = policy(2, false);
    p.start("a", &|_| true);
    let step = p.on_reply(direct("b", false));
    assert_eq!(step.actions, vec![hint("b", Some("d"))]);
    assert_eq!(step.next, Next::Wait);
    let step = p.on_reply(direct("c", false));
    assert_eq!(step.actions, vec![hint("c", Some("e"))]);
    let Next::Fail(f) = step.next else { panic!("two failures out of three fail QUORUM") };
    assert!(f.failures.contains("b: refused") && f.failures.contains("c: refused"), "{f}");
    let step = p.on_reply(direct("x", false));
    assert!(step.actions.is_empty(), "a host outside the targets gets no hint");
}

#[test]
fn a_sloppy_hint_that_could_not_be_stored_is_a_failure() {
    let mut p = policy(3, true);
    p.start("a", &|h| h != "c");
    p.on_reply(direct("a", true));
    p.on_reply(direct("b", true));
    let Next::Fail(f) = p.on_reply(hinted("c", false)).next else { panic!("ALL with a lost hint fails") };
    assert!(f.failures.contains("c: disk full"), "{f}");
}

#[test]
fn an_undecided_write_fails_once_every_call_finished() {
    let mut p = policy(2, false);
    p.start("a", &|h| h != "c");
    assert_eq!(p.on_reply(direct("a", true)).next, Next::Wait);
    assert_eq!(p.on_reply(hinted("c", true)).next, Next::Wait, "a strict hint leaves the write undecided");
    let Next::Fail(f) = p.on_all_replied() else { panic!("undecided at the end fails") };
    assert_eq!((f.required, f.acked), (0, 1));
    assert_eq!(p.on_all_replied(), Next::Wait, "the decision is given once");
}

fn reply_strategy() -> impl Strategy<Value = WriteReply> {
    (0..3usize, any::<bool>(), any::<bool>())
        .prop_map(|(i, is_direct, ok)| if is_direct { direct(HOSTS[i], ok) } else { hinted(HOSTS[i], ok) })
}

proptest! {
    /// Whatever the replies, the client gets exactly one answer (the end
    /// of the fan-out decides a write still undecided), and an ack never
    /// comes before W replicas or counted hints answered.
    #[test]
    fn exactly_one_decision(
        w in 1u32..=3,
        sloppy in any::<bool>(),
        down in proptest::collection::vec(any::<bool>(), 3),
        replies in proptest::collection::vec(reply_strategy(), 0..12),
    ) {
        let mut p = policy(w, sloppy);
        let mut decisions = Vec::new();
        decisions.push(p.start("a", &|h| !down[HOSTS.iter().position(|x| *x == h).unwrap_or(0)]).next);
        let mut oks = std::collections::BTreeSet::new();
        for r in replies {
            match &r {
                WriteReply::Direct { host, result: Ok(()) } => { oks.insert(host.clone()); }
                WriteReply::Hinted { host, result: Ok(true) } if sloppy => { oks.insert(host.clone()); }
                _ => {}
            }
            let next = p.on_reply(r).next;
            if next == Next::Ack {
                prop_assert!(oks.len() as u32 >= w, "acked with {} of {w}", oks.len());
            }
            decisions.push(next);
        }
        decisions.push(p.on_all_replied());
        prop_assert_eq!(decisions.iter().filter(|n| **n != Next::Wait).count(), 1);
    }
}
