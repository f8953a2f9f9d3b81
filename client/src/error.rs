//! [`ClientError`]: every way a client call can fail, one variant per failure
//! a caller can act on.
//!
//! gRPC statuses are mapped to variants in one place, [`ClientError::from_status`].
//! Each message says what failed and what to do about it. A missing key is
//! not an error: reads return `Option`, `touch` returns `None`.

use std::error::Error as _;
use std::time::Duration;

use tonic::{Code, Status};

/// An error of a RingKV client call.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The endpoint string could not be understood.
    #[error(
        "invalid endpoint {endpoint:?}: {reason}; use HOST:PORT, http://HOST:PORT or https://HOST:PORT (TLS), \
         e.g. 127.0.0.1:7100"
    )]
    InvalidEndpoint {
        /// The endpoint as given.
        endpoint: String,
        /// What is wrong with it.
        reason: String,
    },

    /// No connection could be opened to the endpoint.
    #[error(
        "cannot connect to {endpoint}: is `kvnode` running there? start one with `kvnode dev`, \
         or point the client at a running node (kvctl: --endpoint HOST:PORT or RINGKV_ENDPOINT){}",
        if *tls { "" } else { "; if the node has TLS on, use https://HOST:PORT with --tls-ca" }
    )]
    Connect {
        /// `host:port` of the node.
        endpoint: String,
        /// Whether the connection was to run TLS.
        tls: bool,
        /// The transport failure.
        #[source]
        source: tonic::transport::Error,
    },

    /// The TLS handshake with the node failed (wrong CA, name, validity,
    /// client certificate, or a plaintext port).
    #[error("TLS with {endpoint} failed: {problem}")]
    Tls {
        /// `host:port` of the node.
        endpoint: String,
        /// What went wrong and how to fix it.
        problem: crate::connection::TlsProblem,
    },

    /// An `https://` endpoint was given without a CA to verify the node.
    #[error(
        "RKV-TLS-040: {endpoint} is an https:// endpoint but no CA was given: pass --tls-ca with the \
         cluster CA (or set RINGKV_TLS_CA)"
    )]
    TlsNotConfigured {
        /// `host:port` of the node.
        endpoint: String,
    },

    /// The TLS files could not be loaded.
    #[error(transparent)]
    TlsFiles {
        /// What is wrong with which file.
        #[from]
        source: crate::tls::TlsFileError,
    },

    /// The bearer token could not be used.
    #[error(transparent)]
    Token {
        /// What is wrong with it (never the token).
        #[from]
        source: crate::auth::TokenError,
    },

    /// The server rejected an argument (`INVALID_ARGUMENT`, `OUT_OF_RANGE`).
    #[error("{rpc} rejected: {message}; fix the request and retry")]
    InvalidArgument {
        /// The RPC that failed.
        rpc: &'static str,
        /// The server's explanation.
        message: String,
    },

    /// Something other than a key was not found, e.g. an unknown keyspace (`NOT_FOUND`).
    #[error("{rpc}: not found: {message}; check the keyspace name (kvctl: --keyspace)")]
    NotFound {
        /// The RPC that failed.
        rpc: &'static str,
        /// The server's explanation.
        message: String,
    },

    /// The thing to create already exists (`ALREADY_EXISTS`).
    #[error("{rpc}: already exists: {message}")]
    AlreadyExists {
        /// The RPC that failed.
        rpc: &'static str,
        /// The server's explanation.
        message: String,
    },

    /// The cluster is not in a state that allows the call (`FAILED_PRECONDITION`).
    #[error(
        "{rpc} refused in the cluster's current state: {message}; check `kvctl status` and retry once it allows the operation"
    )]
    FailedPrecondition {
        /// The RPC that failed.
        rpc: &'static str,
        /// The server's explanation.
        message: String,
    },

    /// A concurrent operation on the same key won (`ABORTED`); safe to retry.
    #[error("{rpc} aborted by a concurrent operation on the same key: {message}; retry the operation")]
    Aborted {
        /// The RPC that failed.
        rpc: &'static str,
        /// The server's explanation.
        message: String,
    },

    /// The node or too many replicas are unavailable, or the connection broke
    /// (`UNAVAILABLE`).
    #[error("{rpc} via {endpoint} failed, the cluster is unavailable: {message}; check the nodes with `kvctl status`")]
    Unavailable {
        /// The RPC that failed.
        rpc: &'static str,
        /// `host:port` of the node that was asked.
        endpoint: String,
        /// The server's or the transport's explanation.
        message: String,
    },

    /// No answer arrived within the client's per-request timeout.
    #[error(
        "{rpc} via {endpoint} timed out after {after:?}; the node may be overloaded or cut off: \
         retry, raise the timeout (kvctl: --timeout SECS), or use a lower consistency level"
    )]
    Timeout {
        /// The RPC that failed.
        rpc: &'static str,
        /// `host:port` of the node that was asked.
        endpoint: String,
        /// The timeout that expired.
        after: Duration,
    },

    /// The server gave up waiting for replicas (`DEADLINE_EXCEEDED`).
    #[error(
        "{rpc}: the server's deadline expired before enough replicas answered: {message}; \
         retry, or use a lower consistency level"
    )]
    DeadlineExceeded {
        /// The RPC that failed.
        rpc: &'static str,
        /// The server's explanation.
        message: String,
    },

    /// The server is overloaded or a size limit was hit (`RESOURCE_EXHAUSTED`).
    #[error("{rpc}: the server refused for lack of resources: {message}; slow down or shrink the request")]
    ResourceExhausted {
        /// The RPC that failed.
        rpc: &'static str,
        /// The server's explanation.
        message: String,
    },

    /// Missing or insufficient credentials (`UNAUTHENTICATED`, `PERMISSION_DENIED`).
    #[error("{rpc}: access denied ({code:?}): {message}; {}", access_hint(*code))]
    AccessDenied {
        /// The RPC that failed.
        rpc: &'static str,
        /// `Unauthenticated` or `PermissionDenied`.
        code: Code,
        /// The server's explanation.
        message: String,
    },

    /// The server does not implement the RPC (`UNIMPLEMENTED`).
    #[error("{rpc} is not implemented by the server ({message}); is the node running an older kvnode?")]
    Unimplemented {
        /// The RPC that failed.
        rpc: &'static str,
        /// The server's explanation.
        message: String,
    },

    /// Any other server failure (`INTERNAL`, `UNKNOWN`, `DATA_LOSS`, `CANCELLED`).
    #[error("{rpc} failed on the server ({code:?}): {message}; see the node's logs")]
    Server {
        /// The RPC that failed.
        rpc: &'static str,
        /// The gRPC status code.
        code: Code,
        /// The server's explanation.
        message: String,
    },
}

