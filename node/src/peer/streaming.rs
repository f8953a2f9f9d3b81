//! Topology over gRPC (`ringkv.cluster.v1.Streaming`): [`GrpcStreamPeers`],
//! the implementation of `topology::StreamPeers`; [`StreamingService`], what
//! a node answers to peers that stream from it or drive a topology change;
//! the proto conversions both ends (and the simulated peers of the tests)
//! use. Its errors become statuses in [`super::status`].
//!
//! Invariants: every call has a deadline (sent as `grpc-timeout`); nothing
//! from the network panics (a record that does not decode fails its page).
//! This module may call `topology`, `membership`, `storage`, `peer::{pool,
//! call, convert}` and the generated protos only.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use ringkv_proto::cluster::v1 as pb;
use ringkv_proto::cluster::v1::streaming_client::StreamingClient;
use ringkv_proto::cluster::v1::streaming_server::{Streaming, StreamingServer};
use tonic::transport::Channel;
use tonic::{Request, Response, Status};

use crate::membership::MemberStatus;
use crate::storage::{ScanPosition, StoredRecord};
use crate::topology::{
    Described, Description, FetchPage, FetchedPage, ProgressSnapshot, StreamPeers, Topology, TopologyError,
};
use crate::transport::TransportError;

use super::MAX_MESSAGE_BYTES;
use super::convert::{member_from_proto, member_to_proto, record_from_proto, record_to_proto};
use super::pool::ChannelPool;
use super::status::topology_status;

/// Most records one page may carry, whatever the requester asks.
const MAX_PAGE: u32 = 4096;

/// The gRPC face of [`Topology`].
#[derive(Debug, Clone)]
pub struct StreamingService {
    topology: Topology,
}

impl StreamingService {
    /// The service of `topology` (in process: simulations call it without gRPC).
    pub fn new(topology: Topology) -> Self {
        Self { topology }
    }
}

/// The service, ready to add to the node's gRPC server.
pub fn streaming_server(topology: Topology) -> StreamingServer<StreamingService> {
    StreamingServer::new(StreamingService { topology })
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES)
}

#[tonic::async_trait]
impl Streaming for StreamingService {
    async fn fetch_range(
        &self,
        request: Request<pb::FetchRangeRequest>,
    ) -> Result<Response<pb::FetchRangeResponse>, Status> {
        let req = request.into_inner();
        let limit = req.limit.clamp(1, MAX_PAGE) as usize;
        let after = match (req.after, req.lower) {
            (Some(p), _) => Some(ScanPosition { token: p.token, keyspace: p.keyspace, key: p.key }),
            // Strictly after (lower + 1, "", ""): every record of token > lower (no keyspace is empty).
            (None, Some(lower)) if lower < u64::MAX => {
                Some(ScanPosition { token: lower + 1, keyspace: String::new(), key: bytes::Bytes::new() })
            }
            (None, Some(_)) => return Ok(Response::new(pb::FetchRangeResponse { records: Vec::new(), done: true })),
            (None, None) => None,
        };
        let records = self.topology.fetch_range(after, req.upper, limit).await.map_err(|e| topology_status(&e))?;
        let done = records.len() < limit;
        let records = records
            .into_iter()
            .map(|r| pb::StreamedRecord {
                token: r.token,
                record: Some(record_to_proto(&r.record)),
                keyspace: r.keyspace,
                key: r.key,
            })
            .collect();
        Ok(Response::new(pb::FetchRangeResponse { records, done }))
    }

    async fn describe_member(
        &self,
        request: Request<pb::DescribeMemberRequest>,
    ) -> Result<Response<pb::DescribeMemberResponse>, Status> {
        let host_id = request.into_inner().host_id;
        let view = self.topology.view();
        let ring_nodes = view.ring().node_count() as u32;
        let resp = match view.member(&host_id) {
            Some(m) => pb::DescribeMemberResponse {
                known: true,
                member: Some(member_to_proto(&m)),
                alive: view.is_alive(&host_id),
                ring_nodes,
            },
            None => pb::DescribeMemberResponse { ring_nodes, ..Default::default() },
        };
        Ok(Response::new(resp))
    }

