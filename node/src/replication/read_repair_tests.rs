//! Tests of the read-repair rules, with the merge laws as properties.

use bytes::Bytes;
use proptest::prelude::*;

use super::*;
use crate::version::{NewWrite, VersionVector};

fn written(node: u64, value: &str) -> Record {
    let mut r = Record::default();
    let write = NewWrite { value: Some(Bytes::from(value.to_owned())), timestamp_micros: 1, expires_at_ms: None };
    r.apply_write(node, &VersionVector::default(), write, ConflictMode::Siblings);
    r
}

fn answers(copies: &[(&str, Option<Record>)]) -> Vec<(String, Option<Record>)> {
    copies.iter().map(|(h, r)| ((*h).to_owned(), r.clone())).collect()
}

#[test]
fn only_copies_that_differ_from_the_merge_are_stale() {
    let v = written(1, "v");
    let got = answers(&[("a", Some(v.clone())), ("b", None), ("c", Some(v.clone()))]);
    let merged = ReadRepair::merge(ConflictMode::Siblings, got.iter().map(|(_, r)| r));
    assert_eq!(merged.as_ref(), Some(&v));
    assert_eq!(ReadRepair::stale(&merged, &got), vec!["b".to_owned()]);
    assert!(ReadRepair::stale(&None, &answers(&[("a", None)])).is_empty(), "nothing found: nothing to repair");
}

#[test]
fn a_blocking_repair_must_leave_the_answer_on_the_required_replicas() {
    // (answered, stale, repaired, required, ok)
    let cases = [(2, 1, 0, 2, false), (2, 1, 1, 2, true), (3, 2, 1, 2, true), (3, 3, 1, 2, false), (3, 0, 0, 3, true)];
    for (answered, stale, repaired, required, ok) in cases {
        let held = ReadRepair::check_held(answered, stale, repaired, required);
        assert_eq!(held.is_ok(), ok, "answered {answered}, stale {stale}, repaired {repaired}, required {required}");
        if let Err(KvError::QuorumNotReached { acked, failures, .. }) = held {
            assert_eq!(acked as usize, answered - stale + repaired);
            assert!(failures.contains(&format!("{repaired} of {stale}")), "{failures}");
        }
    }
}

#[test]
fn late_answers_are_repaired_against_what_the_read_returned() {
    let (returned, other) = (written(1, "v"), written(2, "w"));
    let late = answers(&[("c", Some(returned.clone()))]);
    let (all, stale) = ReadRepair::late(ConflictMode::Siblings, Some(returned.clone()), &late);
    assert_eq!((all.as_ref(), stale.len()), (Some(&returned), 0), "an up-to-date late copy needs nothing");
    let late = answers(&[("c", Some(other.clone())), ("d", None)]);
    let (all, stale) = ReadRepair::late(ConflictMode::Siblings, Some(returned.clone()), &late);
    let mut both = returned;
    both.merge(&other, ConflictMode::Siblings);
    assert_eq!(all, Some(both));
    assert_eq!(stale, vec!["c".to_owned(), "d".into()]);
}

proptest! {
    /// The merge does not depend on the order the answers came in, and after
    /// repair with it no answer is stale. Each copy holds none, one or two of
    /// three writes (distinct dots, as on real replicas).
    #[test]
    fn the_merge_is_order_independent(copies in proptest::collection::vec(proptest::option::of((0usize..3, proptest::option::of(0usize..3))), 0..6)) {
        let pool: Vec<Record> = (0..3u64).map(|k| written(k + 1, &format!("v{k}"))).collect();
        let copies: Vec<(String, Option<Record>)> = copies
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let record = c.map(|(first, second)| {
                    let mut r = pool[first].clone();
                    if let Some(s) = second {
                        r.merge(&pool[s], ConflictMode::Siblings);
                    }
                    r
                });
                (format!("r{i}"), record)
            })
            .collect();
        let forward = ReadRepair::merge(ConflictMode::Siblings, copies.iter().map(|(_, r)| r));
        let backward = ReadRepair::merge(ConflictMode::Siblings, copies.iter().rev().map(|(_, r)| r));
        prop_assert_eq!(&forward, &backward);
        let repaired: Vec<(String, Option<Record>)> =
            copies.iter().map(|(h, _)| (h.clone(), forward.clone())).collect();
        prop_assert!(ReadRepair::stale(&forward, &repaired).is_empty());
    }
}
