//! Laws of version vectors and records: merge is commutative, associative
//! and idempotent; a write with a context supersedes exactly what it saw.

use bytes::Bytes;
use proptest::prelude::*;

use super::*;

const NODES: [NodeId; 3] = [1, 2, 3];

fn write(value: &str, ts: i64) -> NewWrite {
    NewWrite { value: Some(Bytes::from(value.to_owned())), timestamp_micros: ts, expires_at_ms: None }
}

/// A history: a sequence of writes, each at a replica, each with the context
/// of some earlier replica state (or blind), then merges between replicas.
#[derive(Debug, Clone)]
enum Step {
    Write { at: usize, ctx_from: Option<usize>, value: u8 },
    Sync { from: usize, to: usize },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (0..3usize, proptest::option::of(0..3usize), any::<u8>()).prop_map(|(at, ctx_from, value)| Step::Write {
            at,
            ctx_from,
            value
        }),
        (0..3usize, 0..3usize).prop_map(|(from, to)| Step::Sync { from, to }),
    ]
}

/// Replays a history over three replicas; returns their records.
fn replay(steps: &[Step], mode: ConflictMode) -> Vec<Record> {
    let mut replicas = vec![Record::default(); 3];
    for (i, s) in steps.iter().enumerate() {
        match s {
            Step::Write { at, ctx_from, value } => {
                let ctx = ctx_from.map(|r| replicas[r].clock.clone()).unwrap_or_default();
                replicas[*at].apply_write(NODES[*at], &ctx, write(&value.to_string(), i as i64), mode);
            }
            Step::Sync { from, to } => {
                let src = replicas[*from].clone();
                replicas[*to].merge(&src, mode);
            }
        }
    }
    replicas
}

fn merged(a: &Record, b: &Record) -> Record {
    let mut m = a.clone();
    m.merge(b, ConflictMode::Siblings);
    m
}

proptest! {
    #[test]
    fn merge_is_commutative(steps in proptest::collection::vec(step(), 0..30)) {
        let r = replay(&steps, ConflictMode::Siblings);
        prop_assert_eq!(merged(&r[0], &r[1]), merged(&r[1], &r[0]));
    }

    #[test]
    fn merge_is_associative(steps in proptest::collection::vec(step(), 0..30)) {
        let r = replay(&steps, ConflictMode::Siblings);
        prop_assert_eq!(merged(&merged(&r[0], &r[1]), &r[2]), merged(&r[0], &merged(&r[1], &r[2])));
    }

    #[test]
    fn merge_is_idempotent(steps in proptest::collection::vec(step(), 0..30)) {
        let r = replay(&steps, ConflictMode::Siblings);
        prop_assert_eq!(merged(&r[0], &r[0]), r[0].clone());
        let once = merged(&r[0], &r[1]);
        prop_assert_eq!(merged(&once, &r[1]), once.clone());
    }

    #[test]
    fn invariants_hold(steps in proptest::collection::vec(step(), 0..30)) {
        for r in replay(&steps, ConflictMode::Siblings) {
            for s in &r.siblings {
                prop_assert!(r.clock.contains(s.dot), "sibling dot outside the clock");
            }
            prop_assert!(r.siblings.windows(2).all(|w| w[0].dot < w[1].dot), "siblings sorted and distinct");
        }
        for r in replay(&steps, ConflictMode::Lww) {
            prop_assert!(r.siblings.len() <= 1, "lww keeps one sibling");
        }
    }

    #[test]
    fn context_write_supersedes_exactly_what_it_saw(steps in proptest::collection::vec(step(), 0..30), at in 0..3usize, seen in 0..3usize) {
        let mut r = replay(&steps, ConflictMode::Siblings);
        let context = r[seen].clock.clone();
        let before = r[at].siblings.clone();
        let dot = r[at].apply_write(NODES[at], &context, write("new", 1_000), ConflictMode::Siblings);
        for s in &before {
            let kept = r[at].siblings.iter().any(|x| x.dot == s.dot);
            prop_assert_eq!(kept, !context.contains(s.dot), "sibling {:?} kept={} but seen={}", s.dot, kept, context.contains(s.dot));
        }
        prop_assert!(r[at].siblings.iter().any(|x| x.dot == dot));
    }

    #[test]
    fn record_codec_round_trips(steps in proptest::collection::vec(step(), 0..30), ttl in proptest::option::of(any::<i64>())) {
        for mut r in replay(&steps, ConflictMode::Siblings) {
            if let Some(s) = r.siblings.first_mut() { s.expires_at_ms = ttl; }
            if let Some(s) = r.siblings.last_mut() { s.value = None; }
            let decoded = Record::decode(&Bytes::from(r.encode())).expect("own encoding decodes");
            prop_assert_eq!(&decoded, &r);
            prop_assert_eq!(VersionVector::decode_context(&r.clock.encode_context()).expect("decodes"), r.clock.clone());
        }
    }

    #[test]
    fn decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        let _ = Record::decode(&Bytes::from(bytes.clone()));
        let _ = VersionVector::decode_context(&bytes);
    }
}

