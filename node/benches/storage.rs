//! Storage benchmarks: durable writes with and without group commit,
//! periodic writes, random reads. Results: `docs/benchmarks.md`.
//!
//! Run with `cargo bench -p ringkv-node --bench storage` (about 2 minutes).
//! Data lives under the target dir (a real disk, not tmpfs) so fsyncs cost
//! what they cost on this machine.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use fjall::{Database, KeyspaceCreateOptions, PersistMode};
use ringkv_node::config::StorageConfig;
use ringkv_node::storage::{FjallStorage, Storage, SyncPolicy, WriteBatch};
use ringkv_node::version::{ConflictMode, NewWrite, Record, VersionVector};

const VALUE_BYTES: usize = 100;
const READ_RECORDS: u64 = 100_000;

fn temp_dir() -> tempfile::TempDir {
    tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tempdir")
}

fn open(dir: &std::path::Path, sync: SyncPolicy) -> FjallStorage {
    let config = StorageConfig { data_dir: dir.to_path_buf(), sync, ..StorageConfig::default() };
    FjallStorage::open(&config).expect("open")
}

fn record() -> Record {
    let mut r = Record::default();
    let write =
        NewWrite { value: Some(Bytes::from(vec![b'v'; VALUE_BYTES])), timestamp_micros: 1, expires_at_ms: None };
    r.apply_write(1, &VersionVector::new(), write, ConflictMode::Siblings);
    r
}

fn key(i: u64) -> Bytes {
    Bytes::from(format!("key-{i:010}"))
}

/// A cheap deterministic generator, so the bench needs no RNG crate API.
fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// `threads` threads share `iters` durable writes to `storage`; returns the wall time.
fn parallel_writes(storage: &Arc<FjallStorage>, threads: u64, iters: u64, base: u64) -> Duration {
    let started = Instant::now();
    std::thread::scope(|scope| {
        for t in 0..threads {
            let storage = storage.clone();
            scope.spawn(move || {
                for i in (t..iters).step_by(threads as usize) {
                    let batch = WriteBatch::put("bench", key(base + i), record());
                    storage.write(batch).expect("write").wait_blocking().expect("durable");
                }
            });
        }
    });
    started.elapsed()
}

fn durable_writes(c: &mut Criterion) {
    let mut group = c.benchmark_group("durable_write");
    group.sample_size(10).measurement_time(Duration::from_secs(4)).warm_up_time(Duration::from_secs(1));
    group.throughput(Throughput::Elements(1));

    for threads in [1u64, 16] {
        let dir = temp_dir();
        let storage = Arc::new(open(dir.path(), SyncPolicy::Always));
        let mut base = 0;
        group.bench_function(format!("group_commit/{threads}_threads"), |b| {
            b.iter_custom(|iters| {
                base += iters;
                parallel_writes(&storage, threads, iters, base)
            })
        });
    }

    // Baseline without group commit: every writer commits and fsyncs its own
    // batch (same fjall layout cost: one batch of two inserts, fdatasync).
    for threads in [1u64, 16] {
        let dir = temp_dir();
        let db = Database::builder(dir.path()).open().expect("open fjall");
        let records = db.keyspace("records", KeyspaceCreateOptions::default).expect("keyspace");
        let by_key = db.keyspace("by_key", KeyspaceCreateOptions::default).expect("keyspace");
        let value = record().encode();
        let mut base = 0;
        group.bench_function(format!("fsync_per_write/{threads}_threads"), |b| {
            b.iter_custom(|iters| {
                base += iters;
                let started = Instant::now();
                std::thread::scope(|scope| {
                    for t in 0..threads {
                        let (db, records, by_key, value) = (&db, &records, &by_key, &value);
                        scope.spawn(move || {
                            for i in (t..iters).step_by(threads as usize) {
                                let k = key(base + i);
                                let mut batch = db.batch();
                                batch.insert(records, k.to_vec(), value.clone());
                                batch.insert(by_key, k.to_vec(), Vec::new());
                                batch.commit().expect("commit");
                                db.persist(PersistMode::SyncData).expect("fsync");
                            }
                        });
                    }
                });
                started.elapsed()
            })
        });
    }
    group.finish();
}

fn periodic_writes(c: &mut Criterion) {
    let mut group = c.benchmark_group("periodic_write");
    group.sample_size(10).measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    group.throughput(Throughput::Elements(1));
    let dir = temp_dir();
    let storage = open(dir.path(), SyncPolicy::Periodic);
    let mut i = 0u64;
    group.bench_function("1_thread", |b| {
        b.iter(|| {
            i += 1;
            storage.write(WriteBatch::put("bench", key(i), record())).expect("write").wait_blocking().expect("ready")
        })
    });
    group.finish();
}

fn random_reads(c: &mut Criterion) {
    let mut group = c.benchmark_group("random_read");
    group.sample_size(10).measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    group.throughput(Throughput::Elements(1));
    let dir = temp_dir();
    let storage = open(dir.path(), SyncPolicy::None);
    for chunk in 0..READ_RECORDS / 1000 {
        let ops = (chunk * 1000..(chunk + 1) * 1000)
            .map(|i| ringkv_node::storage::WriteOp::Put { keyspace: "bench".into(), key: key(i), record: record() })
            .collect();
        storage.write(WriteBatch { ops }).expect("load");
    }
    storage.sync().expect("sync");
    let mut state = 0x2545_F491_4F6C_DD1D_u64;
    group.bench_function("100k_records", |b| {
        b.iter(|| {
            let k = key(next(&mut state) % READ_RECORDS);
            storage.get("bench", &k).expect("get").expect("present")
        })
    });
    group.finish();
}

criterion_group!(benches, durable_writes, periodic_writes, random_reads);
criterion_main!(benches);
