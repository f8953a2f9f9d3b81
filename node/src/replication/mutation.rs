//! Applying a [`Mutation`] to the local replica's record (read-modify-write).
//!
//! Runs on the blocking pool under the key's lock: read the record, decide
//! (conditions, counters), apply the write with this node's dot, store it.
//! Returns once the new record is visible, with a ticket for durability.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use bytes::Bytes;

use crate::error::KvError;
use crate::ring::token_of;
use crate::storage::{DurableTicket, WriteBatch, WriteOp};
use crate::transport::CoordinateReply;
use crate::version::{NewWrite, Record, Sibling, VersionVector};

use super::coordinator::{Expiry, Inner};
use super::ops::decode_context;
use super::{CasExpectation, Keyspace, Mutation, WriteResult};

/// What the local apply produced: the reply for the client, the record to
/// replicate (`None` when a condition stopped the write) and durability.
#[derive(Debug)]
pub(super) struct Applied {
    pub(super) reply: CoordinateReply,
    pub(super) record: Option<Record>,
    pub(super) ticket: DurableTicket,
}

/// The decided change: context to supersede (`None` = everything this replica
/// has), value (`None` = tombstone), expiry.
type Change = (Option<VersionVector>, Option<Bytes>, Expiry);

impl Inner {
    /// Validates a mutation's payload before any replica sees it.
    pub(super) fn check_mutation(&self, ks: &Keyspace, m: &Mutation) -> Result<(), KvError> {
        match m {
            Mutation::Put { value, context, ttl_seconds, .. } => {
                self.check_value(value)?;
                decode_context(context)?;
                self.expiry(*ttl_seconds, ks).map(drop)
            }
            Mutation::Delete { context } => decode_context(context).map(drop),
            Mutation::Touch { ttl_seconds } => self.touch_expiry(*ttl_seconds, ks).map(drop),
            Mutation::Increment { ttl_seconds, .. } => self.expiry(*ttl_seconds, ks).map(drop),
            Mutation::Cas { expected, new_value, ttl_seconds } => {
                self.check_value(new_value)?;
                if let CasExpectation::Context(c) = expected {
                    decode_context(c)?;
                }
                self.expiry(*ttl_seconds, ks).map(drop)
            }
        }
    }

    fn touch_expiry(&self, ttl_seconds: u64, ks: &Keyspace) -> Result<Expiry, KvError> {
        if ttl_seconds == 0 { Ok(Expiry::Never) } else { self.expiry(Some(ttl_seconds), ks) }
    }

    /// Applies `m` to the local record of `(ks, key)`. Blocking.
    pub(super) fn apply_mutation(&self, ks: &Keyspace, key: Bytes, m: &Mutation) -> Result<Applied, KvError> {
        let _guard = self.locks.lock(token_of(&ks.name, &key));
        let mut record = self.storage.get(&ks.name, &key)?.unwrap_or_default();
        let now_ms = self.clock.now_ms();
        let existed = record.is_live(now_ms);
        let mut counter = 0;
        let change = self.decide(ks, &record, m, now_ms, &mut counter)?;
        let Some(change) = change else {
            let current = matches!(m, Mutation::Cas { .. }).then(|| record.clone());
            let result = WriteResult {
                applied: false,
                existed,
                context: Bytes::from(record.clock.encode_context()),
                version: record.version(),
                timestamp_micros: 0,
            };
            return Ok(Applied {
                reply: CoordinateReply { result, counter, current },
                record: None,
                ticket: DurableTicket::ready(),
            });
        };
        let timestamp_micros = self.apply_change(ks, &mut record, change, now_ms);
        let result = WriteResult {
            applied: true,
            existed,
            context: Bytes::from(record.clock.encode_context()),
            version: record.version(),
            timestamp_micros,
        };
        let ticket = self.storage.write(WriteBatch::put(&ks.name, key, record.clone()))?;
        Ok(Applied { reply: CoordinateReply { result, counter, current: None }, record: Some(record), ticket })
    }

