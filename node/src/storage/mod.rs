//! Storage: the per-node durable record store behind the [`Storage`] trait.
//!
//! Engines: [`FjallStorage`] (production; fjall LSM with journal, memtables,
//! SSTables, bloom filters, compaction) and [`MemoryStorage`] (for simulation
//! tests). Both pass the same conformance suite (`tests/storage_conformance.rs`).
//!
//! Layout (both engines keep the same orders):
//! - records ordered by `(token, keyspace, key)`, so that streaming, Merkle
//!   building and cleanup of a token range are range scans;
//! - an index ordered by `(keyspace, key)` for prefix LIST;
//! - a small metadata map (host id, keyspace definitions, ...);
//! - a hints partition (hinted handoff), written through the same batches.
//!
//! Durability: [`Storage::write`] applies a batch atomically and returns once it
//! is visible to reads, with a [`DurableTicket`] that resolves when the batch is
//! durable under the configured [`SyncPolicy`]. With `sync = always`,
//! concurrent writers share one fsync (group commit); nobody may acknowledge a
//! write before its ticket resolved.
//!
//! Every method is blocking: callers on an async runtime use `spawn_blocking`.
//! This module may call `version` (record codec) and `ring` (tokens) only.

mod fjall_engine;
mod group_commit;
mod memory;
#[cfg(test)]
mod tests;
mod ticket;

pub use fjall_engine::FjallStorage;
pub use memory::MemoryStorage;
pub use ticket::DurableTicket;

use std::sync::Arc;

use bytes::Bytes;

use crate::ring::Token;
use crate::version::{CodecError, Record};

/// Longest user key (and metadata name) any engine stores, in bytes: fjall
/// keys are at most 65535 bytes, and a record key adds a 9-byte header and a
/// keyspace name of up to 255 bytes. `[server] max_key_bytes` must not exceed it.
pub const MAX_KEY_BYTES: usize = 65_535 - 9 - 255;

/// When writes are fsynced (`[storage] sync`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum SyncPolicy {
    /// fsync before every acknowledgement; concurrent writers share one fsync.
    Always,
    /// Acknowledge once written to the OS; fsync every `sync_interval_ms`.
    #[default]
    Periodic,
    /// Never fsync explicitly; the OS writes back when it likes.
    None,
}

impl std::fmt::Display for SyncPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SyncPolicy::Always => "always",
            SyncPolicy::Periodic => "periodic",
            SyncPolicy::None => "none",
        })
    }
}

/// One change in a [`WriteBatch`].
#[derive(Debug, Clone)]
pub enum WriteOp {
    /// Store `record` as the whole state of `(keyspace, key)`.
    Put {
        /// Keyspace name.
        keyspace: String,
        /// User key.
        key: Bytes,
        /// The full record (already merged by the caller).
        record: Record,
    },
    /// Remove `(keyspace, key)` physically (purge after gc_grace or expiry).
    Purge {
        /// Keyspace name.
        keyspace: String,
        /// User key.
        key: Bytes,
    },
    /// Store a hint (hints partition; key and value are the hint store's).
    HintPut {
        /// Hint key.
        key: Bytes,
        /// Encoded hint.
        value: Bytes,
    },
    /// Delete a hint.
    HintDelete {
        /// Hint key.
        key: Bytes,
    },
}

/// Changes applied atomically by [`Storage::write`].
#[derive(Debug, Clone, Default)]
pub struct WriteBatch {
    /// The changes, applied in order.
    pub ops: Vec<WriteOp>,
}

impl WriteBatch {
    /// A batch of one put.
    pub fn put(keyspace: &str, key: Bytes, record: Record) -> Self {
        Self { ops: vec![WriteOp::Put { keyspace: keyspace.to_owned(), key, record }] }
    }
}

/// A stored record with its address, as returned by scans.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRecord {
    /// Token of `(keyspace, key)`.
    pub token: Token,
    /// Keyspace name.
    pub keyspace: String,
    /// User key.
    pub key: Bytes,
    /// The record.
    pub record: Record,
}

/// A position in token order; scans start strictly after it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ScanPosition {
    /// Token of the last record returned.
    pub token: Token,
    /// Its keyspace.
    pub keyspace: String,
    /// Its key.
    pub key: Bytes,
}

/// Sizes an engine reports for metrics and status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StorageStats {
    /// Bytes of data on disk (SSTables + what the journals hold, not their
    /// pre-allocated length); for the memory engine, bytes held.
    pub disk_bytes: u64,
    /// Bytes the journals hold (data not yet only in SSTables).
    pub journal_bytes: u64,
    /// Approximate number of records.
    pub approximate_records: u64,
}

