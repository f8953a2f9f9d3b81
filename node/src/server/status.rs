//! The one place where [`KvError`] becomes a gRPC status or an HTTP status.
//!
//! Every error carries a stable code (`RKV-…`) a user can search for in the
//! docs; the message says what failed and what to do. The code also travels
//! explicitly, in the `rkv-code` metadata of the status
//! ([`ERROR_CODE_METADATA`]), so that a node forwarding a request keeps the
//! code (and status) the answering replica gave: a forwarded increment of a
//! non-integer is `RKV-NOT-AN-INTEGER`, not a generic remote failure.

use http::StatusCode;
use tonic::Code;
use tonic::metadata::MetadataValue;

use crate::error::{ERROR_CODE_METADATA, KvError, RemoteStatus};
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

const EMPTY_KEY: ErrorClass = class("RKV-EMPTY-KEY", Code::InvalidArgument, StatusCode::BAD_REQUEST);
const KEY_TOO_LARGE: ErrorClass = class("RKV-KEY-TOO-LARGE", Code::InvalidArgument, StatusCode::PAYLOAD_TOO_LARGE);
const VALUE_TOO_LARGE: ErrorClass = class("RKV-VALUE-TOO-LARGE", Code::InvalidArgument, StatusCode::PAYLOAD_TOO_LARGE);
const UNKNOWN_KEYSPACE: ErrorClass = class("RKV-UNKNOWN-KEYSPACE", Code::InvalidArgument, StatusCode::BAD_REQUEST);
const TTL_RANGE: ErrorClass = class("RKV-TTL-RANGE", Code::InvalidArgument, StatusCode::BAD_REQUEST);
const BAD_CONTEXT: ErrorClass = class("RKV-BAD-CONTEXT", Code::InvalidArgument, StatusCode::BAD_REQUEST);
const BAD_CURSOR: ErrorClass = class("RKV-BAD-CURSOR", Code::InvalidArgument, StatusCode::BAD_REQUEST);
const BATCH_TOO_LARGE: ErrorClass = class("RKV-BATCH-TOO-LARGE", Code::InvalidArgument, StatusCode::PAYLOAD_TOO_LARGE);
const UNKNOWN_CONSISTENCY: ErrorClass =
    class("RKV-UNKNOWN-CONSISTENCY", Code::InvalidArgument, StatusCode::BAD_REQUEST);
const CONSISTENCY: ErrorClass = class("RKV-CONSISTENCY", Code::InvalidArgument, StatusCode::BAD_REQUEST);
const NOT_AN_INTEGER: ErrorClass = class("RKV-NOT-AN-INTEGER", Code::FailedPrecondition, StatusCode::CONFLICT);
const OVERFLOW: ErrorClass = class("RKV-OVERFLOW", Code::OutOfRange, StatusCode::CONFLICT);
const UNAVAILABLE: ErrorClass = class("RKV-UNAVAILABLE", Code::Unavailable, StatusCode::SERVICE_UNAVAILABLE);
const QUORUM: ErrorClass = class("RKV-QUORUM", Code::Unavailable, StatusCode::SERVICE_UNAVAILABLE);
const TIMEOUT: ErrorClass = class("RKV-TIMEOUT", Code::DeadlineExceeded, StatusCode::GATEWAY_TIMEOUT);
const SHUTTING_DOWN: ErrorClass = class("RKV-SHUTTING-DOWN", Code::Unavailable, StatusCode::SERVICE_UNAVAILABLE);
const DISK_FULL: ErrorClass = class("RKV-DISK-FULL", Code::ResourceExhausted, StatusCode::INSUFFICIENT_STORAGE);
const STORAGE: ErrorClass = class("RKV-STORAGE", Code::Internal, StatusCode::INTERNAL_SERVER_ERROR);

/// Every class [`classify`] gives, so that a code received from a replica
/// maps back to its class.
const CLASSES: [ErrorClass; 19] = [
    EMPTY_KEY,
    KEY_TOO_LARGE,
    VALUE_TOO_LARGE,
    UNKNOWN_KEYSPACE,
    TTL_RANGE,
    BAD_CONTEXT,
    BAD_CURSOR,
    BATCH_TOO_LARGE,
    UNKNOWN_CONSISTENCY,
    CONSISTENCY,
    NOT_AN_INTEGER,
    OVERFLOW,
    UNAVAILABLE,
    QUORUM,
    TIMEOUT,
    SHUTTING_DOWN,
    DISK_FULL,
    STORAGE,
    // A replica refused what this node sent it: a fault between nodes, not the client's.
    class("RKV-BAD-PEER-REQUEST", Code::Internal, StatusCode::BAD_GATEWAY),
];

