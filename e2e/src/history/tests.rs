//! The checker on synthetic histories: a correct run passes, and each kind
//! of broken run (lost write, invented value, stale sibling kept, divergent
//! copies) is caught.

use super::*;

fn attempt(value: &str, observed: &[&str], outcome: Outcome) -> Attempt {
    Attempt {
        key: "k".into(),
        value: value.into(),
        observed: observed.iter().map(|v| (*v).to_owned()).collect(),
        outcome,
        phase: "test".into(),
        via: 0,
        level: "QUORUM".into(),
    }
}

fn ok(value: &str, observed: &[&str]) -> Attempt {
    attempt(value, observed, Outcome::Ok)
}

fn unknown(value: &str, observed: &[&str]) -> Attempt {
    attempt(value, observed, Outcome::Unknown("timeout".into()))
}

fn failed(value: &str, observed: &[&str]) -> Attempt {
    attempt(value, observed, Outcome::Failed("RKV-QUORUM".into()))
}

/// Three nodes that all hold `values` under the same encoding.
fn everywhere(values: &[&str]) -> BTreeMap<String, Vec<LocalCopy>> {
    let copies = (0..3).map(|n| copy(n, values)).collect();
    BTreeMap::from([("k".to_owned(), copies)])
}

fn copy(node: usize, values: &[&str]) -> LocalCopy {
    let values: BTreeSet<String> = values.iter().map(|v| (*v).to_owned()).collect();
    let encoded = (!values.is_empty()).then(|| values.iter().flat_map(|v| v.bytes()).collect());
    LocalCopy { node: format!("node {node}"), encoded, values }
}

/// a1 ← a2 ← (a3 failed, applied somewhere) ← a4 that saw both.
fn chain() -> Vec<Attempt> {
    vec![ok("a1", &[]), ok("a2", &["a1"]), failed("a3", &["a2"]), ok("a4", &["a2", "a3"])]
}

#[test]
fn a_correct_history_passes() {
    assert_eq!(check(&chain(), &everywhere(&["a4"])), vec![]);
}

#[test]
fn a_write_that_raced_an_unacknowledged_one_may_leave_siblings() {
    // a3 reached only an isolated node; a4's read did not see it: both survive.
    let attempts = vec![ok("a1", &[]), ok("a2", &["a1"]), unknown("a3", &["a2"]), ok("a4", &["a2"])];
    assert_eq!(check(&attempts, &everywhere(&["a3", "a4"])), vec![]);
    // And an unacknowledged write may vanish as well.
    assert_eq!(check(&attempts, &everywhere(&["a4"])), vec![]);
}

#[test]
fn a_lost_acknowledged_write_is_caught() {
    let attempts = vec![ok("a1", &[]), ok("a2", &["a1"])];
    let found = check(&attempts, &everywhere(&["a1"]));
    assert!(found.contains(&Violation::LostWrite { key: "k".into(), value: "a2".into() }), "{found:?}");
    let found = check(&attempts, &everywhere(&[]));
    assert!(found.contains(&Violation::LostWrite { key: "k".into(), value: "a2".into() }), "{found:?}");
    assert!(found.contains(&Violation::LostWrite { key: "k".into(), value: "a1".into() }), "{found:?}");
}

#[test]
fn a_value_never_written_is_caught() {
    let found = check(&chain(), &everywhere(&["a4", "zz"]));
    assert_eq!(
        found,
        vec![
            Violation::InventedValue { key: "k".into(), value: "zz".into(), node: "node 0".into() },
            Violation::InventedValue { key: "k".into(), value: "zz".into(), node: "node 1".into() },
            Violation::InventedValue { key: "k".into(), value: "zz".into(), node: "node 2".into() }
        ]
    );
    // A key nobody wrote at all.
    let mut finals = everywhere(&["a4"]);
    finals.insert(
        "other".into(),
        vec![LocalCopy { node: "node 0".into(), encoded: Some(vec![1]), values: BTreeSet::from(["x".to_owned()]) }],
    );
    let found = check(&chain(), &finals);
    assert_eq!(found, vec![Violation::InventedValue { key: "other".into(), value: "x".into(), node: "node 0".into() }]);
}

#[test]
fn a_stale_sibling_kept_is_caught_directly_and_transitively() {
    let found = check(&chain(), &everywhere(&["a2", "a4"]));
    assert!(
        found.contains(&Violation::StaleSiblingKept {
            key: "k".into(),
            value: "a2".into(),
            superseded_by: "a4".into()
        }),
        "{found:?}"
    );
    // a1 was replaced by a2 (not acknowledged, gone), which a4 replaced:
    // a1 is stale through the closure.
    let attempts = vec![ok("a1", &[]), failed("a2", &["a1"]), ok("a4", &["a2"])];
    let found = check(&attempts, &everywhere(&["a1", "a4"]));
    assert!(
        found.contains(&Violation::StaleSiblingKept {
            key: "k".into(),
            value: "a1".into(),
            superseded_by: "a4".into()
        }),
        "{found:?}"
    );
    // Superseded by a write that failed but survives is stale too.
    let attempts = vec![ok("a1", &[]), failed("a2", &["a1"])];
    let found = check(&attempts, &everywhere(&["a1", "a2"]));
    assert_eq!(
        found,
        vec![Violation::StaleSiblingKept { key: "k".into(), value: "a1".into(), superseded_by: "a2".into() }]
    );
}

#[test]
fn divergent_copies_are_caught() {
    let finals = BTreeMap::from([("k".to_owned(), vec![copy(0, &["a4"]), copy(1, &["a4"]), copy(2, &["a2"])])]);
    let found = check(&chain(), &finals);
    assert!(matches!(found.first(), Some(Violation::DivergentCopies { key, .. }) if key == "k"), "{found:?}");
    // Same values but different records (e.g. a clock that did not merge) diverge too.
    let mut other = copy(2, &["a4"]);
    other.encoded = Some(b"other clock".to_vec());
    let finals = BTreeMap::from([("k".to_owned(), vec![copy(0, &["a4"]), copy(1, &["a4"]), other])]);
    assert!(matches!(check(&chain(), &finals).as_slice(), [Violation::DivergentCopies { .. }]));
    // A node missing the key diverges from those that have it.
    let finals = BTreeMap::from([("k".to_owned(), vec![copy(0, &["a4"]), copy(1, &[])])]);
    assert!(matches!(check(&chain(), &finals).as_slice(), [Violation::DivergentCopies { .. }]));
}

#[test]
fn a_value_written_twice_is_reported() {
    let attempts = vec![ok("a1", &[]), ok("a1", &[])];
    let found = check(&attempts, &everywhere(&["a1"]));
    assert_eq!(found, vec![Violation::DuplicateValue { key: "k".into(), value: "a1".into() }]);
}

#[test]
fn counts_by_node_and_phase() {
    let history = History::new();
    for a in chain() {
        history.record(a);
    }
    history.record(Attempt { via: 1, phase: "cut".into(), ..unknown("a5", &["a4"]) });
    assert_eq!(history.counts(None, None), OutcomeCounts { ok: 3, failed: 1, unknown: 1 });
    assert_eq!(history.counts(Some(1), None), OutcomeCounts { ok: 0, failed: 0, unknown: 1 });
    assert_eq!(history.counts(None, Some("test")), OutcomeCounts { ok: 3, failed: 1, unknown: 0 });
    assert_eq!(history.attempts().len(), 5);
    assert_eq!(history.count(|a| a.value == "a5"), OutcomeCounts { ok: 0, failed: 0, unknown: 1 });
}
