//! [`WriteLog`]: every write a simulated node coordinated, with the causal
//! context it carried, recorded by [`LoggedStorage`], a storage decorator.
//!
//! A checker needs this ground truth because the client's view is not
//! enough: a write whose client got an error may still have been applied
//! (and may supersede an acknowledged one), and a sibling may only vanish
//! under a later write whose context covers its dot. A coordinated write is
//! the one record write that raises this node's own entry in the record's
//! clock (it minted a dot); merges never do, since a node's storage already
//! holds every dot it minted.

use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use ringkv_node::storage::{DurableTicket, Storage, StorageError, WriteBatch, WriteInterceptor, WriteOp};
use ringkv_node::version::{Dot, NodeId, Record, VersionVector};

/// One write as its coordinator applied it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Minted {
    /// Keyspace.
    pub keyspace: String,
    /// Key.
    pub key: Bytes,
    /// The dot the write got.
    pub dot: Dot,
    /// The value written (`None`: a delete).
    pub value: Option<Bytes>,
    /// The record's clock right after the write: the write's context plus its
    /// own dot, exactly the context the client was answered with.
    pub clock: VersionVector,
}

impl Minted {
    /// True when this write's coordinator had seen `dot` (another write) before writing.
    pub fn covers(&self, dot: Dot) -> bool {
        dot != self.dot && self.clock.contains(dot)
    }
}

/// The writes of a whole cluster, in the order they were applied.
#[derive(Debug, Default)]
pub struct WriteLog {
    minted: Mutex<Vec<Minted>>,
}

impl WriteLog {
    /// Every write of `key` in `keyspace`.
    pub fn of_key(&self, keyspace: &str, key: &[u8]) -> Vec<Minted> {
        let minted = self.minted.lock().unwrap_or_else(PoisonError::into_inner);
        minted.iter().filter(|m| m.keyspace == keyspace && m.key == key).cloned().collect()
    }

    /// Every write, in the order applied.
    pub fn all(&self) -> Vec<Minted> {
        self.minted.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Number of writes recorded.
    pub fn len(&self) -> usize {
        self.minted.lock().unwrap_or_else(PoisonError::into_inner).len()
    }

    fn push(&self, m: Minted) {
        self.minted.lock().unwrap_or_else(PoisonError::into_inner).push(m);
    }
}

/// A [`Storage`] that records the writes node `node` coordinates into `log`.
#[derive(Debug)]
pub struct LoggedStorage {
    inner: Arc<dyn Storage>,
    node: NodeId,
    log: Arc<WriteLog>,
}

impl LoggedStorage {
    /// Wraps `inner` of node `node`.
    pub fn new(inner: Arc<dyn Storage>, node: NodeId, log: Arc<WriteLog>) -> Self {
        Self { inner, node, log }
    }

    /// The write `record` replacing the stored copy mints, if it does. Callers
    /// hold the key's lock (coordinated writes and merges both do).
    fn minted(&self, keyspace: &str, key: &Bytes, record: &Record) -> Result<Option<Minted>, StorageError> {
        let before = self.inner.get(keyspace, key)?.map_or(0, |r| r.clock.get(self.node));
        let counter = record.clock.get(self.node);
        if counter <= before {
            return Ok(None);
        }
        let dot = Dot { node: self.node, counter };
        // A coordinated write keeps its own sibling (siblings mode). Without it, this is a merge
        // handing back a dot the node had lost, which only a broken repair does: the checker
        // reports that, not this decorator (a panic here could end in a handler task, unseen).
        let Some(sibling) = record.siblings.iter().find(|s| s.dot == dot) else { return Ok(None) };
        let (keyspace, key, value, clock) =
            (keyspace.to_owned(), key.clone(), sibling.value.clone(), record.clock.clone());
        Ok(Some(Minted { keyspace, key, dot, value, clock }))
    }
}

impl WriteInterceptor for LoggedStorage {
    fn inner(&self) -> &dyn Storage {
        self.inner.as_ref()
    }

    fn intercept_write(&self, batch: WriteBatch) -> Result<DurableTicket, StorageError> {
        let mut minted = Vec::new();
        for op in &batch.ops {
            if let WriteOp::Put { keyspace, key, record } = op {
                minted.extend(self.minted(keyspace, key, record)?);
            }
        }
        let ticket = self.inner.write(batch)?;
        minted.into_iter().for_each(|m| self.log.push(m));
        Ok(ticket)
    }
}
