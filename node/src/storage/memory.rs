//! [`MemoryStorage`]: the in-memory engine used by simulation tests.
//!
//! Same orders and semantics as [`FjallStorage`](super::FjallStorage):
//! records are ordered exactly like fjall's `records` keys
//! (`token, name length, name, key`), keyspace names over 255 bytes are
//! refused, as are keys over [`MAX_KEY_BYTES`], and a batch is applied atomically under one lock. Nothing is
//! durable, so every ticket is ready; [`Storage::sync_policy`] reports the
//! policy it was built with, so tests can exercise policy-dependent callers.
//!
//! This module may call `version` and `ring` only.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::*;
use crate::ring::token_of;

/// `(token, name length, name, key)`: the same order as fjall's record keys.
type RecordKey = (Token, u8, String, Bytes);

/// In-memory engine for simulation tests.
#[derive(Debug)]
pub struct MemoryStorage {
    state: Mutex<State>,
    policy: SyncPolicy,
}

#[derive(Debug, Default)]
struct State {
    records: BTreeMap<RecordKey, Record>,
    /// keyspace → keys, for LIST.
    by_key: BTreeMap<String, BTreeSet<Bytes>>,
    meta: BTreeMap<String, Bytes>,
    hints: BTreeMap<Bytes, Bytes>,
    /// Approximate bytes held by records (name + key + encoded record).
    bytes: u64,
}

impl Default for MemoryStorage {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStorage {
    /// An empty store reporting the default policy ([`SyncPolicy::Periodic`]).
    pub fn new() -> Self {
        Self::with_sync_policy(SyncPolicy::default())
    }

    /// An empty store reporting `policy` from [`Storage::sync_policy`].
    pub fn with_sync_policy(policy: SyncPolicy) -> Self {
        Self { state: Mutex::new(State::default()), policy }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn check_key_len(key: &[u8]) -> Result<(), StorageError> {
    if key.len() > MAX_KEY_BYTES {
        return Err(StorageError::KeyTooLarge { len: key.len(), max: MAX_KEY_BYTES });
    }
    Ok(())
}

fn record_key(token: Token, keyspace: &str, key: &[u8]) -> Result<RecordKey, StorageError> {
    check_key_len(key)?;
    let len = u8::try_from(keyspace.len()).map_err(|_| StorageError::KeyspaceNameTooLong { len: keyspace.len() })?;
    Ok((token, len, keyspace.to_owned(), Bytes::copy_from_slice(key)))
}

fn record_size(keyspace: &str, key: &[u8], record: &Record) -> u64 {
    (keyspace.len() + key.len() + record.encode().len()) as u64
}

impl Storage for MemoryStorage {
    fn get(&self, keyspace: &str, key: &[u8]) -> Result<Option<Record>, StorageError> {
        let k = record_key(token_of(keyspace, key), keyspace, key)?;
        Ok(self.state().records.get(&k).cloned())
    }

    fn write(&self, batch: WriteBatch) -> Result<DurableTicket, StorageError> {
        // Validate everything first so that a batch is all-or-nothing.
        let mut changes = Vec::with_capacity(batch.ops.len());
        let mut hints = Vec::new();
        for op in batch.ops {
            let (keyspace, key, record) = match op {
                WriteOp::Put { keyspace, key, record } => (keyspace, key, Some(record)),
                WriteOp::Purge { keyspace, key } => (keyspace, key, None),
                WriteOp::HintPut { key, value } => {
                    check_key_len(&key)?;
                    hints.push((key, Some(value)));
                    continue;
                }
                WriteOp::HintDelete { key } => {
                    check_key_len(&key)?;
                    hints.push((key, None));
                    continue;
                }
            };
            let k = record_key(token_of(&keyspace, &key), &keyspace, &key)?;
            changes.push((k, record));
        }
        let mut state = self.state();
        for (key, value) in hints {
            match value {
                Some(v) => state.hints.insert(key, v),
                None => state.hints.remove(&key),
            };
        }
        for (k, record) in changes {
            let (_, _, keyspace, key) = &k;
            let removed = match &record {
                Some(r) => {
                    state.bytes += record_size(keyspace, key, r);
                    state.by_key.entry(keyspace.clone()).or_default().insert(key.clone());
                    state.records.insert(k.clone(), r.clone())
                }
                None => {
                    if let Some(keys) = state.by_key.get_mut(keyspace) {
                        keys.remove(key);
                    }
                    state.records.remove(&k)
                }
            };
            if let Some(old) = removed {
                state.bytes = state.bytes.saturating_sub(record_size(keyspace, key, &old));
            }
        }
        Ok(DurableTicket::ready())
    }

    fn list_keys(
        &self,
        keyspace: &str,
        prefix: &[u8],
        start_after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Bytes>, StorageError> {
        let state = self.state();
        let Some(keys) = state.by_key.get(keyspace) else {
            return Ok(Vec::new());
        };
        let lower = match start_after {
            Some(after) if after >= prefix => Bound::Excluded(Bytes::copy_from_slice(after)),
            _ => Bound::Included(Bytes::copy_from_slice(prefix)),
        };
        Ok(keys.range((lower, Bound::Unbounded)).take_while(|k| k.starts_with(prefix)).take(limit).cloned().collect())
    }

    fn scan(
        &self,
        after: Option<&ScanPosition>,
        end: Option<Token>,
        keyspace: Option<&str>,
        limit: usize,
    ) -> Result<Vec<StoredRecord>, StorageError> {
        let lower = match after {
            Some(p) => Bound::Excluded(record_key(p.token, &p.keyspace, &p.key)?),
            None => Bound::Unbounded,
        };
        let state = self.state();
        Ok(state
            .records
            .range((lower, Bound::Unbounded))
            .take_while(|((token, ..), _)| end.is_none_or(|e| *token <= e))
            .filter(|((_, _, name, _), _)| keyspace.is_none_or(|k| k == name))
            .take(limit)
            .map(|((token, _, name, key), record)| StoredRecord {
                token: *token,
                keyspace: name.clone(),
                key: key.clone(),
                record: record.clone(),
            })
            .collect())
    }

    fn scan_hints(
        &self,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Bytes, Bytes)>, StorageError> {
        let state = self.state();
        check_key_len(prefix)?;
        let lower = match after {
            Some(a) if a >= prefix => Bound::Excluded(Bytes::copy_from_slice(a)),
            _ => Bound::Included(Bytes::copy_from_slice(prefix)),
        };
        Ok(state
            .hints
            .range((lower, Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(prefix))
            .take(limit)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    fn get_meta(&self, name: &str) -> Result<Option<Bytes>, StorageError> {
        check_key_len(name.as_bytes())?;
        Ok(self.state().meta.get(name).cloned())
    }

    fn put_meta(&self, name: &str, value: &[u8]) -> Result<(), StorageError> {
        check_key_len(name.as_bytes())?;
        self.state().meta.insert(name.to_owned(), Bytes::copy_from_slice(value));
        Ok(())
    }

    fn sync(&self) -> Result<(), StorageError> {
        Ok(())
    }

    fn stats(&self) -> StorageStats {
        let state = self.state();
        StorageStats { disk_bytes: state.bytes, journal_bytes: 0, approximate_records: state.records.len() as u64 }
    }

    fn sync_policy(&self) -> SyncPolicy {
        self.policy
    }
}
