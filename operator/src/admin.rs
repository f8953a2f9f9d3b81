//! [`NodeAdmin`]: the capability of asking the RingKV cluster about itself
//! and of changing its topology, as the operator needs it; and
//! [`GrpcNodeAdmin`], its implementation over the `ringkv.v1.Admin` gRPC API.
//!
//! The planner and reconciler only see the trait, so tests use a fake.
//! Calls carry a deadline; nothing here retries (the next reconcile does).

use std::time::Duration;

use futures::future::BoxFuture;
use ringkv_proto::v1 as pb;
use ringkv_proto::v1::admin_client::AdminClient;

use crate::plan::{Liveness, NodeObserved, NodeState};

/// Deadline of one Admin API call.
pub const ADMIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Why an Admin API call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AdminError {
    /// No connection to the endpoint.
    #[error(
        "cannot reach the RingKV Admin API at {endpoint}: {reason}; check that the node there (or one behind the client \
         Service) is ready and reachable from the operator"
    )]
    Unreachable {
        /// The endpoint.
        endpoint: String,
        /// The transport error.
        reason: String,
    },
    /// The node refused or failed the call.
    #[error("RingKV Admin API call {call} at {endpoint} failed: {code}: {message}")]
    Call {
        /// The RPC.
        call: &'static str,
        /// The endpoint.
        endpoint: String,
        /// gRPC status code.
        code: String,
        /// The node's message.
        message: String,
    },
}

/// What the operator needs from the cluster's Admin API.
pub trait NodeAdmin: Send + Sync + std::fmt::Debug {
    /// Every node with its state, liveness, address, ownership, load and last repair.
    fn cluster_status<'a>(&'a self, endpoint: &'a str) -> BoxFuture<'a, Result<Vec<NodeObserved>, AdminError>>;
    /// Starts decommissioning `host_id` (it streams its ranges away, then is LEFT).
    fn decommission<'a>(&'a self, endpoint: &'a str, host_id: &'a str) -> BoxFuture<'a, Result<(), AdminError>>;
}

/// [`NodeAdmin`] over gRPC (`ringkv.v1.Admin`).
#[derive(Debug, Clone, Default)]
pub struct GrpcNodeAdmin;

async fn connect(endpoint: &str) -> Result<AdminClient<tonic::transport::Channel>, AdminError> {
    let unreachable = |reason: String| AdminError::Unreachable { endpoint: endpoint.into(), reason };
    let channel = tonic::transport::Endpoint::from_shared(endpoint.to_string())
        .map_err(|e| unreachable(e.to_string()))?
        .connect_timeout(ADMIN_TIMEOUT)
        .timeout(ADMIN_TIMEOUT)
        .connect()
        .await
        .map_err(|e| unreachable(e.to_string()))?;
    Ok(AdminClient::new(channel))
}

fn call_error(call: &'static str, endpoint: &str, s: tonic::Status) -> AdminError {
    AdminError::Call { call, endpoint: endpoint.into(), code: format!("{:?}", s.code()), message: s.message().into() }
}

/// The planner's view of one `NodeStatus`.
pub fn node_from_proto(n: &pb::NodeStatus) -> NodeObserved {
    let state = match pb::NodeState::try_from(n.state) {
        Ok(pb::NodeState::Joining) => NodeState::Joining,
        Ok(pb::NodeState::Normal) => NodeState::Normal,
        Ok(pb::NodeState::Leaving) => NodeState::Leaving,
        Ok(pb::NodeState::Left) => NodeState::Left,
        Ok(pb::NodeState::Replacing) => NodeState::Replacing,
        _ => NodeState::Unknown,
    };
    let liveness = match pb::Liveness::try_from(n.liveness) {
        Ok(pb::Liveness::Alive) => Liveness::Alive,
        Ok(pb::Liveness::Suspect) => Liveness::Suspect,
        Ok(pb::Liveness::Down) => Liveness::Down,
        _ => Liveness::Unknown,
    };
    NodeObserved {
        host_id: n.host_id.clone(),
        pod: None,
        state,
        liveness,
        down_since_ms: None,
        grpc_addr: n.grpc_addr.clone(),
        ownership: n.ownership,
        load_bytes: n.load_bytes,
        last_full_repair_ms: n.last_full_repair_ms,
    }
}

impl NodeAdmin for GrpcNodeAdmin {
    fn cluster_status<'a>(&'a self, endpoint: &'a str) -> BoxFuture<'a, Result<Vec<NodeObserved>, AdminError>> {
        Box::pin(async move {
            let mut client = connect(endpoint).await?;
            let resp = client
                .cluster_status(pb::ClusterStatusRequest {})
                .await
                .map_err(|s| call_error("ClusterStatus", endpoint, s))?
                .into_inner();
            Ok(resp.nodes.iter().map(node_from_proto).collect())
        })
    }

    fn decommission<'a>(&'a self, endpoint: &'a str, host_id: &'a str) -> BoxFuture<'a, Result<(), AdminError>> {
        Box::pin(async move {
            let mut client = connect(endpoint).await?;
            client
                .decommission(pb::DecommissionRequest { host_id: host_id.into() })
                .await
                .map_err(|s| call_error("Decommission", endpoint, s))?;
            Ok(())
        })
    }
}

/// Drains the node at `endpoint` (`HOST:PORT`): it stops accepting writes and
/// flushes everything to disk. Used by the pods' preStop hook.
pub async fn drain(endpoint: &str) -> Result<(), AdminError> {
    let endpoint = if endpoint.contains("://") { endpoint.to_string() } else { format!("http://{endpoint}") };
    let mut client = connect(&endpoint).await?;
    client.drain(pb::DrainRequest {}).await.map_err(|s| call_error("Drain", &endpoint, s))?;
    Ok(())
}
