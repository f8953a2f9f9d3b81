//! [`FjallStorage`]: the production engine, on the fjall LSM.
//!
//! Layout (three fjall keyspaces in one database, so batches span them atomically):
//! - `records`: `token (8 bytes BE) | name len (u8) | keyspace name | user key`
//!   → [`Record::encode`]; ordered by `(token, keyspace, key)` with keyspaces of
//!   one token ordered by name length first (only matters on a 64-bit token collision);
//! - `by_key`: `name len (u8) | keyspace name | user key` → empty, for LIST;
//!   the token is recomputed with [`token_of`];
//! - `meta`: `0x01 | metadata name` → value (the tag keeps keys non-empty,
//!   which fjall requires);
//! - `hints`: `0x01 | hint key` → encoded hint (same tag, same reason).
//!
//! Invariants: every `records` entry has its `by_key` entry and vice versa
//! (both are written in the same fjall batch); inside one applied group the
//! last change to a key wins (fjall gives every item of a batch the same
//! seqno, so duplicates are removed before committing).
//!
//! Durability: `sync = always` writes go through the [`GroupCommitter`];
//! `periodic` and `none` commit directly into the OS buffers (fjall's
//! `PersistMode::Buffer`) and return a ready ticket. A failed journal write or
//! fsync poisons the engine: every later write fails with
//! [`StorageError::Poisoned`] until restart (fjall poisons itself too).
//!
//! Recovery: fjall truncates a torn journal tail itself; `open` measures each
//! journal before and after and logs what was dropped.
//!
//! This module may call `version` (codec), `ring` (`token_of`) and fjall.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{OnceLock, RwLock};
use std::time::{Duration, Instant};

use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode};

use self::journal_tail::{journal_bytes, journal_content_lengths, report_torn_tails};

use super::group_commit::{CommitSink, GroupCommitter};
use super::*;
use crate::config::StorageConfig;
use crate::ring::token_of;

mod journal_tail;

/// Called with the duration of every journal fsync.
type FsyncObserver = Arc<dyn Fn(Duration) + Send + Sync>;

/// Production engine on fjall. See the module docs for layout and durability.
///
/// Dropping it (or calling [`FjallStorage::shutdown`]) drains the group
/// committer and fsyncs the journal.
pub struct FjallStorage {
    engine: Arc<Engine>,
    policy: SyncPolicy,
    data_dir: PathBuf,
    committer: Option<GroupCommitter>,
    shut_down: AtomicBool,
}

impl std::fmt::Debug for FjallStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FjallStorage")
            .field("data_dir", &self.data_dir)
            .field("policy", &self.policy)
            .field("committer", &self.committer)
            .finish_non_exhaustive()
    }
}

/// The fjall handles, shared with the committer thread.
struct Engine {
    db: Database,
    records: Keyspace,
    by_key: Keyspace,
    meta: Keyspace,
    hints: Keyspace,
    data_dir: PathBuf,
    /// First journal write / fsync failure; set once, never cleared.
    poison: OnceLock<StorageError>,
    fsync_observer: RwLock<Option<FsyncObserver>>,
}

impl FjallStorage {
    /// Opens (or creates) the store in `config.data_dir`, recovering the journal.
    /// With `sync = always` this starts the group-commit thread.
    pub fn open(config: &StorageConfig) -> Result<Self, StorageError> {
        let path = config.data_dir.display().to_string();
        let open_err = |source: fjall::Error| StorageError::Open { path: path.clone(), source: Arc::new(source) };
        let journals_before = journal_content_lengths(&config.data_dir);
        let db = Database::builder(&config.data_dir)
            .cache_size(config.cache_size_mb.saturating_mul(1024 * 1024))
            .open()
            .map_err(open_err)?;
        report_torn_tails(&journals_before);
        let records = db.keyspace("records", KeyspaceCreateOptions::default).map_err(open_err)?;
        let by_key = db.keyspace("by_key", KeyspaceCreateOptions::default).map_err(open_err)?;
        let meta = db.keyspace("meta", KeyspaceCreateOptions::default).map_err(open_err)?;
        let hints = db.keyspace("hints", KeyspaceCreateOptions::default).map_err(open_err)?;
        let engine = Arc::new(Engine {
            db,
            records,
            by_key,
            meta,
            hints,
            data_dir: config.data_dir.clone(),
            poison: OnceLock::new(),
            fsync_observer: RwLock::new(None),
        });
        let committer = match config.sync {
            SyncPolicy::Always => Some(
                GroupCommitter::start(engine.clone(), config.group_commit_max_batches)
                    .map_err(|e| open_err(fjall::Error::Io(e)))?,
            ),
            _ => None,
        };
        Ok(Self {
            engine,
            policy: config.sync,
            data_dir: config.data_dir.clone(),
            committer,
            shut_down: AtomicBool::new(false),
        })
    }

