//! Typed methods of the `ringkv.v1.Admin` service on [`Client`].
//!
//! Queries are idempotent and retried like reads; topology changes
//! (decommission, removenode) are sent once. `repair` starts an anti-entropy
//! repair on the node and streams its progress.

use ringkv_proto::v1::{
    ClusterStatusRequest, ClusterStatusResponse, DecommissionRequest, DecommissionResponse, KeyspaceDef,
    ListKeyspacesRequest, NodeInfoRequest, NodeInfoResponse, RemoveNodeRequest, RepairProgress, RepairRequest,
    RingRequest, TokenOwner, admin_client::AdminClient,
};

use crate::client::{Client, Idempotency, Rpc};
use crate::error::ClientError;

const fn query(name: &'static str) -> Rpc {
    Rpc { name, idempotency: Idempotency::Read }
}

const fn change(name: &'static str) -> Rpc {
    Rpc { name, idempotency: Idempotency::Write }
}

impl Client {
    /// Every token of the ring with its owner, in token order.
    pub async fn ring(&self) -> Result<Vec<TokenOwner>, ClientError> {
        let response = self
            .unary(query("Ring"), RingRequest {}, |ch, r| async move { AdminClient::new(ch).ring(r).await })
            .await?;
        Ok(response.tokens)
    }

    /// Starts decommissioning the node the client talks to (`host_id` empty)
    /// or checks that `host_id` is that node; answers once started.
    pub async fn decommission(&self, host_id: String) -> Result<DecommissionResponse, ClientError> {
        self.unary(change("Decommission"), DecommissionRequest { host_id }, |ch, r| async move {
            AdminClient::new(ch).decommission(r).await
        })
        .await
    }

    /// Starts removing the dead node `host_id`; answers once started.
    pub async fn remove_node(&self, host_id: String) -> Result<(), ClientError> {
        self.unary(change("RemoveNode"), RemoveNodeRequest { host_id }, |ch, r| async move {
            AdminClient::new(ch).remove_node(r).await
        })
        .await?;
        Ok(())
    }

    /// Every node with its state, liveness, ownership and load.
    pub async fn cluster_status(&self) -> Result<ClusterStatusResponse, ClientError> {
        self.unary(query("ClusterStatus"), ClusterStatusRequest {}, |ch, r| async move {
            AdminClient::new(ch).cluster_status(r).await
        })
        .await
    }

    /// Information about the node the client talks to.
    pub async fn node_info(&self) -> Result<NodeInfoResponse, ClientError> {
        self.unary(
            query("NodeInfo"),
            NodeInfoRequest {},
            |ch, r| async move { AdminClient::new(ch).node_info(r).await },
        )
        .await
    }

    /// The definitions of all keyspaces.
    pub async fn list_keyspaces(&self) -> Result<Vec<KeyspaceDef>, ClientError> {
        let response = self
            .unary(query("ListKeyspaces"), ListKeyspacesRequest {}, |ch, r| async move {
                AdminClient::new(ch).list_keyspaces(r).await
            })
            .await?;
        Ok(response.keyspaces)
    }
}

/// The progress messages of a running repair.
#[derive(Debug)]
pub struct RepairStream {
    inner: tonic::Streaming<RepairProgress>,
    endpoint: String,
}

impl RepairStream {
    /// The next progress message; `None` once the node closed the stream.
    pub async fn next(&mut self) -> Result<Option<RepairProgress>, ClientError> {
        self.inner.message().await.map_err(|status| ClientError::from_status("Repair", &self.endpoint, &status))
    }
}

impl Client {
    /// Starts an anti-entropy repair of the ranges the node replicates
    /// (limited by `request`) and returns its progress stream. Only the start
    /// is bounded by the timeout: a repair of much data takes long.
    pub async fn repair(&self, request: RepairRequest) -> Result<RepairStream, ClientError> {
        let (channel, endpoint) = self.channel();
        let endpoint = endpoint.to_owned();
        let mut client = AdminClient::new(channel);
        let started = tokio::time::timeout(self.request_timeout(), client.repair(request)).await;
        match started {
            Ok(Ok(response)) => Ok(RepairStream { inner: response.into_inner(), endpoint }),
            Ok(Err(status)) => Err(ClientError::from_status("Repair", &endpoint, &status)),
            Err(_) => Err(ClientError::Timeout { rpc: "Repair", endpoint, after: self.request_timeout() }),
        }
    }
}
