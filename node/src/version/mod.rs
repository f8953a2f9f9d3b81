//! Versioning: dotted version vectors with sibling sets (pure, no I/O).
//!
//! A [`Record`] is what a replica stores for one key: a causal context
//! ([`VersionVector`]) summarising every write the record has seen, and the
//! concurrent [`Sibling`]s that survive, each tagged with the [`Dot`] (node,
//! counter) of the write that created it. This is the "version vector plus
//! dotted siblings" form that Riak 2.0 adopted: siblings are bounded by the
//! number of truly concurrent writes, not by the number of clients.
//!
//! Invariants:
//! - every sibling's dot is contained in the record's clock;
//! - siblings are sorted by dot and have distinct dots;
//! - in [`ConflictMode::Lww`] a record keeps at most one sibling;
//! - cluster-wide, a dot names exactly one write: merge keeps one sibling per
//!   dot and drops a dot the other clock covers, so two values under one dot
//!   would never converge. [`Record::apply_write`] mints
//!   `(coordinator, clock[coordinator] + 1)` from the local copy, which is
//!   unique only while the coordinator's actor has every write it minted for
//!   the key. Actors are therefore per *incarnation*, not per host:
//!   `topology::identity` gives a fresh one to a new data directory (a
//!   replacement included) and after any stop that was not clean (a crash,
//!   a power loss under `sync = periodic`).
//!
//! This module may call nothing but `std` and `bytes`.

mod codec;
mod vector;

pub use codec::CodecError;
pub(crate) use codec::MAX_COUNTER;
pub use vector::{Dot, NodeId, VersionVector};

use bytes::Bytes;

/// How a keyspace resolves concurrent writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum ConflictMode {
    /// Keep concurrent writes as siblings for the client to resolve (Riak, Dynamo).
    #[default]
    Siblings,
    /// Highest timestamp wins (Cassandra, DynamoDB): concurrent writes can be lost.
    Lww,
}

/// One concurrent version of a key: a value or a tombstone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sibling {
    /// The write that created this sibling.
    pub dot: Dot,
    /// Wall-clock time of the write at its coordinator, µs since the Unix epoch.
    pub timestamp_micros: i64,
    /// Expiry, ms since the Unix epoch.
    pub expires_at_ms: Option<i64>,
    /// The value; `None` is a tombstone.
    pub value: Option<Bytes>,
}

impl Sibling {
    /// True when this sibling is a delete marker.
    pub fn is_tombstone(&self) -> bool {
        self.value.is_none()
    }

    /// True when the sibling's TTL has passed at `now_ms`.
    pub fn is_expired(&self, now_ms: i64) -> bool {
        self.expires_at_ms.is_some_and(|at| at <= now_ms)
    }

    /// True when the sibling holds a value that has not expired.
    pub fn is_live(&self, now_ms: i64) -> bool {
        !self.is_tombstone() && !self.is_expired(now_ms)
    }

    /// The LWW order: later timestamp wins, the dot breaks ties deterministically.
    pub(crate) fn lww_key(&self) -> (i64, Dot) {
        (self.timestamp_micros, self.dot)
    }
}

/// The content of a new write, before it gets its dot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewWrite {
    /// The value; `None` writes a tombstone.
    pub value: Option<Bytes>,
    /// Wall-clock time of the write, µs since the Unix epoch.
    pub timestamp_micros: i64,
    /// Expiry, ms since the Unix epoch.
    pub expires_at_ms: Option<i64>,
}

/// Everything a replica stores for one key.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Record {
    /// Causal history of every write this record has seen.
    pub clock: VersionVector,
    /// Surviving concurrent versions, sorted by dot.
    pub siblings: Vec<Sibling>,
}

impl Record {
    /// Applies a write coordinated by `coordinator` that carries the client's
    /// causal `context`: the siblings the context covers are superseded,
    /// the others stay as concurrent siblings. Returns the new write's dot.
    ///
    /// The coordinator must be a replica of the key, so that its counter for
    /// the key only grows (server-side ids, as in dotted version vectors),
    /// and `coordinator` must be an actor that never lost a write it minted
    /// (see the module invariants).
    pub fn apply_write(
        &mut self,
        coordinator: NodeId,
        context: &VersionVector,
        write: NewWrite,
        mode: ConflictMode,
    ) -> Dot {
        self.clock.merge(context);
        let dot = Dot { node: coordinator, counter: self.clock.get(coordinator) + 1 };
        self.clock.add(dot);
        self.siblings.retain(|s| !context.contains(s.dot));
        self.siblings.push(Sibling {
            dot,
            timestamp_micros: write.timestamp_micros,
            expires_at_ms: write.expires_at_ms,
            value: write.value,
        });
        self.siblings.sort_by_key(|s| s.dot);
        if mode == ConflictMode::Lww {
            self.keep_lww_winner();
        }
        dot
    }

    /// Merges another replica's copy of the same key into this one (replica
    /// writes, read repair, hints, anti-entropy). Commutative, associative and
    /// idempotent.
    pub fn merge(&mut self, other: &Record, mode: ConflictMode) {
        let mut merged: Vec<Sibling> = Vec::with_capacity(self.siblings.len() + other.siblings.len());
        for s in &self.siblings {
            let in_other = other.siblings.iter().any(|o| o.dot == s.dot);
            if in_other || !other.clock.contains(s.dot) {
                merged.push(s.clone());
            }
        }
        for o in &other.siblings {
            let in_self = self.siblings.iter().any(|s| s.dot == o.dot);
            if !in_self && !self.clock.contains(o.dot) {
                merged.push(o.clone());
            }
        }
        merged.sort_by_key(|s| s.dot);
        self.siblings = merged;
        self.clock.merge(&other.clock);
        if mode == ConflictMode::Lww {
            self.keep_lww_winner();
        }
    }

    fn keep_lww_winner(&mut self) {
        if let Some(winner) = self.siblings.iter().max_by_key(|s| s.lww_key()).cloned() {
            self.siblings = vec![winner];
        }
    }

    /// Siblings that hold a value which has not expired at `now_ms`.
    pub fn live_siblings(&self, now_ms: i64) -> impl Iterator<Item = &Sibling> {
        self.siblings.iter().filter(move |s| s.is_live(now_ms))
    }

    /// True when the record has at least one live value at `now_ms`.
    pub fn is_live(&self, now_ms: i64) -> bool {
        self.live_siblings(now_ms).next().is_some()
    }

    /// The newest live sibling (by timestamp), if any.
    pub fn newest_live(&self, now_ms: i64) -> Option<&Sibling> {
        self.live_siblings(now_ms).max_by_key(|s| s.lww_key())
    }

    /// Number of writes this record has seen: the sum of its clock. Grows by at
    /// least one with every write, so clients can use it as a version number.
    pub fn version(&self) -> u64 {
        self.clock.sum()
    }

    /// True when no sibling can ever be read again at `now_ms` (all are
    /// tombstones or expired): such a record may be purged after `gc_grace`.
    pub fn is_dead(&self, now_ms: i64) -> bool {
        !self.is_live(now_ms)
    }
}

#[cfg(test)]
mod tests;
