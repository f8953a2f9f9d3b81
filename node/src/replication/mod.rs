//! Replication: the [`Coordinator`] that serves every client operation.
//!
//! The coordinator validates input (sizes, keyspace, TTL, consistency),
//! resolves consistency levels against the keyspace's replication factor,
//! and performs read-modify-write under a per-key lock ([`KeyLocks`]) so that
//! version counters and CAS/increment are atomic on this node. Storage calls
//! run on the blocking pool; acknowledgements wait for the durability ticket.
//!
//! Each responsibility has its policy as a pure decision and a thin async
//! shell that sends, collects and asks it:
//! - the write path (`write_path.rs`, shell) and `WritePolicy`
//!   (`write_policy.rs`): a replica of the key coordinates and sends the new
//!   record to all N replicas in parallel; the policy says whom to send to,
//!   whom to hint and when the client's answer is decided;
//! - hinted handoff (`handoff.rs`): `HintPolicy` picks the stand-in of each
//!   hint and whether hints count toward W (sloppy quorum, ANY);
//! - the read path (`read_path.rs`, shell) and `ReadPolicy`
//!   (`read_policy.rs`): whom to ask, when to answer, the merged record;
//! - read repair (`read_repair.rs`): `ReadRepair` names the stale replicas
//!   and checks that a blocking repair left the answer on enough of them.
//!
//! A [`QuorumTracker`] counts acknowledgements for the policies. New read or
//! write strategies (digest reads, speculative retry, Paxos) are new
//! policies over the same shells. The node's shared parts ([`NodeParts`]:
//! storage, view, transport, hints) are built by the node's assembly and
//! handed to each component at construction; the coordinator hands none out.
//! This module may call `storage`, `version`, `ring`, `clock`, `config`,
//! `error`, `metrics`, `membership`, `transport` and `hints`; never `peer` or
//! tonic. One known break: `metrics.rs` labels errors with
//! `server::status::classify` (listed in `node/tests/deps.rs`).

mod consistency;
mod coordinator;
mod handoff;
mod keyspaces;
mod locks;
mod metrics;
mod mutation;
mod ops;
mod paging;
mod parts;
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
pub use coordinator::Coordinator;
pub use keyspaces::{Keyspace, Keyspaces};
pub use locks::KeyLocks;
pub use metrics::ReplicationMetrics;
pub use ops::{
    BatchOp, CasExpectation, CasOutcome, Cursor, Mutation, Page, PageEntry, PutOptions, ReadResult, WriteResult,
};
pub use paging::{DEFAULT_LIST_LIMIT, DEFAULT_SCAN_COUNT, MAX_PAGE};
pub use parts::{ClusterSettings, CoordinatorParts, Limits, NodeParts};
pub use purge::{RepairHistory, SoleReplica};
pub use quorum::{QuorumFailure, QuorumGroup, QuorumOutcome, QuorumTracker};
pub use replica::handler;
