//! Typed methods of the `ringkv.v1.Admin` service on [`Client`].
//!
//! Only the read-only queries so far; they are idempotent and retried like
//! reads. Topology changes (decommission, replace, repair) come with the
//! `kvctl` commands that need them.

use ringkv_proto::v1::{
    ClusterStatusRequest, ClusterStatusResponse, KeyspaceDef, ListKeyspacesRequest, NodeInfoRequest, NodeInfoResponse,
    admin_client::AdminClient,
};

use crate::client::{Client, Idempotency, Rpc};
use crate::error::ClientError;

const fn query(name: &'static str) -> Rpc {
    Rpc { name, idempotency: Idempotency::Read }
}

impl Client {
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
