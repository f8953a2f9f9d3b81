//! [`GossipTransport`]: how gossip messages reach a peer, the narrow port
//! the gossip shell calls. Its gRPC implementation
//! (`peer::GrpcGossipTransport`) and the receiving `ringkv.cluster.v1.Gossip`
//! service live in the `peer` layer; the tests' in-memory networks implement
//! it too.
//!
//! This module may call `membership::digest` and `transport::TransportError` only.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use futures::future::BoxFuture;

use crate::transport::TransportError;

use super::digest::{GossipAck, GossipAck2, GossipPing, GossipSyn};

/// How gossip messages reach a peer (a narrow trait of our own, not `Transport`).
pub trait GossipTransport: fmt::Debug + Send + Sync + 'static {
    /// Sends a SYN to `to`; the answer is its ACK.
    fn syn(&self, to: SocketAddr, syn: GossipSyn) -> BoxFuture<'static, Result<GossipAck, TransportError>>;
    /// Sends the ACK2 that closes a round to `to`.
    fn ack2(&self, to: SocketAddr, ack2: GossipAck2) -> BoxFuture<'static, Result<(), TransportError>>;
    /// Probes `to`; the answer is its own probe. Fails after `timeout`
    /// (the gossip interval, so that probes never pile up).
    fn ping(
        &self,
        to: SocketAddr,
        ping: GossipPing,
        timeout: Duration,
    ) -> BoxFuture<'static, Result<GossipPing, TransportError>>;
    /// Drops the pooled connection to `to`: the next call dials anew (see
    /// [`super::Probe::reconnect`]). A transport without a pool ignores it.
    fn reconnect(&self, _to: SocketAddr) {}
}
