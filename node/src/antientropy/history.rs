//! [`SyncHistory`]: "last full sync" per (keyspace, range), persisted in the
//! storage's metadata, and the [`RepairHistory`] the tombstone purge asks.
//!
//! A full sync of a range is a repair that reached every replica of the
//! range; its time is when that range's repair started. Every write that any
//! replica held at that moment is on all of them afterwards. Hints can still
//! bring an older write later, for up to the hint window, so the purge is
//! told that writes older than `last full sync - hint window` are on every
//! replica.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use crate::membership::ClusterView;
use crate::replication::{Coordinator, RepairHistory};
use crate::ring::{Ring, Token, TokenRange};
use crate::storage::{Storage, StorageError};

use super::plan::{find_range, replica_sets};

type RangeSets = Vec<(TokenRange, Vec<String>)>;

/// Range lookup tables for one ring, per keyspace.
#[derive(Debug, Default)]
struct RangeIndex {
    ring: Option<Arc<Ring>>,
    by_keyspace: HashMap<String, Arc<RangeSets>>,
}

/// Persisted "last full sync" per (keyspace, range); see the module docs.
///
/// Kept as one metadata value per keyspace (`antientropy.last_full_sync.<keyspace>`:
/// 24 bytes per range: start, end, Unix ms, big-endian), loaded on first use
/// and written by [`flush`](Self::flush), so a repair of hundreds of ranges
/// costs a few fsyncs, not one per range. A crash before a flush only forgets
/// syncs, which delays purges and never allows a wrong one.
#[derive(Debug)]
pub struct SyncHistory {
    storage: Arc<dyn Storage>,
    view: Arc<ClusterView>,
    coordinator: Coordinator,
    hint_window_ms: i64,
    synced: Mutex<HashMap<String, HashMap<TokenRange, i64>>>,
    index: Mutex<RangeIndex>,
}

fn meta_name(keyspace: &str) -> String {
    format!("antientropy.last_full_sync.{keyspace}")
}

fn decode(bytes: &[u8]) -> HashMap<TokenRange, i64> {
    bytes
        .chunks_exact(24)
        .map(|c| {
            let word = |i: usize| {
                let mut b = [0u8; 8];
                b.copy_from_slice(&c[i * 8..i * 8 + 8]);
                b
            };
            let range = TokenRange { start: u64::from_be_bytes(word(0)), end: u64::from_be_bytes(word(1)) };
            (range, i64::from_be_bytes(word(2)))
        })
        .collect()
}

fn encode(syncs: &HashMap<TokenRange, i64>) -> Vec<u8> {
    let mut sorted: Vec<_> = syncs.iter().collect();
    sorted.sort();
    let mut out = Vec::with_capacity(sorted.len() * 24);
    for (range, at) in sorted {
        out.extend_from_slice(&range.start.to_be_bytes());
        out.extend_from_slice(&range.end.to_be_bytes());
        out.extend_from_slice(&at.to_be_bytes());
    }
    out
}

impl SyncHistory {
    /// A history in `storage`'s metadata, for the ranges of `view`'s ring
    /// and the coordinator's keyspaces.
    pub fn new(
        storage: Arc<dyn Storage>,
        view: Arc<ClusterView>,
        coordinator: Coordinator,
        hint_window: std::time::Duration,
    ) -> Self {
        Self {
            storage,
            view,
            coordinator,
            hint_window_ms: i64::try_from(hint_window.as_millis()).unwrap_or(i64::MAX),
            synced: Mutex::new(HashMap::new()),
            index: Mutex::new(RangeIndex::default()),
        }
    }

    fn with_keyspace<T>(
        &self,
        keyspace: &str,
        f: impl FnOnce(&mut HashMap<TokenRange, i64>) -> T,
    ) -> Result<T, StorageError> {
        let mut synced = self.synced.lock().unwrap_or_else(PoisonError::into_inner);
        if !synced.contains_key(keyspace) {
            let stored = self.storage.get_meta(&meta_name(keyspace))?;
            synced.insert(keyspace.to_owned(), stored.map(|b| decode(&b)).unwrap_or_default());
        }
        let map = synced.entry(keyspace.to_owned()).or_default();
        Ok(f(map))
    }

