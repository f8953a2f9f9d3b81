//! Crash-and-reopen scenarios for `FjallStorage`, one scenario per test.
//!
//! A "crash" is emulated by copying the data directory while the storage is
//! still open (no shutdown, no final fsync): the copy holds exactly what a
//! `kill -9` would leave in the files. Journal faults are injected into the
//! copy's active journal (`<highest id>.jnl` in the data dir; fjall
//! preallocates it with zeros, so its content ends at its last non-zero byte),
//! and each test asserts that the fault really fired.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use ringkv_node::config::StorageConfig;
use ringkv_node::storage::{FjallStorage, Storage, SyncPolicy, WriteBatch};
use ringkv_node::version::{ConflictMode, NewWrite, Record, VersionVector};
use tracing_subscriber::layer::SubscriberExt;

fn temp_dir() -> tempfile::TempDir {
    // On the build disk, not a tmpfs, so that fsync costs what it costs.
    tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tempdir")
}

fn open(dir: &Path, sync: SyncPolicy) -> FjallStorage {
    let config = StorageConfig { data_dir: dir.to_path_buf(), sync, ..StorageConfig::default() };
    FjallStorage::open(&config).expect("open fjall")
}

fn record(value: &str) -> Record {
    let mut r = Record::default();
    let write = NewWrite { value: Some(Bytes::from(value.to_owned())), timestamp_micros: 1, expires_at_ms: None };
    r.apply_write(7, &VersionVector::new(), write, ConflictMode::Siblings);
    r
}

fn key(i: usize) -> String {
    format!("key-{i:05}")
}

/// Writes `n` keys one batch each (one journal batch each) and waits until durable.
fn write_keys(s: &FjallStorage, n: usize) {
    for i in 0..n {
        let batch = WriteBatch::put("ks", Bytes::from(key(i)), record(&format!("value-{i}")));
        s.write(batch).expect("write").wait_blocking().expect("durable");
    }
}

/// Copies `src` recursively into a fresh directory: the files as a crash leaves them.
fn crash_copy(src: &Path) -> tempfile::TempDir {
    fn copy(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).expect("mkdir");
        for entry in std::fs::read_dir(from).expect("readdir") {
            let entry = entry.expect("dirent");
            let target = to.join(entry.file_name());
            if entry.file_type().expect("type").is_dir() {
                copy(&entry.path(), &target);
            } else {
                std::fs::copy(entry.path(), &target).expect("copy");
            }
        }
    }
    let dst = temp_dir();
    copy(src, dst.path());
    dst
}

fn active_journal(dir: &Path) -> PathBuf {
    std::fs::read_dir(dir)
        .expect("readdir")
        .map(|e| e.expect("dirent").path())
        .filter(|p| p.extension().is_some_and(|e| e == "jnl"))
        .max_by_key(|p| p.file_stem().and_then(|s| s.to_str()).and_then(|s| s.parse::<u64>().ok()))
        .expect("a journal file")
}

/// Writes `n` keys, crashes, and reopens the crash image once cleanly, so that
/// fjall trims the preallocated zeros: the active journal then ends exactly
/// after the last complete batch. Returns the image, its journal and its length.
fn crash_image_with_exact_journal(n: usize) -> (tempfile::TempDir, PathBuf, u64) {
    let dir = temp_dir();
    let storage = open(dir.path(), SyncPolicy::Always);
    write_keys(&storage, n);
    let crashed = crash_copy(dir.path());
    drop(storage);
    drop(open(crashed.path(), SyncPolicy::Always));
    let journal = active_journal(crashed.path());
    let len = std::fs::metadata(&journal).expect("stat journal").len();
    assert!(len > 0, "the journal holds the writes");
    (crashed, journal, len)
}

/// Collects the `bytes_dropped` field of every "dropped torn journal tail" warning.
#[derive(Clone, Default)]
struct TornTailWarnings(Arc<Mutex<Vec<u64>>>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for TornTailWarnings {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: tracing_subscriber::layer::Context<'_, S>) {
        struct Visit {
            message: String,
            dropped: Option<u64>,
        }
        impl tracing::field::Visit for Visit {
            fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
                if field.name() == "bytes_dropped" {
                    self.dropped = Some(value);
                }
            }
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                if field.name() == "message" {
                    self.message = format!("{value:?}");
                }
            }
        }
        let mut visit = Visit { message: String::new(), dropped: None };
        event.record(&mut visit);
        if visit.message.contains("dropped torn journal tail")
            && let Some(dropped) = visit.dropped
        {
            self.0.lock().expect("lock").push(dropped);
        }
    }
}

/// Opens `dir` while capturing torn-tail warnings.
fn open_capturing(dir: &Path) -> (FjallStorage, Vec<u64>) {
    let warnings = TornTailWarnings::default();
    let subscriber = tracing_subscriber::registry().with(warnings.clone());
    let storage = tracing::subscriber::with_default(subscriber, || open(dir, SyncPolicy::Always));
    let dropped = warnings.0.lock().expect("lock").clone();
    (storage, dropped)
}

