//! [`PowerLossDisk`]: the in-memory engine with `sync = periodic` semantics
//! and power loss: every record write since the last sync is undone by
//! [`PowerLossDisk::power_loss`], as a machine that loses power loses what
//! the OS had not written back. A sync, and every metadata write (fsynced,
//! like `FjallStorage::put_meta`, which syncs the shared journal), makes all
//! earlier writes durable. Hints are kept across a power loss (more durable
//! than the real engine, which only makes the check below harder to pass).
//!
//! Each incarnation of a node writes through its own [`Incarnation`]
//! handle; a power loss kills the handle, so nothing a dead process had in
//! flight reaches the disk afterwards.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use ringkv_node::ring::Token;
use ringkv_node::storage::{
    DurableTicket, MemoryStorage, ScanPosition, Storage, StorageError, StorageStats, StoredRecord, SyncPolicy,
    WriteBatch, WriteOp,
};
use ringkv_node::version::Record;

/// A record as it was before an unsynced write.
type Undo = (String, Bytes, Option<Record>);

/// A node's disk.
#[derive(Debug, Default)]
pub struct PowerLossDisk {
    inner: MemoryStorage,
    /// Record writes not yet durable, oldest first.
    undo: Mutex<Vec<Undo>>,
    /// Record writes lost to power losses so far.
    pub lost: AtomicU64,
}

impl PowerLossDisk {
    /// An empty disk.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Makes every write so far durable.
    pub fn sync_now(&self) {
        self.undo.lock().unwrap_or_else(PoisonError::into_inner).clear();
    }

    /// Loses every write since the last sync; returns how many.
    pub fn power_loss(&self) -> u64 {
        let undo = std::mem::take(&mut *self.undo.lock().unwrap_or_else(PoisonError::into_inner));
        let n = undo.len() as u64;
        for (keyspace, key, prev) in undo.into_iter().rev() {
            let op = match prev {
                Some(record) => WriteOp::Put { keyspace, key, record },
                None => WriteOp::Purge { keyspace, key },
            };
            self.inner.write(WriteBatch { ops: vec![op] }).expect("memory write");
        }
        self.lost.fetch_add(n, Ordering::Relaxed);
        n
    }

    /// The disk as one incarnation of its node sees it.
    pub fn incarnation(self: &Arc<Self>) -> Arc<Incarnation> {
        Arc::new(Incarnation { disk: Arc::clone(self), alive: AtomicBool::new(true) })
    }
}

/// One incarnation's handle on a [`PowerLossDisk`]: refuses writes once the process is dead.
#[derive(Debug)]
pub struct Incarnation {
    disk: Arc<PowerLossDisk>,
    alive: AtomicBool,
}

impl Incarnation {
    /// The process died: nothing it still has in flight is written.
    pub fn kill(&self) {
        self.alive.store(false, Ordering::SeqCst);
    }

    fn check(&self) -> Result<(), StorageError> {
        if self.alive.load(Ordering::SeqCst) { Ok(()) } else { Err(StorageError::ShutDown) }
    }
}

impl Storage for Incarnation {
    fn get(&self, keyspace: &str, key: &[u8]) -> Result<Option<Record>, StorageError> {
        self.disk.inner.get(keyspace, key)
    }

    fn write(&self, batch: WriteBatch) -> Result<DurableTicket, StorageError> {
        self.check()?;
        let mut undo = Vec::new();
        for op in &batch.ops {
            if let WriteOp::Put { keyspace, key, .. } | WriteOp::Purge { keyspace, key } = op {
                undo.push((keyspace.clone(), key.clone(), self.disk.inner.get(keyspace, key)?));
            }
        }
        let ticket = self.disk.inner.write(batch)?;
        self.disk.undo.lock().unwrap_or_else(PoisonError::into_inner).extend(undo);
        Ok(ticket)
    }

    fn list_keys(
        &self,
        keyspace: &str,
        prefix: &[u8],
        start_after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Bytes>, StorageError> {
        self.disk.inner.list_keys(keyspace, prefix, start_after, limit)
    }

    fn scan(
        &self,
        after: Option<&ScanPosition>,
        end: Option<Token>,
        keyspace: Option<&str>,
        limit: usize,
    ) -> Result<Vec<StoredRecord>, StorageError> {
        self.disk.inner.scan(after, end, keyspace, limit)
    }

    fn scan_hints(
        &self,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Bytes, Bytes)>, StorageError> {
        self.disk.inner.scan_hints(prefix, after, limit)
    }

    fn get_meta(&self, name: &str) -> Result<Option<Bytes>, StorageError> {
        self.disk.inner.get_meta(name)
    }

    fn put_meta(&self, name: &str, value: &[u8]) -> Result<(), StorageError> {
        self.check()?;
        self.disk.inner.put_meta(name, value)?;
        self.disk.sync_now();
        Ok(())
    }

    fn sync(&self) -> Result<(), StorageError> {
        self.check()?;
        self.disk.sync_now();
        Ok(())
    }

    fn stats(&self) -> StorageStats {
        self.disk.inner.stats()
    }

    fn sync_policy(&self) -> SyncPolicy {
        SyncPolicy::Periodic
    }
}
