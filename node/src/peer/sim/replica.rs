//! [`SimTransport`]: the replica [`Transport`] over a [`SimNetwork`].
//!
//! A call is served on arrival by the target's registered
//! [`ReplicaHandler`]. A handler error becomes the [`TransportError`] the gRPC
//! client would end with for the status the gRPC server sends for it (same
//! classification, `server::status::classify`), built directly as the typed
//! error: an UNAVAILABLE class is `Unreachable`, DEADLINE_EXCEEDED is
//! `Timeout`, anything else `Remote` with its [`RemoteStatus`] and stable
//! `RKV-…` code. No tonic status is built on the way.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::FutureExt;
use futures::future::BoxFuture;

use crate::error::{KvError, RemoteStatus};
use crate::transport::{
    CoordinateCall, CoordinateReply, HintedWrite, PageItem, PageQuery, Peer, ReplicaHandler, ReplicaWrite, Transport,
    TransportError,
};
use crate::version::Record;

use super::{Protocol, SimNetwork};

/// One node's [`Transport`] over a [`SimNetwork`]. Cheap to clone.
#[derive(Debug, Clone)]
pub struct SimTransport {
    network: Arc<SimNetwork>,
    from: String,
}

impl SimTransport {
    /// The transport of the node `from_host` on `network`.
    pub fn new(network: Arc<SimNetwork>, from_host: impl Into<String>) -> Self {
        Self { network, from: from_host.into() }
    }

    /// The network this transport sends on.
    pub fn network(&self) -> &Arc<SimNetwork> {
        &self.network
    }

    /// One replica call to `to` through the fault pipeline, served by its handler.
    fn call<T, F>(&self, to: &Peer, op: F) -> BoxFuture<'static, Result<T, TransportError>>
    where
        T: Send + 'static,
        F: FnOnce(Arc<dyn ReplicaHandler>) -> BoxFuture<'static, Result<T, KvError>> + Send + 'static,
    {
        let timeout = self.network.replica_timeout();
        let host = to.host_id.clone();
        let target = host.clone();
        let serve = move |net: &SimNetwork| net.service(&target, |s| s.replica.clone()).map(op);
        let carried = self.network.carry_as(Protocol::Replica, &self.from, &host, timeout, serve);
        async move { carried.await?.map_err(|e| remote_error(&host, timeout, &e)) }.boxed()
    }
}

/// What the gRPC client reports for the status the gRPC server sends for
/// `err`, built as the typed error.
fn remote_error(peer: &str, timeout: Duration, err: &KvError) -> TransportError {
    let class = crate::server::status::classify(err);
    let peer = peer.to_owned();
    match super::super::call::remote_status(class.grpc) {
        RemoteStatus::Unavailable => TransportError::Unreachable { peer, reason: format!("[{}] {err}", class.code) },
        RemoteStatus::DeadlineExceeded => TransportError::Timeout { peer, timeout },
        code => TransportError::Remote { peer, code, rkv_code: Some(class.code.to_owned()), message: err.to_string() },
    }
}

impl Transport for SimTransport {
    fn read(
        &self,
        to: &Peer,
        keyspace: &str,
        key: &Bytes,
    ) -> BoxFuture<'static, Result<Option<Record>, TransportError>> {
        let (keyspace, key) = (keyspace.to_owned(), key.clone());
        self.call(to, move |h| h.handle_read(keyspace, key))
    }

    fn write(&self, to: &Peer, write: ReplicaWrite) -> BoxFuture<'static, Result<(), TransportError>> {
        self.call(to, move |h| h.handle_write(write))
    }

    fn page(&self, to: &Peer, query: PageQuery) -> BoxFuture<'static, Result<Vec<PageItem>, TransportError>> {
        self.call(to, move |h| h.handle_page(query))
    }

    fn deliver_hints(
        &self,
        to: &Peer,
        _from_host_id: &str,
        hints: Vec<HintedWrite>,
    ) -> BoxFuture<'static, Result<u32, TransportError>> {
        self.call(to, move |h| h.handle_hints(hints))
    }

    fn coordinate(
        &self,
        to: &Peer,
        call: CoordinateCall,
    ) -> BoxFuture<'static, Result<CoordinateReply, TransportError>> {
        self.call(to, move |h| h.handle_coordinate(call))
    }
}

#[cfg(test)]
mod tests {
    use std::future::ready;
    use std::net::SocketAddr;

    use super::*;
    use crate::membership::Member;
    use tokio::time::Instant;

    #[derive(Debug)]
    struct Echo;