fn assert_keys_present(s: &FjallStorage, range: std::ops::Range<usize>) {
    for i in range {
        assert_eq!(s.get("ks", key(i).as_bytes()).expect("get"), Some(record(&format!("value-{i}"))), "key {i}");
    }
}

#[test]
fn sync_always_writes_survive_a_crash_and_reopen() {
    let dir = temp_dir();
    let storage = open(dir.path(), SyncPolicy::Always);
    write_keys(&storage, 200);
    storage.put_meta("host_id", b"node-7").expect("meta");
    let crashed = crash_copy(dir.path());
    drop(storage);

    let (reopened, dropped) = open_capturing(crashed.path());
    assert!(dropped.is_empty(), "a clean journal loses nothing: {dropped:?}");
    assert_keys_present(&reopened, 0..200);
    assert_eq!(reopened.get_meta("host_id").expect("meta"), Some(Bytes::from_static(b"node-7")));
    assert_eq!(reopened.list_keys("ks", b"", None, usize::MAX).expect("list").len(), 200);
}

#[test]
fn sync_periodic_writes_survive_a_process_crash_without_fsync() {
    // `periodic` hands each batch to the OS before `write` returns, so a
    // process crash (not a power loss) keeps it even though nothing fsynced.
    let dir = temp_dir();
    let fsyncs = Arc::new(AtomicUsize::new(0));
    let counter = fsyncs.clone();
    let storage = open(dir.path(), SyncPolicy::Periodic).with_fsync_observer(move |_| {
        counter.fetch_add(1, Ordering::SeqCst);
    });
    write_keys(&storage, 100);
    let crashed = crash_copy(dir.path());
    assert_eq!(fsyncs.load(Ordering::SeqCst), 0, "no fsync was needed");
    drop(storage);

    assert_keys_present(&open(crashed.path(), SyncPolicy::Periodic), 0..100);
}

#[test]
fn garbage_after_the_last_record_is_dropped_and_every_write_kept() {
    let (crashed, journal, end) = crash_image_with_exact_journal(50);
    let mut file = std::fs::OpenOptions::new().append(true).open(&journal).expect("open journal");
    std::io::Write::write_all(&mut file, &[0xFF; 37]).expect("append garbage");
    drop(file);

    let (reopened, dropped) = open_capturing(crashed.path());
    assert_eq!(dropped, [37], "the fault fired and was reported");
    assert_eq!(std::fs::metadata(&journal).expect("stat").len(), end, "fjall truncated the garbage");
    assert_keys_present(&reopened, 0..50);
    // The repaired journal takes new writes that survive another reopen.
    write_keys(&reopened, 51);
    drop(reopened);
    assert_keys_present(&open(crashed.path(), SyncPolicy::Always), 0..51);
}

#[test]
fn journal_torn_mid_record_keeps_every_complete_write_before_the_tear() {
    let (crashed, journal, end) = crash_image_with_exact_journal(50);
    // Cut 5 bytes into the last batch's end marker (tag + 8-byte checksum).
    let file = std::fs::OpenOptions::new().write(true).open(&journal).expect("open journal");
    file.set_len(end - 5).expect("tear");
    drop(file);

    let (reopened, dropped) = open_capturing(crashed.path());
    assert_eq!(dropped.len(), 1, "the tear fired and was reported: {dropped:?}");
    assert!(dropped[0] > 0);
    assert_keys_present(&reopened, 0..49);
    assert_eq!(reopened.get("ks", key(49).as_bytes()).expect("get"), None, "only the torn write is lost");
    assert_eq!(reopened.list_keys("ks", b"", None, usize::MAX).expect("list").len(), 49);
}

#[test]
fn group_commit_shares_fsyncs_between_concurrent_writers() {
    const THREADS: usize = 16;
    const PER_THREAD: usize = 50;
    let dir = temp_dir();
    let fsyncs = Arc::new(AtomicUsize::new(0));
    let counter = fsyncs.clone();
    let storage = Arc::new(open(dir.path(), SyncPolicy::Always).with_fsync_observer(move |_| {
        counter.fetch_add(1, Ordering::SeqCst);
    }));
    let writers: Vec<_> = (0..THREADS)
        .map(|t| {
            let storage = storage.clone();
            std::thread::spawn(move || {
                for i in 0..PER_THREAD {
                    let batch = WriteBatch::put("ks", Bytes::from(key(t * PER_THREAD + i)), record("x"));
                    storage.write(batch).expect("write").wait_blocking().expect("durable");
                }
            })
        })
        .collect();
    for w in writers {
        w.join().expect("writer");
    }
    let writes = THREADS * PER_THREAD;
    let fsyncs = fsyncs.load(Ordering::SeqCst);
    eprintln!("group commit: {writes} durable writes from {THREADS} threads took {fsyncs} fsyncs");
    assert!(fsyncs > 0, "the observer saw the fsyncs");
    assert!(fsyncs < writes, "{fsyncs} fsyncs for {writes} writes: no batching");
    for i in 0..writes {
        assert_eq!(storage.get("ks", key(i).as_bytes()).expect("get"), Some(record("x")), "key {i}");
    }
}
