//! gRPC server side of the node-to-node protocol (`ringkv.cluster.v1.Replica`).
//!
//! [`ReplicaService`] decodes each request with `peer::convert` (the same
//! conversions the client uses), hands it to the node's [`ReplicaHandler`]
//! (the coordinator), and encodes the answer.
//!
//! Invariants: a malformed request is refused with INVALID_ARGUMENT
//! (`RKV-BAD-PEER-REQUEST`) before it reaches the handler; handler errors
//! become statuses only through `peer::status`; no request panics.
//!
//! This module may call `transport` (types, `ReplicaHandler`) and
//! `peer::{convert, status}` only.

use std::sync::Arc;

use ringkv_proto::cluster::v1 as pb;
use ringkv_proto::cluster::v1::replica_server::{Replica, ReplicaServer};
use tonic::{Request, Response, Status};

use crate::transport::ReplicaHandler;

use super::MAX_MESSAGE_BYTES;
use super::convert::{self, ConvertError};
use super::status::{bad_peer_request, item_status, kv_status as to_status};

fn bad_request(e: &ConvertError) -> Status {
    bad_peer_request(e)
}

/// The `ringkv.cluster.v1.Replica` service over a [`ReplicaHandler`].
#[derive(Debug, Clone)]
pub struct ReplicaService {
    handler: Arc<dyn ReplicaHandler>,
}

impl ReplicaService {
    /// A service delivering every call to `handler`.
    pub fn new(handler: Arc<dyn ReplicaHandler>) -> Self {
        Self { handler }
    }
}

/// The tonic server of [`ReplicaService`], accepting messages as large as peers send.
pub fn replica_server(handler: Arc<dyn ReplicaHandler>) -> ReplicaServer<ReplicaService> {
    ReplicaServer::new(ReplicaService::new(handler))
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES)
}

#[tonic::async_trait]
impl Replica for ReplicaService {
    async fn read(
        &self,
        request: Request<pb::ReplicaReadRequest>,
    ) -> Result<Response<pb::ReplicaReadResponse>, Status> {
        // `digest_only` is an optimisation the protocol allows; answering with
        // the full record is always correct, and the client does not ask for it yet.
        let req = request.into_inner();
        let record = self.handler.handle_read(req.keyspace, req.key).await.map_err(|e| to_status(&e))?;
        Ok(Response::new(convert::read_response_to_proto(record.as_ref())))
    }

    async fn read_batch(
        &self,
        request: Request<pb::ReplicaReadBatchRequest>,
    ) -> Result<Response<pb::ReplicaReadBatchResponse>, Status> {
        let reads = request.into_inner().reads.into_iter().map(|r| self.handler.handle_read(r.keyspace, r.key));
        let mut answer = pb::ReplicaReadBatchResponse::default();
        for result in futures::future::join_all(reads).await {
            match result {
                Ok(record) => {
                    answer.reads.push(convert::read_response_to_proto(record.as_ref()));
                    answer.statuses.push(pb::ItemStatus::default());
                }
                Err(e) => {
                    answer.reads.push(pb::ReplicaReadResponse::default());
                    answer.statuses.push(item_status(&to_status(&e)));
                }
            }
        }
        Ok(Response::new(answer))
    }

    async fn write_batch(
        &self,
        request: Request<pb::ReplicaWriteBatchRequest>,
    ) -> Result<Response<pb::ReplicaWriteBatchResponse>, Status> {
        let writes = request.into_inner().writes.into_iter().map(|w| {
            let handler = Arc::clone(&self.handler);
            async move {
                let write = convert::replica_write_from_proto(w).map_err(|e| bad_request(&e))?;
                handler.handle_write(write).await.map_err(|e| to_status(&e))
            }
        });
        let statuses = futures::future::join_all(writes)
            .await
            .iter()
            .map(|r| r.as_ref().err().map(item_status).unwrap_or_default())
            .collect();
        Ok(Response::new(pb::ReplicaWriteBatchResponse { statuses }))
    }

    async fn page(&self, request: Request<pb::PageRequest>) -> Result<Response<pb::PageResponse>, Status> {
        let query = convert::page_query_from_proto(request.into_inner());
        let items = self.handler.handle_page(query).await.map_err(|e| to_status(&e))?;
        Ok(Response::new(convert::page_to_proto(&items)))
    }

    async fn write(
        &self,
        request: Request<pb::ReplicaWriteRequest>,
    ) -> Result<Response<pb::ReplicaWriteResponse>, Status> {
        let write = convert::replica_write_from_proto(request.into_inner()).map_err(|e| bad_request(&e))?;
        self.handler.handle_write(write).await.map_err(|e| to_status(&e))?;
        Ok(Response::new(pb::ReplicaWriteResponse {}))
    }

    async fn deliver_hints(
        &self,
        request: Request<pb::DeliverHintsRequest>,
    ) -> Result<Response<pb::DeliverHintsResponse>, Status> {
        let req = request.into_inner();
        let hints = req.hints.into_iter().map(convert::hint_from_proto).collect::<Result<Vec<_>, _>>();
        let hints = hints.map_err(|e| bad_request(&e))?;
        tracing::debug!(from = %req.from_host_id, count = hints.len(), "receiving hinted writes");
        let applied = self.handler.handle_hints(hints).await.map_err(|e| to_status(&e))?;
        Ok(Response::new(pb::DeliverHintsResponse { applied }))
    }

    async fn coordinate(
        &self,
        request: Request<pb::CoordinateRequest>,
    ) -> Result<Response<pb::CoordinateResponse>, Status> {
        let call = convert::coordinate_call_from_proto(request.into_inner()).map_err(|e| bad_request(&e))?;
        let reply = self.handler.handle_coordinate(call).await.map_err(|e| to_status(&e))?;
        Ok(Response::new(convert::coordinate_reply_to_proto(&reply)))
    }
}