    /// Decides what `m` writes given the current record; `None` = nothing.
    fn decide(
        &self,
        ks: &Keyspace,
        record: &Record,
        m: &Mutation,
        now_ms: i64,
        counter: &mut i64,
    ) -> Result<Option<Change>, KvError> {
        Ok(match m {
            Mutation::Put { value, context, ttl_seconds, if_absent } => {
                if *if_absent && record.is_live(now_ms) {
                    return Ok(None);
                }
                Some((Some(decode_context(context)?), Some(value.clone()), self.expiry(*ttl_seconds, ks)?))
            }
            Mutation::Delete { context } => Some((Some(decode_context(context)?), None, Expiry::Never)),
            Mutation::Touch { ttl_seconds } => {
                let expiry = self.touch_expiry(*ttl_seconds, ks)?;
                record.newest_live(now_ms).map(|s| (None, s.value.clone(), expiry))
            }
            Mutation::Increment { delta, ttl_seconds } => {
                let current = match record.newest_live(now_ms) {
                    None => 0,
                    Some(s) => parse_counter(s.value.as_deref().unwrap_or_default())?,
                };
                *counter = current.checked_add(*delta).ok_or(KvError::Overflow { current, delta: *delta })?;
                let expiry = match ttl_seconds.filter(|t| *t > 0) {
                    Some(t) => self.expiry(Some(t), ks)?,
                    None => Expiry::Keep,
                };
                Some((None, Some(Bytes::from(counter.to_string())), expiry))
            }
            Mutation::Cas { expected, new_value, ttl_seconds } => {
                let clock = match expected {
                    CasExpectation::Context(c) => Some(decode_context(c)?),
                    _ => None,
                };
                if !cas_matches(record, expected, clock.as_ref(), now_ms) {
                    return Ok(None);
                }
                Some((None, Some(new_value.clone()), self.expiry(*ttl_seconds, ks)?))
            }
        })
    }

    /// Applies a decided change to a record in memory; returns its timestamp.
    pub(super) fn apply_change(&self, ks: &Keyspace, record: &mut Record, change: Change, now_ms: i64) -> i64 {
        let (context, value, expiry) = change;
        // A blind write (no context) supersedes everything this replica has seen.
        let context = context.filter(|c| !c.is_empty()).unwrap_or_else(|| record.clock.clone());
        let expires_at_ms = match expiry {
            Expiry::Never => None,
            Expiry::At(at) => Some(at),
            Expiry::Keep => record.newest_live(now_ms).and_then(|s| s.expires_at_ms),
        };
        // Timestamps never go backwards for a key, even if the wall clock does.
        let newest = record.siblings.iter().map(|s| s.timestamp_micros).max().unwrap_or(i64::MIN);
        let timestamp_micros = self.clock.now_micros().max(newest.saturating_add(1));
        let write = NewWrite { value, timestamp_micros, expires_at_ms };
        record.apply_write(self.node_id, &context, write, ks.conflict_mode);
        timestamp_micros
    }

    /// Merges a record from another replica (replication, read repair, hints). Blocking.
    pub(super) fn merge_local(&self, ks: &Keyspace, key: Bytes, incoming: &Record) -> Result<DurableTicket, KvError> {
        let _guard = self.locks.lock(token_of(&ks.name, &key));
        let mut merged = self.storage.get(&ks.name, &key)?.unwrap_or_default();
        merged.merge(incoming, ks.conflict_mode);
        // Written even when unchanged: the current copy may still be waiting for its
        // group commit, and this acknowledgement must not overtake that fsync.
        Ok(self.storage.write(WriteBatch::put(&ks.name, key, merged))?)
    }

    /// [`merge_local`](Self::merge_local) of many records in one storage
    /// batch (one durable ticket), for streaming and hint replay. A key given
    /// twice gets both merged.
    pub(super) fn merge_local_many(
        &self,
        ks: &Keyspace,
        items: Vec<(Bytes, Record)>,
    ) -> Result<DurableTicket, KvError> {
        let tokens: Vec<u64> = items.iter().map(|(key, _)| token_of(&ks.name, key)).collect();
        let _guards = self.locks.lock_many(&tokens);
        let mut merged: HashMap<Bytes, Record> = HashMap::new();
        for (key, incoming) in items {
            let record = match merged.entry(key) {
                Entry::Occupied(e) => e.into_mut(),
                Entry::Vacant(e) => {
                    let current = self.storage.get(&ks.name, e.key())?.unwrap_or_default();
                    e.insert(current)
                }
            };
            record.merge(&incoming, ks.conflict_mode);
        }
        let ops =
            merged.into_iter().map(|(key, record)| WriteOp::Put { keyspace: ks.name.clone(), key, record }).collect();
        Ok(self.storage.write(WriteBatch { ops })?)
    }
}

fn parse_counter(value: &[u8]) -> Result<i64, KvError> {
    std::str::from_utf8(value).ok().and_then(|s| s.trim().parse::<i64>().ok()).ok_or(KvError::NotAnInteger)
}

fn cas_matches(record: &Record, expected: &CasExpectation, clock: Option<&VersionVector>, now_ms: i64) -> bool {
    match expected {
        CasExpectation::Absent => !record.is_live(now_ms),
        CasExpectation::Version(0) => !record.is_live(now_ms),
        CasExpectation::Version(v) => record.version() == *v && record.is_live(now_ms),
        CasExpectation::Context(_) => clock.is_some_and(|c| *c == record.clock),
        CasExpectation::Value(v) => {
            let live: Vec<&Sibling> = record.live_siblings(now_ms).collect();
            matches!(live.as_slice(), [only] if only.value.as_ref() == Some(v))
        }
    }
}
