//! gRPC front end: `ringkv.v1.Admin`.
//!
//! Answers cluster status (members, liveness, ownership, hints pending here
//! for each node; peers' load as gossip carries it), node info, keyspaces and
//! drain. Topology changes (decommission, replace, remove, repair) need range
//! streaming; until then they answer UNIMPLEMENTED with the reason.

use std::time::Instant;

use ringkv_proto::v1 as pb;
use tonic::{Request, Response, Status};

use crate::membership::{GossipHandle, Liveness};
use crate::replication::{Coordinator, Keyspace};
use crate::version::ConflictMode;

use super::NodeIdentity;
use super::status::to_status;

/// The `ringkv.v1.Admin` service.
#[derive(Debug, Clone)]
pub struct AdminService {
    coordinator: Coordinator,
    identity: NodeIdentity,
    started: Instant,
    gossip: Option<GossipHandle>,
}

impl AdminService {
    /// A service answering for the node `identity`.
    pub fn new(coordinator: Coordinator, identity: NodeIdentity) -> Self {
        Self { coordinator, identity, started: Instant::now(), gossip: None }
    }

    /// Reports peers' load as gossip carries it.
    pub fn with_gossip(mut self, gossip: GossipHandle) -> Self {
        self.gossip = Some(gossip);
        self
    }

    fn peer_load(&self, host_id: &str) -> u64 {
        self.gossip.as_ref().and_then(|g| g.load(host_id)).unwrap_or(0)
    }

    fn load_bytes(&self) -> u64 {
        self.coordinator.storage().stats().disk_bytes
    }
}

fn not_clustered(what: &str) -> Status {
    Status::unimplemented(format!(
        "[RKV-NOT-YET] {what} needs gossip membership and range streaming, which this version does not have yet; \
         membership is static (--seeds)"
    ))
}

fn keyspace_to_proto(k: &Keyspace) -> pb::KeyspaceDef {
    pb::KeyspaceDef {
        name: k.name.clone(),
        replication_factor: k.replication_factor,
        conflict_mode: match k.conflict_mode {
            ConflictMode::Lww => pb::ConflictMode::Lww as i32,
            _ => pb::ConflictMode::Siblings as i32,
        },
        default_read_consistency: k.read_consistency.to_string(),
        default_write_consistency: k.write_consistency.to_string(),
        default_ttl_seconds: k.default_ttl_seconds.unwrap_or(0),
    }
}

#[tonic::async_trait]
impl pb::admin_server::Admin for AdminService {
    async fn cluster_status(
        &self,
        _: Request<pb::ClusterStatusRequest>,
    ) -> Result<Response<pb::ClusterStatusResponse>, Status> {
        let rf = self.coordinator.keyspaces().get("").map_err(|e| to_status(&e))?.replication_factor;
        let view = self.coordinator.view();
        let ring = view.ring();
        let ownership = ring.ownership(rf as usize);
        let hints = self.coordinator.hints().clone();
        let pending = tokio::task::spawn_blocking(move || hints.pending_by_target())
            .await
            .map_err(|e| Status::internal(format!("status task failed: {e}")))?
            .map_err(|e| to_status(&e.into()))?;
        let local = view.local_host_id().to_owned();
        let nodes = view
            .members()
            .into_iter()
            .map(|m| {
                let owns = ring.index_of(&m.host_id).and_then(|i| ownership.get(i.get()).copied()).unwrap_or(0.0);
                let liveness = match view.liveness(&m.host_id) {
                    Liveness::Alive => pb::Liveness::Alive,
                    Liveness::Suspect => pb::Liveness::Suspect,
                    Liveness::Down => pb::Liveness::Down,
                };
                pb::NodeStatus {
                    grpc_addr: m.grpc_addr.to_string(),
                    http_addr: m.http_addr.to_string(),
                    zone: m.zone.clone(),
                    rack: m.rack.clone(),
                    state: pb::NodeState::Normal as i32,
                    liveness: liveness as i32,
                    ownership: owns,
                    load_bytes: if m.host_id == local { self.load_bytes() } else { self.peer_load(&m.host_id) },
                    pending_hints: pending.get(&m.host_id).copied().unwrap_or(0),
                    vnodes: m.tokens.len() as u32,
                    host_id: m.host_id.clone(),
                    ..Default::default()
                }
            })
            .collect();
        Ok(Response::new(pb::ClusterStatusResponse {
            cluster_name: "ringkv".into(),
            nodes,
            replication_factor: rf,
            answered_by: self.identity.host_id.clone(),
        }))
    }