    /// Installs `observer`, called with the duration of every journal fsync this
    /// storage issues (group commits, [`Storage::sync`], [`Storage::put_meta`],
    /// shutdown), also of failed ones. Meant for a latency histogram; it runs on
    /// the fsyncing thread, so it must be cheap.
    pub fn with_fsync_observer(self, observer: impl Fn(Duration) + Send + Sync + 'static) -> Self {
        *self.engine.fsync_observer.write().unwrap_or_else(std::sync::PoisonError::into_inner) =
            Some(Arc::new(observer));
        self
    }

    /// Stops accepting writes, drains the group committer, and fsyncs the
    /// journal. Idempotent; also run on drop. Later writes fail with
    /// [`StorageError::ShutDown`]; reads keep working.
    pub fn shutdown(&self) {
        if self.shut_down.swap(true, Ordering::SeqCst) {
            return;
        }
        if let Some(committer) = &self.committer {
            committer.shutdown();
        }
        if let Err(err) = self.engine.fsync(PersistMode::SyncAll, "fsync the journal at shutdown") {
            tracing::error!(error = %err, "final fsync at shutdown failed");
        }
    }
}

impl Drop for FjallStorage {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl Storage for FjallStorage {
    fn get(&self, keyspace: &str, key: &[u8]) -> Result<Option<Record>, StorageError> {
        let record_key = record_key(token_of(keyspace, key), keyspace, key)?;
        let value = self.engine.records.get(record_key).map_err(|e| engine_error("read a record", e))?;
        value.map(|v| decode_record(keyspace, &v)).transpose()
    }

    fn write(&self, batch: WriteBatch) -> Result<DurableTicket, StorageError> {
        if self.shut_down.load(Ordering::SeqCst) {
            return Err(StorageError::ShutDown);
        }
        if batch.ops.is_empty() {
            return Ok(DurableTicket::ready());
        }
        match &self.committer {
            Some(committer) => committer.submit(batch),
            None => {
                self.engine.apply(&[&batch])?;
                Ok(DurableTicket::ready())
            }
        }
    }

