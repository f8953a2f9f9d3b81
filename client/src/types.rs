//! Request options and results of the typed client methods.
//!
//! Where a proto message already is the natural result (e.g. `PutResponse`)
//! the methods return it as is; the types here exist where the Rust shape
//! differs: a read that found nothing is `None`, not `found: false`, and a
//! CAS expectation is an enum rather than a `oneof` with a `bool` arm.

use bytes::Bytes;
use ringkv_proto::v1::{
    Consistency, GetResponse, KeyResult, Sibling, WriteOp, compare_and_set_request::Expected, write_op::Op,
};

/// The state of a key that exists: its live siblings and causal context.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// All concurrent versions; exactly one unless writes conflicted.
    pub siblings: Vec<Sibling>,
    /// Opaque causal context: pass it to the next write of this key so that
    /// it supersedes exactly these siblings.
    pub context: Bytes,
    /// Number of writes this key has seen.
    pub version: u64,
    /// Remaining TTL of the newest sibling in milliseconds, when it has one.
    pub ttl_remaining_ms: Option<i64>,
}

impl Record {
    /// The value when there is exactly one sibling and it is not a delete marker.
    pub fn value(&self) -> Option<&Bytes> {
        match self.siblings.as_slice() {
            [only] if !only.tombstone => Some(&only.value),
            _ => None,
        }
    }

    /// True when concurrent writes left more than one sibling to resolve.
    pub fn has_conflict(&self) -> bool {
        self.siblings.len() > 1
    }

    pub(crate) fn from_get(response: GetResponse) -> Option<Self> {
        response.found.then(|| Self {
            siblings: response.siblings,
            context: response.context,
            version: response.version,
            ttl_remaining_ms: response.ttl_remaining_ms,
        })
    }

    pub(crate) fn from_key_result(result: KeyResult) -> (Bytes, Option<Self>) {
        let record = result.found.then(|| Self {
            siblings: result.siblings,
            context: result.context,
            version: result.version,
            ttl_remaining_ms: None,
        });
        (result.key, record)
    }
}

/// Options of [`Client::put`](crate::Client::put).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PutOptions {
    /// Time to live in seconds; `None` or `Some(0)` means the keyspace default.
    pub ttl_seconds: Option<u64>,
    /// Causal context from a previous read; empty for a blind write.
    pub context: Bytes,
    /// Only write when the key has no live value.
    pub if_absent: bool,
    /// Overrides the client's consistency for this request.
    pub consistency: Option<Consistency>,
}

/// What the key must currently be for a compare-and-set to apply.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CasExpectation {
    /// The key's version (number of writes seen) must be this.
    Version(u64),
    /// The key's causal context must be this (from a previous read).
    Context(Bytes),
    /// The key's single live value must be this.
    Value(Bytes),
    /// The key must have no live value.
    Absent,
}

impl CasExpectation {
    pub(crate) fn into_proto(self) -> Expected {
        match self {
            Self::Version(version) => Expected::ExpectedVersion(version),
            Self::Context(context) => Expected::ExpectedContext(context),
            Self::Value(value) => Expected::ExpectedValue(value),
            Self::Absent => Expected::ExpectAbsent(true),
        }
    }
}

/// One operation of [`Client::batch_write`](crate::Client::batch_write).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BatchOp {
    /// Writes a value.
    Put {
        /// The key.
        key: Bytes,
        /// The new value.
        value: Bytes,
        /// Causal context from a previous read; empty for a blind write.
        context: Bytes,
        /// Time to live in seconds; `None` means the keyspace default.
        ttl_seconds: Option<u64>,
    },
    /// Deletes a key.
    Delete {
        /// The key.
        key: Bytes,
        /// Causal context from a previous read; empty for a blind delete.
        context: Bytes,
    },
}

impl BatchOp {
    /// A blind put without TTL.
    pub fn put(key: impl Into<Bytes>, value: impl Into<Bytes>) -> Self {
        Self::Put { key: key.into(), value: value.into(), context: Bytes::new(), ttl_seconds: None }
    }

    /// A blind delete.
    pub fn delete(key: impl Into<Bytes>) -> Self {
        Self::Delete { key: key.into(), context: Bytes::new() }
    }

    pub(crate) fn into_proto(self) -> WriteOp {
        match self {
            Self::Put { key, value, context, ttl_seconds } => {
                WriteOp { key, op: Some(Op::Put(value)), context, ttl_seconds }
            }
            Self::Delete { key, context } => {
                WriteOp { key, op: Some(Op::Delete(Default::default())), context, ttl_seconds: None }
            }
        }
    }
}

/// Options of [`Client::list`](crate::Client::list).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListOptions {
    /// Maximum number of keys; 0 lets the server choose (100).
    pub limit: u32,
    /// Cursor from a previous response; empty to start.
    pub cursor: Bytes,
    /// Also return the values (first sibling).
    pub include_values: bool,
}

/// Options of [`Client::scan`](crate::Client::scan).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScanOptions {
    /// Cursor from a previous response; empty to start.
    pub cursor: Bytes,
    /// Maximum number of keys; 0 lets the server choose (1000).
    pub count: u32,
    /// Also return the values (first sibling).
    pub include_values: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sibling(value: &'static str, tombstone: bool) -> Sibling {
        Sibling { value: Bytes::from_static(value.as_bytes()), tombstone, ..Default::default() }
    }

    #[test]
    fn not_found_is_none() {
        assert_eq!(Record::from_get(GetResponse::default()), None);
    }

    #[test]
    fn value_only_without_conflict_or_tombstone() {
        let mut response = GetResponse { found: true, siblings: vec![sibling("a", false)], ..Default::default() };
        let record = Record::from_get(response.clone()).expect("found");
        assert_eq!(record.value().map(|v| &v[..]), Some(&b"a"[..]));
        response.siblings.push(sibling("", true));
        let record = Record::from_get(response).expect("found");
        assert!(record.has_conflict());
        assert_eq!(record.value(), None);
    }

    #[test]
    fn expectations_map_to_the_oneof() {
        assert_eq!(CasExpectation::Absent.into_proto(), Expected::ExpectAbsent(true));
        assert_eq!(CasExpectation::Version(3).into_proto(), Expected::ExpectedVersion(3));
        let op = BatchOp::delete("k").into_proto();
        assert!(matches!(op.op, Some(Op::Delete(_))));
    }
}