    async fn ring(&self, _: Request<pb::RingRequest>) -> Result<Response<pb::RingResponse>, Status> {
        let ring = self.coordinator.view().ring();
        let tokens = ring
            .entries()
            .filter_map(|(token, idx)| {
                ring.node(idx).map(|n| pb::TokenOwner { token, host_id: n.host_id.as_str().to_owned() })
            })
            .collect();
        Ok(Response::new(pb::RingResponse { tokens }))
    }

    async fn node_info(&self, _: Request<pb::NodeInfoRequest>) -> Result<Response<pb::NodeInfoResponse>, Status> {
        Ok(Response::new(pb::NodeInfoResponse {
            host_id: self.identity.host_id.clone(),
            version: env!("CARGO_PKG_VERSION").into(),
            state: pb::NodeState::Normal as i32,
            data_dir: self.identity.data_dir.clone(),
            sync_policy: self.coordinator.storage().sync_policy().to_string(),
            load_bytes: self.load_bytes(),
            uptime_seconds: self.started.elapsed().as_secs(),
        }))
    }

    async fn decommission(
        &self,
        _: Request<pb::DecommissionRequest>,
    ) -> Result<Response<pb::DecommissionResponse>, Status> {
        Err(not_clustered("decommission"))
    }

    async fn remove_node(&self, _: Request<pb::RemoveNodeRequest>) -> Result<Response<pb::RemoveNodeResponse>, Status> {
        Err(not_clustered("removenode"))
    }

    async fn replace(&self, _: Request<pb::ReplaceRequest>) -> Result<Response<pb::ReplaceResponse>, Status> {
        Err(not_clustered("replace"))
    }

    type RepairStream = tokio_stream::Empty<Result<pb::RepairProgress, Status>>;

    async fn repair(&self, _: Request<pb::RepairRequest>) -> Result<Response<Self::RepairStream>, Status> {
        Err(not_clustered("repair"))
    }

    async fn snapshot(&self, _: Request<pb::SnapshotRequest>) -> Result<Response<pb::SnapshotResponse>, Status> {
        Err(Status::unimplemented(
            "[RKV-NOT-YET] snapshots are not implemented yet; stop the node and copy its data directory",
        ))
    }

    async fn drain(&self, _: Request<pb::DrainRequest>) -> Result<Response<pb::DrainResponse>, Status> {
        self.coordinator.drain();
        let storage = std::sync::Arc::clone(self.coordinator.storage());
        tokio::task::spawn_blocking(move || storage.sync())
            .await
            .map_err(|e| Status::internal(format!("drain task failed: {e}")))?
            .map_err(|e| to_status(&e.into()))?;
        tracing::info!("drained: client writes refused, storage synced");
        Ok(Response::new(pb::DrainResponse {}))
    }

    async fn create_keyspace(
        &self,
        _: Request<pb::CreateKeyspaceRequest>,
    ) -> Result<Response<pb::KeyspaceDef>, Status> {
        Err(Status::unimplemented(
            "[RKV-NOT-YET] keyspaces are defined in the node config ([[keyspaces]]) until schema gossip exists",
        ))
    }

    async fn alter_keyspace(&self, _: Request<pb::AlterKeyspaceRequest>) -> Result<Response<pb::KeyspaceDef>, Status> {
        Err(Status::unimplemented(
            "[RKV-NOT-YET] keyspaces are defined in the node config ([[keyspaces]]) until schema gossip exists",
        ))
    }

    async fn list_keyspaces(
        &self,
        _: Request<pb::ListKeyspacesRequest>,
    ) -> Result<Response<pb::ListKeyspacesResponse>, Status> {
        let keyspaces = self.coordinator.keyspaces().list().iter().map(|k| keyspace_to_proto(k)).collect();
        Ok(Response::new(pb::ListKeyspacesResponse { keyspaces }))
    }
}
