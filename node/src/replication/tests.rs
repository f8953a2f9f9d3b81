//! Coordinator tests over the in-memory engine with an injected clock.

use std::sync::Arc;

use bytes::Bytes;

use crate::clock::{Clock, ManualClock};
use crate::config::{Config, ServerConfig};
use crate::error::KvError;
use crate::storage::{MemoryStorage, Storage};

use super::*;

const START_US: i64 = 1_700_000_000_000_000;

fn coordinator() -> (Coordinator, Arc<ManualClock>) {
    let (c, clock, _) = coordinator_and_storage();
    (c, clock)
}

/// A coordinator of a cluster of one, its clock and its storage.
fn coordinator_and_storage() -> (Coordinator, Arc<ManualClock>, Arc<MemoryStorage>) {
    let clock = Arc::new(ManualClock::at_micros(START_US));
    let dyn_clock: Arc<dyn Clock> = clock.clone();
    let storage = Arc::new(MemoryStorage::new());
    let keyspaces = Keyspaces::from_config(&Config::default());
    let c = Coordinator::new(7, storage.clone(), keyspaces, dyn_clock, Limits::from(&ServerConfig::default()));
    (c, clock, storage)
}

fn b(s: &str) -> Bytes {
    Bytes::from(s.to_owned())
}

fn values(r: &ReadResult) -> Vec<Bytes> {
    r.siblings.iter().filter_map(|s| s.value.clone()).collect()
}

#[tokio::test]
async fn ttl_expires_on_the_injected_clock() {
    let (c, clock) = coordinator();
    let opts = PutOptions { ttl_seconds: Some(1), ..PutOptions::default() };
    c.put("", b("k"), b("v"), opts).await.expect("put");
    let r = c.get("", b("k"), Consistency::default()).await.expect("get");
    assert!(r.found);
    assert_eq!(r.ttl_remaining_ms, Some(1000));
    clock.advance_ms(999);
    assert!(c.get("", b("k"), Consistency::default()).await.expect("get").found, "alive before 1 s");
    clock.advance_ms(1);
    assert!(!c.get("", b("k"), Consistency::default()).await.expect("get").found, "absent at 1 s");
    let page = c.list("", b(""), 10, None, false).await.expect("list");
    assert!(page.entries.is_empty(), "expired keys are not listed");
}

#[tokio::test]
async fn blind_writes_overwrite_and_stale_contexts_make_siblings() {
    let (c, _) = coordinator();
    c.put("", b("k"), b("v1"), PutOptions::default()).await.expect("put");
    c.put("", b("k"), b("v2"), PutOptions::default()).await.expect("put");
    let r = c.get("", b("k"), Consistency::default()).await.expect("get");
    assert_eq!(values(&r), vec![b("v2")], "a blind write overwrites");
    // Two clients write with the same (now stale) context: siblings.
    let ctx = r.context.clone();
    for v in ["left", "right"] {
        let opts = PutOptions { context: ctx.clone(), ..PutOptions::default() };
        c.put("", b("k"), b(v), opts).await.expect("put");
    }
    let r = c.get("", b("k"), Consistency::default()).await.expect("get");
    assert_eq!(values(&r), vec![b("left"), b("right")]);
    // A write with the context of that read resolves them.
    let opts = PutOptions { context: r.context, ..PutOptions::default() };
    c.put("", b("k"), b("merged"), opts).await.expect("put");
    let r = c.get("", b("k"), Consistency::default()).await.expect("get");
    assert_eq!(values(&r), vec![b("merged")]);
}

#[tokio::test]
async fn if_absent_cas_and_increment() {
    let (c, _) = coordinator();
    let absent = PutOptions { if_absent: true, ..PutOptions::default() };
    assert!(c.put("", b("k"), b("a"), absent.clone()).await.expect("put").applied);
    assert!(!c.put("", b("k"), b("b"), absent).await.expect("put").applied);
    let v = c.get("", b("k"), Consistency::default()).await.expect("get").version;
    let cas = |exp, val: &str| c.compare_and_set("", b("k"), exp, b(val), None, Consistency::default());
    assert!(!cas(CasExpectation::Version(v + 1), "x").await.expect("cas").applied);
    assert!(cas(CasExpectation::Version(v), "x").await.expect("cas").applied);
    assert!(!cas(CasExpectation::Value(b("a")), "y").await.expect("cas").applied);
    assert!(cas(CasExpectation::Value(b("x")), "y").await.expect("cas").applied);
    assert!(!cas(CasExpectation::Absent, "z").await.expect("cas").applied);

    assert_eq!(c.increment("", b("n"), 5, None, Consistency::default()).await.expect("incr").0, 5);
    assert_eq!(c.increment("", b("n"), -7, None, Consistency::default()).await.expect("incr").0, -2);
    let err = c.increment("", b("k"), 1, None, Consistency::default()).await.unwrap_err();
    assert!(matches!(err, KvError::NotAnInteger), "{err}");
}

