//! Replication: the [`Coordinator`] that serves every client operation.
//!
//! The coordinator validates input (sizes, keyspace, TTL, consistency),
//! resolves consistency levels against the keyspace's replication factor,
//! and performs read-modify-write under a per-key lock ([`KeyLocks`]) so that
//! version counters and CAS/increment are atomic on this node. Storage calls
//! run on the blocking pool; acknowledgements wait for the durability ticket.
//!
//! Writes are coordinated by a replica of the key and sent to all N replicas
//! in parallel (`write_path.rs`); reads ask the replicas, merge and repair
//! (`read_path.rs`); a [`QuorumTracker`] decides each request. Replicas that
//! miss a write get hints. This module may call `storage`, `version`, `ring`,
//! `clock`, `config`, `error`, `metrics`, `membership`, `transport` and
//! `hints`; never `peer` or tonic. One known break: `metrics.rs` labels errors
//! with `server::status::classify` (listed in `node/tests/deps.rs`).

mod consistency;
mod coordinator;
mod handoff;
mod keyspaces;
mod locks;
mod metrics;
mod mutation;
mod ops;
mod paging;
mod placement;
mod purge;
mod quorum;
mod read_path;
mod read_policy;
mod read_repair;
mod replica;
#[cfg(test)]
mod tests;
mod write_path;
mod write_policy;

pub use consistency::{Access, Consistency, ConsistencyError, ConsistencyLevel, UnknownConsistency, required_replicas};
pub use coordinator::{ClusterSettings, Coordinator, CoordinatorParts, Limits};
pub use keyspaces::{Keyspace, Keyspaces};
pub use locks::KeyLocks;
pub use metrics::ReplicationMetrics;
pub use ops::{
    BatchOp, CasExpectation, CasOutcome, Cursor, Mutation, Page, PageEntry, PutOptions, ReadResult, WriteResult,
};
pub use paging::{DEFAULT_LIST_LIMIT, DEFAULT_SCAN_COUNT, MAX_PAGE};
pub use purge::{RepairHistory, SoleReplica};
pub use quorum::{QuorumFailure, QuorumGroup, QuorumOutcome, QuorumTracker};
pub use replica::handler;