/// Why a storage operation failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// The LSM engine failed.
    #[error("storage engine failed to {op}: {source}")]
    Engine {
        /// What was attempted.
        op: &'static str,
        /// The engine's error.
        source: Arc<fjall::Error>,
    },
    /// The disk is full: writes are refused until space is freed.
    #[error(
        "disk full while trying to {op}: free space on the data directory's volume, then restart the node (it recovers every acknowledged write from its journal)"
    )]
    DiskFull {
        /// What was attempted.
        op: &'static str,
    },
    /// A stored record could not be decoded (disk corruption or a newer format).
    #[error("stored record of keyspace {keyspace:?} is unreadable: {source}; run a repair to restore it from replicas")]
    Corrupt {
        /// Keyspace of the record.
        keyspace: String,
        /// The codec's error.
        source: CodecError,
    },
    /// The group-commit thread is gone (the storage is shutting down).
    #[error("storage is shut down; retry on another node or after restart")]
    ShutDown,
    /// A journal write or fsync failed earlier. After a failed fsync the state of
    /// the OS page cache is unknown ("fsyncgate"), so retrying the fsync could
    /// report success for data that never reached the disk: the engine refuses
    /// every further write until the node is restarted and recovers from its journal.
    #[error(
        "storage refuses writes after a failed journal write or fsync ({op}): {source}; restart the node so that it recovers from its journal"
    )]
    Poisoned {
        /// What failed first.
        op: &'static str,
        /// The engine's error.
        source: Arc<fjall::Error>,
    },
    /// A keyspace name does not fit the on-disk layout (at most 255 bytes).
    #[error("keyspace name of {len} bytes is too long: at most 255 bytes are allowed")]
    KeyspaceNameTooLong {
        /// Length of the name, in bytes.
        len: usize,
    },
    /// A user key or metadata name is longer than [`MAX_KEY_BYTES`].
    #[error("key of {len} bytes is too long for storage: at most {max} bytes are allowed")]
    KeyTooLarge {
        /// Length of the key, in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A stored index key does not have the layout this version writes (disk corruption).
    #[error("malformed key of {len} bytes in storage index {index}; run a repair to restore the data from replicas")]
    MalformedKey {
        /// The index (`records` or `by_key`).
        index: &'static str,
        /// Length of the key, in bytes.
        len: usize,
    },
    /// Opening the data directory failed.
    #[error("cannot open data directory {path}: {source}")]
    Open {
        /// The directory.
        path: String,
        /// The engine's error.
        source: Arc<fjall::Error>,
    },
}

/// A durable, ordered store of records. See the module docs for layout and durability.
pub trait Storage: Send + Sync + std::fmt::Debug + 'static {
    /// Reads the record of `(keyspace, key)`.
    fn get(&self, keyspace: &str, key: &[u8]) -> Result<Option<Record>, StorageError>;

    /// Applies `batch` atomically. When this returns the batch is visible to
    /// reads; the ticket resolves when it is durable under the sync policy.
    fn write(&self, batch: WriteBatch) -> Result<DurableTicket, StorageError>;

    /// Keys of `keyspace` that start with `prefix`, strictly after
    /// `start_after` when given, in key order, at most `limit`.
    fn list_keys(
        &self,
        keyspace: &str,
        prefix: &[u8],
        start_after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Bytes>, StorageError>;

    /// Records in `(token, keyspace, key)` order, strictly after `after` (from
    /// the start when `None`), with token `<= end` when given, only of
    /// `keyspace` when given, at most `limit`.
    fn scan(
        &self,
        after: Option<&ScanPosition>,
        end: Option<Token>,
        keyspace: Option<&str>,
        limit: usize,
    ) -> Result<Vec<StoredRecord>, StorageError>;

    /// Hints whose key starts with `prefix`, strictly after `after`, in key order, at most `limit`.
    fn scan_hints(
        &self,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Bytes, Bytes)>, StorageError>;

    /// Reads a metadata value (host id, keyspace definitions, ...).
    fn get_meta(&self, name: &str) -> Result<Option<Bytes>, StorageError>;

    /// Writes a metadata value durably (fsynced before returning, whatever the policy).
    fn put_meta(&self, name: &str, value: &[u8]) -> Result<(), StorageError>;

    /// Makes everything written so far durable (fsync), whatever the policy.
    fn sync(&self) -> Result<(), StorageError>;

    /// Sizes for metrics.
    fn stats(&self) -> StorageStats;

    /// The durability policy of this engine.
    fn sync_policy(&self) -> SyncPolicy;
}

/// A storage wrapping another that only needs to see writes (anti-entropy's
/// tree keeping, a test's write log): every other call is forwarded to
/// [`inner`](Self::inner) by the blanket [`Storage`] impl.
pub trait WriteInterceptor: Send + Sync + std::fmt::Debug + 'static {
    /// The wrapped storage.
    fn inner(&self) -> &dyn Storage;

    /// Writes `batch` through [`inner`](Self::inner), with whatever the
    /// wrapper does around it.
    fn intercept_write(&self, batch: WriteBatch) -> Result<DurableTicket, StorageError>;
}

impl<T: WriteInterceptor> Storage for T {
    fn get(&self, keyspace: &str, key: &[u8]) -> Result<Option<Record>, StorageError> {
        self.inner().get(keyspace, key)
    }

    fn write(&self, batch: WriteBatch) -> Result<DurableTicket, StorageError> {
        self.intercept_write(batch)
    }

    fn list_keys(
        &self,
        keyspace: &str,
        prefix: &[u8],
        start_after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Bytes>, StorageError> {
        self.inner().list_keys(keyspace, prefix, start_after, limit)
    }

    fn scan(
        &self,
        after: Option<&ScanPosition>,
        end: Option<Token>,
        keyspace: Option<&str>,
        limit: usize,
    ) -> Result<Vec<StoredRecord>, StorageError> {
        self.inner().scan(after, end, keyspace, limit)
    }

    fn scan_hints(
        &self,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Bytes, Bytes)>, StorageError> {
        self.inner().scan_hints(prefix, after, limit)
    }

    fn get_meta(&self, name: &str) -> Result<Option<Bytes>, StorageError> {
        self.inner().get_meta(name)
    }

    fn put_meta(&self, name: &str, value: &[u8]) -> Result<(), StorageError> {
        self.inner().put_meta(name, value)
    }

    fn sync(&self) -> Result<(), StorageError> {
        self.inner().sync()
    }

    fn stats(&self) -> StorageStats {
        self.inner().stats()
    }

    fn sync_policy(&self) -> SyncPolicy {
        self.inner().sync_policy()
    }
}
