//! Checkers of write identity and survival, for any simulation that keeps a
//! [`WriteLog`]:
//!
//! - [`dot_clashes`]: no two replicas hold different values under one dot
//!   (the invariant of `ringkv_node::version`: a dot names one write), over
//!   a snapshot of every replica's records; [`DotWatch`] checks the same at
//!   every record write of every replica ([`WatchedStorage`]), so a clash
//!   that a later write overwrites is still seen (a reader may have got
//!   either value, and the merge silently dropped one);
//! - [`log_clashes`]: no dot was minted twice, for different writes, by any
//!   coordinator (stronger: also catches a clash whose second write never
//!   reached a replica that holds the first);
//! - [`lost_acks`]: every acknowledged write survives in the merged copies of
//!   its replicas, or was superseded by a write that had seen it and itself
//!   survives in that history.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use ringkv_node::storage::{DurableTicket, Storage, StorageError, WriteBatch, WriteInterceptor, WriteOp};
use ringkv_node::version::{Dot, Record, VersionVector};

use super::writes::{Minted, WriteLog};

/// What a sibling says under its dot (a dot must always say the same).
type Content = (Option<Bytes>, i64, Option<i64>);
/// Where a dot lives: keyspace, key, dot.
type At = (String, Bytes, Dot);

/// One dot that names different writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DotClash {
    /// Keyspace.
    pub keyspace: String,
    /// Key.
    pub key: Bytes,
    /// The dot.
    pub dot: Dot,
    /// Who holds (or minted) which value under it.
    pub holders: Vec<(String, Option<Bytes>)>,
}

/// Every dot that two stored copies hold with different contents. `copies`
/// are `(replica, keyspace, key, record)`: every record of every replica.
pub fn dot_clashes<'a>(copies: impl IntoIterator<Item = (String, &'a str, &'a [u8], &'a Record)>) -> Vec<DotClash> {
    let mut seen: BTreeMap<At, Vec<(String, Content)>> = BTreeMap::new();
    for (replica, keyspace, key, record) in copies {
        for s in &record.siblings {
            let content = (s.value.clone(), s.timestamp_micros, s.expires_at_ms);
            let at = (keyspace.to_owned(), Bytes::copy_from_slice(key), s.dot);
            seen.entry(at).or_default().push((replica.clone(), content));
        }
    }
    clashes(seen)
}

/// Every dot the log shows minted for two different writes.
pub fn log_clashes(log: &WriteLog) -> Vec<DotClash> {
    let mut seen: BTreeMap<At, Vec<(String, Content)>> = BTreeMap::new();
    for (i, m) in log.all().into_iter().enumerate() {
        let at = (m.keyspace.clone(), m.key.clone(), m.dot);
        // The log has no timestamps: the value and the context the write carried identify it.
        let content = (m.value.clone(), context_id(&m.clock, m.dot), None);
        seen.entry(at).or_default().push((format!("write #{i}"), content));
    }
    clashes(seen)
}

/// A stable number for a write's context without its own dot.
fn context_id(clock: &VersionVector, own: Dot) -> i64 {
    let entries: Vec<(u64, u64)> =
        clock.entries().map(|(n, c)| if n == own.node { (n, c.min(own.counter - 1)) } else { (n, c) }).collect();
    (xxhash_rust::xxh3::xxh3_64(format!("{entries:?}").as_bytes()) >> 1) as i64
}

fn clashes(seen: BTreeMap<At, Vec<(String, Content)>>) -> Vec<DotClash> {
    let mut out = Vec::new();
    for ((keyspace, key, dot), holders) in seen {
        let first = &holders[0].1;
        if holders.iter().any(|(_, c)| c != first) {
            let holders = holders.into_iter().map(|(who, c)| (who, c.0)).collect();
            out.push(DotClash { keyspace, key, dot, holders });
        }
    }
    out
}

/// The content each dot had when a replica first stored it, and every clash since.
#[derive(Debug, Default)]
pub struct DotWatch {
    first: Mutex<BTreeMap<At, (String, Content)>>,
    clashes: Mutex<BTreeMap<At, DotClash>>,
}

