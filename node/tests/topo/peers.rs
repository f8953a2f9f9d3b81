//! The calls topology makes to other nodes, over the [`SimNetwork`]:
//! [`SimStreamPeers`] carries each [`StreamPeers`] call through the network's
//! fault pipeline (delay, loss, partitions, crashes, counters) and serves it
//! on arrival with the target's real `StreamingService` (what the gRPC server
//! runs), converting with the same functions as `GrpcStreamPeers`. Only the
//! gRPC framing is left out.
//!
//! [`pump_membership`] stands in for gossip, which has its own simulation
//! (`gossip_sim.rs`): every interval each running node sends its own member
//! (status, tokens, generation, actor) to every other node over the same
//! network, and a receiver keeps only the newest copy from each sender.
//! Liveness stays under the test's control, as in `SimCluster`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use ringkv_node::membership::{ClusterView, Member, MemberStatus};
use ringkv_node::peer::SimNetwork;
use ringkv_node::peer::streaming::{
    StreamingService, description, fetch_request, fetched_page, peer_error, progress_from_wire, status_to_wire,
};
use ringkv_node::topology::{
    Description, FetchPage, FetchedPage, ProgressSnapshot, StreamPeers, Topology, TopologyError,
};
use ringkv_node::transport::TransportError;
use ringkv_proto::cluster::v1 as pb;
use ringkv_proto::cluster::v1::streaming_server::Streaming;
use tonic::Request;

/// Deadline of one topology call (virtual time; `GrpcStreamPeers` allows 30 s).
const CALL_TIMEOUT: Duration = Duration::from_secs(2);
/// Sends of one topology call before a lost message fails it.
const SENDS: u32 = 3;
/// Deadline of a `stream_pending` call, which lasts as long as the streaming
/// (`GrpcStreamPeers` allows a day; a lost request or reply surfaces here).
const STREAM_TIMEOUT: Duration = Duration::from_secs(10);

/// Every running node's topology, by address.
#[derive(Debug, Default)]
pub struct Directory {
    nodes: Mutex<BTreeMap<SocketAddr, (String, Topology)>>,
}

impl Directory {
    /// Serves `addr` (host `host`) with `topology`.
    pub fn register(&self, addr: SocketAddr, host: &str, topology: Topology) {
        self.nodes.lock().unwrap_or_else(PoisonError::into_inner).insert(addr, (host.to_owned(), topology));
    }

    /// Nothing serves `addr` any more (the process is gone).
    pub fn unregister(&self, addr: SocketAddr) {
        self.nodes.lock().unwrap_or_else(PoisonError::into_inner).remove(&addr);
    }

    fn get(&self, addr: SocketAddr) -> Option<(String, Topology)> {
        self.nodes.lock().unwrap_or_else(PoisonError::into_inner).get(&addr).cloned()
    }

    /// Every running node's view.
    pub fn views(&self) -> Vec<(String, Arc<ClusterView>)> {
        let nodes = self.nodes.lock().unwrap_or_else(PoisonError::into_inner);
        nodes.values().map(|(h, t)| (h.clone(), Arc::clone(t.view()))).collect()
    }
}

/// One node's [`StreamPeers`] over the simulated network.
#[derive(Debug)]
pub struct SimStreamPeers {
    pub net: Arc<SimNetwork>,
    pub from: String,
    pub directory: Arc<Directory>,
}

fn transport_error(peer: SocketAddr, e: TransportError) -> TopologyError {
    TopologyError::Peer { peer: peer.to_string(), message: e.to_string() }
}

impl SimStreamPeers {
    /// Carries one call to `peer`, served there by its `StreamingService`.
    /// A call whose request or reply the network lost is sent again, up to
    /// [`SENDS`] times, as TCP retransmits under a gRPC call (every topology
    /// call is idempotent); a crashed or cut-off peer fails it at once.
    fn call<T, F, Fut>(
        &self,
        peer: SocketAddr,
        timeout: Duration,
        serve: F,
    ) -> BoxFuture<'static, Result<T, TopologyError>>
    where
        T: Send + 'static,
        F: Fn(StreamingService) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<T, tonic::Status>> + Send + 'static,
    {
        let Some((host, topology)) = self.directory.get(peer) else {
            let e = TopologyError::Peer { peer: peer.to_string(), message: "connection refused".into() };
            return futures::future::ready(Err(e)).boxed();
        };
        let (net, from, serve) = (Arc::clone(&self.net), self.from.clone(), Arc::new(serve));
        async move {
            let mut sends = 1;
            loop {
                let (topology, serve) = (topology.clone(), Arc::clone(&serve));
                let carried = net.carry(&from, &host, timeout, move || serve(StreamingService::new(topology)).boxed());
                match carried.await {
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

/// Newest copy of each sender's member a receiver applied, by (receiver, sender).
#[derive(Debug, Default)]
pub struct Pumped {
    seq: AtomicU64,
    applied: Mutex<BTreeMap<(String, String), u64>>,
}

/// One round of the gossip stand-in: every running node sends its own member to every other.
pub fn pump_membership(net: &Arc<SimNetwork>, directory: &Directory, pumped: &Arc<Pumped>) {
    let views = directory.views();
    for (from, from_view) in &views {
        let member: Member = Member::clone(&from_view.local());
        for (to, to_view) in views.iter().filter(|(h, _)| h != from) {
            let seq = pumped.seq.fetch_add(1, Ordering::Relaxed);
            let (member, to_view, pumped, key) =
                (member.clone(), Arc::clone(to_view), Arc::clone(pumped), (to.clone(), from.clone()));
            let carried = net.carry(from, to, CALL_TIMEOUT, move || {
                async move {
                    let mut applied = pumped.applied.lock().unwrap_or_else(PoisonError::into_inner);
                    if applied.get(&key).is_none_or(|s| *s < seq) {
                        applied.insert(key, seq);
                        to_view.upsert(member);
                    }
                }
                .boxed()
            });
            tokio::spawn(carried);
        }
    }
}
