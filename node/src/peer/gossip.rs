//! The gossip wire: [`GrpcGossipTransport`], the gRPC implementation of
//! `membership::GossipTransport`, and the receiving side [`GossipService`]
//! (`ringkv.cluster.v1.Gossip`).
//!
//! Calls go over a [`ChannelPool`] of their own (separate from the replica
//! channels, so that gossip never queues behind bulk writes) through
//! [`call`](super::call::call): a deadline on every call, enforced locally and
//! sent as `grpc-timeout`; errors become [`TransportError`]s, never panics.
//!
//! This module may call `membership` (its port, wire conversions and handle),
//! `peer::{pool, call}`, the generated protos and `transport::TransportError` only.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use ringkv_proto::cluster::v1 as pb;
use ringkv_proto::cluster::v1::gossip_client::GossipClient;
use tonic::transport::Channel;
use tonic::{Request, Response, Status};

use crate::membership::{GossipAck, GossipAck2, GossipHandle, GossipPing, GossipSyn, GossipTransport, wire};
use crate::transport::TransportError;

use super::pool::ChannelPool;

/// [`GossipTransport`] over gRPC with pooled channels and deadlines.
#[derive(Debug, Clone)]
pub struct GrpcGossipTransport {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    call_timeout: Duration,
    pool: ChannelPool,
}

impl GrpcGossipTransport {
    /// Calls fail with `Timeout` after `call_timeout`; connecting gives up after `connect_timeout`.
    pub fn new(call_timeout: Duration, connect_timeout: Duration) -> Self {
        Self { inner: Arc::new(Inner { call_timeout, pool: ChannelPool::new(connect_timeout) }) }
    }

    fn call<M, R, F, Fut>(&self, to: SocketAddr, msg: M, call: F) -> BoxFuture<'static, Result<R, TransportError>>
    where
        M: Send + 'static,
        R: Send + 'static,
        F: FnOnce(GossipClient<Channel>, Request<M>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<Response<R>, Status>> + Send,
    {
        self.call_within(to, msg, self.inner.call_timeout, call)
    }

    fn call_within<M, R, F, Fut>(
        &self,
        to: SocketAddr,
        msg: M,
        timeout: Duration,
        call: F,
    ) -> BoxFuture<'static, Result<R, TransportError>>
    where
        M: Send + 'static,
        R: Send + 'static,
        F: FnOnce(GossipClient<Channel>, Request<M>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<Response<R>, Status>> + Send,
    {
        let inner = Arc::clone(&self.inner);
        Box::pin(async move {
            let peer = to.to_string();
            super::call::call(&inner.pool, to, &peer, timeout, msg, GossipClient::new, call).await
        })
    }
}

impl GossipTransport for GrpcGossipTransport {
    fn reconnect(&self, to: SocketAddr) {
        self.inner.pool.evict(to);
    }

    fn syn(&self, to: SocketAddr, syn: GossipSyn) -> BoxFuture<'static, Result<GossipAck, TransportError>> {
        let call = self.call(to, wire::syn_to_proto(&syn), |mut c, r| async move { c.syn(r).await });
        Box::pin(async move {
            let answer = call.await?;
            wire::ack_from_proto(answer)
                .map_err(|e| TransportError::Malformed { peer: to.to_string(), reason: e.to_string() })
        })
    }

    fn ack2(&self, to: SocketAddr, ack2: GossipAck2) -> BoxFuture<'static, Result<(), TransportError>> {
        let call = self.call(to, wire::ack2_to_proto(&ack2), |mut c, r| async move { c.ack2(r).await });
        Box::pin(async move { call.await.map(|_| ()) })
    }

    fn ping(
        &self,
        to: SocketAddr,
        ping: GossipPing,
        timeout: Duration,
    ) -> BoxFuture<'static, Result<GossipPing, TransportError>> {
        let call = self.call_within(to, wire::ping_to_proto(&ping), timeout, |mut c, r| async move { c.ping(r).await });
        Box::pin(async move { call.await.map(wire::ping_from_proto) })
    }
}

/// The `ringkv.cluster.v1.Gossip` service: hands SYNs and ACK2s to the core.
#[derive(Debug, Clone)]
pub struct GossipService {
    gossip: GossipHandle,
}

impl GossipService {
    /// A service feeding `gossip`.
    pub fn new(gossip: GossipHandle) -> Self {
        Self { gossip }
    }

    /// The core this service feeds.
    pub fn handle(&self) -> GossipHandle {
        self.gossip.clone()
    }

    /// The tonic server for this service.
    pub fn into_server(self) -> pb::gossip_server::GossipServer<Self> {
        pb::gossip_server::GossipServer::new(self)
    }
}

#[tonic::async_trait]
impl pb::gossip_server::Gossip for GossipService {
    async fn syn(&self, request: Request<pb::GossipSynRequest>) -> Result<Response<pb::GossipAckResponse>, Status> {
        let syn = wire::syn_from_proto(request.into_inner());
        let ack = self.gossip.on_syn(&syn);
        Ok(Response::new(wire::ack_to_proto(&ack)))
    }

    async fn ack2(&self, request: Request<pb::GossipAck2Request>) -> Result<Response<pb::GossipAck2Response>, Status> {
        let ack2 = wire::ack2_from_proto(request.into_inner()).map_err(|e| super::status::bad_gossip(&e))?;
        self.gossip.on_ack2(&ack2);
        Ok(Response::new(pb::GossipAck2Response {}))
    }

    async fn ping(&self, request: Request<pb::GossipPing>) -> Result<Response<pb::GossipPing>, Status> {
        let pong = self.gossip.on_ping(&wire::ping_from_proto(request.into_inner()));
        Ok(Response::new(wire::ping_to_proto(&pong)))
    }
}
