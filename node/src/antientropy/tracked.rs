//! [`TrackedStorage`]: a [`Storage`] that keeps the Merkle trees up to date.
//!
//! Every record write of the node (coordinated writes, replica merges, read
//! repair, hints applied, purge, anti-entropy itself) ends in
//! [`Storage::write`], so this decorator is the single place where a stored
//! record changes. For each `Put`/`Purge` of a keyspace that has trees, it
//! reads the old record, writes, and applies `new - old` to the trees: O(1)
//! per record plus one point read. Keyspaces without trees cost one map lookup.
//!
//! Writes of the same key are serialised by striped locks held here, so the
//! old record read is the one the write replaces even for callers that hold
//! no key lock (the test hooks).

use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;

use crate::ring::{Token, token_of};
use crate::storage::{DurableTicket, Storage, StorageError, WriteBatch, WriteInterceptor, WriteOp};
use crate::version::Record;

use super::trees::{Contribution, Delta, TreeStore};

const STRIPES: usize = 256;

/// A [`Storage`] decorator feeding [`TreeStore`]; see the module docs.
#[derive(Debug)]
pub struct TrackedStorage {
    inner: Arc<dyn Storage>,
    trees: Arc<TreeStore>,
    stripes: Vec<Mutex<()>>,
}

impl TrackedStorage {
    /// Wraps `inner`; writes update `trees`.
    pub fn new(inner: Arc<dyn Storage>, trees: Arc<TreeStore>) -> Self {
        Self { inner, trees, stripes: (0..STRIPES).map(|_| Mutex::new(())).collect() }
    }

    /// The trees this storage feeds.
    pub fn trees(&self) -> &Arc<TreeStore> {
        &self.trees
    }
}

fn record_op(op: &WriteOp) -> Option<(&str, &Bytes, Option<&Record>)> {
    match op {
        WriteOp::Put { keyspace, key, record } => Some((keyspace, key, Some(record))),
        WriteOp::Purge { keyspace, key } => Some((keyspace, key, None)),
        _ => None,
    }
}

impl WriteInterceptor for TrackedStorage {
    fn inner(&self) -> &dyn Storage {
        self.inner.as_ref()
    }

    fn intercept_write(&self, batch: WriteBatch) -> Result<DurableTicket, StorageError> {
        if !batch.ops.iter().any(|op| record_op(op).is_some()) {
            return self.inner.write(batch);
        }
        let tokens: Vec<(Token, usize)> = batch
            .ops
            .iter()
            .filter_map(record_op)
            .map(|(ks, key, _)| {
                let token = token_of(ks, key);
                (token, (token % STRIPES as u64) as usize)
            })
            .collect();
        let mut stripes: Vec<usize> = tokens.iter().map(|(_, s)| *s).collect();
        stripes.sort_unstable();
        stripes.dedup();
        let _stripes: Vec<_> =
            stripes.iter().map(|&s| self.stripes[s].lock().unwrap_or_else(PoisonError::into_inner)).collect();
        let _gate = self.trees.write_gate();
        let mut deltas = Vec::new();
        for (op, (token, _)) in batch.ops.iter().filter_map(record_op).zip(&tokens) {
            let (keyspace, key, new) = op;
            if !self.trees.tracks(keyspace) {
                deltas.push(None);
                continue;
            }
            let old = match self.inner.get(keyspace, key) {
                Ok(old) => old,
                // An unreadable old record cannot be subtracted; the next rebuild corrects the tree.
                Err(StorageError::Corrupt { .. }) => None,
                Err(e) => return Err(e),
            };
            deltas.push(Some(Delta {
                keyspace: keyspace.to_owned(),
                token: *token,
                old: old.as_ref().map(|r| Contribution::of(keyspace, key, r)),
                new: new.map(|r| Contribution::of(keyspace, key, r)),
            }));
        }
        // A batch may touch one key twice: apply its deltas in order on the running state.
        let deltas = chain_repeated_keys(&batch, deltas);
        let ticket = self.inner.write(batch)?;
        self.trees.apply(&deltas);
        Ok(ticket)
    }
}

/// When one batch writes the same key twice, the second op's "old" is the
/// first op's "new", not what storage held before the batch.
fn chain_repeated_keys(batch: &WriteBatch, mut deltas: Vec<Option<Delta>>) -> Vec<Delta> {
    let keys: Vec<(&str, &Bytes)> = batch.ops.iter().filter_map(record_op).map(|(ks, k, _)| (ks, k)).collect();
    let mut last: std::collections::HashMap<(&str, &Bytes), usize> = std::collections::HashMap::new();
    for (i, key) in keys.iter().enumerate() {
        if let Some(&prev) = last.get(key) {
            let prev_new = deltas[prev].as_ref().and_then(|d| d.new);
            if let Some(d) = deltas[i].as_mut() {
                d.old = prev_new;
            }
        }
        last.insert(*key, i);
    }
    deltas.into_iter().flatten().collect()
}
