//! Membership: which nodes form the cluster, their tokens, and which are alive.
//!
//! [`ClusterView`] is the interface the coordinator reads: members, the ring
//! built from their tokens, and liveness. It is filled by gossip:
//! - [`Gossiper`] (sans-IO): Cassandra-style [`EndpointState`]s exchanged in
//!   SYN/ACK/ACK2 rounds ([`digest`]), and per-peer phi-accrual failure
//!   detection ([`phi`]) fed by direct pings to every peer;
//! - [`GossipWorker`] (async shell): ticks the core every interval, sends its
//!   SYNs through a [`GossipTransport`] (gRPC: `peer::GrpcGossipTransport`
//!   and the service `peer::GossipService`, in the peer layer), and applies
//!   its events to the view;
//! - [`saved`]: the peers' states a node keeps across restarts, and
//!   [`resolve`]: the names (seeds, peers' advertised names) looked up again
//!   on a schedule.
//!
//! Invariants: the local member is always present and alive; the ring is
//! rebuilt whenever a member's tokens, zone or rack change; every liveness
//! change bumps the version seen by [`ClusterView::subscribe`]; the failure
//! detector never removes a member; a LEFT host id never comes back (see
//! [`endpoint`]'s merge).

pub mod digest;
pub mod endpoint;
mod gossiper;
mod metrics;
pub mod phi;
pub mod resolve;
pub mod saved;
mod shell;
#[cfg(test)]
mod shell_tests;
mod transport;
mod view;
pub mod wire;

pub use digest::{GossipAck, GossipAck2, GossipDigest, GossipPing, GossipSyn};
pub use endpoint::{AppStateKey, AppValue, EndpointState, HeartbeatState, VersionedValue};
pub use gossiper::{GossipEvent, Gossiper, Outgoing, Probe, TargetReason};
pub use metrics::GossipMetrics;
pub use phi::{ArrivalWindow, DetectorConfig, PhiAccrualDetector};
pub use resolve::{DnsResolver, Resolver, StaticResolver};
pub use shell::{GossipHandle, GossipWorker};
pub use transport::GossipTransport;
pub use view::{ClusterView, Liveness, Member, MemberStatus};
