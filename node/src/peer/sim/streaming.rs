//! [`SimStreamPeers`]: the calls topology makes to other nodes
//! (`topology::StreamPeers`) over a [`SimNetwork`]. Each call crosses the
//! network's fault pipeline (counted under [`Protocol::Streaming`]) to the
//! host registered at the peer's address ([`SimNetwork::serve_streaming`])
//! and is served there by the real [`StreamingService`] over that host's
//! `Topology` (what the gRPC server runs), with the same conversions as
//! `GrpcStreamPeers` on both ends: the service's handlers, its page limit
//! and its error statuses are exercised, only the gRPC framing is left out.
//!
//! A call whose request or reply the network lost is sent again, up to
//! [`SENDS`] times, as TCP retransmits under a gRPC call (every topology call
//! is idempotent); a crashed or cut-off peer fails it at once.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use ringkv_proto::cluster::v1 as pb;
use ringkv_proto::cluster::v1::streaming_server::Streaming;
use tonic::Request;

use crate::membership::MemberStatus;
use crate::peer::streaming::{
    StreamingService, description, fetch_request, fetched_page, peer_error, progress_from_wire, status_to_wire,
};
use crate::topology::{Description, FetchPage, FetchedPage, ProgressSnapshot, StreamPeers, TopologyError};
use crate::transport::TransportError;

use super::{Protocol, SimNetwork};

/// Deadline of one topology call (virtual time; `GrpcStreamPeers` allows 30 s).
const CALL_TIMEOUT: Duration = Duration::from_secs(2);
/// Sends of one topology call before a lost message fails it.
const SENDS: u32 = 3;
/// Deadline of a `stream_pending` call, which lasts as long as the streaming
/// (`GrpcStreamPeers` allows a day; a lost request or reply surfaces here).
const STREAM_TIMEOUT: Duration = Duration::from_secs(10);

/// One node's [`StreamPeers`] over the simulated network.
#[derive(Debug, Clone)]
pub struct SimStreamPeers {
    net: Arc<SimNetwork>,
    from: String,
}

fn transport_error(peer: SocketAddr, e: TransportError) -> TopologyError {
    TopologyError::Peer { peer: peer.to_string(), message: e.to_string() }
}

impl SimStreamPeers {
    /// The stream peers of node `from` on `net`.
    pub fn new(net: Arc<SimNetwork>, from: &str) -> Self {
        Self { net, from: from.to_owned() }
    }

    /// Carries one call to `peer`, served there by its `StreamingService`.
    fn call<T, F, Fut>(
        &self,
        peer: SocketAddr,
        timeout: Duration,
        serve: F,
    ) -> BoxFuture<'static, Result<T, TopologyError>>
    where
        T: Send + 'static,
        F: Fn(StreamingService) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<T, tonic::Status>> + Send + 'static,
    {
        let Some(host) = self.net.host_at(peer) else {
            let e = TopologyError::Peer { peer: peer.to_string(), message: "connection refused".into() };
            return futures::future::ready(Err(e)).boxed();
        };
        let (net, from, serve) = (Arc::clone(&self.net), self.from.clone(), Arc::new(serve));
        async move {
            let mut sends = 1;
            loop {
                let (target, serve) = (host.clone(), Arc::clone(&serve));
                let on_arrival = move |net: &SimNetwork| {
                    let topology = net.service(&target, |s| s.streaming.clone())?;
                    Some(serve(StreamingService::new(topology)).boxed())
                };
                match net.carry_as(Protocol::Streaming, &from, &host, timeout, on_arrival).await {
                    Ok(Ok(answer)) => return Ok(answer),
                    Ok(Err(status)) => return Err(peer_error(peer, status)),
                    Err(TransportError::Timeout { .. }) if sends < SENDS => sends += 1,
                    Err(e) => return Err(transport_error(peer, e)),
                }
            }
        }
        .boxed()
    }
}

impl StreamPeers for SimStreamPeers {
    fn fetch(&self, peer: SocketAddr, req: FetchPage) -> BoxFuture<'static, Result<FetchedPage, TopologyError>> {
        let msg = fetch_request(req);
        let call = self.call(peer, CALL_TIMEOUT, move |s| {
            let msg = msg.clone();
            async move { s.fetch_range(Request::new(msg)).await }
        });
        async move { fetched_page(peer, call.await?.into_inner()) }.boxed()
    }

    fn describe(&self, peer: SocketAddr, host_id: &str) -> BoxFuture<'static, Result<Description, TopologyError>> {
        let msg = pb::DescribeMemberRequest { host_id: host_id.to_owned() };
        let call = self.call(peer, CALL_TIMEOUT, move |s| {
            let msg = msg.clone();
            async move { s.describe_member(Request::new(msg)).await }
        });
        async move { description(peer, call.await?.into_inner()) }.boxed()
    }

    fn set_status(
        &self,
        peer: SocketAddr,
        host_id: &str,
        status: MemberStatus,
    ) -> BoxFuture<'static, Result<(), TopologyError>> {
        let msg = pb::SetMemberStatusRequest { host_id: host_id.to_owned(), status: status_to_wire(&status) };
        let call = self.call(peer, CALL_TIMEOUT, move |s| {
            let msg = msg.clone();
            async move { s.set_member_status(Request::new(msg)).await }
        });
        async move { call.await.map(|_| ()) }.boxed()
    }

    fn stream_pending(
        &self,
        peer: SocketAddr,
        prefer: Option<String>,
    ) -> BoxFuture<'static, Result<(u64, u64), TopologyError>> {
        let msg = pb::StreamPendingRequest { prefer_source_host_id: prefer.unwrap_or_default() };
        let call = self.call(peer, STREAM_TIMEOUT, move |s| {
            let msg = msg.clone();
            async move { s.stream_pending(Request::new(msg)).await }
        });
        async move {
            let resp = call.await?.into_inner();
            Ok((resp.records, resp.bytes))
        }
        .boxed()
    }

    fn progress(&self, peer: SocketAddr) -> BoxFuture<'static, Result<ProgressSnapshot, TopologyError>> {
        let call = self
            .call(peer, CALL_TIMEOUT, move |s| async move { s.progress(Request::new(pb::ProgressRequest {})).await });
        async move { Ok(progress_from_wire(call.await?.into_inner())) }.boxed()
    }
}
