//! Unit tests of engine details the conformance suite does not reach.

use super::*;
use crate::config::StorageConfig;

fn fjall_config(dir: &std::path::Path, sync: SyncPolicy) -> StorageConfig {
    StorageConfig { data_dir: dir.to_path_buf(), sync, ..StorageConfig::default() }
}

#[test]
fn keyspace_names_longer_than_255_bytes_are_refused_by_both_engines() {
    let long = "k".repeat(256);
    let batch = WriteBatch::put(&long, Bytes::from_static(b"x"), Record::default());
    let memory = MemoryStorage::new();
    assert!(matches!(memory.write(batch.clone()), Err(StorageError::KeyspaceNameTooLong { len: 256 })));
    let dir = tempfile::tempdir().expect("tempdir");
    let fjall = FjallStorage::open(&fjall_config(dir.path(), SyncPolicy::None)).expect("open");
    assert!(matches!(fjall.write(batch), Err(StorageError::KeyspaceNameTooLong { len: 256 })));
    assert!(matches!(fjall.get(&long, b"x"), Err(StorageError::KeyspaceNameTooLong { .. })));
}

#[test]
fn fjall_refuses_writes_after_shutdown_but_still_reads() {
    let dir = tempfile::tempdir().expect("tempdir");
    let storage = FjallStorage::open(&fjall_config(dir.path(), SyncPolicy::Always)).expect("open");
    let key = Bytes::from_static(b"k");
    storage
        .write(WriteBatch::put("ks", key.clone(), Record::default()))
        .expect("write")
        .wait_blocking()
        .expect("durable");
    storage.shutdown();
    let again = storage.write(WriteBatch::put("ks", key, Record::default()));
    assert!(matches!(again, Err(StorageError::ShutDown)));
    assert_eq!(storage.get("ks", b"k").expect("read"), Some(Record::default()));
}

#[test]
fn memory_engine_reports_the_policy_it_was_built_with() {
    assert_eq!(MemoryStorage::new().sync_policy(), SyncPolicy::Periodic);
    assert_eq!(MemoryStorage::with_sync_policy(SyncPolicy::Always).sync_policy(), SyncPolicy::Always);
}

#[test]
fn fjall_load_counts_data_not_the_journal_preallocation() {
    const MIB: u64 = 1024 * 1024;
    let dir = tempfile::tempdir().expect("tempdir");
    let storage = FjallStorage::open(&fjall_config(dir.path(), SyncPolicy::Always)).expect("open");
    let empty = storage.stats();
    // fjall pre-allocates the active journal to 64 MiB; none of it is data yet.
    assert!(empty.disk_bytes < MIB && empty.journal_bytes < MIB, "an empty store reports {empty:?}");

    // 256 KiB of xorshift noise, which no compression shrinks, durable in the journal.
    let mut x = 0x9e37_79b9_7f4a_7c15_u64;
    let value: Vec<u8> = (0..256 * 1024)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 32) as u8
        })
        .collect();
    storage.put_meta("big", &value).expect("put_meta");
    let written = storage.stats();
    assert!(written.journal_bytes >= 256 * 1024, "the journal holds the value: {written:?}");
    assert!(written.disk_bytes >= written.journal_bytes && written.disk_bytes < 2 * MIB, "{written:?}");
}
