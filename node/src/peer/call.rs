//! [`call`]: the one way a node calls a peer — one unary call over a pooled
//! channel, under a deadline, ending in a typed [`TransportError`].
//!
//! Invariants: the deadline is enforced locally (`tokio::time::timeout`) and
//! sent to the peer as `grpc-timeout`; a local timeout evicts the pooled
//! channel (see [`super::pool`]); nothing from the network panics. A status
//! becomes `Unreachable` (UNAVAILABLE, connection failures), `Timeout`
//! (DEADLINE_EXCEEDED, or CANCELLED because the peer enforced our
//! `grpc-timeout`) or `Remote` with the peer's stable `RKV-…` code from the
//! `rkv-code` metadata ([`remote`]).
//!
//! This module may call `peer::pool`, tonic and `transport::TransportError` only.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use tonic::transport::Channel;
use tonic::{Code, Request, Response, Status, TimeoutExpired};

use crate::error::RemoteStatus;
use crate::transport::TransportError;

use super::pool::ChannelPool;

/// One call to `addr` (named `peer` in errors): `client` wraps the pooled
/// channel, `call` sends `msg` on it; the answer or a [`TransportError`]
/// arrives within `timeout`.
pub async fn call<C, M, R, F, Fut>(
    pool: &ChannelPool,
    addr: SocketAddr,
    peer: &str,
    timeout: Duration,
    msg: M,
    client: fn(Channel) -> C,
    call: F,
) -> Result<R, TransportError>
where
    F: FnOnce(C, Request<M>) -> Fut,
    Fut: Future<Output = Result<Response<R>, Status>>,
{
    let client = client(pool.channel(addr, peer)?);
    let mut request = Request::new(msg);
    request.set_timeout(timeout);
    match tokio::time::timeout(timeout, call(client, request)).await {
        Ok(Ok(response)) => Ok(response.into_inner()),
        Ok(Err(status)) => Err(from_status(peer.to_owned(), timeout, &status)),
        Err(_) => {
            // A connection that lost packets (a network cut) waits out TCP's
            // retransmission backoff, seconds after the network heals: the next
            // call dials a new one instead.
            pool.evict(addr);
            Err(TransportError::Timeout { peer: peer.to_owned(), timeout })
        }
    }
}

/// Maps a status from the peer (or from tonic's connection layer) to a [`TransportError`].
pub fn from_status(peer: String, timeout: Duration, status: &Status) -> TransportError {
    match status.code() {
        Code::Unavailable => TransportError::Unreachable { peer, reason: status.message().to_owned() },
        Code::DeadlineExceeded => TransportError::Timeout { peer, timeout },
        // The peer's server enforces our grpc-timeout and answers CANCELLED when it passes.
        Code::Cancelled if status.message() == TimeoutExpired(()).to_string() => {
            TransportError::Timeout { peer, timeout }
        }
        _ => remote(peer, status),
    }
}

/// The error for a status a peer answered with: its gRPC code, and the
/// stable code from the `rkv-code` metadata when it sent one (then the
/// message loses its `[RKV-…] ` prefix, which would only repeat it).
pub fn remote(peer: String, status: &Status) -> TransportError {
    let rkv_code = status
        .metadata()
        .get(crate::error::ERROR_CODE_METADATA)
        .and_then(|v| v.to_str().ok())
        .filter(|c| c.starts_with("RKV-"))
        .map(str::to_owned);
    let message = status.message();
    let message = match &rkv_code {
        Some(code) => message.strip_prefix(&format!("[{code}] ")).unwrap_or(message),
        None => message,
    };
    TransportError::Remote { peer, code: remote_status(status.code()), rkv_code, message: message.to_owned() }
}

/// The typed form of a gRPC code a peer refused a call with (`OK` never is).
pub fn remote_status(code: Code) -> RemoteStatus {
    use RemoteStatus as R;
    match code {
        Code::Cancelled => R::Cancelled,
        Code::Ok | Code::Unknown => R::Unknown,
        Code::InvalidArgument => R::InvalidArgument,
        Code::DeadlineExceeded => R::DeadlineExceeded,
        Code::NotFound => R::NotFound,
        Code::AlreadyExists => R::AlreadyExists,
        Code::PermissionDenied => R::PermissionDenied,
        Code::ResourceExhausted => R::ResourceExhausted,
        Code::FailedPrecondition => R::FailedPrecondition,
        Code::Aborted => R::Aborted,
        Code::OutOfRange => R::OutOfRange,
        Code::Unimplemented => R::Unimplemented,
        Code::Internal => R::Internal,
        Code::Unavailable => R::Unavailable,
        Code::DataLoss => R::DataLoss,
        Code::Unauthenticated => R::Unauthenticated,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peer::status::{bad_peer_request, topology_status};
    use crate::topology::TopologyError;

    const T: Duration = Duration::from_secs(1);

    #[test]
    fn a_refusal_keeps_its_typed_status_and_stable_code() {
        let err = from_status("p".into(), T, &bad_peer_request("missing tree range"));
        assert_eq!(
            err,
            TransportError::Remote {
                peer: "p".into(),
                code: RemoteStatus::InvalidArgument,
                rkv_code: Some("RKV-BAD-PEER-REQUEST".into()),
                message: "missing tree range".into(),
            }
        );
        let busy = topology_status(&TopologyError::Stopped);
        assert!(matches!(from_status("p".into(), T, &busy), TransportError::Unreachable { .. }));
        let unknown = TopologyError::UnknownHost { host_id: "h".into() };
        let TransportError::Remote { code, rkv_code, .. } = from_status("p".into(), T, &topology_status(&unknown))
        else {
            panic!("a NOT_FOUND is a refusal")
        };
        assert_eq!((code, rkv_code.as_deref()), (RemoteStatus::NotFound, Some(unknown.code())));
    }

    #[test]
    fn a_status_without_our_code_keeps_its_message_and_deadlines_are_timeouts() {
        let err = from_status("p".into(), T, &Status::aborted("[RKV-X] busy"));
        assert_eq!(
            err,
            TransportError::Remote {
                peer: "p".into(),
                code: RemoteStatus::Aborted,
                rkv_code: None,
                message: "[RKV-X] busy".into()
            }
        );
        let cancelled = Status::cancelled(TimeoutExpired(()).to_string());
        assert_eq!(from_status("p".into(), T, &cancelled), TransportError::Timeout { peer: "p".into(), timeout: T });
        let deadline = Status::deadline_exceeded("late");
        assert_eq!(from_status("p".into(), T, &deadline), TransportError::Timeout { peer: "p".into(), timeout: T });
        assert_eq!(remote_status(Code::Ok), RemoteStatus::Unknown, "OK is never a refusal");
    }
}
