//! [`TopologyError`]: why a topology change or a stream failed.

use crate::error::KvError;
use crate::storage::StorageError;

/// Why a topology change was refused or failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TopologyError {
    /// Another change is under way (one at a time in the cluster).
    #[error(
        "another topology change is under way: {host_id} is {status}; wait until it is NORMAL or LEFT (kvctl status), then retry"
    )]
    Busy {
        /// The member that is moving.
        host_id: String,
        /// Its status.
        status: &'static str,
    },
    /// Removing a node would leave fewer nodes than the replication factor.
    #[error(
        "refusing to {what}: the cluster would keep {remaining} NORMAL nodes, fewer than the replication factor {rf}; add a node first"
    )]
    TooFewNodes {
        /// The refused operation.
        what: &'static str,
        /// NORMAL nodes after the change.
        remaining: usize,
        /// Largest replication factor of any keyspace.
        rf: u32,
    },
    /// No member has this host id.
    #[error("no member has host id {host_id}; check it with kvctl status")]
    UnknownHost {
        /// The host id given.
        host_id: String,
    },
    /// The node to replace or remove still answers.
    #[error(
        "node {host_id} is alive; only a dead node can be {what} (decommission a live one instead, or stop it first)"
    )]
    HostAlive {
        /// The live node.
        host_id: String,
        /// `replaced` or `removed`.
        what: &'static str,
    },
    /// The node has already left the ring.
    #[error("node {host_id} has already left the ring")]
    AlreadyLeft {
        /// The node.
        host_id: String,
    },
    /// The operation must run on another node or in another state.
    #[error("{reason}")]
    Precondition {
        /// What is wrong and what to do.
        reason: String,
    },
    /// A range has no live replica to stream from.
    #[error(
        "no live replica to stream range ({start}, {end}] from (tried {tried}); bring a replica back, then the stream resumes"
    )]
    NoSource {
        /// Range start (exclusive).
        start: u64,
        /// Range end (inclusive).
        end: u64,
        /// Hosts tried.
        tried: String,
    },
    /// A peer call failed.
    #[error("call to {peer} failed: {message}")]
    Peer {
        /// The peer's address or host id.
        peer: String,
        /// What went wrong.
        message: String,
    },
    /// Local storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// Merging a streamed record failed.
    #[error("cannot merge a streamed record: {0}")]
    Merge(#[from] KvError),
    /// The node is stopping.
    #[error("the node is shutting down; the stream resumes after restart")]
    Stopped,
}

impl TopologyError {
    /// The stable code a user can search for.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Busy { .. } => "RKV-TOPOLOGY-BUSY",
            Self::TooFewNodes { .. } => "RKV-TOO-FEW-NODES",
            Self::UnknownHost { .. } => "RKV-UNKNOWN-HOST",
            Self::HostAlive { .. } => "RKV-HOST-ALIVE",
            Self::AlreadyLeft { .. } => "RKV-HOST-LEFT",
            Self::Precondition { .. } => "RKV-TOPOLOGY-PRECONDITION",
            Self::NoSource { .. } | Self::Peer { .. } => "RKV-STREAM",
            Self::Storage(_) | Self::Merge(_) => "RKV-STORAGE",
            Self::Stopped => "RKV-SHUTTING-DOWN",
        }
    }
}