    fn list_keys(
        &self,
        keyspace: &str,
        prefix: &[u8],
        start_after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Bytes>, StorageError> {
        let namespace = namespace(keyspace)?;
        let mut full_prefix = namespace.clone();
        full_prefix.extend_from_slice(prefix);
        let mut lower = Bound::Included(full_prefix.clone());
        if let Some(after) = start_after {
            let mut after_key = namespace.clone();
            after_key.extend_from_slice(after);
            if after_key >= full_prefix {
                lower = Bound::Excluded(after_key);
            }
        }
        let mut keys = Vec::new();
        if limit == 0 {
            return Ok(keys);
        }
        for guard in self.engine.by_key.range::<Vec<u8>, _>((lower, Bound::Unbounded)) {
            let key = guard.key().map_err(|e| engine_error("list keys", e))?;
            if !key.starts_with(&full_prefix) {
                break;
            }
            keys.push(Bytes::copy_from_slice(&key[namespace.len()..]));
            if keys.len() >= limit {
                break;
            }
        }
        Ok(keys)
    }

    fn scan(
        &self,
        after: Option<&ScanPosition>,
        end: Option<Token>,
        keyspace: Option<&str>,
        limit: usize,
    ) -> Result<Vec<StoredRecord>, StorageError> {
        let mut out = Vec::new();
        if limit == 0 || matches!((after, end), (Some(a), Some(e)) if a.token > e) {
            return Ok(out);
        }
        let lower = match after {
            Some(p) => Bound::Excluded(record_key(p.token, &p.keyspace, &p.key)?),
            None => Bound::Unbounded,
        };
        let upper = match end.and_then(|e| e.checked_add(1)) {
            Some(next) => Bound::Excluded(next.to_be_bytes().to_vec()),
            None => Bound::Unbounded,
        };
        for guard in self.engine.records.range::<Vec<u8>, _>((lower, upper)) {
            let (key, value) = guard.into_inner().map_err(|e| engine_error("scan records", e))?;
            let (token, name, user_key) = split_record_key(&key)?;
            if keyspace.is_some_and(|k| k != name) {
                continue;
            }
            out.push(StoredRecord {
                token,
                keyspace: name.to_owned(),
                key: Bytes::copy_from_slice(user_key),
                record: decode_record(name, &value)?,
            });
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }

    fn scan_hints(
        &self,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Bytes, Bytes)>, StorageError> {
        let mut out = Vec::new();
        if limit == 0 {
            return Ok(out);
        }
        let full_prefix = hint_key(prefix)?;
        let lower = match after {
            Some(a) if a >= prefix => Bound::Excluded(hint_key(a)?),
            _ => Bound::Included(full_prefix.clone()),
        };
        for guard in self.engine.hints.range::<Vec<u8>, _>((lower, Bound::Unbounded)) {
            let (key, value) = guard.into_inner().map_err(|e| engine_error("scan hints", e))?;
            if !key.starts_with(&full_prefix) {
                break;
            }
            out.push((Bytes::copy_from_slice(&key[1..]), Bytes::copy_from_slice(&value)));
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }

    fn get_meta(&self, name: &str) -> Result<Option<Bytes>, StorageError> {
        let value = self.engine.meta.get(meta_key(name)?).map_err(|e| engine_error("read metadata", e))?;
        Ok(value.map(|v| Bytes::copy_from_slice(&v)))
    }

    fn put_meta(&self, name: &str, value: &[u8]) -> Result<(), StorageError> {
        self.engine.check_poison()?;
        self.engine.meta.insert(meta_key(name)?, value).map_err(|e| self.engine.write_failed("write metadata", e))?;
        self.engine.fsync(PersistMode::SyncAll, "fsync the journal after writing metadata")
    }

    fn sync(&self) -> Result<(), StorageError> {
        self.engine.fsync(PersistMode::SyncAll, "fsync the journal")
    }

    fn stats(&self) -> StorageStats {
        let e = &self.engine;
        // Not `db.disk_space()`: it counts each journal at its pre-allocated 64 MiB.
        let tables: u64 = [&e.records, &e.by_key, &e.meta, &e.hints].iter().map(|k| k.disk_space()).sum();
        let journal_bytes = journal_bytes(&e.data_dir);
        StorageStats {
            disk_bytes: tables + journal_bytes,
            journal_bytes,
            approximate_records: e.records.approximate_len() as u64,
        }
    }

    fn sync_policy(&self) -> SyncPolicy {
        self.policy
    }
}

/// Which fjall keyspace a change goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Index {
    Records,
    ByKey,
    Hints,
}

impl Engine {
    fn check_poison(&self) -> Result<(), StorageError> {
        match self.poison.get() {
            Some(err) => Err(err.clone()),
            None => Ok(()),
        }
    }

    /// Maps a failed write; a poisoned fjall poisons this engine too.
    fn write_failed(&self, op: &'static str, source: fjall::Error) -> StorageError {
        let mut err = engine_error(op, source);
        if matches!(err, StorageError::Poisoned { .. }) {
            // fjall poisons itself when a background flush hits ENOSPC, hiding the
            // cause; a small probe write tells the operator what to fix.
            if volume_is_full(&self.data_dir) {
                err = StorageError::DiskFull { op };
            }
            let _ = self.poison.set(err.clone());
        }
        err
    }

    /// fsyncs the journal, reports the latency, and poisons the engine on failure.
    fn fsync(&self, mode: PersistMode, op: &'static str) -> Result<(), StorageError> {
        self.check_poison()?;
        let started = Instant::now();
        let outcome = self.db.persist(mode);
        let elapsed = started.elapsed();
        let observer = self.fsync_observer.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        if let Some(observer) = observer {
            observer(elapsed);
        }
        outcome.map_err(|source| {
            let err = StorageError::Poisoned { op, source: Arc::new(source) };
            tracing::error!(error = %err, "journal fsync failed; refusing writes until restart");
            let _ = self.poison.set(err.clone());
            err
        })
    }
}

impl CommitSink for Engine {
    fn apply(&self, group: &[&WriteBatch]) -> Result<(), StorageError> {
        self.check_poison()?;
        // Last change per (index, key) wins: one fjall batch has one seqno.
        let mut changes: BTreeMap<(Index, Vec<u8>), Option<Vec<u8>>> = BTreeMap::new();
        for op in group.iter().flat_map(|b| &b.ops) {
            let (keyspace, key, value) = match op {
                WriteOp::Put { keyspace, key, record } => (keyspace, key, Some(record.encode())),
                WriteOp::Purge { keyspace, key } => (keyspace, key, None),
                WriteOp::HintPut { key, value } => {
                    changes.insert((Index::Hints, hint_key(key)?), Some(value.to_vec()));
                    continue;
                }
                WriteOp::HintDelete { key } => {
                    changes.insert((Index::Hints, hint_key(key)?), None);
                    continue;
                }
            };
            let by_key = namespaced_key(keyspace, key)?;
            let records = record_key(token_of(keyspace, key), keyspace, key)?;
            changes.insert((Index::ByKey, by_key), value.as_ref().map(|_| Vec::new()));
            changes.insert((Index::Records, records), value);
        }
        let mut batch = self.db.batch();
        for ((index, key), value) in changes {
            let target = match index {
                Index::Records => &self.records,
                Index::ByKey => &self.by_key,
                Index::Hints => &self.hints,
            };
            match value {
                Some(value) => batch.insert(target, key, value),
                None => batch.remove(target, key),
            }
        }
        batch.commit().map_err(|e| self.write_failed("commit a write batch", e))
    }

    fn sync(&self) -> Result<(), StorageError> {
        self.fsync(PersistMode::SyncData, "fsync a group commit")
    }
}

/// True when writing a small file in `dir` fails for lack of space.
fn volume_is_full(dir: &Path) -> bool {
    use std::io::Write;
    let probe = dir.join(".ringkv-space-probe");
    let result = std::fs::File::create(&probe).and_then(|mut f| {
        f.write_all(&[0u8; 64 * 1024])?;
        f.sync_all()
    });
    let _ = std::fs::remove_file(&probe);
    matches!(result, Err(e) if matches!(e.kind(), std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded))
}

/// Maps a fjall error: ENOSPC becomes [`StorageError::DiskFull`], a poisoned
/// database [`StorageError::Poisoned`].
fn engine_error(op: &'static str, source: fjall::Error) -> StorageError {
    let io_kind = match &source {
        fjall::Error::Io(e) => Some(e.kind()),
        fjall::Error::Storage(fjall::LsmError::Io(e)) => Some(e.kind()),
        _ => None,
    };
    match (io_kind, &source) {
        (Some(std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded), _) => StorageError::DiskFull { op },
        (_, fjall::Error::Poisoned) => StorageError::Poisoned { op, source: Arc::new(source) },
        _ => StorageError::Engine { op, source: Arc::new(source) },
    }
}

fn decode_record(keyspace: &str, value: &[u8]) -> Result<Record, StorageError> {
    Record::decode(&Bytes::copy_from_slice(value))
        .map_err(|source| StorageError::Corrupt { keyspace: keyspace.to_owned(), source })
}

/// `name len (u8) | name`: the prefix of a keyspace's keys in `by_key`.
fn namespace(keyspace: &str) -> Result<Vec<u8>, StorageError> {
    let len = u8::try_from(keyspace.len()).map_err(|_| StorageError::KeyspaceNameTooLong { len: keyspace.len() })?;
    let mut out = Vec::with_capacity(1 + keyspace.len());
    out.push(len);
    out.extend_from_slice(keyspace.as_bytes());
    Ok(out)
}

/// Refuses keys fjall could not store (it panics on keys over 65535 bytes).
fn check_key_len(key: &[u8]) -> Result<(), StorageError> {
    if key.len() > MAX_KEY_BYTES {
        return Err(StorageError::KeyTooLarge { len: key.len(), max: MAX_KEY_BYTES });
    }
    Ok(())
}

/// `0x01 | name`: a `meta` key.
fn meta_key(name: &str) -> Result<Vec<u8>, StorageError> {
    check_key_len(name.as_bytes())?;
    let mut out = Vec::with_capacity(1 + name.len());
    out.push(1);
    out.extend_from_slice(name.as_bytes());
    Ok(out)
}

/// `0x01 | key`: a `hints` key (the tag keeps keys non-empty, which fjall requires).
fn hint_key(key: &[u8]) -> Result<Vec<u8>, StorageError> {
    check_key_len(key)?;
    let mut out = Vec::with_capacity(1 + key.len());
    out.push(1);
    out.extend_from_slice(key);
    Ok(out)
}

/// `name len | name | key`: a `by_key` key.
fn namespaced_key(keyspace: &str, key: &[u8]) -> Result<Vec<u8>, StorageError> {
    check_key_len(key)?;
    let mut out = namespace(keyspace)?;
    out.extend_from_slice(key);
    Ok(out)
}

/// `token BE | name len | name | key`: a `records` key.
fn record_key(token: Token, keyspace: &str, key: &[u8]) -> Result<Vec<u8>, StorageError> {
    let mut out = Vec::with_capacity(9 + keyspace.len() + key.len());
    out.extend_from_slice(&token.to_be_bytes());
    out.extend_from_slice(&namespaced_key(keyspace, key)?);
    Ok(out)
}

/// Inverse of [`record_key`].
fn split_record_key(raw: &[u8]) -> Result<(Token, &str, &[u8]), StorageError> {
    let malformed = || StorageError::MalformedKey { index: "records", len: raw.len() };
    let (token, rest) = raw.split_first_chunk::<8>().ok_or_else(malformed)?;
    let (&len, rest) = rest.split_first().ok_or_else(malformed)?;
    let (name, key) = rest.split_at_checked(usize::from(len)).ok_or_else(malformed)?;
    let name = std::str::from_utf8(name).map_err(|_| malformed())?;
    Ok((Token::from_be_bytes(*token), name, key))
}
