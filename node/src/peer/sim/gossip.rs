//! [`SimGossipTransport`]: the gossip port (`membership::GossipTransport`)
//! over a [`SimNetwork`], so that the production `GossipWorker` (its ticks,
//! concurrent rounds, probes bounded by the interval, and the phi-accrual
//! verdicts of its core) runs in a simulation under the same faults as
//! replica calls. A SYN, an ACK2 or a probe goes to the host registered at
//! the target address ([`SimNetwork::serve_gossip`]) and is answered there by
//! its [`GossipHandle`], as `GossipService` answers over gRPC; messages stay
//! typed (no proto round trip). Counted under [`Protocol::Gossip`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;

use crate::membership::{GossipAck, GossipAck2, GossipHandle, GossipPing, GossipSyn, GossipTransport};
use crate::transport::TransportError;

use super::{Protocol, SimNetwork};

/// One node's [`GossipTransport`] over a [`SimNetwork`]. Cheap to clone.
#[derive(Debug, Clone)]
pub struct SimGossipTransport {
    net: Arc<SimNetwork>,
    from: String,
    call_timeout: Duration,
}

impl SimGossipTransport {
    /// The gossip transport of node `from` on `net`; SYNs and ACK2s fail with
    /// `Timeout` after `call_timeout` (`gossip.call_timeout_ms` on a node).
    pub fn new(net: Arc<SimNetwork>, from: &str, call_timeout: Duration) -> Self {
        Self { net, from: from.to_owned(), call_timeout }
    }

    /// Carries one gossip message to the host at `to`, answered there by `answer`.
    fn call<T, F>(&self, to: SocketAddr, timeout: Duration, answer: F) -> BoxFuture<'static, Result<T, TransportError>>
    where
        T: Send + 'static,
        F: FnOnce(&GossipHandle) -> T + Send + 'static,
    {
        let Some(host) = self.net.host_at(to) else {
            let e = TransportError::Unreachable { peer: to.to_string(), reason: "connection refused".into() };
            return futures::future::ready(Err(e)).boxed();
        };
        let target = host.clone();
        let serve = move |net: &SimNetwork| {
            let gossip = net.service(&target, |s| s.gossip.clone())?;
            Some(futures::future::ready(answer(&gossip)).boxed())
        };
        self.net.carry_as(Protocol::Gossip, &self.from, &host, timeout, serve)
    }
}

impl GossipTransport for SimGossipTransport {
    fn syn(&self, to: SocketAddr, syn: GossipSyn) -> BoxFuture<'static, Result<GossipAck, TransportError>> {
        self.call(to, self.call_timeout, move |g| g.on_syn(&syn))
    }

    fn ack2(&self, to: SocketAddr, ack2: GossipAck2) -> BoxFuture<'static, Result<(), TransportError>> {
        self.call(to, self.call_timeout, move |g| g.on_ack2(&ack2))
    }

    fn ping(
        &self,
        to: SocketAddr,
        ping: GossipPing,
        timeout: Duration,
    ) -> BoxFuture<'static, Result<GossipPing, TransportError>> {
        self.call(to, timeout, move |g| g.on_ping(&ping))
    }
}
