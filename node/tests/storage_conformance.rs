//! One conformance suite for every `Storage` engine.
//!
//! Each check is a plain function over `&dyn Storage`; the `conformance!`
//! macro instantiates all of them for one engine (memory, and fjall under
//! each sync policy), so an engine passes exactly the same assertions.

use std::collections::BTreeSet;
use std::sync::Arc;

use bytes::Bytes;
use ringkv_node::config::StorageConfig;
use ringkv_node::ring::token_of;
use ringkv_node::storage::{
    FjallStorage, MAX_KEY_BYTES, MemoryStorage, ScanPosition, Storage, StorageError, SyncPolicy, WriteBatch, WriteOp,
};
use ringkv_node::version::{ConflictMode, NewWrite, Record, VersionVector};

/// An engine under test, with whatever must outlive it (its data dir).
struct Fixture {
    storage: Arc<dyn Storage>,
    _dir: Option<tempfile::TempDir>,
}

fn memory() -> Fixture {
    Fixture { storage: Arc::new(MemoryStorage::new()), _dir: None }
}

fn fjall(sync: SyncPolicy) -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = StorageConfig { data_dir: dir.path().to_path_buf(), sync, ..StorageConfig::default() };
    let storage = FjallStorage::open(&config).expect("open fjall");
    Fixture { storage: Arc::new(storage), _dir: Some(dir) }
}

fn record(value: &str) -> Record {
    let mut r = Record::default();
    let write = NewWrite { value: Some(Bytes::from(value.to_owned())), timestamp_micros: 1, expires_at_ms: None };
    r.apply_write(1, &VersionVector::new(), write, ConflictMode::Siblings);
    r
}

fn put(s: &dyn Storage, keyspace: &str, key: &str, value: &str) {
    let key = Bytes::from(key.to_owned());
    s.write(WriteBatch::put(keyspace, key, record(value))).expect("write").wait_blocking().expect("durable");
}

fn write(s: &dyn Storage, ops: Vec<WriteOp>) -> Result<(), StorageError> {
    s.write(WriteBatch { ops })?.wait_blocking()
}

fn put_op(keyspace: &str, key: &str, value: &str) -> WriteOp {
    WriteOp::Put { keyspace: keyspace.to_owned(), key: Bytes::from(key.to_owned()), record: record(value) }
}

fn purge_op(keyspace: &str, key: &str) -> WriteOp {
    WriteOp::Purge { keyspace: keyspace.to_owned(), key: Bytes::from(key.to_owned()) }
}

fn keys(list: &[Bytes]) -> Vec<String> {
    list.iter().map(|k| String::from_utf8_lossy(k).into_owned()).collect()
}

/// Puts `n` keys in each of three keyspaces whose names prefix each other.
fn fill(s: &dyn Storage, n: usize) -> usize {
    for ks in ["a", "ab", "b"] {
        let ops = (0..n).map(|i| put_op(ks, &format!("key{i:03}"), &format!("{ks}-{i}"))).collect();
        write(s, ops).expect("fill");
    }
    3 * n
}

fn get_put_overwrite_purge(s: &dyn Storage) {
    assert_eq!(s.get("ks", b"k").expect("get"), None);
    put(s, "ks", "k", "v1");
    assert_eq!(s.get("ks", b"k").expect("get"), Some(record("v1")));
    put(s, "ks", "k", "v2");
    assert_eq!(s.get("ks", b"k").expect("get"), Some(record("v2")));
    assert_eq!(s.get("other", b"k").expect("get"), None, "keyspaces are separate");
    write(s, vec![purge_op("ks", "k")]).expect("purge");
    assert_eq!(s.get("ks", b"k").expect("get"), None);
    assert!(s.list_keys("ks", b"", None, 10).expect("list").is_empty());
    assert!(s.scan(None, None, None, 10).expect("scan").is_empty());
}