    impl ReplicaHandler for Echo {
        fn handle_read(&self, _: String, _: Bytes) -> BoxFuture<'static, Result<Option<Record>, KvError>> {
            ready(Ok(None)).boxed()
        }
        fn handle_write(&self, _: ReplicaWrite) -> BoxFuture<'static, Result<(), KvError>> {
            ready(Err(KvError::ShuttingDown)).boxed()
        }
        fn handle_hints(&self, hints: Vec<HintedWrite>) -> BoxFuture<'static, Result<u32, KvError>> {
            ready(Ok(hints.len() as u32)).boxed()
        }
        fn handle_coordinate(&self, _: CoordinateCall) -> BoxFuture<'static, Result<CoordinateReply, KvError>> {
            ready(Err(KvError::NotAnInteger)).boxed()
        }
        fn handle_page(&self, _: PageQuery) -> BoxFuture<'static, Result<Vec<PageItem>, KvError>> {
            ready(Ok(Vec::new())).boxed()
        }
    }

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
            status: crate::membership::MemberStatus::Normal,
        }
    }

    fn network(seed: u64) -> (Arc<SimNetwork>, SimTransport, Peer) {
        let net = Arc::new(SimNetwork::new(seed));
        let b = member("b", 2);
        net.register(&member("a", 1), Arc::new(Echo));
        net.register(&b, Arc::new(Echo));
        (Arc::clone(&net), SimTransport::new(net, "a"), Peer::from(&b))
    }

    // These run on real time (the library's tests do not need tokio's test-util), so durations stay tiny.
    #[tokio::test(flavor = "current_thread")]
    async fn faults_fail_calls_and_are_counted() {
        let (net, t, b) = network(1);
        assert_eq!(t.read(&b, "ks", &Bytes::new()).await, Ok(None));
        net.crash("b");
        assert!(matches!(t.read(&b, "ks", &Bytes::new()).await, Err(TransportError::Unreachable { .. })));
        net.restart("b");
        net.cut("b", "a");
        assert!(matches!(t.read(&b, "ks", &Bytes::new()).await, Err(TransportError::Unreachable { .. })));
        net.heal();
        net.set_drop_probability(1.0);
        net.set_replica_timeout(Duration::from_millis(20));
        let started = Instant::now();
        assert!(matches!(t.read(&b, "ks", &Bytes::new()).await, Err(TransportError::Timeout { .. })));
        assert!(started.elapsed() >= Duration::from_millis(20), "a lost message surfaces at the deadline");
        let s = net.stats();
        assert_eq!((s.sent, s.delivered, s.dropped), (4, 1, 1));
        assert_eq!((s.refused_by_crash, s.refused_by_partition), (1, 1));
        assert_eq!(net.stats_of(Protocol::Replica), s, "replica calls are counted as such");
        assert_eq!(net.stats_of(Protocol::Gossip), crate::peer::SimStats::default());
    }

    #[tokio::test(flavor = "current_thread")]
    async fn other_services_ride_the_same_faults() {
        let (net, _, _) = network(3);
        let timeout = Duration::from_millis(20);
        let answer = net.carry("a", "b", timeout, || std::future::ready(7u32).boxed()).await;
        assert_eq!(answer, Ok(7));
        net.cut("a", "b");
        let refused = net.carry("a", "b", timeout, || std::future::ready(7u32).boxed()).await;
        assert!(matches!(refused, Err(TransportError::Unreachable { .. })), "{refused:?}");
        net.heal();
        let unknown = net.carry("a", "nobody", timeout, || std::future::ready(7u32).boxed()).await;
        assert!(matches!(unknown, Err(TransportError::Unreachable { .. })), "{unknown:?}");
        let s = net.stats();
        assert_eq!((s.sent, s.delivered, s.refused_by_partition, s.refused_by_crash), (3, 1, 1, 1));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn handler_errors_map_like_grpc_and_calls_are_delayed() {
        let (net, t, b) = network(2);
        net.set_delay(Duration::from_millis(2), Duration::from_millis(4));
        let started = Instant::now();
        let call = CoordinateCall {
            keyspace: "ks".into(),
            key: Bytes::from_static(b"k"),
            mutation: crate::replication::Mutation::Delete { context: Bytes::new() },
            consistency: crate::replication::Consistency::default(),
        };
        assert!(matches!(t.coordinate(&b, call).await, Err(TransportError::Remote { .. })));
        assert!(started.elapsed() >= Duration::from_millis(4), "a request and its reply are each delayed");
        let w = ReplicaWrite { keyspace: "ks".into(), key: Bytes::new(), record: Record::default(), hint_for: None };
        assert!(
            matches!(t.write(&b, w).await, Err(TransportError::Unreachable { .. })),
            "shutting down is UNAVAILABLE"
        );
        assert_eq!(net.stats().delivered, 2);
    }
}