#[tokio::test]
async fn bad_input_is_refused_with_the_limit() {
    let (c, _) = coordinator();
    let big_key = Bytes::from(vec![b'k'; 1025]);
    let err = c.put("", big_key, b("v"), PutOptions::default()).await.unwrap_err();
    assert!(err.to_string().contains("1024"), "{err}");
    let big_value = Bytes::from(vec![0u8; 1024 * 1024 + 1]);
    let err = c.put("", b("k"), big_value, PutOptions::default()).await.unwrap_err();
    assert!(err.to_string().contains("1048576"), "{err}");
    assert!(matches!(c.put("", b(""), b("v"), PutOptions::default()).await, Err(KvError::EmptyKey { .. })));
    assert!(matches!(c.get("nope", b("k"), Consistency::default()).await, Err(KvError::UnknownKeyspace { .. })));
    let ttl = PutOptions { ttl_seconds: Some(u64::MAX), ..PutOptions::default() };
    assert!(matches!(c.put("", b("k"), b("v"), ttl).await, Err(KvError::TtlOutOfRange { .. })));
    let two = Consistency::level(ConsistencyLevel::Two);
    assert!(matches!(c.get("", b("k"), two).await, Err(KvError::Consistency(_))));
    let bad_ctx = PutOptions { context: b("garbage"), ..PutOptions::default() };
    assert!(matches!(c.put("", b("k"), b("v"), bad_ctx).await, Err(KvError::BadContext { .. })));
    assert!(!c.get("", b("k"), Consistency::default()).await.expect("get").found, "nothing was written");
}

#[tokio::test]
async fn list_and_scan_page_through_every_live_key_once() {
    let (c, _) = coordinator();
    for i in 0..250 {
        c.put("", b(&format!("user:{i:03}")), b("v"), PutOptions::default()).await.expect("put");
    }
    c.put("", b("other"), b("v"), PutOptions::default()).await.expect("put");
    c.delete("", b("user:007"), Bytes::new(), Consistency::default()).await.expect("delete");
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = c.list("", b("user:"), 40, cursor, false).await.expect("list");
        seen.extend(page.entries.into_iter().map(|e| e.key));
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(seen.len(), 249);
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "key order, no duplicates");
    let mut scanned = std::collections::HashSet::new();
    let mut cursor = None;
    loop {
        let page = c.scan("", 64, cursor, false).await.expect("scan");
        for e in page.entries {
            assert!(scanned.insert(e.key), "scan visits each key once");
        }
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(scanned.len(), 250);
}

#[tokio::test]
async fn atomic_batch_applies_all_or_nothing() {
    let (c, _) = coordinator();
    let op = |k: &str, v: &[u8]| BatchOp {
        key: b(k),
        value: Some(Bytes::copy_from_slice(v)),
        context: Bytes::new(),
        ttl_seconds: None,
    };
    let too_big = vec![0u8; 1024 * 1024 + 1];
    let err = c.batch_write("", vec![op("a", b"1"), op("b", &too_big)], true, Consistency::default()).await;
    assert!(err.is_err());
    assert!(!c.get("", b("a"), Consistency::default()).await.expect("get").found, "nothing applied");
    let ok = c.batch_write("", vec![op("a", b"1"), op("b", b"2"), op("a", b"3")], true, Consistency::default()).await;
    assert!(ok.expect("batch").iter().all(|r| r.is_ok()));
    assert_eq!(values(&c.get("", b("a"), Consistency::default()).await.expect("get")), vec![b("3")]);
}

#[tokio::test]
async fn purge_removes_only_records_dead_past_gc_grace() {
    let (c, clock, storage) = coordinator_and_storage();
    c.put("", b("live"), b("v"), PutOptions::default()).await.expect("put");
    c.put("", b("gone"), b("v"), PutOptions::default()).await.expect("put");
    c.delete("", b("gone"), Bytes::new(), Consistency::default()).await.expect("delete");
    let grace = std::time::Duration::from_secs(60);
    assert_eq!(
        c.purge_pass(None, 100, grace, std::sync::Arc::new(crate::replication::SoleReplica)).await.expect("purge").0,
        0,
        "tombstone kept within gc_grace"
    );
    clock.advance_ms(61_000);
    assert_eq!(
        c.purge_pass(None, 100, grace, std::sync::Arc::new(crate::replication::SoleReplica)).await.expect("purge").0,
        1
    );
    assert!(storage.get("default", b"gone").expect("get").is_none());
    assert!(storage.get("default", b"live").expect("get").is_some());
}
