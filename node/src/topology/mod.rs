//! Topology: the node lifecycle (join, decommission, replace, removenode)
//! and the range streaming that moves data when the ring changes.
//!
//! - `moves` (pure): which ranges a ring transition moves, to whom and from
//!   where ([`pending_moves`], [`replace_moves`]).
//! - `stream`: [`Streamer`] pulls ranges page by page in token order,
//!   throttled, resumable from positions kept in the meta partition.
//! - `progress`: [`StreamProgress`] (status and `ringkv_streaming_*` metrics), [`Throttle`].
//! - `lifecycle`: [`Topology`], the state machine of the local node and the
//!   driver of decommission; `removal`: its removenode half.
//! - `turn` (pure): whose turn it is to form or join when many fresh nodes
//!   start at once; `entry`: the waiting loop of a fresh node around it.
//! - `identity`: the node's persistent identity (host id, tokens,
//!   generation, version-vector actor) in the storage's metadata.
//! - `readiness` (pure): whether the node can serve its ranges (`/readyz`).
//! - `peers`: [`StreamPeers`], the calls to other nodes (the narrow port;
//!   its gRPC client, the `ringkv.cluster.v1.Streaming` server and the
//!   proto conversions are `peer::streaming`).
//!
//! Invariants: one topology change at a time in the cluster (a change is
//! refused while any member is JOINING with tokens, LEAVING or REPLACING;
//! fresh nodes queue for their turn); a node only
//! becomes NORMAL after every range it gained is streamed in; streamed
//! records are merged with the normal version-vector merge, so streaming is
//! idempotent and resumable. May call `membership` (the [`ClusterView`],
//! and the `GossipHandle` for removals), `ring`, `storage`, `replication`, `transport` and `hints`; never `peer`, tonic or the protos
//! (the node's `assembly` hands it its [`StreamPeers`]).
//!
//! [`ClusterView`]: crate::membership::ClusterView

mod entry;
mod error;
pub mod identity;
mod lifecycle;
mod moves;
mod peers;
mod progress;
mod readiness;
mod removal;
mod stream;
mod turn;

pub use entry::FRESH_STATE;
pub use error::TopologyError;
pub use lifecycle::{Reservation, STATE_KEY, Topology, TopologySettings};
pub use moves::{RangeMove, moved_width, pending_moves, replace_moves};
pub use peers::{Described, Description, FetchPage, FetchedPage, Segment, StreamPeers};
pub use progress::{ProgressSnapshot, StreamProgress, Throttle};
pub use readiness::can_serve;
pub use stream::{StreamSettings, Streamer, segments};
pub use turn::{Turn, is_moving, is_undecided, turn, yield_to};
