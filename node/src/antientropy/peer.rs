//! [`AntiEntropyPeer`]: what one replica asks another during a repair, as a
//! narrow trait with two implementations: [`LocalReplica`](super::LocalReplica)
//! (this node, and other nodes in in-process tests) and `peer::GrpcPeer`
//! (`ringkv.cluster.v1.AntiEntropy`, in the peer layer).

use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;

use crate::error::KvError;
use crate::ring::TokenRange;
use crate::storage::StorageError;
use crate::transport::TransportError;
use crate::version::Record;

use super::merkle::Hash;

/// Names one tree: a keyspace, a token range and the tree depth.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TreeRef {
    /// Keyspace.
    pub keyspace: String,
    /// Token range `(start, end]`.
    pub range: TokenRange,
    /// `2^depth` leaf buckets.
    pub depth: u32,
}

/// What a replica says about its tree of a range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TreeSummary {
    /// Root hash.
    pub root: Hash,
    /// Records the tree covers.
    pub records: u64,
    /// Bytes (keys plus encoded records) the tree covers.
    pub bytes: u64,
    /// Unix ms of the scan that last built the tree.
    pub built_at_ms: i64,
}

/// A key with its record.
pub type KeyedRecord = (Bytes, Record);

/// Why an anti-entropy step failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AeError {
    /// Local storage failed.
    #[error("anti-entropy storage access failed: {source}")]
    Storage {
        /// The storage error.
        #[from]
        source: StorageError,
    },
    /// Merging a record into local storage failed.
    #[error("merging a repaired record of keyspace {keyspace:?} failed: {source}")]
    Merge {
        /// Keyspace.
        keyspace: String,
        /// Why.
        source: KvError,
    },
    /// The peers were configured with different tree depths.
    #[error(
        "Merkle tree depth differs: this node uses {ours}, the peer asked for {theirs}; set the same [antientropy] depth on every node"
    )]
    DepthMismatch {
        /// Ours.
        ours: u32,
        /// Theirs.
        theirs: u32,
    },
    /// The tree was asked for before it was prepared.
    #[error("no Merkle tree of keyspace {keyspace:?} range {range:?} here; PrepareTree must come first")]
    NoTree {
        /// Keyspace.
        keyspace: String,
        /// Range.
        range: TokenRange,
    },
    /// A call to a peer failed (unreachable, timed out, refused with a stable code).
    #[error("anti-entropy call failed: {source}; the range is retried at the next repair")]
    Peer {
        /// What happened, typed (the peer's `RKV-…` code when it refused).
        #[from]
        source: TransportError,
    },
    /// A peer's answer could not be understood.
    #[error("peer {peer} sent a malformed anti-entropy answer: {reason}")]
    Malformed {
        /// The peer.
        peer: String,
        /// What was wrong.
        reason: String,
    },
    /// Another repair runs on this node.
    #[error("a repair is already running on this node; wait for it to finish and retry")]
    Busy,
    /// The blocking task running a storage step died (shutdown).
    #[error("anti-entropy task stopped: the node is shutting down")]
    ShuttingDown,
}

/// The calls a repair makes to one replica of a range.
pub trait AntiEntropyPeer: Send + Sync + std::fmt::Debug {
    /// Makes sure the replica's tree exists and was built at most `max_age` ago; returns its summary.
    fn prepare_tree(&self, tree: &TreeRef, max_age: Duration) -> BoxFuture<'static, Result<TreeSummary, AeError>>;

    /// Hashes of nodes `indices` of `level`.
    fn tree_level(
        &self,
        tree: &TreeRef,
        level: u32,
        indices: Vec<u32>,
    ) -> BoxFuture<'static, Result<Vec<Hash>, AeError>>;

    /// Every record of the leaf buckets `buckets`.
    fn bucket_records(
        &self,
        tree: &TreeRef,
        buckets: Vec<u32>,
    ) -> BoxFuture<'static, Result<Vec<KeyedRecord>, AeError>>;

    /// Merges records into the replica's copies; returns how many were merged.
    fn merge_records(&self, keyspace: &str, records: Vec<KeyedRecord>) -> BoxFuture<'static, Result<u32, AeError>>;
}
