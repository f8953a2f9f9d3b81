//! The peer layer: everything a node sends to another node over the network.
//!
//! One [`ChannelPool`] type (a lazily connected channel per peer, a connect
//! timeout, eviction after a timed-out call), one [`call`](call::call)
//! helper (a unary call under a deadline, sent as `grpc-timeout` too, ending
//! in a typed [`TransportError`] that keeps the peer's stable `RKV-…` code),
//! and one place for the proto conversions of replica messages
//! ([`convert`]). Every node-to-node client is here and implements its
//! domain's narrow port trait:
//! - [`GrpcTransport`]: the replica `transport::Transport` (`Replica` service);
//! - [`GrpcConnector`]/[`GrpcPeer`]: `antientropy::AntiEntropyPeer` (`AntiEntropy`);
//! - [`GrpcGossipTransport`]: `membership::GossipTransport` (`Gossip`);
//! - [`GrpcStreamPeers`]: `topology::StreamPeers` (`Streaming`).
//!
//! For simulations, one [`SimNetwork`] implements all four ports
//! ([`SimTransport`], [`SimGossipTransport`], [`SimConnector`],
//! [`SimStreamPeers`]) under one fault pipeline and one set of counters.
//!
//! Layering: this module may call the domain modules (`transport`,
//! `antientropy`, `membership`, `topology`, `version`, `ring`, `storage`,
//! `replication` types) and `error`; nothing below it (those modules) may
//! call `peer`, so that mutual TLS, per-peer limits or a new message kind are
//! written once, here.

mod antientropy;
mod batch;
pub mod call;
pub mod convert;
mod gossip;
pub mod pool;
mod replica;
mod replica_service;
mod server;
mod sim;
pub mod status;
pub mod streaming;

pub use antientropy::{GrpcConnector, GrpcPeer, anti_entropy_server, test_hooks_server};
pub use convert::ConvertError;
pub use gossip::{GossipService, GrpcGossipTransport};
pub use pool::ChannelPool;
pub use replica::GrpcTransport;
pub use replica_service::{ReplicaService, replica_server};
pub use server::ClusterServices;
pub use sim::{Protocol, SimConnector, SimGossipTransport, SimNetwork, SimStats, SimStreamPeers, SimTransport};
pub use status::topology_status;
pub use streaming::{GrpcStreamPeers, StreamingService, streaming_server};

/// Largest message sent or accepted between nodes. A replica message carries
/// at most a record with its siblings (about twice the value limit) or a batch
/// of hints, so this is generous on purpose.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;
