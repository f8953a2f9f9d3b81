//! [`HintStore`]: hints on top of the storage's hints partition. Blocking.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};

use crate::clock::Clock;
use crate::replication::ReplicationMetrics;
use crate::storage::{DurableTicket, Storage, StorageError, WriteBatch, WriteOp};
use crate::transport::HintedWrite;
use crate::version::Record;

/// The storage key of one hint: `len(target) | target | created_at_ms (BE) | seq (BE)`,
/// so a target's hints are one prefix, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct HintKey(pub Bytes);

fn target_prefix(target: &str) -> Vec<u8> {
    let mut p = Vec::with_capacity(1 + target.len());
    p.push(target.len().min(255) as u8);
    p.extend_from_slice(&target.as_bytes()[..target.len().min(255)]);
    p
}

/// The creation time (ms) in a hint key whose target prefix is `prefix_len` bytes.
fn created_at_of(key: &[u8], prefix_len: usize) -> Option<i64> {
    Some(i64::from_be_bytes(key.get(prefix_len..prefix_len + 8)?.try_into().ok()?))
}

/// A hint as stored: `len(keyspace) | keyspace | len(key) (BE u32) | key | created_at_ms (BE) | record`.
pub(crate) fn encode_hint(h: &HintedWrite) -> Bytes {
    let record = h.record.encode();
    let mut b = BytesMut::with_capacity(16 + h.keyspace.len() + h.key.len() + record.len());
    b.put_u8(h.keyspace.len().min(255) as u8);
    b.put_slice(&h.keyspace.as_bytes()[..h.keyspace.len().min(255)]);
    b.put_u32(h.key.len() as u32);
    b.put_slice(&h.key);
    b.put_i64(h.created_at_ms);
    b.put_slice(&record);
    b.freeze()
}

/// A stored hint; `None` when it does not decode (such hints are dropped).
pub(crate) fn decode_hint(v: &Bytes) -> Option<HintedWrite> {
    let ks_len = usize::from(*v.first()?);
    let ks = std::str::from_utf8(v.get(1..1 + ks_len)?).ok()?.to_owned();
    let mut pos = 1 + ks_len;
    let key_len = u32::from_be_bytes(v.get(pos..pos + 4)?.try_into().ok()?) as usize;
    pos += 4;
    let key = v.slice(pos..pos.checked_add(key_len).filter(|e| *e <= v.len())?);
    pos += key_len;
    let created_at_ms = i64::from_be_bytes(v.get(pos..pos + 8)?.try_into().ok()?);
    pos += 8;
    let record = Record::decode(&v.slice(pos..)).ok()?;
    Some(HintedWrite { keyspace: ks, key, record, created_at_ms })
}

/// Durable hints, per target host. Cheap to clone.
#[derive(Debug, Clone)]
pub struct HintStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    storage: Arc<dyn Storage>,
    clock: Arc<dyn Clock>,
    max_window: Duration,
    seq: AtomicU64,
    /// Pending hints per target; `None` until counted from disk.
    pending: Mutex<Option<BTreeMap<String, u64>>>,
    metrics: ReplicationMetrics,
}

