//! [`Target`]: the capability a benchmarked store offers, and its errors.
//!
//! A target is shared by every client task (`&self`, `Send + Sync`), so an
//! implementation multiplexes or pools its connections itself. Methods
//! return `Send` futures so the runner can spawn one task per client; the
//! runner is generic over the target type (static dispatch, no boxing on the
//! hot path). A new store (etcd, ...) is one more implementation: a struct,
//! a `connect`, and these five operations.

use std::collections::BTreeMap;
use std::future::Future;

use bytes::Bytes;
use serde::Serialize;

/// What a report says about the target.
#[derive(Debug, Clone, Serialize)]
pub struct TargetInfo {
    /// `ringkv-grpc`, `ringkv-http`, `redis`, ...
    pub name: String,
    /// Where it was reached.
    pub endpoint: String,
    /// Client settings that matter for the numbers (connections, consistency, scan method).
    pub settings: BTreeMap<String, String>,
}

/// A failed operation (the runner counts it; it does not stop the run).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TargetError {
    /// The RingKV gRPC client failed.
    #[error("ringkv gRPC: {source}")]
    Grpc {
        /// The client's error.
        #[from]
        source: ringkv_client::ClientError,
    },
    /// An HTTP request failed before a status arrived.
    #[error("HTTP {op}: {source}")]
    Http {
        /// The operation.
        op: &'static str,
        /// reqwest's error.
        source: reqwest::Error,
    },
    /// An HTTP request got an unexpected status.
    #[error("HTTP {op}: status {status}")]
    HttpStatus {
        /// The operation.
        op: &'static str,
        /// The status code.
        status: u16,
    },
    /// A response body did not have the expected shape.
    #[error("{op}: malformed response: {reason}")]
    Malformed {
        /// The operation.
        op: &'static str,
        /// What was wrong.
        reason: &'static str,
    },
    /// Redis answered with an error or the connection failed.
    #[error("redis: {source}")]
    Redis {
        /// The redis crate's error.
        #[from]
        source: redis::RedisError,
    },
    /// etcd answered an RPC with an error status (or the channel failed).
    #[error("etcd {op}: {source}")]
    Etcd {
        /// The RPC: `Range`, `Put`.
        op: &'static str,
        /// tonic's status.
        source: tonic::Status,
    },
    /// Connecting to the target failed.
    /// The target cannot do this operation (e.g. scans over RESP).
    #[error("{target} does not support {op}; use another target for this workload")]
    Unsupported {
        /// The operation.
        op: &'static str,
        /// The target.
        target: &'static str,
    },
    #[error("cannot connect to {endpoint}: {reason}")]
    Connect {
        /// The endpoint.
        endpoint: String,
        /// Why.
        reason: String,
    },
}

/// A store under benchmark. Keys are UTF-8 (YCSB's `user…` names); values are bytes.
pub trait Target: Send + Sync + 'static {
    /// Describes the target for the report.
    /// Whether [`Target::scan`] works (workload E is skipped otherwise).
    fn supports_scan(&self) -> bool {
        true
    }

    fn info(&self) -> TargetInfo;

    /// Reads `key`; `Ok(false)` when it does not exist.
    fn read(&self, key: &str) -> impl Future<Output = Result<bool, TargetError>> + Send;

    /// Overwrites `key` with `value`.
    fn update(&self, key: &str, value: Bytes) -> impl Future<Output = Result<(), TargetError>> + Send;

    /// Writes the new record `key`. Separate from `update` because some
    /// targets maintain a scan index on insert.
    fn insert(&self, key: &str, value: Bytes) -> impl Future<Output = Result<(), TargetError>> + Send;

    /// Reads up to `count` records in key order starting at (or just after)
    /// `start`; returns how many were read.
    fn scan(&self, start: &str, count: u32) -> impl Future<Output = Result<usize, TargetError>> + Send;

    /// Reads `key` and writes `value` back, as one measured operation.
    fn read_modify_write(&self, key: &str, value: Bytes) -> impl Future<Output = Result<(), TargetError>> + Send;
}
