//! Replication: the [`Coordinator`] that serves every client operation.
//!
//! The coordinator validates input (sizes, keyspace, TTL, consistency),
//! resolves consistency levels against the keyspace's replication factor,
//! and performs read-modify-write under a per-key lock ([`KeyLocks`]) so that
//! version counters and CAS/increment are atomic on this node. Storage calls
//! run on the blocking pool; acknowledgements wait for the durability ticket.
//!
//! Today the replica set of every key is this node alone (replication factor
//! 1); the quorum path over N replicas plugs in behind the same operations.
//! This module may call `storage`, `version`, `ring`, `clock` and `config`.

mod consistency;
mod coordinator;
mod keyspaces;
mod locks;
mod ops;
mod paging;
mod purge;
mod quorum;
#[cfg(test)]
mod tests;

pub use consistency::{
    Access, Consistency, ConsistencyError, ConsistencyLevel, UnknownConsistency, required_replicas,
};
pub use coordinator::{Coordinator, Limits};
pub use keyspaces::{Keyspace, Keyspaces};
pub use locks::KeyLocks;
pub use quorum::{QuorumFailure, QuorumGroup, QuorumOutcome, QuorumTracker};
pub use paging::{DEFAULT_LIST_LIMIT, DEFAULT_SCAN_COUNT, MAX_PAGE};
pub use ops::{
    BatchOp, CasExpectation, CasOutcome, Cursor, Page, PageEntry, PutOptions, ReadResult, WriteResult,
};
