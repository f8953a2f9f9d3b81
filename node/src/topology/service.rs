//! The `ringkv.cluster.v1.Streaming` service: what a node answers to peers
//! that stream from it or drive a topology change.

use std::sync::Arc;

use ringkv_proto::cluster::v1 as pb;
use ringkv_proto::cluster::v1::streaming_server::{Streaming, StreamingServer};
use tonic::{Request, Response, Status};

use crate::membership::MemberStatus;
use crate::storage::ScanPosition;
use crate::transport::convert::{member_to_proto, record_to_proto};

use super::{Topology, TopologyError};

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
        .max_decoding_message_size(crate::transport::MAX_MESSAGE_BYTES)
        .max_encoding_message_size(crate::transport::MAX_MESSAGE_BYTES)
}

/// The gRPC status of a topology error (stable code first, as every RingKV error).
pub fn topology_status(e: &TopologyError) -> Status {
    let msg = format!("[{}] {e}", e.code());
    match e {
        TopologyError::Busy { .. }
        | TopologyError::TooFewNodes { .. }
        | TopologyError::HostAlive { .. }
        | TopologyError::AlreadyLeft { .. }
        | TopologyError::Precondition { .. } => Status::failed_precondition(msg),
        TopologyError::UnknownHost { .. } => Status::not_found(msg),
        TopologyError::NoSource { .. } | TopologyError::Peer { .. } | TopologyError::Stopped => {
            Status::unavailable(msg)
        }
        TopologyError::Storage(_) | TopologyError::Merge(_) => Status::internal(msg),
    }
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
        let storage = Arc::clone(self.topology.coordinator().storage());
        let upper = req.upper;
        let records = tokio::task::spawn_blocking(move || storage.scan(after.as_ref(), Some(upper), None, limit))
            .await
            .map_err(|e| Status::internal(format!("scan task failed: {e}")))?
            .map_err(|e| topology_status(&TopologyError::Storage(e)))?;
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
        let view = self.topology.coordinator().view();
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
        Ok(Response::new(super::peers::progress_to_wire(self.topology.progress().snapshot())))
    }
}
