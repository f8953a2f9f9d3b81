//! Purge of dead records (tombstones and expired values past `gc_grace`).

use std::time::Duration;

use crate::error::KvError;
use crate::ring::token_of;
use crate::storage::{ScanPosition, WriteBatch, WriteOp};
use crate::version::Record;

use super::Coordinator;

/// True when every sibling of `record` died (deleted or expired) before `horizon_ms`.
pub(crate) fn purgeable(record: &Record, now_ms: i64, horizon_ms: i64) -> bool {
    record.is_dead(now_ms)
        && record.siblings.iter().all(|s| match (s.is_tombstone(), s.expires_at_ms) {
            (true, _) => s.timestamp_micros / 1000 < horizon_ms,
            (false, Some(at)) => at < horizon_ms,
            (false, None) => false,
        })
}

impl Coordinator {
    /// Examines up to `limit` records after `after` in token order and purges
    /// the ones dead for longer than `gc_grace`. Returns how many were purged
    /// and where to continue (`None` at the end).
    pub async fn purge_pass(
        &self,
        after: Option<ScanPosition>,
        limit: usize,
        gc_grace: Duration,
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
            for stored in batch.into_iter().filter(|s| purgeable(&s.record, now_ms, horizon_ms)) {
                // Re-check under the key lock: a write may have revived the key since the scan.
                let _guard = inner.locks.lock(token_of(&stored.keyspace, &stored.key));
                let Some(current) = inner.storage.get(&stored.keyspace, &stored.key)? else { continue };
                if purgeable(&current, now_ms, horizon_ms) {
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