#[test]
fn concurrent_writes_become_siblings_and_a_context_write_resolves_them() {
    let mut a = Record::default();
    a.apply_write(1, &VersionVector::new(), write("base", 1), ConflictMode::Siblings);
    let seen = a.clock.clone();
    // Two clients read the same version and both write.
    a.apply_write(1, &seen, write("left", 2), ConflictMode::Siblings);
    a.apply_write(1, &seen, write("right", 3), ConflictMode::Siblings);
    let values: Vec<_> = a.live_siblings(0).map(|s| s.value.clone()).collect();
    assert_eq!(values.len(), 2, "both concurrent writes survive: {values:?}");
    // A client that read both siblings resolves them.
    let both = a.clock.clone();
    a.apply_write(1, &both, write("merged", 4), ConflictMode::Siblings);
    assert_eq!(a.siblings.len(), 1);
    assert_eq!(a.siblings[0].value.as_deref(), Some(&b"merged"[..]));
}

#[test]
fn lww_keeps_the_latest_timestamp() {
    let mut a = Record::default();
    a.apply_write(1, &VersionVector::new(), write("late", 20), ConflictMode::Lww);
    let mut b = Record::default();
    b.apply_write(2, &VersionVector::new(), write("early", 10), ConflictMode::Lww);
    a.merge(&b, ConflictMode::Lww);
    b.merge(&a, ConflictMode::Lww);
    assert_eq!(a, b);
    assert_eq!(a.siblings[0].value.as_deref(), Some(&b"late"[..]));
}

#[test]
fn truncated_record_is_a_clear_error() {
    let mut r = Record::default();
    r.apply_write(1, &VersionVector::new(), write("value", 1), ConflictMode::Siblings);
    let bytes = r.encode();
    let err = Record::decode(&Bytes::from(bytes[..bytes.len() - 2].to_vec())).unwrap_err();
    assert!(err.to_string().contains("truncated"), "{err}");
}

/// Found by the `context` fuzz target: a context whose counter for the
/// coordinator is `u64::MAX` decoded fine, and the write under it overflowed
/// `counter + 1` (a panic in debug builds; in release a dot with counter 0,
/// which every clock "contains", so the acknowledged write was superseded at
/// once). Such counters are refused by the decoder now.
#[test]
fn a_counter_that_cannot_be_incremented_is_refused() {
    let mut huge = vec![1u8, 1, 7];
    huge.extend([0xff; 9]);
    huge.push(0x01); // LEB128 of u64::MAX
    let err = VersionVector::decode_context(&huge);
    assert!(matches!(err, Err(CodecError::OutOfRange { field: "clock counter", .. })), "{err:?}");
    let max = VersionVector::from_entries([(7, codec::MAX_CONTEXT_COUNTER)]);
    let decoded = VersionVector::decode_context(&max.encode_context()).unwrap_or_default();
    assert_eq!(decoded, max, "the largest counter still decodes");
    let over = VersionVector::from_entries([(7, codec::MAX_CONTEXT_COUNTER + 1)]);
    assert!(VersionVector::decode_context(&over.encode_context()).is_err());
    let mut record = Record::default();
    let dot = record.apply_write(7, &decoded, write("v", 1), ConflictMode::Siblings);
    assert_eq!(dot, Dot { node: 7, counter: codec::MAX_CONTEXT_COUNTER + 1 });
    // Found next by the `record` target: with one cap for both, the record
    // that write made no longer decoded (its counter was over the cap).
    assert_eq!(Record::decode(&Bytes::from(record.encode())), Ok(record.clone()), "the record decodes again");
    let at_cap = Record { clock: VersionVector::from_entries([(7, codec::MAX_COUNTER)]), siblings: vec![] };
    assert_eq!(Record::decode(&Bytes::from(at_cap.encode())), Ok(at_cap));
    let over_cap = Record { clock: VersionVector::from_entries([(7, codec::MAX_COUNTER + 1)]), siblings: vec![] };
    assert!(Record::decode(&Bytes::from(over_cap.encode())).is_err());
}

/// Found by the `record` and `hint` fuzz targets: a record whose siblings
/// break the invariants (a dot outside the clock or with counter 0, siblings
/// out of order or with one dot twice) decoded fine; merge and supersession
/// then misbehave (a sibling a context never covers, duplicates that merge
/// keeps). The decoder refuses them now.
#[test]
fn records_breaking_the_invariants_are_refused() {
    let sibling = |node: u64, counter: u64| Sibling {
        dot: Dot { node, counter },
        timestamp_micros: 1,
        expires_at_ms: None,
        value: Some(Bytes::from_static(b"v")),
    };
    let clock = VersionVector::from_entries([(1, 2), (2, 1)]);
    let broken = [
        vec![sibling(3, 1)],
        vec![sibling(1, 3)],
        vec![sibling(1, 0)],
        vec![sibling(2, 1), sibling(1, 1)],
        vec![sibling(1, 1), sibling(1, 1)],
    ];
    for siblings in broken {
        let record = Record { clock: clock.clone(), siblings };
        let err = Record::decode(&Bytes::from(record.encode()));
        assert!(matches!(err, Err(CodecError::OutOfRange { .. })), "{record:?} decoded: {err:?}");
    }
    let fine = Record { clock, siblings: vec![sibling(1, 1), sibling(1, 2), sibling(2, 1)] };
    assert_eq!(Record::decode(&Bytes::from(fine.encode())), Ok(fine));
}