impl HintStore {
    /// Hints in `storage`, expiring after `max_window`.
    pub fn new(
        storage: Arc<dyn Storage>,
        clock: Arc<dyn Clock>,
        max_window: Duration,
        metrics: ReplicationMetrics,
    ) -> Self {
        // Sequence numbers only break ties within one millisecond; starting from
        // the clock keeps them distinct across restarts.
        let seq = AtomicU64::new(clock.now_micros().max(0) as u64);
        Self { inner: Arc::new(Inner { storage, clock, max_window, seq, pending: Mutex::new(None), metrics }) }
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, Option<BTreeMap<String, u64>>> {
        self.inner.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn set_gauge(&self, target: &str, n: u64) {
        self.inner.metrics.hints_pending.with_label_values(&[target]).set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// Stores a hint for `target`; the ticket resolves when it is durable.
    pub fn store(&self, target: &str, hint: &HintedWrite) -> Result<DurableTicket, StorageError> {
        let mut key = target_prefix(target);
        key.extend_from_slice(&hint.created_at_ms.to_be_bytes());
        key.extend_from_slice(&self.inner.seq.fetch_add(1, Ordering::Relaxed).to_be_bytes());
        let ticket = self
            .inner
            .storage
            .write(WriteBatch { ops: vec![WriteOp::HintPut { key: Bytes::from(key), value: encode_hint(hint) }] })?;
        self.inner.metrics.hints_stored.with_label_values(&[target]).inc();
        if let Some(map) = self.pending().as_mut() {
            let n = map.entry(target.to_owned()).or_insert(0);
            *n += 1;
            self.set_gauge(target, *n);
        }
        Ok(ticket)
    }

    /// Pending hints per target (counted from disk on first call).
    pub fn pending_by_target(&self) -> Result<BTreeMap<String, u64>, StorageError> {
        if let Some(map) = self.pending().as_ref() {
            return Ok(map.clone());
        }
        let mut counts = BTreeMap::new();
        let mut after: Option<Bytes> = None;
        loop {
            let page = self.inner.storage.scan_hints(&[], after.as_deref(), 1000)?;
            let Some(last) = page.last() else { break };
            after = Some(last.0.clone());
            for (key, _) in &page {
                let len = usize::from(key.first().copied().unwrap_or(0));
                if let Some(target) = key.get(1..1 + len).and_then(|t| std::str::from_utf8(t).ok()) {
                    *counts.entry(target.to_owned()).or_insert(0u64) += 1;
                }
            }
        }
        for (target, n) in &counts {
            self.set_gauge(target, *n);
        }
        *self.pending() = Some(counts.clone());
        Ok(counts)
    }

    /// Up to `limit` hints for `target`, oldest first. Hints past the window
    /// (and undecodable ones) are deleted on the way and counted as expired.
    pub fn batch(&self, target: &str, limit: usize) -> Result<Vec<(HintKey, HintedWrite)>, StorageError> {
        let prefix = target_prefix(target);
        let horizon = self.inner.clock.now_ms() - i64::try_from(self.inner.max_window.as_millis()).unwrap_or(i64::MAX);
        let mut out = Vec::new();
        let mut dead = Vec::new();
        let mut after: Option<Bytes> = None;
        while out.len() < limit {
            let page = self.inner.storage.scan_hints(&prefix, after.as_deref(), limit - out.len())?;
            let exhausted = page.len() < limit - out.len();
            for (key, value) in page {
                after = Some(key.clone());
                match decode_hint(&value) {
                    Some(h) if h.created_at_ms >= horizon => out.push((HintKey(key), h)),
                    _ => dead.push(HintKey(key)),
                }
            }
            if exhausted {
                break;
            }
        }
        if !dead.is_empty() {
            tracing::warn!(target_host = target, expired = dead.len(), "dropping hints older than max_hint_window");
            self.inner.metrics.hints_expired.with_label_values(&[target]).inc_by(dead.len() as u64);
            drop(self.remove(target, dead)?);
        }
        Ok(out)
    }

    /// The hints of `target` from the oldest on, while `keep_going` says so
    /// of each key's creation time (ms), deleted; returns how many.
    fn delete_while(&self, target: &str, keep_going: impl Fn(i64) -> bool) -> Result<u64, StorageError> {
        let prefix = target_prefix(target);
        let mut deleted = 0u64;
        loop {
            let page = self.inner.storage.scan_hints(&prefix, None, 1000)?;
            let full = page.len() == 1000;
            let doomed: Vec<HintKey> = page
                .into_iter()
                .map(|(key, _)| key)
                .take_while(|key| keep_going(created_at_of(key, prefix.len()).unwrap_or(i64::MIN)))
                .map(HintKey)
                .collect();
            let n = doomed.len();
            if n == 0 {
                return Ok(deleted);
            }
            // Visible when write returns, so the next page starts after them; a
            // deletion lost in a crash is purged again on the next pass.
            drop(self.remove(target, doomed)?);
            deleted += n as u64;
            if !full || n < 1000 {
                return Ok(deleted);
            }
        }
    }

    /// Deletes the hints of `target` older than the window, without
    /// delivering anything: hints for a node that never comes back must not
    /// pile up (batch() expires them only when the target is alive).
    pub fn purge_expired(&self, target: &str) -> Result<u64, StorageError> {
        let horizon = self.inner.clock.now_ms() - i64::try_from(self.inner.max_window.as_millis()).unwrap_or(i64::MAX);
        let n = self.delete_while(target, |created| created < horizon)?;
        if n > 0 {
            tracing::warn!(target_host = target, expired = n, "dropped hints older than max_hint_window");
            self.inner.metrics.hints_expired.with_label_values(&[target]).inc_by(n);
        }
        Ok(n)
    }

    /// Deletes every hint of `target` (it left the cluster: nothing will
    /// ever deliver them, and its ranges were streamed to their new owners).
    pub fn drop_target(&self, target: &str) -> Result<u64, StorageError> {
        let n = self.delete_while(target, |_| true)?;
        if n > 0 {
            tracing::info!(target_host = target, dropped = n, "dropped the hints of a node that left the cluster");
            self.inner.metrics.hints_expired.with_label_values(&[target]).inc_by(n);
        }
        Ok(n)
    }

    /// Deletes delivered (or expired) hints of `target`.
    pub fn remove(&self, target: &str, keys: Vec<HintKey>) -> Result<DurableTicket, StorageError> {
        let n = keys.len() as u64;
        let ops = keys.into_iter().map(|k| WriteOp::HintDelete { key: k.0 }).collect();
        let ticket = self.inner.storage.write(WriteBatch { ops })?;
        if let Some(map) = self.pending().as_mut() {
            let left = map.entry(target.to_owned()).or_insert(0);
            *left = left.saturating_sub(n);
            self.set_gauge(target, *left);
        }
        Ok(ticket)
    }

    /// Counts a delivery in the metrics.
    pub(super) fn count_replayed(&self, target: &str, n: u64) {
        self.inner.metrics.hints_replayed.with_label_values(&[target]).inc_by(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::storage::MemoryStorage;
    use crate::version::{ConflictMode, NewWrite, VersionVector};

    fn hint(key: &str, at: i64) -> HintedWrite {
        let mut record = Record::default();
        let w = NewWrite { value: Some(Bytes::from_static(b"v")), timestamp_micros: at * 1000, expires_at_ms: None };
        record.apply_write(1, &VersionVector::new(), w, ConflictMode::Siblings);
        HintedWrite { keyspace: "default".into(), key: Bytes::from(key.to_owned()), record, created_at_ms: at }
    }

    #[test]
    fn hints_come_back_oldest_first_per_target_and_expire() {
        let clock = Arc::new(ManualClock::at_micros(1_000_000_000));
        let store = HintStore::new(
            Arc::new(MemoryStorage::new()),
            clock.clone(),
            Duration::from_secs(60),
            ReplicationMetrics::unregistered(),
        );
        let now = clock.now_ms();
        for (i, k) in ["a", "b", "c"].iter().enumerate() {
            store.store("target-1", &hint(k, now + i as i64)).unwrap();
        }
        store.store("target-2", &hint("x", now)).unwrap();
        let counts = store.pending_by_target().unwrap();
        assert_eq!(counts.get("target-1"), Some(&3));
        let batch = store.batch("target-1", 10).unwrap();
        let keys: Vec<_> = batch.iter().map(|(_, h)| h.key.clone()).collect();
        assert_eq!(keys, vec![Bytes::from("a"), Bytes::from("b"), Bytes::from("c")]);
        assert_eq!(batch[0].1, hint("a", now));
        store.remove("target-1", batch.into_iter().map(|(k, _)| k).collect()).unwrap();
        assert!(store.batch("target-1", 10).unwrap().is_empty());
        assert_eq!(store.pending_by_target().unwrap().get("target-1"), Some(&0));
        clock.advance_ms(61_000);
        assert!(store.batch("target-2", 10).unwrap().is_empty(), "expired hint dropped");
        assert_eq!(store.pending_by_target().unwrap().get("target-2"), Some(&0));
    }
}

#[cfg(test)]
mod purge_tests {
    use super::tests_support::hint;
    use super::*;
    use crate::clock::ManualClock;
    use crate::storage::MemoryStorage;

    fn store(clock: &Arc<ManualClock>) -> HintStore {
        let clock: Arc<dyn Clock> = clock.clone();
        HintStore::new(
            Arc::new(MemoryStorage::new()),
            clock,
            Duration::from_secs(60),
            ReplicationMetrics::unregistered(),
        )
    }

    #[test]
    fn expired_hints_are_purged_without_delivery_and_a_left_target_loses_all() {
        let clock = Arc::new(ManualClock::at_micros(1_000_000_000));
        let hints = store(&clock);
        let t0 = clock.now_ms();
        for i in 0..1500 {
            hints.store("gone", &hint(&format!("old-{i}"), t0)).unwrap();
        }
        clock.advance_ms(30_000);
        hints.store("gone", &hint("young", clock.now_ms())).unwrap();
        hints.store("other", &hint("o", t0)).unwrap();
        assert_eq!(hints.purge_expired("gone").unwrap(), 0, "nothing is past the window yet");
        clock.advance_ms(31_000);
        assert_eq!(hints.purge_expired("gone").unwrap(), 1500, "every hint past the window, over two pages");
        assert_eq!(hints.pending_by_target().unwrap().get("gone"), Some(&1), "the young one stays");
        assert_eq!(hints.drop_target("gone").unwrap(), 1);
        assert_eq!(hints.pending_by_target().unwrap().get("gone"), Some(&0));
        assert!(hints.batch("gone", 10).unwrap().is_empty());
        assert_eq!(hints.pending_by_target().unwrap().get("other"), Some(&1), "other targets untouched");
    }
}

#[cfg(test)]
pub(super) mod tests_support {
    use super::*;
    use crate::version::{ConflictMode, NewWrite, VersionVector};

    /// A hint for `key` created at `at` ms.
    pub fn hint(key: &str, at: i64) -> HintedWrite {
        let mut record = Record::default();
        let w = NewWrite { value: Some(Bytes::from_static(b"v")), timestamp_micros: at * 1000, expires_at_ms: None };
        record.apply_write(1, &VersionVector::new(), w, ConflictMode::Siblings);
        HintedWrite { keyspace: "default".into(), key: Bytes::from(key.to_owned()), record, created_at_ms: at }
    }
}

#[cfg(test)]
mod restart_tests {
    use super::*;
    use crate::clock::SystemClock;
    use crate::config::StorageConfig;
    use crate::storage::{FjallStorage, SyncPolicy};
    use crate::version::{ConflictMode, NewWrite, VersionVector};

    fn open(dir: &std::path::Path) -> Arc<FjallStorage> {
        let config =
            StorageConfig { data_dir: dir.to_path_buf(), sync: SyncPolicy::Always, ..StorageConfig::default() };
        Arc::new(FjallStorage::open(&config).unwrap())
    }

    #[test]
    fn hints_survive_a_restart_of_the_node_holding_them() {
        let dir = tempfile::tempdir().unwrap();
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let mut record = Record::default();
        let w = NewWrite {
            value: Some(Bytes::from_static(b"v")),
            timestamp_micros: clock.now_micros(),
            expires_at_ms: None,
        };
        record.apply_write(1, &VersionVector::new(), w, ConflictMode::Siblings);
        let hint = HintedWrite {
            keyspace: "default".into(),
            key: Bytes::from_static(b"k"),
            record,
            created_at_ms: clock.now_ms(),
        };
        {
            let storage = open(dir.path());
            let store = HintStore::new(
                storage.clone(),
                clock.clone(),
                Duration::from_secs(3600),
                ReplicationMetrics::unregistered(),
            );
            store.store("target", &hint).unwrap().wait_blocking().unwrap();
            storage.shutdown();
        }
        let storage = open(dir.path());
        let store = HintStore::new(storage, clock, Duration::from_secs(3600), ReplicationMetrics::unregistered());
        assert_eq!(store.pending_by_target().unwrap().get("target"), Some(&1));
        let batch = store.batch("target", 10).unwrap();
        assert_eq!(batch.len(), 1);
        assert_eq!(batch[0].1, hint);
    }
}
