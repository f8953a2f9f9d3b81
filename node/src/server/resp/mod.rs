//! The RESP listener: RingKV spoken in the Redis protocol (RESP2), so that
//! `redis-cli` and any Redis client library can read and write the
//! `default` keyspace, and so that pipelined clients pay one syscall per
//! batch instead of one HTTP/2 stream per request.
//!
//! Commands (keys and values are bytes; consistency is the keyspace default):
//! `GET`, `SET key value [EX s | PX ms] [NX]`, `SETEX`, `DEL`/`UNLINK`,
//! `EXISTS`, `MGET`, `MSET`, `INCR`, `DECR`, `INCRBY`, `DECRBY`,
//! `EXPIRE`/`PEXPIRE`, `PERSIST`, `TTL`/`PTTL`, `PING`, `ECHO`, `SELECT 0`,
//! `QUIT`, and the handshake commands
//! clients send (`CLIENT ...`, `COMMAND ...`, `INFO`) — answered, not
//! ignored. Anything else gets an `ERR unknown command` naming the supported
//! set.
//!
//! Semantics a Redis user must know: RingKV never loses concurrent writes
//! silently in `siblings` keyspaces, but RESP has no way to return several
//! values, so `GET` returns the sibling with the highest timestamp (the
//! `lww` view); use gRPC or HTTP to see and resolve siblings. `DEL` answers
//! how many of the keys held a live value at the coordinating replica.
//!
//! Structure: `codec` frames commands and encodes replies; `cmd` holds one
//! type per command (parsed from the frame's arguments, then applied to the
//! coordinator), grouped by `strings`, `keys` and `server`; `error` is the
//! one place where a refused command becomes an error reply. This file is
//! the listener: connections, pipelining, metrics.
//!
//! Concurrency: each connection parses every complete command that has
//! arrived (up to [`MAX_IN_FLIGHT`] in flight), starts them all, and writes
//! their replies in order, batched into one write, as Redis pipelining
//! expects. A framing error gets an error reply and closes the connection
//! (the stream cannot be resynchronised); a command error gets an error
//! reply only. May call: the coordinator's public operations and the
//! node's metrics.

mod cmd;
mod codec;
mod error;
#[cfg(test)]
mod tests;

pub use cmd::{Command, Request};
pub use codec::{Limits, ProtocolError, Reply, parse_command};
pub use error::RespError;

use std::time::Instant;

use bytes::BytesMut;
use futures::StreamExt as _;
use futures::stream::FuturesOrdered;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use crate::replication::Coordinator;

use super::metrics::NodeMetrics;

/// Most commands of one connection being executed at once; reading pauses above it.
pub const MAX_IN_FLIGHT: usize = 256;
/// Replies are flushed when this many bytes are waiting.
const FLUSH_BYTES: usize = 64 * 1024;

/// What every connection shares.
#[derive(Debug, Clone)]
pub struct RespService {
    coordinator: Coordinator,
    metrics: NodeMetrics,
    limits: Limits,
}

impl RespService {
    /// A service over `coordinator`. A bulk string may be up to twice the
    /// largest value (plus 64 KiB), so that a value somewhat over the limit
    /// is read whole and refused with RKV-VALUE-TOO-LARGE on a connection
    /// that stays usable; beyond that the framing error closes the
    /// connection, as Redis does past `proto-max-bulk-len`.
    pub fn new(coordinator: Coordinator, metrics: NodeMetrics, max_key_bytes: usize, max_value_bytes: usize) -> Self {
        let max_bulk = max_value_bytes.saturating_mul(2).saturating_add(64 * 1024).max(max_key_bytes);
        let limits = Limits { max_bulk, ..Limits::default() };
        Self { coordinator, metrics, limits }
    }

    /// Accepts connections until `shutdown`.
    pub async fn serve(self, listener: TcpListener, shutdown: CancellationToken) {
        loop {
            let accepted = tokio::select! {
                () = shutdown.cancelled() => return,
                accepted = listener.accept() => accepted,
            };
            match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    let service = self.clone();
                    let shutdown = shutdown.clone();
                    tokio::spawn(async move {
                        if let Err(e) = service.connection(stream, shutdown).await {
                            tracing::debug!(%peer, error = %e, "RESP connection ended");
                        }
                    });
                }
                Err(e) => {
                    // Out of file descriptors and the like: log, back off briefly, go on.
                    tracing::warn!(error = %e, "RESP accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            }
        }
    }

    async fn connection(&self, mut stream: TcpStream, shutdown: CancellationToken) -> std::io::Result<()> {
        let mut input = BytesMut::with_capacity(16 * 1024);
        let mut output = BytesMut::with_capacity(16 * 1024);
        let mut batch = Vec::new();
        // One future type for every command (`run`): no boxed future per command.
        let mut pending = FuturesOrdered::new();
        let mut closing = false;
        loop {
            if !closing {
                closing = self.parse_batch(&mut input, MAX_IN_FLIGHT - pending.len(), &mut batch);
                pending.extend(batch.drain(..).map(|request| self.run(request)));
            }
            if pending.is_empty() {
                if !output.is_empty() {
                    stream.write_all(&output).await?;
                    output.clear();
                }
                if closing {
                    return stream.shutdown().await;
                }
                tokio::select! {
                    () = shutdown.cancelled() => return Ok(()),
                    read = stream.read_buf(&mut input) => {
                        if read? == 0 {
                            return Ok(());
                        }
                    }
                }
                continue;
            }
            // Replies in order; flush when nothing more is ready (or a lot is waiting).
            tokio::select! {
                biased;
                Some(reply) = pending.next() => {
                    reply.encode(&mut output);
                    while let Some(Some(reply)) = futures::FutureExt::now_or_never(pending.next()) {
                        reply.encode(&mut output);
                        if output.len() >= FLUSH_BYTES {
                            break;
                        }
                    }
                    stream.write_all(&output).await?;
                    output.clear();
                }
                read = stream.read_buf(&mut input), if !closing && pending.len() < MAX_IN_FLIGHT => {
                    if read? == 0 {
                        closing = true;
                    }
                }
            }
        }
    }

    /// Parses up to `room` complete commands off the front of `input` into
    /// `batch`, stopping after one that closes the connection; returns true
    /// when one did.
    fn parse_batch(&self, input: &mut BytesMut, room: usize, batch: &mut Vec<Request>) -> bool {
        while batch.len() < room {
            let request = match parse_command(input, &self.limits) {
                Ok(Some(frame)) if frame.is_empty() => continue,
                Ok(Some(frame)) => Request::parse(frame),
                Ok(None) => return false,
                Err(e) => Request::refused(e.into()),
            };
            let closes = request.closes_connection();
            batch.push(request);
            if closes {
                return true;
            }
        }
        false
    }

    /// Applies one request and counts it in the request metrics.
    async fn run(&self, request: Request) -> Reply {
        let started = Instant::now();
        let result = match request.command {
            Ok(command) => command.apply(&self.coordinator).await.map_err(RespError::from),
            Err(e) => Err(e),
        };
        if let Some(op) = request.op {
            let outcome = result.as_ref().map_or_else(RespError::metric_outcome, |_| "ok");
            self.metrics.observe("resp", op, outcome, started.elapsed());
        }
        result.unwrap_or_else(RespError::into_reply)
    }
}