impl ClientError {
    /// Maps a gRPC status returned by `rpc` on the node at `endpoint`.
    pub fn from_status(rpc: &'static str, endpoint: &str, status: &Status) -> Self {
        let message = status_message(status);
        match status.code() {
            Code::InvalidArgument | Code::OutOfRange => Self::InvalidArgument { rpc, message },
            Code::NotFound => Self::NotFound { rpc, message },
            Code::AlreadyExists => Self::AlreadyExists { rpc, message },
            Code::FailedPrecondition => Self::FailedPrecondition { rpc, message },
            Code::Aborted => Self::Aborted { rpc, message },
            Code::Unavailable => Self::Unavailable { rpc, endpoint: endpoint.to_owned(), message },
            Code::DeadlineExceeded => Self::DeadlineExceeded { rpc, message },
            Code::ResourceExhausted => Self::ResourceExhausted { rpc, message },
            code @ (Code::Unauthenticated | Code::PermissionDenied) => Self::AccessDenied { rpc, code, message },
            Code::Unimplemented => Self::Unimplemented { rpc, message },
            code @ (Code::Ok | Code::Cancelled | Code::Unknown | Code::Internal | Code::DataLoss) => {
                Self::Server { rpc, code, message }
            }
        }
    }

    /// True when the same request may succeed if sent again: the node or the
    /// connection was unavailable. Only idempotent requests should be resent.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::Unavailable { .. })
    }
}

/// What to do about an `UNAUTHENTICATED` or `PERMISSION_DENIED` answer.
fn access_hint(code: Code) -> &'static str {
    if code == Code::Unauthenticated {
        "pass a valid token (kvctl: --token, --token-file or RINGKV_TOKEN)"
    } else {
        "the token's user lacks a role for this: ask an admin for a grant (`kvctl user grant`)"
    }
}

/// The status message followed by its chain of causes (tonic puts transport
/// failures such as "connection refused" in the source, not the message).
fn status_message(status: &Status) -> String {
    let mut message = status.message().to_owned();
    let mut source = status.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !message.contains(&cause_text) {
            if !message.is_empty() {
                message.push_str(": ");
            }
            message.push_str(&cause_text);
        }
        source = cause.source();
    }
    if message.is_empty() {
        message.push_str("no details given");
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_codes_to_variants() {
        let err = ClientError::from_status("Put", "n1:7100", &Status::invalid_argument("key too long"));
        assert!(matches!(err, ClientError::InvalidArgument { rpc: "Put", ref message } if message == "key too long"));
        let err = ClientError::from_status("Get", "n1:7100", &Status::unavailable("2 of 3 replicas down"));
        assert!(err.is_unavailable());
        assert!(err.to_string().contains("n1:7100"), "{err}");
        let err = ClientError::from_status("Get", "n1:7100", &Status::internal(""));
        assert!(matches!(err, ClientError::Server { code: Code::Internal, .. }));
        assert!(err.to_string().contains("no details given"), "{err}");
    }

    #[test]
    fn access_denied_says_which_credential_to_fix() {
        let err = ClientError::from_status("Get", "n1:7100", &Status::unauthenticated("RKV-NO-CREDENTIALS: no token"));
        assert!(matches!(err, ClientError::AccessDenied { code: Code::Unauthenticated, .. }));
        assert!(err.to_string().contains("--token"), "{err}");
        let err = ClientError::from_status("Put", "n1:7100", &Status::permission_denied("RKV-PERMISSION-DENIED"));
        assert!(err.to_string().contains("kvctl user grant"), "{err}");
    }

    #[test]
    fn messages_say_what_to_do() {
        let err = ClientError::Timeout { rpc: "Get", endpoint: "n1:7100".into(), after: Duration::from_secs(5) };
        assert!(err.to_string().contains("--timeout"), "{err}");
    }
}
