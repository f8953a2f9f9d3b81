//! The one place where a cluster service's domain error becomes a gRPC
//! status: every status carries its stable `RKV-…` code twice, as the
//! `[RKV-…]` prefix of the message (for people) and in the `rkv-code`
//! metadata (for the calling node's [`call`](super::call), which turns it
//! back into a typed `TransportError::Remote`). A [`KvError`] maps as it does
//! for clients (`server::status`, the one table of its classes).
//!
//! This module may call `server::status`, `antientropy`, `topology` and `error` only.

use std::fmt;

use ringkv_proto::cluster::v1 as pb;
use tonic::{Code, Status};

use crate::antientropy::AeError;
use crate::error::{ERROR_CODE_METADATA, KvError};
use crate::server::status::coded;
use crate::topology::TopologyError;

/// Stable code of a peer request that cannot be decoded.
pub const BAD_PEER_REQUEST: &str = "RKV-BAD-PEER-REQUEST";

/// The status of a [`KvError`] (as clients see it).
pub fn kv_status(e: &KvError) -> Status {
    crate::server::status::to_status(e)
}

/// INVALID_ARGUMENT for a peer request that cannot be decoded (it never reaches the domain).
pub fn bad_peer_request(what: impl fmt::Display) -> Status {
    coded(Code::InvalidArgument, BAD_PEER_REQUEST, what)
}

/// INVALID_ARGUMENT for a gossip message that cannot be decoded.
pub fn bad_gossip(e: &impl fmt::Display) -> Status {
    coded(
        Code::InvalidArgument,
        "RKV-BAD-GOSSIP",
        format!("malformed gossip message: {e}; are both nodes the same version?"),
    )
}

/// The status of an anti-entropy error.
pub fn ae_status(e: AeError) -> Status {
    match e {
        AeError::DepthMismatch { .. } => coded(Code::FailedPrecondition, "RKV-AE-DEPTH", e),
        AeError::NoTree { .. } => coded(Code::FailedPrecondition, "RKV-AE-NO-TREE", e),
        AeError::Busy => coded(Code::Aborted, "RKV-AE-BUSY", e),
        AeError::ShuttingDown => coded(Code::Unavailable, "RKV-SHUTTING-DOWN", e),
        AeError::Merge { source, .. } => kv_status(&source),
        other => coded(Code::Internal, "RKV-AE", other),
    }
}

/// The status of a topology error (also what `kvctl` sees through the admin service).
pub fn topology_status(e: &TopologyError) -> Status {
    let grpc = match e {
        TopologyError::Busy { .. }
        | TopologyError::TooFewNodes { .. }
        | TopologyError::HostAlive { .. }
        | TopologyError::AlreadyLeft { .. }
        | TopologyError::Precondition { .. } => Code::FailedPrecondition,
        TopologyError::UnknownHost { .. } => Code::NotFound,
        TopologyError::NoSource { .. } | TopologyError::Peer { .. } | TopologyError::Stopped => Code::Unavailable,
        TopologyError::Storage(_) | TopologyError::Merge(_) => Code::Internal,
    };
    coded(grpc, e.code(), e)
}

/// A failed batch item's status, carrying the same stable code as a unary call's.
pub fn item_status(status: &Status) -> pb::ItemStatus {
    let rkv_code = status.metadata().get(ERROR_CODE_METADATA).and_then(|v| v.to_str().ok());
    pb::ItemStatus {
        code: status.code() as i32,
        message: status.message().to_owned(),
        rkv_code: rkv_code.unwrap_or_default().to_owned(),
    }
}
