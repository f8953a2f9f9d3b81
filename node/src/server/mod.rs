//! Servers: gRPC (`ringkv.v1.KV`, `ringkv.v1.Admin`, health, reflection) and
//! HTTP (`/api/v1`, `/metrics`, `/healthz`, `/readyz`), the mapping of errors
//! to both, metrics, and the process lifecycle of a node ([`Node`]).
//!
//! Servers take already-bound listeners so tests can bind port 0, and one
//! cancellation token stops everything. This module may call `replication`,
//! `storage`, `config` and `worker`.

pub mod http_api;
pub mod metrics;
pub mod status;
