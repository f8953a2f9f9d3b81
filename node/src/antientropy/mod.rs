//! Anti-entropy: Merkle-tree repair between the replicas of each token range
//! (Riak's active anti-entropy, Cassandra's `nodetool repair`).
//!
//! - [`merkle`] (pure): [`MerkleTree`] over `2^depth` token buckets of one
//!   range (leaf = wrapping sum of record hashes, updatable in O(1)),
//!   [`Descent`], the top-down comparison as a state machine.
//! - [`trees`]: [`TreeStore`], the trees of this node per (keyspace, range),
//!   in memory, updated on write and rebuilt by throttled scans.
//! - [`tracked`]: [`TrackedStorage`], the [`Storage`](crate::storage::Storage)
//!   decorator that feeds every record write into the trees.
//! - [`peer`]: [`AntiEntropyPeer`], the narrow trait a repair calls;
//!   [`replica`]: [`LocalReplica`], this node's side (in-process
//!   implementation). The `ringkv.cluster.v1.AntiEntropy` server, the gRPC
//!   client (`peer::GrpcPeer`) and the test hooks live in the `peer` layer.
//! - [`session`]: one range's repair with its peers; [`plan`] (pure): which
//!   ranges this node repairs with whom; [`repairer`]: a whole repair with
//!   progress; [`history`]: persisted "last full sync" per range, and the
//!   rule the tombstone purge asks; [`worker`]: [`RepairWorker`], the schedule.
//!
//! Invariants: repaired records are merged with the normal version-vector
//! merge on both sides (never overwritten), so a repair loses nothing; only
//! the records of differing buckets travel. This module may call `storage`,
//! `version`, `ring`, `membership`, `replication` (merging, keyspaces, the
//! purge's [`RepairHistory`](crate::replication::RepairHistory)), `transport`
//! (its error type), `clock` and `worker`; never `peer`, `server`, tonic or the protos.

pub mod assembly;
pub mod history;
pub mod merkle;
pub mod peer;
pub mod plan;
pub mod repairer;
pub mod replica;
pub mod session;
pub mod tracked;
pub mod trees;
pub mod worker;

pub use assembly::AntiEntropyNode;
pub use history::SyncHistory;
pub use merkle::{Descent, Hash, MerkleTree};
pub use peer::{AeError, AntiEntropyPeer, KeyedRecord, TreeRef, TreeSummary};
pub use plan::PlannedRange;
pub use repairer::{PeerConnector, RepairProgress, RepairRequest, Repairer, RepairerParts};
pub use replica::{LocalReplica, RecordMerger, Throttle};
pub use session::{MaxAge, RangeOutcome, RepairStats, repair_range, sync_pair};
pub use tracked::TrackedStorage;
pub use trees::TreeStore;
pub use worker::RepairWorker;
