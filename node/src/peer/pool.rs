//! [`ChannelPool`]: the one per-peer connection pool of the node.
//!
//! One lazily connected tonic [`Channel`] per peer address. HTTP/2
//! multiplexes every call to that peer over it, and tonic reconnects it when
//! the peer closes it. A call that times out evicts it ([`ChannelPool::evict`],
//! done by [`super::call`]): a connection whose packets a network cut dropped
//! stays open and waits out TCP's retransmission backoff (seconds, doubling)
//! after the network heals, so the next call dials anew instead.
//!
//! Each client keeps its own pool (gossip never queues behind bulk replica
//! writes on one connection), but every pool is this type.
//!
//! Invariants: at most one channel per address; creating one never blocks
//! (the connection is made by the first call, bounded by the connect
//! timeout). This module may call tonic's transport and `transport::TransportError` only.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tonic::transport::{Channel, Endpoint};

use crate::transport::TransportError;

/// Pooled channels to peers, one per address; see the module docs.
#[derive(Debug)]
pub struct ChannelPool {
    connect_timeout: Duration,
    channels: Mutex<HashMap<SocketAddr, Channel>>,
}

impl ChannelPool {
    /// An empty pool whose connection attempts give up after `connect_timeout`.
    pub fn new(connect_timeout: Duration) -> Self {
        Self { connect_timeout, channels: Mutex::new(HashMap::new()) }
    }

    /// The channel to `addr`, created on first use. Must run inside the
    /// runtime: creating a channel spawns its worker task.
    pub fn channel(&self, addr: SocketAddr, peer: &str) -> Result<Channel, TransportError> {
        let mut channels = self.channels.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(channel) = channels.get(&addr) {
            return Ok(channel.clone());
        }
        let endpoint = Endpoint::from_shared(format!("http://{addr}")).map_err(|e| TransportError::Unreachable {
            peer: peer.to_owned(),
            reason: format!("invalid endpoint: {e}"),
        })?;
        let channel = endpoint.connect_timeout(self.connect_timeout).tcp_nodelay(true).connect_lazy();
        tracing::debug!(%addr, "created channel to peer");
        channels.insert(addr, channel.clone());
        Ok(channel)
    }

    /// Drops the channel to `addr`: the next call dials anew. Calls in flight
    /// keep their clone of the old channel; it closes when they end.
    pub fn evict(&self, addr: SocketAddr) {
        self.channels.lock().unwrap_or_else(PoisonError::into_inner).remove(&addr);
    }

    /// Number of peers with a pooled channel.
    pub fn len(&self) -> usize {
        self.channels.lock().unwrap_or_else(PoisonError::into_inner).len()
    }

    /// No peer has a pooled channel.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