/// Classifies an error.
pub fn classify(err: &KvError) -> ErrorClass {
    use KvError as E;
    match err {
        E::EmptyKey { .. } => EMPTY_KEY,
        E::KeyTooLarge { .. } => KEY_TOO_LARGE,
        E::ValueTooLarge { .. } => VALUE_TOO_LARGE,
        E::UnknownKeyspace { .. } => UNKNOWN_KEYSPACE,
        E::TtlOutOfRange { .. } => TTL_RANGE,
        E::BadContext { .. } => BAD_CONTEXT,
        E::BadCursor => BAD_CURSOR,
        E::BatchTooLarge { .. } => BATCH_TOO_LARGE,
        E::UnknownConsistency(_) => UNKNOWN_CONSISTENCY,
        E::Consistency(_) => CONSISTENCY,
        E::NotAnInteger => NOT_AN_INTEGER,
        E::Overflow { .. } => OVERFLOW,
        E::Unavailable { .. } => UNAVAILABLE,
        E::QuorumNotReached { .. } => QUORUM,
        E::Remote { code, rkv_code, .. } => {
            rkv_code.as_deref().and_then(class_of).unwrap_or_else(|| remote_class(*code))
        }
        E::Timeout { .. } => TIMEOUT,
        E::ShuttingDown => SHUTTING_DOWN,
        E::Storage(StorageError::DiskFull { .. }) => DISK_FULL,
        E::Storage(StorageError::ShutDown) => SHUTTING_DOWN,
        E::Storage(_) => STORAGE,
    }
}

/// The class of a stable code, when it is one of ours.
pub fn class_of(code: &str) -> Option<ErrorClass> {
    CLASSES.iter().find(|c| c.code == code).copied()
}

/// The status of a forwarded request whose replica sent no code we know
/// (a peer of another version): keeps its gRPC status.
fn remote_class(code: RemoteStatus) -> ErrorClass {
    match code {
        RemoteStatus::InvalidArgument => class("RKV-REMOTE", Code::InvalidArgument, StatusCode::BAD_REQUEST),
        RemoteStatus::FailedPrecondition => class("RKV-REMOTE", Code::FailedPrecondition, StatusCode::CONFLICT),
        RemoteStatus::Unavailable => class("RKV-REMOTE", Code::Unavailable, StatusCode::SERVICE_UNAVAILABLE),
        RemoteStatus::DeadlineExceeded => class("RKV-REMOTE", Code::DeadlineExceeded, StatusCode::GATEWAY_TIMEOUT),
        RemoteStatus::ResourceExhausted => {
            class("RKV-REMOTE", Code::ResourceExhausted, StatusCode::INSUFFICIENT_STORAGE)
        }
        _ => class("RKV-REMOTE", Code::Internal, StatusCode::BAD_GATEWAY),
    }
}

/// The gRPC status of an error: its code, `[RKV-…] message`, and the
/// `rkv-code` metadata.
pub fn to_status(err: &KvError) -> tonic::Status {
    let c = classify(err);
    with_code(tonic::Status::new(c.grpc, format!("[{}] {err}", c.code)), c.code)
}

/// A gRPC INVALID_ARGUMENT for malformed input that never reached the coordinator.
pub fn invalid_argument(code: &'static str, message: impl std::fmt::Display) -> tonic::Status {
    coded(Code::InvalidArgument, code, message)
}

/// A status of `grpc` with the stable `code`: `[code] message`, and the code
/// in the `rkv-code` metadata (so a peer's client keeps it, typed).
pub fn coded(grpc: Code, code: &'static str, message: impl std::fmt::Display) -> tonic::Status {
    with_code(tonic::Status::new(grpc, format!("[{code}] {message}")), code)
}

fn with_code(mut status: tonic::Status, code: &'static str) -> tonic::Status {
    status.metadata_mut().insert(ERROR_CODE_METADATA, MetadataValue::from_static(code));
    status
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_class_is_listed_once_and_found_by_its_code() {
        for (i, c) in CLASSES.iter().enumerate() {
            assert_eq!(class_of(c.code), Some(*c), "{}", c.code);
            assert!(CLASSES[i + 1..].iter().all(|o| o.code != c.code), "{} listed twice", c.code);
        }
        assert_eq!(class_of("RKV-NO-SUCH-CODE"), None);
    }

    #[test]
    fn a_remote_error_keeps_the_code_and_status_its_replica_gave() {
        let remote = |rkv_code: Option<&str>, code: RemoteStatus| KvError::Remote {
            peer: "10.0.0.2:7100".into(),
            code,
            rkv_code: rkv_code.map(str::to_owned),
            message: "value of key is not a decimal integer".into(),
        };
        let forwarded = remote(Some("RKV-NOT-AN-INTEGER"), RemoteStatus::FailedPrecondition);
        assert_eq!(classify(&forwarded), NOT_AN_INTEGER);
        let status = to_status(&forwarded);
        assert_eq!(status.code(), Code::FailedPrecondition);
        assert_eq!(
            status.metadata().get(ERROR_CODE_METADATA).and_then(|v| v.to_str().ok()),
            Some("RKV-NOT-AN-INTEGER")
        );
        assert!(status.message().starts_with("[RKV-NOT-AN-INTEGER] replica 10.0.0.2:7100"), "{}", status.message());
        // A peer that sends no code we know keeps its gRPC status.
        let unknown = classify(&remote(Some("RKV-FROM-THE-FUTURE"), RemoteStatus::InvalidArgument));
        assert_eq!((unknown.code, unknown.http), ("RKV-REMOTE", StatusCode::BAD_REQUEST));
        assert_eq!(classify(&remote(None, RemoteStatus::Aborted)).http, StatusCode::BAD_GATEWAY);
    }
}
