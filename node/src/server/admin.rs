//! gRPC front end: `ringkv.v1.Admin`.
//!
//! Answers cluster status (members, lifecycle states, liveness, ownership,
//! hints pending here for each node, peers' load as gossip carries it,
//! streaming progress asked of each live node), the ring, node info,
//! keyspaces and drain; runs anti-entropy `Repair` (streaming progress after
//! every range). Topology changes (decommission, removenode, replace) go to
//! [`Topology`]; what outlives a request (a decommission, a removenode, a
//! repair streaming its progress) runs as a node [`Jobs`] task, so the
//! node's stop waits for it or aborts it.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use ringkv_proto::v1 as pb;
use tonic::{Request, Response, Status};

use crate::antientropy::{AeError, RepairProgress, RepairRequest, Repairer};
use crate::error::KvError;
use crate::membership::{GossipHandle, MemberStatus};
use crate::peer::topology_status;
use crate::replication::{Coordinator, Keyspace, NodeParts};
use crate::ring::TokenRange;
use crate::topology::{Topology, TopologyError};
use crate::version::ConflictMode;
use crate::worker::{JobError, Jobs};

use super::NodeIdentity;
use super::status::to_status;

/// The `ringkv.v1.Admin` service.
#[derive(Debug, Clone)]
pub struct AdminService {
    coordinator: Coordinator,
    node: NodeParts,
    identity: NodeIdentity,
    started: Instant,
    repairer: Option<Arc<Repairer>>,
    topology: Option<Topology>,
    gossip: Option<GossipHandle>,
    jobs: Jobs,
}

impl AdminService {
    /// A service answering for the node `identity` (its storage, view and
    /// hints in `node`), running what outlives a request in `jobs`.
    pub fn new(coordinator: Coordinator, node: NodeParts, identity: NodeIdentity, jobs: Jobs) -> Self {
        let started = Instant::now();
        Self { coordinator, node, identity, started, repairer: None, topology: None, gossip: None, jobs }
    }

    /// Serves `Repair` with `repairer` (anti-entropy).
    pub fn with_repairer(mut self, repairer: Arc<Repairer>) -> Self {
        self.repairer = Some(repairer);
        self
    }

    /// The oldest "last full sync" over every range this node replicates in
    /// every keyspace; `None` when some range was never fully repaired.
    async fn last_full_repair_ms(&self) -> Option<i64> {
        let repairer = self.repairer.clone()?;
        let keyspaces: Vec<String> = self.coordinator.keyspaces().list().iter().map(|k| k.name.clone()).collect();
        let oldest = tokio::task::spawn_blocking(move || {
            keyspaces.iter().map(|k| repairer.history().oldest_full_sync(k).ok().flatten()).min()
        });
        // i64::MAX: no range has another replica, so there is nothing to repair.
        oldest.await.ok().flatten().flatten().filter(|&t| t != i64::MAX)
    }

    /// The same service with topology changes (decommission, removenode, replace) enabled.
    #[must_use]
    pub fn with_topology(mut self, topology: Topology) -> Self {
        self.topology = Some(topology);
        self
    }

    fn topology(&self) -> Result<&Topology, Status> {
        self.topology.as_ref().ok_or_else(|| not_clustered("topology changes"))
    }

    /// Streaming progress of every live member (asked in parallel, 1 s each),
    /// and why it waits to enter the ring when it does, by host id.
    async fn streaming_progress(&self) -> std::collections::BTreeMap<String, (Option<f64>, Option<String>)> {
        let Some(topology) = &self.topology else { return Default::default() };
        let view = &self.node.view;
        let local = view.local_host_id().to_owned();
        let asks = view.members().into_iter().filter(|m| view.is_alive(&m.host_id)).map(|m| {
            let topology = topology.clone();
            let local = local.clone();
            async move {
                let p = if m.host_id == local {
                    Some(topology.progress().snapshot())
                } else {
                    let ask = topology.peers().progress(m.grpc_addr);
                    tokio::time::timeout(std::time::Duration::from_secs(1), ask).await.ok().and_then(Result::ok)
                };
                p.map(|p| {
                    let fraction = (p.active || p.ranges_total > 0).then(|| p.fraction());
                    (m.host_id.clone(), (fraction, Some(p.waiting).filter(|w| !w.is_empty())))
                })
            }
        });
        futures::future::join_all(asks).await.into_iter().flatten().collect()
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
        self.node.storage.stats().disk_bytes
    }
}

/// A job refused because the node stops (`RKV-SHUTTING-DOWN`, as `server::status` maps it).
fn stopping(e: &JobError) -> Status {
    Status::unavailable(format!("[RKV-SHUTTING-DOWN] {e}"))
}

fn not_clustered(what: &str) -> Status {
    Status::unimplemented(format!(
        "[RKV-NOT-YET] {what} needs gossip membership and range streaming, which this version does not have yet; \
         membership is static (--seeds)"
    ))
}

