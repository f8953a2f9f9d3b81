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
#[derive(Debug)]
pub struct SyncHistory {
    storage: Arc<dyn Storage>,
    view: Arc<ClusterView>,
    coordinator: Coordinator,
    hint_window_ms: i64,
    cache: Mutex<HashMap<(String, TokenRange), Option<i64>>>,
    index: Mutex<RangeIndex>,
}

fn meta_name(keyspace: &str, range: TokenRange) -> String {
    format!("antientropy.last_full_sync.{keyspace}.{:016x}.{:016x}", range.start, range.end)
}

impl SyncHistory {
    /// A history in `storage`'s metadata, for the ranges of the coordinator's
    /// ring and keyspaces.
    pub fn new(storage: Arc<dyn Storage>, coordinator: Coordinator, hint_window: std::time::Duration) -> Self {
        Self {
            storage,
            view: Arc::clone(coordinator.view()),
            coordinator,
            hint_window_ms: i64::try_from(hint_window.as_millis()).unwrap_or(i64::MAX),
            cache: Mutex::new(HashMap::new()),
            index: Mutex::new(RangeIndex::default()),
        }
    }

    /// Records a full sync of (keyspace, range) that started at `at_ms`, durably.
    pub fn record(&self, keyspace: &str, range: TokenRange, at_ms: i64) -> Result<(), StorageError> {
        self.storage.put_meta(&meta_name(keyspace, range), &at_ms.to_be_bytes())?;
        self.cache.lock().unwrap_or_else(PoisonError::into_inner).insert((keyspace.to_owned(), range), Some(at_ms));
        Ok(())
    }

    /// When (keyspace, range) was last fully synced (Unix ms), if ever.
    pub fn last_full_sync(&self, keyspace: &str, range: TokenRange) -> Result<Option<i64>, StorageError> {
        let key = (keyspace.to_owned(), range);
        if let Some(&cached) = self.cache.lock().unwrap_or_else(PoisonError::into_inner).get(&key) {
            return Ok(cached);
        }
        let stored = self.storage.get_meta(&meta_name(keyspace, range))?;
        let at = stored.and_then(|b| <[u8; 8]>::try_from(b.as_ref()).ok()).map(i64::from_be_bytes);
        self.cache.lock().unwrap_or_else(PoisonError::into_inner).insert(key, at);
        Ok(at)
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
