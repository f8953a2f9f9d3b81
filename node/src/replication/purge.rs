//! Purge of dead records (tombstones and expired values past `gc_grace`).
//!
//! The rule: a record is purged only when every sibling died (deleted or
//! expired) more than `gc_grace` ago, *and* every sibling's write is known to
//! be on every replica of the key's range, i.e. the range was fully repaired
//! after the write ([`RepairHistory`]). Otherwise a replica that missed the
//! delete could hand the older live value back after the tombstone is gone
//! (the "zombie" of Cassandra's gc_grace discussion).

use std::sync::Arc;
use std::time::Duration;

use crate::error::KvError;
use crate::ring::{Token, token_of};
use crate::storage::{ScanPosition, WriteBatch, WriteOp};
use crate::version::Record;

use super::Coordinator;

/// What the purge needs to know about repairs.
pub trait RepairHistory: Send + Sync + std::fmt::Debug {
    /// Writes of `(keyspace, token)`'s range with a timestamp before the
    /// returned Unix ms are known to be on every replica of the range;
    /// `None` when nothing is known (never repaired).
    fn synced_before_ms(&self, keyspace: &str, token: Token) -> Option<i64>;
}

/// For a node that is the only replica of everything (tests, a cluster of one).
#[derive(Debug, Clone, Copy, Default)]
pub struct SoleReplica;

impl RepairHistory for SoleReplica {
    fn synced_before_ms(&self, _: &str, _: Token) -> Option<i64> {
        Some(i64::MAX)
    }
}

/// True when every sibling of `record` died before `horizon_ms` and was
/// written before `synced_before_ms` (see the module docs).
pub(crate) fn purgeable(record: &Record, now_ms: i64, horizon_ms: i64, synced_before_ms: Option<i64>) -> bool {
    let Some(synced_before) = synced_before_ms else { return false };
    record.is_dead(now_ms)
        && record.siblings.iter().all(|s| {
            let written_ms = s.timestamp_micros.div_euclid(1000);
            let died_long_ago = match (s.is_tombstone(), s.expires_at_ms) {
                (true, _) => written_ms < horizon_ms,
                (false, Some(at)) => at < horizon_ms,
                (false, None) => false,
            };
            died_long_ago && written_ms < synced_before
        })
}

impl Coordinator {
    /// Examines up to `limit` records after `after` in token order and purges
    /// the ones the purge rule allows (see the module docs). Returns how many
    /// were purged and where to continue (`None` at the end).
    pub async fn purge_pass(
        &self,
        after: Option<ScanPosition>,
        limit: usize,
        gc_grace: Duration,
        history: Arc<dyn RepairHistory>,
    ) -> Result<(usize, Option<ScanPosition>), KvError> {
        self.blocking(move |inner| {
            let batch = inner.storage.scan(after.as_ref(), None, None, limit)?;
            let next = (batch.len() == limit)
                .then(|| {
                    batch.last().map(|s| ScanPosition {
                        token: s.token,
                        keyspace: s.keyspace.clone(),
                        key: s.key.clone(),
                    })
                })
                .flatten();
            let now_ms = inner.clock.now_ms();
            let horizon_ms = now_ms - i64::try_from(gc_grace.as_millis()).unwrap_or(i64::MAX);
            let mut purged = 0;
            for stored in batch {
                let synced = history.synced_before_ms(&stored.keyspace, stored.token);
                if !purgeable(&stored.record, now_ms, horizon_ms, synced) {
                    continue;
                }
                // Re-check under the key lock: a write may have revived the key since the scan.
                let _guard = inner.locks.lock(token_of(&stored.keyspace, &stored.key));
                let Some(current) = inner.storage.get(&stored.keyspace, &stored.key)? else { continue };
                if purgeable(&current, now_ms, horizon_ms, synced) {
                    let op = WriteOp::Purge { keyspace: stored.keyspace, key: stored.key };
                    // Losing a purge in a crash is harmless: the next pass redoes it.
                    drop(inner.storage.write(WriteBatch { ops: vec![op] })?);
                    purged += 1;
                }
            }
            Ok((purged, next))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::version::{Dot, NodeId, Sibling, VersionVector};

    fn record(tombstone_at_ms: i64) -> Record {
        let dot = Dot { node: 1 as NodeId, counter: 1 };
        Record {
            clock: VersionVector::from_entries([(dot.node, 1)]),
            siblings: vec![Sibling { dot, timestamp_micros: tombstone_at_ms * 1000, expires_at_ms: None, value: None }],
        }
    }

    #[test]
    fn tombstone_needs_gc_grace_and_a_later_full_sync() {
        let t = record(1_000);
        let (now, grace) = (100_000, 10_000);
        let horizon = now - grace;
        assert!(!purgeable(&t, 5_000, 5_000 - grace, Some(i64::MAX)), "not before gc_grace");
        assert!(!purgeable(&t, now, horizon, None), "not for a range never repaired");
        assert!(!purgeable(&t, now, horizon, Some(900)), "not for a range repaired before the tombstone");
        assert!(!purgeable(&t, now, horizon, Some(1_000)), "not for a sync at the very time of the tombstone");
        assert!(purgeable(&t, now, horizon, Some(1_001)), "after gc_grace and a later full sync");
        let mut live = t.clone();
        live.siblings[0].value = Some(Bytes::from_static(b"v"));
        assert!(!purgeable(&live, now, horizon, Some(i64::MAX)), "never a live value");
    }
}