fn list_keys_prefix_start_after_limit(s: &dyn Storage) {
    for k in ["apple", "apricot", "banana", "blueberry", "cherry", "ap"] {
        put(s, "fruit", k, k);
    }
    assert_eq!(
        keys(&s.list_keys("fruit", b"", None, 100).expect("list")),
        ["ap", "apple", "apricot", "banana", "blueberry", "cherry"]
    );
    assert_eq!(keys(&s.list_keys("fruit", b"ap", None, 100).expect("list")), ["ap", "apple", "apricot"]);
    assert_eq!(keys(&s.list_keys("fruit", b"ap", Some(b"ap"), 100).expect("list")), ["apple", "apricot"]);
    assert_eq!(keys(&s.list_keys("fruit", b"ap", Some(b"a"), 100).expect("list")), ["ap", "apple", "apricot"]);
    assert!(s.list_keys("fruit", b"ap", Some(b"b"), 100).expect("list").is_empty());
    assert_eq!(keys(&s.list_keys("fruit", b"b", None, 1).expect("list")), ["banana"]);
    assert_eq!(keys(&s.list_keys("fruit", b"", Some(b"banana"), 2).expect("list")), ["blueberry", "cherry"]);
    assert!(s.list_keys("fruit", b"", None, 0).expect("list").is_empty());
    assert!(s.list_keys("fruit", b"zzz", None, 10).expect("list").is_empty());
}

fn list_keys_isolates_keyspaces_that_prefix_each_other(s: &dyn Storage) {
    put(s, "a", "bx", "1");
    put(s, "ab", "x", "2");
    put(s, "abc", "", "3");
    assert_eq!(keys(&s.list_keys("a", b"", None, 10).expect("list")), ["bx"]);
    assert_eq!(keys(&s.list_keys("a", b"b", None, 10).expect("list")), ["bx"]);
    assert_eq!(keys(&s.list_keys("ab", b"", None, 10).expect("list")), ["x"]);
    assert_eq!(keys(&s.list_keys("abc", b"", None, 10).expect("list")), [""]);
    assert!(s.list_keys("", b"", None, 10).expect("list").is_empty());
}

fn scan_is_in_token_order_with_end_keyspace_and_limit(s: &dyn Storage) {
    let total = fill(s, 20);
    let all = s.scan(None, None, None, usize::MAX).expect("scan");
    assert_eq!(all.len(), total);
    for r in &all {
        assert_eq!(r.token, token_of(&r.keyspace, &r.key), "token is the key's token");
        let value = format!("{}-{}", r.keyspace, &String::from_utf8_lossy(&r.key)[3..].parse::<usize>().expect("n"));
        assert_eq!(r.record, record(&value));
    }
    assert!(all.windows(2).all(|w| w[0].token <= w[1].token), "token order");

    let end = all[total / 2].token;
    let until_end = s.scan(None, Some(end), None, usize::MAX).expect("scan");
    assert_eq!(until_end.len(), all.iter().filter(|r| r.token <= end).count());
    assert_eq!(until_end[..], all[..until_end.len()]);

    let only_ab = s.scan(None, None, Some("ab"), usize::MAX).expect("scan");
    assert_eq!(only_ab.len(), 20);
    assert!(only_ab.iter().all(|r| r.keyspace == "ab"));
    let expected: Vec<_> = all.iter().filter(|r| r.keyspace == "ab").cloned().collect();
    assert_eq!(only_ab, expected);

    assert_eq!(s.scan(None, None, None, 5).expect("scan")[..], all[..5]);
    assert!(s.scan(None, None, None, 0).expect("scan").is_empty());
    let last = all.last().expect("records");
    let after_last = ScanPosition { token: last.token, keyspace: last.keyspace.clone(), key: last.key.clone() };
    assert!(s.scan(Some(&after_last), None, None, 10).expect("scan").is_empty());
    let beyond_end = ScanPosition { token: end, keyspace: "zz".into(), key: Bytes::new() };
    assert!(s.scan(Some(&beyond_end), Some(end.saturating_sub(1)), None, 10).expect("scan").is_empty());
}

fn scan_paging_visits_every_record_exactly_once(s: &dyn Storage) {
    let total = fill(s, 17);
    for keyspace in [None, Some("a")] {
        let mut seen = Vec::new();
        let mut after: Option<ScanPosition> = None;
        loop {
            let page = s.scan(after.as_ref(), None, keyspace, 7).expect("scan");
            let Some(last) = page.last() else { break };
            after = Some(ScanPosition { token: last.token, keyspace: last.keyspace.clone(), key: last.key.clone() });
            seen.extend(page.into_iter().map(|r| (r.keyspace, r.key)));
        }
        let unique: BTreeSet<_> = seen.iter().cloned().collect();
        assert_eq!(unique.len(), seen.len(), "no record twice");
        assert_eq!(seen.len(), if keyspace.is_some() { 17 } else { total }, "every record once");
    }
}

