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
    TransportError::Remote { peer, code: format!("{:?}", status.code()), rkv_code, message: message.to_owned() }
}
