//! Table-driven tests of [`ReadPolicy`].

use bytes::Bytes;

use super::*;
use crate::version::{NewWrite, VersionVector};

/// A record written once by `node` with `value` (a fresh history per call).
fn written(node: u64, value: &str) -> Record {
    let mut r = Record::default();
    let write = NewWrite { value: Some(Bytes::from(value.to_owned())), timestamp_micros: 1, expires_at_ms: None };
    r.apply_write(node, &VersionVector::default(), write, ConflictMode::Siblings);
    r
}

fn target(host: &str, alive: bool, serves_reads: bool) -> ReadTarget {
    ReadTarget { host: host.into(), alive, serves_reads }
}

fn all_up() -> Vec<ReadTarget> {
    ["a", "b", "c"].iter().map(|h| target(h, true, true)).collect()
}

/// A read of replicas a, b, c needing `required` of them.
fn policy(required: u32, blocking: bool) -> ReadPolicy {
    let members = vec!["a".to_owned(), "b".to_owned(), "c".to_owned()];
    ReadPolicy::new(vec![QuorumGroup { name: "replicas".into(), members, required }], blocking, ConflictMode::Siblings)
}

fn answer(next: ReadNext) -> ReadAnswer {
    match next {
        ReadNext::Answer(a) => a,
        other => panic!("expected an answer, got {other:?}"),
    }
}

#[test]
fn the_start_asks_the_alive_replicas_that_serve_reads() {
    let mut p = policy(2, true);
    let replicas = vec![target("a", true, true), target("b", false, true), target("c", true, false)];
    let (ask, next) = p.start(&replicas);
    assert_eq!(ask, vec!["a".to_owned()]);
    let ReadNext::Fail(f) = next else { panic!("one usable replica cannot make QUORUM") };
    assert!(f.failures.contains("b: down") && f.failures.contains("c: still streaming"), "{f}");
}

#[test]
fn the_read_answers_once_the_level_is_met() {
    // (required, answers before the decision)
    for (required, needed) in [(1u32, 1usize), (2, 2), (3, 3)] {
        let mut p = policy(required, false);
        let (ask, next) = p.start(&all_up());
        assert_eq!((ask.len(), next), (3, ReadNext::Wait));
        let hosts = ["a", "b", "c"];
        for (i, host) in hosts.iter().enumerate().take(needed) {
            let next = p.on_answer(host, Ok(Some(written(1, "v"))));
            if i + 1 < needed {
                assert_eq!(next, ReadNext::Wait, "required {required}: undecided after {}", i + 1);
            } else {
                let a = answer(next);
                assert_eq!((a.answered, a.required, a.stale.len()), (needed, required, 0));
            }
        }
    }
}

#[test]
fn the_answer_merges_the_copies_and_names_the_stale_replicas() {
    let mut p = policy(3, true);
    p.start(&all_up());
    let (x, y) = (written(1, "x"), written(2, "y"));
    assert_eq!(p.on_answer("a", Ok(Some(x.clone()))), ReadNext::Wait);
    assert_eq!(p.on_answer("b", Ok(None)), ReadNext::Wait);
    let a = answer(p.on_answer("c", Ok(Some(y.clone()))));
    let mut both = x;
    both.merge(&y, ConflictMode::Siblings);
    assert_eq!(a.merged.as_ref(), Some(&both), "concurrent writes come back as siblings");
    assert_eq!(a.stale, vec!["a".to_owned(), "b".into(), "c".into()], "every copy lacks something");
    assert!(a.blocking);
    assert_eq!(p.on_answer("a", Ok(None)), ReadNext::Wait, "answers after the decision are ignored");
}

#[test]
fn failures_fail_the_read_once_the_level_is_out_of_reach() {
    let mut p = policy(2, false);
    p.start(&all_up());
    assert_eq!(p.on_answer("a", Err("timeout".into())), ReadNext::Wait);
    let ReadNext::Fail(f) = p.on_answer("b", Err("refused".into())) else { panic!("two failures of three") };
    assert_eq!((f.required, f.acked, f.failed), (2, 0, 2));
}

#[test]
fn a_key_nobody_has_is_an_empty_answer_with_nothing_to_repair() {
    let mut p = policy(1, false);
    p.start(&all_up());
    let a = answer(p.on_answer("b", Ok(None)));
    assert_eq!((a.merged, a.stale), (None, Vec::<String>::new()));
    let mut p = policy(2, false);
    p.start(&[target("a", true, true), target("b", true, true)]);
    p.on_answer("a", Ok(None));
    assert_eq!(answer(p.on_all_answered()).answered, 1, "every asked replica answered: answer with what came");
}
