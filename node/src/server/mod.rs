//! Servers: the client-facing protocols. gRPC (`ringkv.v1.KV`,
//! `ringkv.v1.Admin`), HTTP (`/api/v1`, `/metrics`, `/healthz`, `/readyz`)
//! and RESP, the mapping of errors to them (`status`), and their metrics.
//!
//! Servers take already-bound listeners so tests can bind port 0, and one
//! cancellation token stops everything. The node that runs them is put
//! together by `assembly`, which this module never calls. It may call the
//! domains and `peer`; nothing below `peer` may call it (see
//! `node/tests/deps.rs`; the remaining exceptions are listed there).

pub mod admin;
pub mod grpc;
pub mod http_api;
pub mod metrics;
pub mod resp;
pub mod status;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Who this node is, for status endpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeIdentity {
    /// Persistent host id (never an IP).
    pub host_id: String,
    /// Bound gRPC address.
    pub grpc_addr: SocketAddr,
    /// Bound HTTP address.
    pub http_addr: SocketAddr,
    /// Bound RESP (Redis protocol) address, when enabled.
    pub resp_addr: Option<SocketAddr>,
    /// Data directory.
    pub data_dir: String,
}

type Gate = Arc<std::sync::OnceLock<Box<dyn Fn() -> bool + Send + Sync>>>;

/// Whether the node should receive traffic (`/readyz`). Set once the node has
/// opened its storage and started its servers; cleared when it drains. A
/// gate (the topology's: NORMAL and its ranges reachable) must agree too.
#[derive(Clone, Default)]
pub struct Readiness(Arc<AtomicBool>, Gate);

impl std::fmt::Debug for Readiness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Readiness").field("set", &self.0.load(Ordering::SeqCst)).finish_non_exhaustive()
    }
}

impl Readiness {
    /// Marks the node ready or not.
    pub fn set(&self, ready: bool) {
        self.0.store(ready, Ordering::SeqCst);
    }

    /// Adds a condition that must hold too (the first gate set wins).
    pub fn set_gate(&self, gate: impl Fn() -> bool + Send + Sync + 'static) {
        let _ = self.1.set(Box::new(gate));
    }

    /// True when ready.
    pub fn is_ready(&self) -> bool {
        self.0.load(Ordering::SeqCst) && self.1.get().is_none_or(|gate| gate())
    }
}
