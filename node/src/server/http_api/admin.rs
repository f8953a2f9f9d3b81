//! Admin endpoints under `/api/v1/admin`.
//!
//! - `GET cluster/status` → every member this node knows, as gRPC
//!   `Admin.ClusterStatus` and `kvctl --json status` list them:
//!   `{"cluster_name","replication_factor","answered_by","total_keys",
//!   "nodes":[{"host_id","grpc_addr","http_addr","zone","rack","state",
//!   "liveness","ownership","load_bytes","pending_hints","streaming_progress",
//!   "last_full_repair_ms","vnodes","status","node_id","address",
//!   "http_address","disk_bytes","keys_count"?}]}`. `status` is `healthy`
//!   (alive and NORMAL, and for the answering node ready), `starting`
//!   (the answering node before it is ready) or the member's liveness and
//!   state in lower case (`down`, `suspect`, `joining`, …). `node_id`,
//!   `address`, `http_address` and `disk_bytes` repeat `host_id`,
//!   `grpc_addr`, `http_addr` and `load_bytes` under their older names.
//!   `keys_count` (the engine's approximate record count, tombstones
//!   included) and `total_keys` are known only for the answering node.
//! - `GET keyspaces` → `{"keyspaces":[{"name","replication_factor",
//!   "conflict_mode","read_consistency","write_consistency",
//!   "default_ttl_seconds"}]}`.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use ringkv_proto::v1::{Liveness, NodeState, NodeStatus};
use serde_json::{Value, json};

use crate::storage::StorageStats;

use super::Ctx;
use super::error::HttpError;

/// `GET /admin/cluster/status`.
pub(super) async fn cluster_status(State(ctx): State<Ctx>) -> Result<Json<Value>, HttpError> {
    let http = &ctx.http;
    let snapshot = http.admin.cluster_status_snapshot().await?;
    let storage = Arc::clone(&http.storage);
    // Storage calls may block; a failed task reports empty stats rather than failing the page.
    let stats = tokio::task::spawn_blocking(move || storage.stats()).await.unwrap_or_else(|_| StorageStats::default());
    let ready = http.readiness.is_ready();
    let nodes: Vec<Value> = snapshot
        .nodes
        .iter()
        .map(|n| {
            let local = n.host_id == snapshot.answered_by;
            let mut node = node_json(n, local, ready);
            if local {
                node["keys_count"] = json!(stats.approximate_records);
            }
            node
        })
        .collect();
    Ok(Json(json!({
        "cluster_name": snapshot.cluster_name,
        "replication_factor": snapshot.replication_factor,
        "answered_by": snapshot.answered_by,
        "total_keys": stats.approximate_records,
        "nodes": nodes,
    })))
}

/// One member, with the field names of `kvctl --json status` and the older ones.
fn node_json(n: &NodeStatus, local: bool, ready: bool) -> Value {
    let state = NodeState::try_from(n.state).unwrap_or(NodeState::Unspecified);
    let liveness = Liveness::try_from(n.liveness).unwrap_or(Liveness::Unspecified);
    let state_name = state.as_str_name().trim_start_matches("NODE_STATE_");
    let liveness_name = liveness.as_str_name().trim_start_matches("LIVENESS_");
    let status = match (local && !ready, liveness, state) {
        (true, ..) => "starting".to_owned(),
        (false, Liveness::Alive, NodeState::Normal) => "healthy".to_owned(),
        (false, Liveness::Alive, _) => state_name.to_ascii_lowercase(),
        (false, ..) => liveness_name.to_ascii_lowercase(),
    };
    json!({
        "host_id": n.host_id,
        "grpc_addr": n.grpc_addr,
        "http_addr": n.http_addr,
        "zone": n.zone,
        "rack": n.rack,
        "state": state_name,
        "liveness": liveness_name,
        "ownership": n.ownership,
        "load_bytes": n.load_bytes,
        "pending_hints": n.pending_hints,
        "streaming_progress": n.streaming_progress,
        "last_full_repair_ms": n.last_full_repair_ms,
        "vnodes": n.vnodes,
        "status": status,
        "node_id": n.host_id,
        "address": n.grpc_addr,
        "http_address": n.http_addr,
        "disk_bytes": n.load_bytes,
    })
}

/// `GET /admin/keyspaces`.
pub(super) async fn keyspaces(State(ctx): State<Ctx>) -> Json<Value> {
    let list: Vec<Value> = ctx
        .http
        .coordinator
        .keyspaces()
        .list()
        .iter()
        .map(|ks| {
            json!({
                "name": ks.name,
                "replication_factor": ks.replication_factor,
                "conflict_mode": ks.conflict_mode,
                "read_consistency": ks.read_consistency,
                "write_consistency": ks.write_consistency,
                "default_ttl_seconds": ks.default_ttl_seconds,
            })
        })
        .collect();
    Json(json!({ "keyspaces": list }))
}