fn node_state(status: &MemberStatus) -> pb::NodeState {
    match status {
        MemberStatus::Joining => pb::NodeState::Joining,
        MemberStatus::Normal => pb::NodeState::Normal,
        MemberStatus::Leaving => pb::NodeState::Leaving,
        MemberStatus::Left => pb::NodeState::Left,
        MemberStatus::Replacing { .. } => pb::NodeState::Replacing,
    }
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

fn repair_progress_to_proto(p: &RepairProgress) -> pb::RepairProgress {
    let (keyspace, range, last_full_sync) = match &p.last {
        Some((ks, range, last)) => (ks.clone(), Some(*range), last.unwrap_or(0)),
        None => (String::new(), None, 0),
    };
    pb::RepairProgress {
        ranges_done: p.ranges_done,
        ranges_total: p.ranges_total,
        keys_repaired: p.stats.records_repaired_here + p.stats.records_sent,
        bytes_streamed: p.stats.bytes_transferred,
        done: p.done,
        bytes_compared: p.stats.bytes_compared,
        buckets_differing: p.stats.buckets_differing,
        records_received: p.stats.records_received,
        records_sent: p.stats.records_sent,
        ranges_failed: p.ranges_failed,
        range_start: range.map_or(0, |r| r.start),
        range_end: range.map_or(0, |r| r.end),
        last_full_sync_ms: last_full_sync,
        keyspace,
        elapsed_ms: p.elapsed.as_millis() as u64,
    }
}

impl AdminService {
    /// Every member as this node sees it: what `Admin.ClusterStatus` and the
    /// HTTP `/admin/cluster/status` both answer.
    pub async fn cluster_status_snapshot(&self) -> Result<pb::ClusterStatusResponse, KvError> {
        let rf = self.coordinator.keyspaces().get("")?.replication_factor;
        let view = &self.node.view;
        let ring = view.ring();
        let ownership = ring.ownership(rf as usize);
        let hints = self.node.hints.clone();
        // A failed task means a panic or a runtime shutting down, as in the coordinator.
        let pending = tokio::task::spawn_blocking(move || hints.pending_by_target())
            .await
            .map_err(|_| KvError::ShuttingDown)??;
        let local = view.local_host_id().to_owned();
        let last_full_repair_ms = self.last_full_repair_ms().await;
        let streaming = self.streaming_progress().await;
        let nodes = view
            .members()
            .into_iter()
            .map(|m| {
                let owns = ring.index_of(&m.host_id).and_then(|i| ownership.get(i.get()).copied()).unwrap_or(0.0);
                pb::NodeStatus {
                    grpc_addr: m.grpc_addr.to_string(),
                    http_addr: m.http_addr.to_string(),
                    zone: m.zone.clone(),
                    rack: m.rack.clone(),
                    state: node_state(&m.status) as i32,
                    liveness: match view.liveness(&m.host_id) {
                        crate::membership::Liveness::Alive => pb::Liveness::Alive as i32,
                        crate::membership::Liveness::Suspect => pb::Liveness::Suspect as i32,
                        crate::membership::Liveness::Down => pb::Liveness::Down as i32,
                    },
                    streaming_progress: streaming.get(&m.host_id).and_then(|p| p.0),
                    waiting: streaming.get(&m.host_id).and_then(|p| p.1.clone()),
                    ownership: owns,
                    load_bytes: if m.host_id == local { self.load_bytes() } else { self.peer_load(&m.host_id) },
                    pending_hints: pending.get(&m.host_id).copied().unwrap_or(0),
                    vnodes: m.tokens.len() as u32,
                    host_id: m.host_id.clone(),
                    last_full_repair_ms: if m.host_id == local { last_full_repair_ms } else { None },
                }
            })
            .collect();
        Ok(pb::ClusterStatusResponse {
            cluster_name: "ringkv".into(),
            nodes,
            replication_factor: rf,
            answered_by: self.identity.host_id.clone(),
        })
    }
}

#[tonic::async_trait]
impl pb::admin_server::Admin for AdminService {
    async fn cluster_status(
        &self,
        _: Request<pb::ClusterStatusRequest>,
    ) -> Result<Response<pb::ClusterStatusResponse>, Status> {
        self.cluster_status_snapshot().await.map(Response::new).map_err(|e| to_status(&e))
    }

    async fn ring(&self, _: Request<pb::RingRequest>) -> Result<Response<pb::RingResponse>, Status> {
        let ring = self.node.view.ring();
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
            state: node_state(&self.node.view.local().status) as i32,
            data_dir: self.identity.data_dir.clone(),
            sync_policy: self.node.storage.sync_policy().to_string(),
            load_bytes: self.load_bytes(),
            uptime_seconds: self.started.elapsed().as_secs(),
        }))
    }

    async fn decommission(
        &self,
        request: Request<pb::DecommissionRequest>,
    ) -> Result<Response<pb::DecommissionResponse>, Status> {
        let topology = self.topology()?;
        let view = &self.node.view;
        let host_id = request.into_inner().host_id;
        if !host_id.is_empty() && host_id != view.local_host_id() {
            let hint = view.member(&host_id).map_or_else(
                || format!("no member has host id {host_id}"),
                |m| format!("send it to that node: kvctl --endpoint {} decommission", m.grpc_addr),
            );
            return Err(topology_status(&TopologyError::Precondition {
                reason: format!("a node decommissions itself; {hint}"),
            }));
        }
        let reserved = topology.reserve().map_err(|e| topology_status(&e))?;
        topology.check_decommission().map_err(|e| topology_status(&e))?;
        tracing::info!("decommission requested: streaming this node's ranges away, then it leaves and stops");
        let leaving = topology.clone();
        self.jobs
            .spawn("decommission", async move {
                if let Err(e) = leaving.decommission(reserved).await {
                    tracing::error!(error = %e, code = e.code(), "decommission failed");
                }
            })
            .map_err(|e| stopping(&e))?;
        Ok(Response::new(pb::DecommissionResponse {
            host_id: view.local_host_id().to_owned(),
            state: pb::NodeState::Leaving as i32,
        }))
    }

    async fn remove_node(
        &self,
        request: Request<pb::RemoveNodeRequest>,
    ) -> Result<Response<pb::RemoveNodeResponse>, Status> {
        let host_id = request.into_inner().host_id;
        let topology = self.topology()?.clone();
        let reserved = topology.reserve().map_err(|e| topology_status(&e))?;
        topology.check_remove_everywhere(&host_id).await.map_err(|e| topology_status(&e))?;
        tracing::info!(%host_id, "removenode requested: its new owners stream its ranges from the survivors");
        self.jobs
            .spawn("removenode", async move {
                if let Err(e) = topology.remove_node(&host_id, reserved).await {
                    tracing::error!(%host_id, error = %e, code = e.code(), "removenode failed");
                }
            })
            .map_err(|e| stopping(&e))?;
        Ok(Response::new(pb::RemoveNodeResponse {}))
    }

    async fn replace(&self, request: Request<pb::ReplaceRequest>) -> Result<Response<pb::ReplaceResponse>, Status> {
        let dead = request.into_inner().dead_host_id;
        let view = &self.node.view;
        let error = match view.member(&dead) {
            None => TopologyError::UnknownHost { host_id: dead },
            Some(_) if view.is_alive(&dead) => TopologyError::HostAlive { host_id: dead, what: "replaced" },
            Some(m) if m.status == MemberStatus::Left => TopologyError::AlreadyLeft { host_id: dead },
            Some(_) => TopologyError::Precondition {
                reason: format!(
                    "a replacement runs on the new node: start it with an empty data directory as \
                     `kvnode serve --replace {dead} --seeds {}`",
                    self.identity.grpc_addr
                ),
            },
        };
        Err(topology_status(&error))
    }

    type RepairStream = Pin<Box<dyn tokio_stream::Stream<Item = Result<pb::RepairProgress, Status>> + Send>>;

    async fn repair(&self, request: Request<pb::RepairRequest>) -> Result<Response<Self::RepairStream>, Status> {
        let Some(repairer) = self.repairer.clone() else { return Err(not_clustered("repair")) };
        let req = request.into_inner();
        let keyspace = match req.keyspace.as_str() {
            "" => None,
            name => Some(self.coordinator.keyspaces().get(name).map_err(|e| to_status(&e))?.name.clone()),
        };
        let range = match (req.range_start, req.range_end) {
            (Some(start), Some(end)) => Some(TokenRange { start, end }),
            (None, None) => None,
            _ => {
                return Err(super::status::invalid_argument(
                    "RKV-BAD-RANGE",
                    "give both range_start and range_end (start exclusive, end inclusive), or neither",
                ));
            }
        };
        let request = RepairRequest { keyspace, range, full: req.full };
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let job = async move {
            let progress_tx = tx.clone();
            let result = repairer.run(request, move |p| {
                // A client that went away stops hearing progress; the repair still finishes.
                let _ = progress_tx.send(Ok(repair_progress_to_proto(p)));
            });
            if let Err(e) = result.await {
                let status = match e {
                    AeError::Busy => Status::aborted(format!("[RKV-AE-BUSY] {e}")),
                    other => Status::internal(format!("[RKV-AE] repair failed: {other}")),
                };
                let _ = tx.send(Err(status));
            }
        };
        self.jobs.spawn("repair", job).map_err(|e| stopping(&e))?;
        Ok(Response::new(Box::pin(tokio_stream::wrappers::UnboundedReceiverStream::new(rx))))
    }

    async fn snapshot(&self, _: Request<pb::SnapshotRequest>) -> Result<Response<pb::SnapshotResponse>, Status> {
        Err(Status::unimplemented(
            "[RKV-NOT-YET] snapshots are not implemented yet; stop the node and copy its data directory",
        ))
    }

    async fn drain(&self, _: Request<pb::DrainRequest>) -> Result<Response<pb::DrainResponse>, Status> {
        self.coordinator.drain();
        let storage = std::sync::Arc::clone(&self.node.storage);
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
