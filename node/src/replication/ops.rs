//! Request options and results of the coordinator's operations.

use bytes::Bytes;

use crate::version::{Record, Sibling, VersionVector};

use super::Consistency;

/// Options of a put.
#[derive(Debug, Clone, Default)]
pub struct PutOptions {
    /// Causal context from a previous read (encoded); empty for a blind write,
    /// which supersedes what this node's replica has seen.
    pub context: Bytes,
    /// TTL in seconds; `None` (or 0) means the keyspace default.
    pub ttl_seconds: Option<u64>,
    /// Only write when the key has no live value.
    pub if_absent: bool,
    /// Consistency asked for.
    pub consistency: Consistency,
}

/// The result of a read: live siblings and the context to write back.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReadResult {
    /// True when at least one live sibling exists.
    pub found: bool,
    /// Live siblings (not tombstones, not expired), sorted by dot.
    pub siblings: Vec<Sibling>,
    /// The encoded causal context covering every sibling seen.
    pub context: Bytes,
    /// Number of writes the key has seen.
    pub version: u64,
    /// Remaining TTL of the newest live sibling, in ms.
    pub ttl_remaining_ms: Option<i64>,
}

impl ReadResult {
    /// The client's view of `record` at `now_ms`.
    pub fn from_record(record: Option<&Record>, now_ms: i64) -> Self {
        let Some(record) = record else { return Self::default() };
        let siblings: Vec<Sibling> = record.live_siblings(now_ms).cloned().collect();
        let ttl_remaining_ms = record.newest_live(now_ms).and_then(|s| s.expires_at_ms).map(|at| at - now_ms);
        Self {
            found: !siblings.is_empty(),
            siblings,
            context: Bytes::from(record.clock.encode_context()),
            version: record.version(),
            ttl_remaining_ms,
        }
    }
}

/// The result of a write.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WriteResult {
    /// False when a condition (`if_absent`) stopped the write.
    pub applied: bool,
    /// Whether a live value existed before the write.
    pub existed: bool,
    /// Context after the write.
    pub context: Bytes,
    /// Version after the write.
    pub version: u64,
    /// Timestamp given to the write, µs since the epoch.
    pub timestamp_micros: i64,
}

/// One operation of a batch write.
#[derive(Debug, Clone)]
pub struct BatchOp {
    /// The key.
    pub key: Bytes,
    /// The value; `None` deletes.
    pub value: Option<Bytes>,
    /// Causal context (encoded), empty for blind.
    pub context: Bytes,
    /// TTL in seconds.
    pub ttl_seconds: Option<u64>,
}

/// What a compare-and-set expects the key to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CasExpectation {
    /// The key's version (sum of its clock) equals this; 0 means absent.
    Version(u64),
    /// The key's causal context equals this (encoded).
    Context(Bytes),
    /// The key has exactly one live value, equal to this.
    Value(Bytes),
    /// The key has no live value.
    Absent,
}

/// The result of a compare-and-set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CasOutcome {
    /// True when the swap happened.
    pub applied: bool,
    /// Version after the call.
    pub version: u64,
    /// Context after the call.
    pub context: Bytes,
    /// Current live siblings when not applied.
    pub current: Vec<Sibling>,
}

/// An opaque position to continue a LIST or SCAN from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Cursor(pub Bytes);

/// One key (and optionally its newest value) in a page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageEntry {
    /// The key.
    pub key: Bytes,
    /// Newest live value, when asked for.
    pub value: Option<Bytes>,
}

/// A page of LIST or SCAN.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Page {
    /// Live keys of the page.
    pub entries: Vec<PageEntry>,
    /// Where the next page starts; `None` when this is the last page.
    pub next: Option<Cursor>,
}

/// Decodes a client's context, mapping errors for the client.
pub(crate) fn decode_context(context: &[u8]) -> Result<VersionVector, crate::error::KvError> {
    VersionVector::decode_context(context).map_err(|source| crate::error::KvError::BadContext { source })
}

/// A write as the client asked for it, before a replica of the key applies it.
/// TTLs stay relative and contexts opaque, so a non-replica can forward it to a
/// replica, which computes expiry with its own clock and mints the dot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mutation {
    /// Write a value.
    Put {
        /// The value.
        value: Bytes,
        /// Causal context (encoded), empty for a blind write.
        context: Bytes,
        /// TTL in seconds.
        ttl_seconds: Option<u64>,
        /// Only when the key has no live value.
        if_absent: bool,
    },
    /// Write a tombstone.
    Delete {
        /// Causal context (encoded), empty for everything the replica has.
        context: Bytes,
    },
    /// Rewrite the newest value with a new TTL (0 clears it).
    Touch {
        /// TTL in seconds.
        ttl_seconds: u64,
    },
    /// Add to a decimal counter.
    Increment {
        /// Delta.
        delta: i64,
        /// TTL in seconds; the counter keeps its TTL when absent.
        ttl_seconds: Option<u64>,
    },
    /// Compare-and-set.
    Cas {
        /// What the key must be.
        expected: CasExpectation,
        /// The new value.
        new_value: Bytes,
        /// TTL in seconds.
        ttl_seconds: Option<u64>,
    },
}

impl Mutation {
    /// Operation name for metrics and logs.
    pub fn name(&self) -> &'static str {
        match self {
            Mutation::Put { .. } => "put",
            Mutation::Delete { .. } => "delete",
            Mutation::Touch { .. } => "touch",
            Mutation::Increment { .. } => "incr",
            Mutation::Cas { .. } => "cas",
        }
    }

    /// True for writes whose outcome depends on the current value (CAS,
    /// increment, put-if-absent): they are coordinated by the key's first live
    /// replica, so that two of them on one key meet under one node's key lock
    /// instead of each deciding on its own copy. Without failures that makes
    /// them serial; across a coordinator failure or a view disagreement it does
    /// not (that takes Paxos, see the README's known limits).
    pub fn is_conditional(&self) -> bool {
        matches!(self, Mutation::Cas { .. } | Mutation::Increment { .. } | Mutation::Put { if_absent: true, .. })
    }
}
