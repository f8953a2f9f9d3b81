//! Admin endpoints under `/api/v1/admin`.
//!
//! - `GET cluster/status` → `{"nodes":[{"node_id","address","http_address",
//!   "status":"healthy"|"starting","keys_count","disk_bytes"}],"total_keys",
//!   "replication_factor"}`. Single node for now: this node's storage stats
//!   (`keys_count` is the engine's approximate record count, tombstones
//!   included) and the default keyspace's replication factor.
//! - `GET keyspaces` → `{"keyspaces":[{"name","replication_factor",
//!   "conflict_mode","read_consistency","write_consistency",
//!   "default_ttl_seconds"}]}`.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use crate::storage::StorageStats;

use super::Ctx;
use super::error::HttpError;

/// `GET /admin/cluster/status`.
pub(super) async fn cluster_status(State(ctx): State<Ctx>) -> Result<Json<Value>, HttpError> {
    let http = &ctx.http;
    let storage = http.coordinator.storage().clone();
    // Storage calls may block; a failed task reports empty stats rather than failing the page.
    let stats = tokio::task::spawn_blocking(move || storage.stats()).await.unwrap_or_else(|_| StorageStats::default());
    let rf = http.coordinator.keyspaces().get(crate::DEFAULT_KEYSPACE)?.replication_factor;
    let id = &http.identity;
    let status = if http.readiness.is_ready() { "healthy" } else { "starting" };
    let node = json!({
        "node_id": id.host_id,
        "address": id.grpc_addr.to_string(),
        "http_address": id.http_addr.to_string(),
        "status": status,
        "keys_count": stats.approximate_records,
        "disk_bytes": stats.disk_bytes,
    });
    Ok(Json(json!({ "nodes": [node], "total_keys": stats.approximate_records, "replication_factor": rf })))
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