    /// Notes a full sync of (keyspace, range) that started at `at_ms`;
    /// durable after the next [`flush`](Self::flush).
    pub fn record(&self, keyspace: &str, range: TokenRange, at_ms: i64) -> Result<(), StorageError> {
        self.with_keyspace(keyspace, |m| {
            m.insert(range, at_ms);
        })
    }

    /// Writes the syncs of `keyspace` durably.
    pub fn flush(&self, keyspace: &str) -> Result<(), StorageError> {
        let bytes = self.with_keyspace(keyspace, |m| encode(m))?;
        self.storage.put_meta(&meta_name(keyspace), &bytes)
    }

    /// When (keyspace, range) was last fully synced (Unix ms), if ever.
    pub fn last_full_sync(&self, keyspace: &str, range: TokenRange) -> Result<Option<i64>, StorageError> {
        self.with_keyspace(keyspace, |m| m.get(&range).copied())
    }

    /// The oldest "last full sync" over every range this node replicates in
    /// `keyspace` (`None` when one of them was never synced).
    pub fn oldest_full_sync(&self, keyspace: &str) -> Result<Option<i64>, StorageError> {
        let sets = self.sets(keyspace);
        let local = self.view.local_host_id().to_owned();
        let mut oldest = i64::MAX;
        for (range, replicas) in sets.iter().filter(|(_, r)| r.contains(&local)) {
            if replicas.len() == 1 {
                continue;
            }
            match self.last_full_sync(keyspace, *range)? {
                Some(at) => oldest = oldest.min(at),
                None => return Ok(None),
            }
        }
        Ok(Some(oldest))
    }

    fn sets(&self, keyspace: &str) -> Arc<RangeSets> {
        let ring = self.view.ring();
        let mut index = self.index.lock().unwrap_or_else(PoisonError::into_inner);
        if !index.ring.as_ref().is_some_and(|r| Arc::ptr_eq(r, &ring)) {
            *index = RangeIndex { ring: Some(Arc::clone(&ring)), by_keyspace: HashMap::new() };
        }
        if let Some(sets) = index.by_keyspace.get(keyspace) {
            return Arc::clone(sets);
        }
        let rf = self.coordinator.keyspaces().get(keyspace).map(|k| k.replication_factor as usize).unwrap_or(1);
        let sets = Arc::new(replica_sets(&ring, rf));
        index.by_keyspace.insert(keyspace.to_owned(), Arc::clone(&sets));
        sets
    }
}

impl RepairHistory for SyncHistory {
    fn synced_before_ms(&self, keyspace: &str, token: Token) -> Option<i64> {
        let sets = self.sets(keyspace);
        let (range, replicas) = find_range(&sets, token)?;
        let local = self.view.local_host_id();
        if !replicas.iter().any(|r| r == local) {
            // Not our range (any more): leave its records to whoever cleans up after ring changes.
            return None;
        }
        if replicas.len() == 1 {
            return Some(i64::MAX);
        }
        match self.last_full_sync(keyspace, *range) {
            Ok(at) => at.map(|at| at.saturating_sub(self.hint_window_ms)),
            Err(e) => {
                tracing::warn!(error = %e, keyspace, "cannot read the repair history; not purging");
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syncs_round_trip_through_their_encoding() {
        let mut m = HashMap::new();
        m.insert(TokenRange { start: u64::MAX, end: 3 }, 1_700_000_000_000);
        m.insert(TokenRange { start: 3, end: 9 }, -1);
        assert_eq!(decode(&encode(&m)), m);
        assert!(decode(&[1, 2, 3]).is_empty(), "a torn value reads as no syncs");
    }
}
