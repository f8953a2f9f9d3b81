//! Topology: the node lifecycle (join, decommission, replace, removenode)
//! and the range streaming that moves data when the ring changes.
//!
//! - `moves` (pure): which ranges a ring transition moves, to whom and from
//!   where ([`pending_moves`], [`replace_moves`]).
//! - `stream`: [`Streamer`] pulls ranges page by page in token order,
//!   throttled, resumable from positions kept in the meta partition.
//! - `progress`: [`StreamProgress`] (status and `ringkv_streaming_*` metrics), [`Throttle`].
//! - `lifecycle`: [`Topology`], the state machine of the local node and the
//!   driver of decommission and removenode.
//! - `peers`: [`StreamPeers`], the calls to other nodes, over gRPC ([`GrpcStreamPeers`]).
//! - `service`: the `ringkv.cluster.v1.Streaming` server.
//!
//! Invariants: one topology change at a time in the cluster (a change is
//! refused while any member is JOINING, LEAVING or REPLACING); a node only
//! becomes NORMAL after every range it gained is streamed in; streamed
//! records are merged with the normal version-vector merge, so streaming is
//! idempotent and resumable. May call `membership` (the [`ClusterView`],
//! and the `GossipHandle` for removals), `ring`, `storage`, `replication`, `transport` and `hints`.
//!
//! [`ClusterView`]: crate::membership::ClusterView

mod error;
mod lifecycle;
mod moves;
mod peers;
mod progress;
mod service;
mod stream;

pub use error::TopologyError;
pub use lifecycle::{Reservation, STATE_KEY, Topology, TopologySettings};
pub use moves::{RangeMove, moved_width, pending_moves, replace_moves};
pub use peers::{
    Described, Description, FetchPage, FetchedPage, GrpcStreamPeers, Segment, StreamPeers, description, fetch_request,
    fetched_page, peer_error, status_to_wire,
};
pub use progress::{ProgressSnapshot, StreamProgress, Throttle};
pub use service::{StreamingService, streaming_server, topology_status};
pub use stream::{StreamSettings, Streamer, segments};