impl DotWatch {
    /// `replica` stores `record` for `key`: each sibling must say what its dot said everywhere before.
    pub fn observe(&self, replica: &str, keyspace: &str, key: &Bytes, record: &Record) {
        let mut first = self.first.lock().unwrap_or_else(PoisonError::into_inner);
        for s in &record.siblings {
            let content = (s.value.clone(), s.timestamp_micros, s.expires_at_ms);
            let at = (keyspace.to_owned(), key.clone(), s.dot);
            match first.get(&at) {
                None => _ = first.insert(at, (replica.to_owned(), content)),
                Some((holder, seen)) if *seen != content => {
                    let mut clashes = self.clashes.lock().unwrap_or_else(PoisonError::into_inner);
                    let clash = clashes.entry(at).or_insert_with(|| DotClash {
                        keyspace: keyspace.to_owned(),
                        key: key.clone(),
                        dot: s.dot,
                        holders: vec![(holder.clone(), seen.0.clone())],
                    });
                    clash.holders.push((replica.to_owned(), content.0));
                }
                Some(_) => {}
            }
        }
    }

    /// Every clash seen so far.
    pub fn clashes(&self) -> Vec<DotClash> {
        self.clashes.lock().unwrap_or_else(PoisonError::into_inner).values().cloned().collect()
    }
}

/// A [`Storage`] that shows every record replica `replica` writes to a [`DotWatch`].
#[derive(Debug)]
pub struct WatchedStorage {
    inner: Arc<dyn Storage>,
    replica: String,
    watch: Arc<DotWatch>,
}

impl WatchedStorage {
    /// Wraps `inner`, the storage of `replica`.
    pub fn new(inner: Arc<dyn Storage>, replica: &str, watch: Arc<DotWatch>) -> Self {
        Self { inner, replica: replica.to_owned(), watch }
    }
}

impl WriteInterceptor for WatchedStorage {
    fn inner(&self) -> &dyn Storage {
        self.inner.as_ref()
    }

    fn intercept_write(&self, batch: WriteBatch) -> Result<DurableTicket, StorageError> {
        for op in &batch.ops {
            if let WriteOp::Put { keyspace, key, record } = op {
                self.watch.observe(&self.replica, keyspace, key, record);
            }
        }
        self.inner.write(batch)
    }
}

/// A write its client got an acknowledgement for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acked {
    /// Keyspace.
    pub keyspace: String,
    /// Key.
    pub key: Bytes,
    /// The value (`None`: a delete).
    pub value: Option<Bytes>,
    /// The context the client was answered with.
    pub context: VersionVector,
}

/// Acknowledged writes that are gone: neither a sibling of `merged(key)` (the
/// merge of its replicas' copies) with the acknowledged value, nor covered by
/// a logged write whose dot is in that record's history. One line per loss.
pub fn lost_acks(log: &WriteLog, acked: &[Acked], merged: impl Fn(&str, &[u8]) -> Option<Record>) -> Vec<String> {
    let mut lost = Vec::new();
    for a in acked {
        let writes = log.of_key(&a.keyspace, &a.key);
        let Some(at) = writes.iter().position(|w| w.clock == a.context && w.value == a.value) else {
            lost.push(format!("{a:?}: acknowledged, but no coordinator logged it"));
            continue;
        };
        let Some(record) = merged(&a.keyspace, &a.key) else {
            lost.push(format!("{a:?}: no replica holds the key"));
            continue;
        };
        let w = &writes[at];
        if !survives(w, &writes[at + 1..], &record) {
            lost.push(format!("{a:?} (dot {:?}) lost: replicas hold {record:?}", w.dot));
        }
    }
    lost
}

/// `w` is a sibling of `record`, or one of the `later` writes saw it and is in `record`'s history.
fn survives(w: &Minted, later: &[Minted], record: &Record) -> bool {
    let kept = record.siblings.iter().any(|s| s.dot == w.dot && s.value == w.value);
    kept || later.iter().any(|l| l.covers(w.dot) && record.clock.contains(l.dot))
}
