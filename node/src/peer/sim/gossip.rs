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

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::*;
    use crate::membership::{ClusterView, DetectorConfig, Gossiper, Member, MemberStatus};
    use crate::peer::SimStats;

    fn member(host: &str, port: u16) -> Member {
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        Member {
            host_id: host.into(),
            node_id: u64::from(port),
            grpc_addr: addr,
            http_addr: addr,
            zone: String::new(),
            rack: String::new(),
            tokens: vec![u64::from(port)],
            generation: 1,
            status: MemberStatus::Normal,
        }
    }

    fn serve(net: &SimNetwork, m: &Member) {
        let core = Gossiper::new(m, Vec::new(), DetectorConfig::default());
        net.serve_gossip(m.grpc_addr, &m.host_id, GossipHandle::new(core, Arc::new(ClusterView::new(m.clone())), None));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn gossip_is_answered_by_the_handle_and_its_faults_are_counted_as_gossip() {
        let net = Arc::new(SimNetwork::new(5));
        let (a, b) = (member("a", 1), member("b", 2));
        serve(&net, &a);
        serve(&net, &b);
        let t = SimGossipTransport::new(Arc::clone(&net), "a", Duration::from_millis(20));
        let syn = GossipSyn { from: "a".into(), digests: Vec::new() };
        assert!(t.syn(b.grpc_addr, syn.clone()).await.is_ok(), "b's handle answers the SYN");
        net.cut("a", "b");
        let cut = t.syn(b.grpc_addr, syn.clone()).await;
        assert!(matches!(cut, Err(TransportError::Unreachable { .. })), "{cut:?}");
        net.heal();
        let nobody = t.syn(SocketAddr::from(([127, 0, 0, 1], 9)), syn).await;
        assert!(matches!(nobody, Err(TransportError::Unreachable { .. })), "nothing at that address: {nobody:?}");
        let s = net.stats_of(Protocol::Gossip);
        assert_eq!((s.sent, s.delivered, s.refused_by_partition), (2, 1, 1));
        assert_eq!(net.stats_of(Protocol::Replica), SimStats::default());
        assert_eq!(net.stats(), s, "the totals hold the gossip counters");
    }
}
