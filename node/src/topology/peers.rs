//! [`StreamPeers`]: the calls topology makes to other nodes (a narrow trait
//! of its own, beside the replica `Transport`), with [`GrpcStreamPeers`] over
//! the `ringkv.cluster.v1.Streaming` service.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use ringkv_proto::cluster::v1 as pb;
use ringkv_proto::cluster::v1::streaming_client::StreamingClient;
use tonic::transport::{Channel, Endpoint};

use crate::membership::{Member, MemberStatus};
use crate::ring::Token;
use crate::storage::{ScanPosition, StoredRecord};
use crate::transport::MAX_MESSAGE_BYTES;
use crate::transport::convert::{member_from_proto, record_from_proto};

use super::TopologyError;
use super::progress::ProgressSnapshot;

/// A token segment `(lower, upper]` that does not wrap; `lower = None` starts at token 0 inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Segment {
    /// Exclusive lower bound, or `None` for "from token 0 inclusive".
    pub lower: Option<Token>,
    /// Inclusive upper bound.
    pub upper: Token,
}

/// A request for one page of a segment.
#[derive(Debug, Clone)]
pub struct FetchPage {
    /// The segment.
    pub segment: Segment,
    /// Resume strictly after this record.
    pub after: Option<ScanPosition>,
    /// Most records in the page.
    pub limit: u32,
    /// Who asks (for the source's logs).
    pub requester: String,
}

/// One page of records.
#[derive(Debug, Clone)]
pub struct FetchedPage {
    /// The records, in token order.
    pub records: Vec<StoredRecord>,
    /// Encoded size of the page (keys and records), for throttling and metrics.
    pub bytes: u64,
    /// Nothing is left in the segment after these records.
    pub done: bool,
}

/// A member as another node sees it.
#[derive(Debug, Clone)]
pub struct Described {
    /// The member.
    pub member: Member,
    /// Not convicted by that node's failure detector.
    pub alive: bool,
}

/// What another node answers about a member, and the size of its ring.
#[derive(Debug, Clone)]
pub struct Description {
    /// The member, when that node knows it.
    pub member: Option<Described>,
    /// Nodes in that node's read ring.
    pub ring_nodes: u32,
}

/// Calls topology makes to other nodes.
pub trait StreamPeers: Send + Sync + fmt::Debug + 'static {
    /// One page of `peer`'s records in a segment.
    fn fetch(&self, peer: SocketAddr, req: FetchPage) -> BoxFuture<'static, Result<FetchedPage, TopologyError>>;
    /// What `peer` knows of the member `host_id` (`None`: unknown there).
    fn describe(&self, peer: SocketAddr, host_id: &str) -> BoxFuture<'static, Result<Description, TopologyError>>;
    /// Sets `host_id`'s status in `peer`'s view (LEAVING or LEFT, for removenode).
    fn set_status(
        &self,
        peer: SocketAddr,
        host_id: &str,
        status: MemberStatus,
    ) -> BoxFuture<'static, Result<(), TopologyError>>;
    /// Asks `peer` to stream in every range it gains; answers when it is done.
    fn stream_pending(
        &self,
        peer: SocketAddr,
        prefer: Option<String>,
    ) -> BoxFuture<'static, Result<(u64, u64), TopologyError>>;
    /// `peer`'s streaming progress.
    fn progress(&self, peer: SocketAddr) -> BoxFuture<'static, Result<ProgressSnapshot, TopologyError>>;
}

/// [`StreamPeers`] over gRPC, one lazily connected channel per peer.
#[derive(Debug)]
pub struct GrpcStreamPeers {
    call_timeout: Duration,
    channels: Mutex<HashMap<SocketAddr, Channel>>,
}

impl GrpcStreamPeers {
    /// Calls time out after `call_timeout` (streaming a whole node's ranges is bounded separately).
    pub fn new(call_timeout: Duration) -> Self {
        Self { call_timeout, channels: Mutex::default() }
    }

    fn client(&self, addr: SocketAddr) -> Result<StreamingClient<Channel>, TopologyError> {
        let mut channels = self.channels.lock().unwrap_or_else(PoisonError::into_inner);
        let channel = match channels.get(&addr) {
            Some(c) => c.clone(),
            None => {
                let endpoint = Endpoint::from_shared(format!("http://{addr}"))
                    .map_err(|e| TopologyError::Peer { peer: addr.to_string(), message: e.to_string() })?;
                let channel = endpoint.connect_timeout(Duration::from_secs(2)).tcp_nodelay(true).connect_lazy();
                channels.insert(addr, channel.clone());
                channel
            }
        };
        Ok(StreamingClient::new(channel)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES))
    }

    fn request<T>(&self, msg: T, timeout: Duration) -> tonic::Request<T> {
        let mut req = tonic::Request::new(msg);
        req.set_timeout(timeout);
        req
    }
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
        let client = self.client(peer);
        let request = self.request(fetch_request(req), self.call_timeout);
        async move {
            let resp = client?.fetch_range(request).await.map_err(|s| peer_error(peer, s))?.into_inner();
            fetched_page(peer, resp)
        }
        .boxed()
    }

    fn describe(&self, peer: SocketAddr, host_id: &str) -> BoxFuture<'static, Result<Description, TopologyError>> {
        let client = self.client(peer);
        let request = self.request(pb::DescribeMemberRequest { host_id: host_id.to_owned() }, self.call_timeout);
        async move {
            let resp = client?.describe_member(request).await.map_err(|s| peer_error(peer, s))?.into_inner();
            description(peer, resp)
        }
        .boxed()
    }

    fn set_status(
        &self,
        peer: SocketAddr,
        host_id: &str,
        status: MemberStatus,
    ) -> BoxFuture<'static, Result<(), TopologyError>> {
        let client = self.client(peer);
        let msg = pb::SetMemberStatusRequest { host_id: host_id.to_owned(), status: status_to_wire(&status) };
        let request = self.request(msg, self.call_timeout);
        async move {
            client?.set_member_status(request).await.map_err(|s| peer_error(peer, s))?;
            Ok(())
        }
        .boxed()
    }

    fn stream_pending(
        &self,
        peer: SocketAddr,
        prefer: Option<String>,
    ) -> BoxFuture<'static, Result<(u64, u64), TopologyError>> {
        let client = self.client(peer);
        let msg = pb::StreamPendingRequest { prefer_source_host_id: prefer.unwrap_or_default() };
        // Streaming a node's share of the data takes as long as it takes; the receiver throttles it.
        let request = self.request(msg, Duration::from_secs(24 * 3600));
        async move {
            let resp = client?.stream_pending(request).await.map_err(|s| peer_error(peer, s))?.into_inner();
            Ok((resp.records, resp.bytes))
        }
        .boxed()
    }

    fn progress(&self, peer: SocketAddr) -> BoxFuture<'static, Result<ProgressSnapshot, TopologyError>> {
        let client = self.client(peer);
        let request = self.request(pb::ProgressRequest {}, self.call_timeout);
        async move {
            let p = client?.progress(request).await.map_err(|s| peer_error(peer, s))?.into_inner();
            Ok(progress_from_wire(p))
        }
        .boxed()
    }
}