fn meta_get_put(s: &dyn Storage) {
    assert_eq!(s.get_meta("host_id").expect("meta"), None);
    s.put_meta("host_id", b"node-1").expect("put meta");
    s.put_meta("schema", b"v1").expect("put meta");
    s.put_meta("schema", b"v2").expect("put meta");
    assert_eq!(s.get_meta("host_id").expect("meta"), Some(Bytes::from_static(b"node-1")));
    assert_eq!(s.get_meta("schema").expect("meta"), Some(Bytes::from_static(b"v2")));
    assert_eq!(s.get("host_id", b"").expect("get"), None, "meta is not a record");
}

fn batch_applies_all_ops_in_order_or_none(s: &dyn Storage) {
    put(s, "ks", "old", "x");
    let ops = vec![
        put_op("ks", "a", "1"),
        put_op("other", "b", "2"),
        purge_op("ks", "old"),
        put_op("ks", "c", "first"),
        purge_op("ks", "c"),
        purge_op("ks", "d"),
        put_op("ks", "d", "last"),
        put_op("ks", "a", "1b"),
    ];
    write(s, ops).expect("batch");
    assert_eq!(s.get("ks", b"a").expect("get"), Some(record("1b")));
    assert_eq!(s.get("other", b"b").expect("get"), Some(record("2")));
    assert_eq!(s.get("ks", b"old").expect("get"), None);
    assert_eq!(s.get("ks", b"c").expect("get"), None);
    assert_eq!(s.get("ks", b"d").expect("get"), Some(record("last")));
    assert_eq!(keys(&s.list_keys("ks", b"", None, 10).expect("list")), ["a", "d"]);

    let bad = vec![put_op("ks", "e", "1"), put_op(&"n".repeat(300), "k", "2")];
    assert!(matches!(write(s, bad), Err(StorageError::KeyspaceNameTooLong { .. })));
    assert_eq!(s.get("ks", b"e").expect("get"), None, "a failed batch applies nothing");
}

fn oversized_keys_are_refused_and_empty_names_work(s: &dyn Storage) {
    let long = "k".repeat(MAX_KEY_BYTES + 1);
    assert!(matches!(write(s, vec![put_op("ks", &long, "v")]), Err(StorageError::KeyTooLarge { .. })));
    assert!(matches!(s.get("ks", long.as_bytes()), Err(StorageError::KeyTooLarge { .. })));
    assert!(matches!(s.put_meta(&long, b"v"), Err(StorageError::KeyTooLarge { .. })));
    let longest = "k".repeat(MAX_KEY_BYTES);
    let name = "n".repeat(255);
    put(s, &name, &longest, "v");
    assert_eq!(s.get(&name, longest.as_bytes()).expect("get"), Some(record("v")));
    put(s, "ks", "", "empty key");
    assert_eq!(s.get("ks", b"").expect("get"), Some(record("empty key")));
    s.put_meta("", b"empty name").expect("put meta");
    assert_eq!(s.get_meta("").expect("meta"), Some(Bytes::from_static(b"empty name")));
}

fn hints_put_delete_and_scan_by_prefix(s: &dyn Storage) {
    let hint = |k: &str, v: &str| WriteOp::HintPut { key: Bytes::from(k.to_owned()), value: Bytes::from(v.to_owned()) };
    let ops =
        vec![hint("n1/001", "a"), hint("n1/002", "b"), hint("n2/001", "c"), hint("", "empty"), put_op("ks", "k", "v")];
    write(s, ops).expect("hints with a record in one batch");
    assert_eq!(s.get("ks", b"k").expect("get"), Some(record("v")));
    let scan = |prefix: &[u8], after: Option<&[u8]>, limit| {
        s.scan_hints(prefix, after, limit).expect("scan hints").into_iter().map(|(k, _)| k).collect::<Vec<_>>()
    };
    assert_eq!(keys(&scan(b"n1/", None, 10)), ["n1/001", "n1/002"]);
    assert_eq!(keys(&scan(b"n1/", Some(b"n1/001"), 10)), ["n1/002"]);
    assert_eq!(keys(&scan(b"n1/", Some(b"a"), 10)), ["n1/001", "n1/002"], "after before the prefix");
    assert_eq!(keys(&scan(b"n", None, 2)), ["n1/001", "n1/002"]);
    assert_eq!(keys(&scan(b"", None, 10)), ["", "n1/001", "n1/002", "n2/001"]);
    assert_eq!(s.scan_hints(b"n2/", None, 10).expect("scan")[0].1, Bytes::from_static(b"c"));
    write(s, vec![WriteOp::HintDelete { key: Bytes::from_static(b"n1/001") }]).expect("delete hint");
    assert_eq!(keys(&scan(b"n1/", None, 10)), ["n1/002"]);
    assert!(s.scan(None, None, None, 10).expect("scan").iter().all(|r| r.keyspace == "ks"), "hints are not records");
    let long = Bytes::from(vec![b'h'; MAX_KEY_BYTES + 1]);
    let too_long = WriteOp::HintPut { key: long, value: Bytes::new() };
    assert!(matches!(write(s, vec![too_long]), Err(StorageError::KeyTooLarge { .. })));
}