    async fn set_member_status(
        &self,
        request: Request<pb::SetMemberStatusRequest>,
    ) -> Result<Response<pb::SetMemberStatusResponse>, Status> {
        let req = request.into_inner();
        let status = match pb::MemberStatus::try_from(req.status) {
            Ok(pb::MemberStatus::Leaving) => MemberStatus::Leaving,
            Ok(pb::MemberStatus::Left) => MemberStatus::Left,
            _ => return Err(Status::invalid_argument("only LEAVING and LEFT can be set on another member")),
        };
        self.topology.set_member_status(&req.host_id, status).map_err(|e| topology_status(&e))?;
        Ok(Response::new(pb::SetMemberStatusResponse {}))
    }

    async fn stream_pending(
        &self,
        request: Request<pb::StreamPendingRequest>,
    ) -> Result<Response<pb::StreamPendingResponse>, Status> {
        let prefer = Some(request.into_inner().prefer_source_host_id).filter(|p| !p.is_empty());
        let (records, bytes) = self.topology.stream_pending(prefer).await.map_err(|e| topology_status(&e))?;
        Ok(Response::new(pb::StreamPendingResponse { records, bytes }))
    }

    async fn progress(&self, _: Request<pb::ProgressRequest>) -> Result<Response<pb::ProgressResponse>, Status> {
        Ok(Response::new(progress_to_wire(self.topology.progress().snapshot())))
    }
}

/// [`StreamPeers`] over gRPC: a [`ChannelPool`] of its own and [`call`](super::call::call).
#[derive(Debug)]
pub struct GrpcStreamPeers {
    call_timeout: Duration,
    pool: Arc<ChannelPool>,
}

impl GrpcStreamPeers {
    /// Calls time out after `call_timeout` (streaming a whole node's ranges is bounded separately).
    pub fn new(call_timeout: Duration) -> Self {
        Self { call_timeout, pool: Arc::new(ChannelPool::new(Duration::from_secs(2))) }
    }

    /// One call to `peer` under `timeout`, its answer converted by `decode`.
    fn call<M, R, T, F, Fut>(
        &self,
        peer: SocketAddr,
        msg: M,
        timeout: Duration,
        call: F,
        decode: impl FnOnce(R) -> Result<T, TopologyError> + Send + 'static,
    ) -> BoxFuture<'static, Result<T, TopologyError>>
    where
        M: Send + 'static,
        R: Send + 'static,
        T: Send + 'static,
        F: FnOnce(StreamingClient<Channel>, Request<M>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<Response<R>, Status>> + Send,
    {
        let pool = Arc::clone(&self.pool);
        async move {
            let name = peer.to_string();
            let answer = super::call::call(&pool, peer, &name, timeout, msg, client, call)
                .await
                .map_err(|e| transport_error(peer, e))?;
            decode(answer)
        }
        .boxed()
    }
}

fn client(channel: Channel) -> StreamingClient<Channel> {
    StreamingClient::new(channel)
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES)
}

/// The topology error of a failed call to `addr` (a refusal keeps the peer's
/// status and message, as [`peer_error`] does).
fn transport_error(addr: SocketAddr, e: TransportError) -> TopologyError {
    let message = match e {
        TransportError::Remote { code, rkv_code: Some(rkv), message, .. } => format!("{code}: [{rkv}] {message}"),
        TransportError::Remote { code, message, .. } => format!("{code}: {message}"),
        other => other.to_string(),
    };
    TopologyError::Peer { peer: addr.to_string(), message }
}

/// The error of a call to `addr` that ended with `status`.
pub fn peer_error(addr: SocketAddr, status: tonic::Status) -> TopologyError {
    TopologyError::Peer { peer: addr.to_string(), message: format!("{}: {}", status.code(), status.message()) }
}

/// The wire form of a page request (shared with simulated peers, which call
/// the [`StreamingService`](super::StreamingService) in process).
pub fn fetch_request(req: FetchPage) -> pb::FetchRangeRequest {
    pb::FetchRangeRequest {
        lower: req.segment.lower,
        upper: req.segment.upper,
        after: req.after.map(|p| pb::ScanPosition { token: p.token, keyspace: p.keyspace, key: p.key }),
        limit: req.limit,
        requester_host_id: req.requester,
    }
}

/// A page as `peer` answered it; a record that does not decode fails the page.
pub fn fetched_page(peer: SocketAddr, resp: pb::FetchRangeResponse) -> Result<FetchedPage, TopologyError> {
    let mut bytes = 0u64;
    let mut records = Vec::with_capacity(resp.records.len());
    for r in resp.records {
        let encoded = r.record.unwrap_or_default();
        bytes += (encoded.bytes.len() + r.key.len() + r.keyspace.len() + 8) as u64;
        let record = record_from_proto(&encoded, "StreamedRecord.record")
            .map_err(|e| TopologyError::Peer { peer: peer.to_string(), message: e.to_string() })?;
        records.push(StoredRecord { token: r.token, keyspace: r.keyspace, key: r.key, record });
    }
    Ok(FetchedPage { records, bytes, done: resp.done })
}

