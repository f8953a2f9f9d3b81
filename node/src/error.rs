//! [`KvError`]: every way a client operation can fail.
//!
//! Mapped to gRPC status codes and HTTP statuses in one place
//! (`server/status.rs`), each with a stable error code a user can search for.

use crate::replication::{ConsistencyError, UnknownConsistency};
use crate::storage::StorageError;
use crate::version::CodecError;

/// The gRPC metadata key that carries an error's stable `RKV-…` code, so that
/// it survives forwarding between nodes without parsing messages.
pub const ERROR_CODE_METADATA: &str = "rkv-code";

/// The gRPC status class a peer refused a call with, as a closed set: callers
/// match on it (never on its name), and no module outside the peer layer
/// needs tonic to read it. `peer::call` makes it from the status; its
/// `Display` is the gRPC code's name (`InvalidArgument`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub enum RemoteStatus {
    Cancelled,
    Unknown,
    InvalidArgument,
    DeadlineExceeded,
    NotFound,
    AlreadyExists,
    PermissionDenied,
    ResourceExhausted,
    FailedPrecondition,
    Aborted,
    OutOfRange,
    Unimplemented,
    Internal,
    Unavailable,
    DataLoss,
    Unauthenticated,
}

impl std::fmt::Display for RemoteStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self, f)
    }
}

/// Why a client operation failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum KvError {
    /// The key is empty.
    #[error("key is empty; keys must be 1 to {max} bytes")]
    EmptyKey {
        /// Key size limit.
        max: usize,
    },
    /// The key is over the size limit.
    #[error("key is {len} bytes, over the limit of {max} bytes (server.max_key_bytes)")]
    KeyTooLarge {
        /// Key size.
        len: usize,
        /// Limit.
        max: usize,
    },
    /// The value is over the size limit.
    #[error("value is {len} bytes, over the limit of {max} bytes (server.max_value_bytes)")]
    ValueTooLarge {
        /// Value size.
        len: usize,
        /// Limit.
        max: usize,
    },
    /// The keyspace does not exist.
    #[error("keyspace {name:?} does not exist; define it in the node config ([[keyspaces]]) or use \"default\"")]
    UnknownKeyspace {
        /// The name given.
        name: String,
    },
    /// The TTL is out of range.
    #[error("ttl of {ttl_seconds} s is out of range; use 1 to {max} seconds, or leave it out for the keyspace default")]
    TtlOutOfRange {
        /// TTL asked.
        ttl_seconds: u64,
        /// Limit (server.max_ttl_seconds).
        max: u64,
    },
    /// The causal context is not one this server issued.
    #[error("causal context is malformed ({source}); pass back the context from a read unchanged, or none")]
    BadContext {
        /// Decoder error.
        source: CodecError,
    },
    /// A cursor is not one this server issued.
    #[error("cursor is malformed; pass back the cursor from the previous page unchanged, or none to start")]
    BadCursor,
    /// Too many keys in one batch.
    #[error("batch has {len} keys, over the limit of {max} (server.max_batch_keys); split it")]
    BatchTooLarge {
        /// Keys in the batch.
        len: usize,
        /// Limit.
        max: usize,
    },
    /// An unknown consistency level name.
    #[error(transparent)]
    UnknownConsistency(#[from] UnknownConsistency),
    /// A consistency level the keyspace cannot satisfy.
    #[error(transparent)]
    Consistency(#[from] ConsistencyError),
    /// Increment on a value that is not a decimal integer.
    #[error("value of key is not a decimal integer, cannot increment it; overwrite it or use another key")]
    NotAnInteger,
    /// Increment would overflow a signed 64-bit integer.
    #[error("increment overflows a signed 64-bit counter (current {current}, delta {delta})")]
    Overflow {
        /// Current value.
        current: i64,
        /// Delta asked.
        delta: i64,
    },
    /// Not enough replicas answered in time.
    #[error("not enough replicas: {required} required, {alive} alive; retry later or lower the consistency level")]
    Unavailable {
        /// Acknowledgements needed.
        required: u32,
        /// Replicas that could be reached.
        alive: u32,
    },
    /// Replicas answered, but not enough of them acknowledged.
    #[error(
        "not enough replicas acknowledged: {required} required, {acked} acked ({failures}); retry later or lower the consistency level"
    )]
    QuorumNotReached {
        /// Acknowledgements needed.
        required: u32,
        /// Acknowledgements received.
        acked: u32,
        /// What failed, per replica.
        failures: String,
    },
    /// A replica this request was forwarded to refused it.
    #[error("replica {peer} refused the request: {message}")]
    Remote {
        /// The replica.
        peer: String,
        /// The gRPC status it answered with.
        code: RemoteStatus,
        /// The stable `RKV-…` code it sent, if any: the error keeps it.
        rkv_code: Option<String>,
        /// Its message.
        message: String,
    },
    /// The request did not finish before its deadline.
    #[error("request timed out after {ms} ms; retry, or raise server.request_timeout_ms")]
    Timeout {
        /// The deadline.
        ms: u64,
    },
    /// The node is draining or shutting down.
    #[error("node is shutting down; retry on another node")]
    ShuttingDown,
    /// Local storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}