fn stats_are_non_zero_after_writes(s: &dyn Storage) {
    fill(s, 10);
    let stats = s.stats();
    assert!(stats.approximate_records > 0, "{stats:?}");
    assert!(stats.disk_bytes > 0, "{stats:?}");
}

fn concurrent_writers_are_all_visible(s: Arc<dyn Storage>) {
    const THREADS: usize = 16;
    const PER_THREAD: usize = 40;
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let s = s.clone();
            std::thread::spawn(move || {
                for i in 0..PER_THREAD {
                    put(&*s, "conc", &format!("t{t:02}-{i:03}"), &format!("{t}/{i}"));
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("writer thread");
    }
    for t in 0..THREADS {
        for i in 0..PER_THREAD {
            let got = s.get("conc", format!("t{t:02}-{i:03}").as_bytes()).expect("get");
            assert_eq!(got, Some(record(&format!("{t}/{i}"))));
        }
    }
    assert_eq!(s.list_keys("conc", b"", None, usize::MAX).expect("list").len(), THREADS * PER_THREAD);
}

fn write_is_visible_on_return_and_ticket_resolves(s: &dyn Storage) {
    let ticket = s.write(WriteBatch::put("ks", Bytes::from_static(b"k"), record("v"))).expect("write");
    assert_eq!(s.get("ks", b"k").expect("get"), Some(record("v")), "visible before durable");
    ticket.wait_blocking().expect("durable");
    let empty = s.write(WriteBatch::default()).expect("empty batch");
    empty.wait_blocking().expect("empty batch is trivially durable");
    s.sync().expect("sync");
}

macro_rules! conformance {
    ($engine:ident, $fixture:expr, $policy:expr) => {
        mod $engine {
            use super::*;

            #[test]
            fn reports_its_sync_policy() {
                assert_eq!($fixture.storage.sync_policy(), $policy);
            }

            conformance!(@checks $fixture; get_put_overwrite_purge, list_keys_prefix_start_after_limit,
                list_keys_isolates_keyspaces_that_prefix_each_other,
                scan_is_in_token_order_with_end_keyspace_and_limit,
                scan_paging_visits_every_record_exactly_once, meta_get_put,
                batch_applies_all_ops_in_order_or_none, stats_are_non_zero_after_writes,
                oversized_keys_are_refused_and_empty_names_work,
                hints_put_delete_and_scan_by_prefix,
                write_is_visible_on_return_and_ticket_resolves);

            #[test]
            fn concurrent_writers_are_all_visible() {
                let fixture = $fixture;
                super::concurrent_writers_are_all_visible(fixture.storage.clone());
            }
        }
    };
    (@checks $fixture:expr; $($check:ident),+ $(,)?) => {
        $(
            #[test]
            fn $check() {
                let fixture = $fixture;
                super::$check(&*fixture.storage);
            }
        )+
    };
}

conformance!(memory_engine, memory(), SyncPolicy::Periodic);
conformance!(fjall_sync_always, fjall(SyncPolicy::Always), SyncPolicy::Always);
conformance!(fjall_sync_periodic, fjall(SyncPolicy::Periodic), SyncPolicy::Periodic);
conformance!(fjall_sync_none, fjall(SyncPolicy::None), SyncPolicy::None);