/// What `peer` answered about a member.
pub fn description(peer: SocketAddr, resp: pb::DescribeMemberResponse) -> Result<Description, TopologyError> {
    let member = match (resp.known, resp.member) {
        (true, Some(info)) => {
            let member = member_from_proto(info)
                .map_err(|e| TopologyError::Peer { peer: peer.to_string(), message: e.to_string() })?;
            Some(Described { member, alive: resp.alive })
        }
        _ => None,
    };
    Ok(Description { member, ring_nodes: resp.ring_nodes })
}

/// A peer's streaming progress from its wire form.
pub fn progress_from_wire(p: pb::ProgressResponse) -> ProgressSnapshot {
    ProgressSnapshot {
        operation: p.operation,
        ranges_total: p.ranges_total,
        ranges_done: p.ranges_done,
        records: p.records,
        bytes: p.bytes,
        active: p.active,
        waiting: p.waiting,
    }
}

/// This node's streaming progress in its wire form.
pub fn progress_to_wire(p: ProgressSnapshot) -> pb::ProgressResponse {
    pb::ProgressResponse {
        operation: p.operation,
        ranges_total: p.ranges_total,
        ranges_done: p.ranges_done,
        records: p.records,
        bytes: p.bytes,
        active: p.active,
        waiting: p.waiting,
    }
}

/// The wire form of a member status (for SetMemberStatus).
pub fn status_to_wire(status: &MemberStatus) -> i32 {
    (match status {
        MemberStatus::Joining => pb::MemberStatus::Joining,
        MemberStatus::Normal => pb::MemberStatus::Normal,
        MemberStatus::Leaving => pb::MemberStatus::Leaving,
        MemberStatus::Left => pb::MemberStatus::Left,
        MemberStatus::Replacing { .. } => pb::MemberStatus::Replacing,
    }) as i32
}

impl StreamPeers for GrpcStreamPeers {
    fn fetch(&self, peer: SocketAddr, req: FetchPage) -> BoxFuture<'static, Result<FetchedPage, TopologyError>> {
        let msg = fetch_request(req);
        self.call(
            peer,
            msg,
            self.call_timeout,
            |mut c, r| async move { c.fetch_range(r).await },
            move |resp| fetched_page(peer, resp),
        )
    }

    fn describe(&self, peer: SocketAddr, host_id: &str) -> BoxFuture<'static, Result<Description, TopologyError>> {
        let msg = pb::DescribeMemberRequest { host_id: host_id.to_owned() };
        self.call(
            peer,
            msg,
            self.call_timeout,
            |mut c, r| async move { c.describe_member(r).await },
            move |resp| description(peer, resp),
        )
    }

    fn set_status(
        &self,
        peer: SocketAddr,
        host_id: &str,
        status: MemberStatus,
    ) -> BoxFuture<'static, Result<(), TopologyError>> {
        let msg = pb::SetMemberStatusRequest { host_id: host_id.to_owned(), status: status_to_wire(&status) };
        self.call(peer, msg, self.call_timeout, |mut c, r| async move { c.set_member_status(r).await }, |_| Ok(()))
    }

    fn stream_pending(
        &self,
        peer: SocketAddr,
        prefer: Option<String>,
    ) -> BoxFuture<'static, Result<(u64, u64), TopologyError>> {
        let msg = pb::StreamPendingRequest { prefer_source_host_id: prefer.unwrap_or_default() };
        // Streaming a node's share of the data takes as long as it takes; the receiver throttles it.
        let timeout = Duration::from_secs(24 * 3600);
        self.call(
            peer,
            msg,
            timeout,
            |mut c, r| async move { c.stream_pending(r).await },
            |resp| Ok((resp.records, resp.bytes)),
        )
    }

    fn progress(&self, peer: SocketAddr) -> BoxFuture<'static, Result<ProgressSnapshot, TopologyError>> {
        self.call(
            peer,
            pb::ProgressRequest {},
            self.call_timeout,
            |mut c, r| async move { c.progress(r).await },
            |p| Ok(progress_from_wire(p)),
        )
    }
}
