//! The one place where [`KvError`] becomes a gRPC status or an HTTP status.
//!
//! Every error carries a stable code (`RKV-…`) a user can search for in the
//! docs; the message says what failed and what to do.

use http::StatusCode;
use tonic::Code;

use crate::error::KvError;
use crate::storage::StorageError;

/// How an error is presented to clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorClass {
    /// Stable, searchable code.
    pub code: &'static str,
    /// gRPC status code.
    pub grpc: Code,
    /// HTTP status.
    pub http: StatusCode,
}

const fn class(code: &'static str, grpc: Code, http: StatusCode) -> ErrorClass {
    ErrorClass { code, grpc, http }
}

/// Classifies an error.
pub fn classify(err: &KvError) -> ErrorClass {
    use KvError as E;
    match err {
        E::EmptyKey { .. } => class("RKV-EMPTY-KEY", Code::InvalidArgument, StatusCode::BAD_REQUEST),
        E::KeyTooLarge { .. } => class("RKV-KEY-TOO-LARGE", Code::InvalidArgument, StatusCode::PAYLOAD_TOO_LARGE),
        E::ValueTooLarge { .. } => class("RKV-VALUE-TOO-LARGE", Code::InvalidArgument, StatusCode::PAYLOAD_TOO_LARGE),
        E::UnknownKeyspace { .. } => class("RKV-UNKNOWN-KEYSPACE", Code::InvalidArgument, StatusCode::BAD_REQUEST),
        E::TtlOutOfRange { .. } => class("RKV-TTL-RANGE", Code::InvalidArgument, StatusCode::BAD_REQUEST),
        E::BadContext { .. } => class("RKV-BAD-CONTEXT", Code::InvalidArgument, StatusCode::BAD_REQUEST),
        E::BadCursor => class("RKV-BAD-CURSOR", Code::InvalidArgument, StatusCode::BAD_REQUEST),
        E::BatchTooLarge { .. } => class("RKV-BATCH-TOO-LARGE", Code::InvalidArgument, StatusCode::PAYLOAD_TOO_LARGE),
        E::UnknownConsistency(_) => class("RKV-UNKNOWN-CONSISTENCY", Code::InvalidArgument, StatusCode::BAD_REQUEST),
        E::Consistency(_) => class("RKV-CONSISTENCY", Code::InvalidArgument, StatusCode::BAD_REQUEST),
        E::NotAnInteger => class("RKV-NOT-AN-INTEGER", Code::FailedPrecondition, StatusCode::CONFLICT),
        E::Overflow { .. } => class("RKV-OVERFLOW", Code::OutOfRange, StatusCode::CONFLICT),
        E::Unavailable { .. } => class("RKV-UNAVAILABLE", Code::Unavailable, StatusCode::SERVICE_UNAVAILABLE),
        E::QuorumNotReached { .. } => class("RKV-QUORUM", Code::Unavailable, StatusCode::SERVICE_UNAVAILABLE),
        E::Remote { code, .. } => remote_class(code),
        E::Timeout { .. } => class("RKV-TIMEOUT", Code::DeadlineExceeded, StatusCode::GATEWAY_TIMEOUT),
        E::ShuttingDown => class("RKV-SHUTTING-DOWN", Code::Unavailable, StatusCode::SERVICE_UNAVAILABLE),
        E::Storage(StorageError::DiskFull { .. }) => {
            class("RKV-DISK-FULL", Code::ResourceExhausted, StatusCode::INSUFFICIENT_STORAGE)
        }
        E::Storage(StorageError::ShutDown) => {
            class("RKV-SHUTTING-DOWN", Code::Unavailable, StatusCode::SERVICE_UNAVAILABLE)
        }
        E::Storage(_) => class("RKV-STORAGE", Code::Internal, StatusCode::INTERNAL_SERVER_ERROR),
    }
}

/// Keeps the status a forwarded request got from the replica that answered it.
fn remote_class(code: &str) -> ErrorClass {
    match code {
        "InvalidArgument" => class("RKV-REMOTE", Code::InvalidArgument, StatusCode::BAD_REQUEST),
        "FailedPrecondition" => class("RKV-REMOTE", Code::FailedPrecondition, StatusCode::CONFLICT),
        "Unavailable" => class("RKV-REMOTE", Code::Unavailable, StatusCode::SERVICE_UNAVAILABLE),
        "DeadlineExceeded" => class("RKV-REMOTE", Code::DeadlineExceeded, StatusCode::GATEWAY_TIMEOUT),
        "ResourceExhausted" => class("RKV-REMOTE", Code::ResourceExhausted, StatusCode::INSUFFICIENT_STORAGE),
        _ => class("RKV-REMOTE", Code::Internal, StatusCode::BAD_GATEWAY),
    }
}

/// The gRPC status of an error: its code, and `[RKV-…] message`.
pub fn to_status(err: &KvError) -> tonic::Status {
    let c = classify(err);
    tonic::Status::new(c.grpc, format!("[{}] {err}", c.code))
}

/// A gRPC INVALID_ARGUMENT for malformed input that never reached the coordinator.
pub fn invalid_argument(code: &'static str, message: impl std::fmt::Display) -> tonic::Status {
    tonic::Status::invalid_argument(format!("[{code}] {message}"))
}
