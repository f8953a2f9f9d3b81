//! The RESP listener: RingKV spoken in the Redis protocol (RESP2), so that
//! `redis-cli` and any Redis client library can read and write the
//! `default` keyspace, and so that pipelined clients pay one syscall per
//! batch instead of one HTTP/2 stream per request.
//!
//! Commands (keys and values are bytes; consistency is the keyspace default):
//! `GET`, `SET key value [EX s | PX ms] [NX]`, `SETEX`, `DEL`, `EXISTS`,
//! `MGET`, `MSET`, `INCR`, `DECR`, `INCRBY`, `DECRBY`, `EXPIRE`, `TTL`,
//! `PTTL`, `PING`, `ECHO`, `SELECT 0`, `QUIT`, and the handshake commands
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
//! Concurrency: each connection reads as many commands as have arrived,
//! starts them all (up to [`MAX_IN_FLIGHT`]) and writes their replies in
//! order, batched into one write, as Redis pipelining expects. A framing
//! error gets an error reply and closes the connection (the stream cannot
//! be resynchronised); a command error gets an error reply only.

mod codec;
#[cfg(test)]
mod tests;

pub use codec::{Limits, ProtocolError, Reply, parse_command};

use std::future::Future;
use std::pin::Pin;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use futures::StreamExt as _;
use futures::stream::FuturesOrdered;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use crate::error::KvError;
use crate::replication::{Consistency, Coordinator, PutOptions};

use super::metrics::{NodeMetrics, outcome};
use super::status::classify;

/// Most commands of one connection being executed at once; reading pauses above it.
pub const MAX_IN_FLIGHT: usize = 256;
/// Replies are flushed when this many bytes are waiting.
const FLUSH_BYTES: usize = 64 * 1024;
const KEYSPACE: &str = crate::DEFAULT_KEYSPACE;

type CommandFuture = Pin<Box<dyn Future<Output = Reply> + Send>>;

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
        let mut pending: FuturesOrdered<CommandFuture> = FuturesOrdered::new();
        let mut closing = false;
        loop {
            // Start every complete command that has arrived.
            while !closing && pending.len() < MAX_IN_FLIGHT {
                match parse_command(&mut input, &self.limits) {
                    Ok(Some(args)) if args.is_empty() => {}
                    Ok(Some(args)) => {
                        if args[0].eq_ignore_ascii_case(b"QUIT") {
                            pending.push_back(Box::pin(std::future::ready(Reply::Simple("OK"))));
                            closing = true;
                        } else {
                            pending.push_back(self.command(args));
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        pending.push_back(Box::pin(std::future::ready(Reply::err(e))));
                        closing = true;
                    }
                }
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

    /// Dispatches one command (args[0] is the name, any case).
    fn command(&self, args: Vec<Bytes>) -> CommandFuture {
        let name = String::from_utf8_lossy(&args[0]).to_ascii_uppercase();
        let this = self.clone();
        Box::pin(async move {
            let started = Instant::now();
            let op = op_label(&name);
            let result = this.execute(&name, args).await;
            if let Some(op) = op {
                this.metrics.observe("resp", op, outcome(&result), started.elapsed());
            }
            match result {
                Ok(reply) => reply,
                Err(e) => Reply::Error(format!("ERR [{}] {e}", classify(&e).code)),
            }
        })
    }

    async fn execute(&self, name: &str, args: Vec<Bytes>) -> Result<Reply, KvError> {
        let c = &self.coordinator;
        let any = Consistency::default();
        let argc = args.len();
        let arity = |ok: bool| {
            if ok {
                Ok(())
            } else {
                Err(Reply::err(format!("wrong number of arguments for '{}' command", name.to_ascii_lowercase())))
            }
        };
        macro_rules! need {
            ($ok:expr) => {
                if let Err(reply) = arity($ok) {
                    return Ok(reply);
                }
            };
        }
        match name {
            "PING" => {
                need!(argc <= 2);
                Ok(args.get(1).cloned().map_or(Reply::Simple("PONG"), Reply::Bulk))
            }
            "ECHO" => {
                need!(argc == 2);
                Ok(Reply::Bulk(args[1].clone()))
            }
            "SELECT" => {
                need!(argc == 2);
                Ok(if &args[1][..] == b"0" {
                    Reply::Simple("OK")
                } else {
                    Reply::err("RingKV's RESP listener serves one database (the `default` keyspace): SELECT 0 only")
                })
            }
            "CLIENT" => Ok(Reply::Simple("OK")),
            "COMMAND" => Ok(Reply::Array(Vec::new())),
            "INFO" => Ok(Reply::Bulk(Bytes::from(format!(
                "# Server\r\nringkv_version:{}\r\nredis_mode:standalone\r\n",
                env!("CARGO_PKG_VERSION")
            )))),
            "GET" => {
                need!(argc == 2);
                let r = c.get(KEYSPACE, args[1].clone(), any).await?;
                Ok(newest(&r.siblings).map_or(Reply::Nil, Reply::Bulk))
            }
            "MGET" => {
                need!(argc >= 2);
                let rows = c.batch_get(KEYSPACE, args[1..].to_vec(), any).await?;
                Ok(Reply::Array(
                    rows.into_iter().map(|(_, r)| newest(&r.siblings).map_or(Reply::Nil, Reply::Bulk)).collect(),
                ))
            }
            "EXISTS" => {
                need!(argc >= 2);
                let rows = c.batch_get(KEYSPACE, args[1..].to_vec(), any).await?;
                Ok(Reply::Integer(rows.iter().filter(|(_, r)| r.found).count() as i64))
            }
            "SET" => {
                need!(argc >= 3);
                let mut opts = PutOptions::default();
                let mut i = 3;
                while i < argc {
                    let flag = String::from_utf8_lossy(&args[i]).to_ascii_uppercase();
                    match flag.as_str() {
                        "NX" => opts.if_absent = true,
                        "EX" | "PX" if i + 1 < argc => {
                            let Some(n) = positive(&args[i + 1]) else {
                                return Ok(Reply::err("invalid expire time in 'set' command"));
                            };
                            opts.ttl_seconds = Some(if flag == "EX" { n } else { n.div_ceil(1000) });
                            i += 1;
                        }
                        _ => {
                            return Ok(Reply::err(format!(
                                "syntax error: SET supports EX, PX and NX (got {flag}); XX, GET and KEEPTTL are not supported"
                            )));
                        }
                    }
                    i += 1;
                }
                let nx = opts.if_absent;
                let r = c.put(KEYSPACE, args[1].clone(), args[2].clone(), opts).await?;
                Ok(if nx && !r.applied { Reply::Nil } else { Reply::Simple("OK") })
            }
            "SETEX" => {
                need!(argc == 4);
                let Some(ttl) = positive(&args[2]) else {
                    return Ok(Reply::err("invalid expire time in 'setex' command"));
                };
                let opts = PutOptions { ttl_seconds: Some(ttl), ..PutOptions::default() };
                c.put(KEYSPACE, args[1].clone(), args[3].clone(), opts).await?;
                Ok(Reply::Simple("OK"))
            }
            "MSET" => {
                need!(argc >= 3 && argc % 2 == 1);
                for pair in args[1..].chunks(2) {
                    c.put(KEYSPACE, pair[0].clone(), pair[1].clone(), PutOptions::default()).await?;
                }
                Ok(Reply::Simple("OK"))
            }
            "DEL" | "UNLINK" => {
                need!(argc >= 2);
                let mut removed = 0;
                for key in &args[1..] {
                    if c.delete(KEYSPACE, key.clone(), Bytes::new(), any).await?.existed {
                        removed += 1;
                    }
                }
                Ok(Reply::Integer(removed))
            }
            "INCR" | "DECR" | "INCRBY" | "DECRBY" => {
                let by = name.ends_with("BY");
                need!(argc == if by { 3 } else { 2 });
                let delta = if by {
                    match std::str::from_utf8(&args[2]).ok().and_then(|s| s.parse::<i64>().ok()) {
                        Some(d) => d,
                        None => return Ok(Reply::err("value is not an integer or out of range")),
                    }
                } else {
                    1
                };
                let delta = if name.starts_with("DECR") { delta.checked_neg() } else { Some(delta) };
                let Some(delta) = delta else { return Ok(Reply::err("decrement would overflow")) };
                let (value, _) = c.increment(KEYSPACE, args[1].clone(), delta, None, any).await?;
                Ok(Reply::Integer(value))
            }
            "EXPIRE" | "PEXPIRE" => {
                need!(argc == 3);
                let Some(n) = positive(&args[2]) else { return Ok(Reply::err("invalid expire time")) };
                let secs = if name == "EXPIRE" { n } else { n.div_ceil(1000) };
                Ok(Reply::Integer(i64::from(c.touch(KEYSPACE, args[1].clone(), secs, any).await?.is_some())))
            }
            "PERSIST" => {
                need!(argc == 2);
                Ok(Reply::Integer(i64::from(c.touch(KEYSPACE, args[1].clone(), 0, any).await?.is_some())))
            }
            "TTL" | "PTTL" => {
                need!(argc == 2);
                let r = c.get(KEYSPACE, args[1].clone(), any).await?;
                Ok(Reply::Integer(match (r.found, r.ttl_remaining_ms) {
                    (false, _) => -2,
                    (true, None) => -1,
                    (true, Some(ms)) if name == "TTL" => (ms.max(0) + 999) / 1000,
                    (true, Some(ms)) => ms.max(0),
                }))
            }
            _ => Ok(Reply::err(format!(
                "unknown command '{}'; RingKV's RESP listener supports GET SET SETEX MGET MSET DEL EXISTS INCR DECR INCRBY DECRBY EXPIRE PEXPIRE PERSIST TTL PTTL PING ECHO SELECT QUIT (use gRPC or HTTP for the rest)",
                name.to_ascii_lowercase()
            ))),
        }
    }
}

/// The metric label of a data command (`None` for handshake commands).
fn op_label(name: &str) -> Option<&'static str> {
    Some(match name {
        "GET" => "get",
        "MGET" | "EXISTS" => "batch_get",
        "SET" | "SETEX" | "MSET" => "put",
        "DEL" | "UNLINK" => "delete",
        "INCR" | "DECR" | "INCRBY" | "DECRBY" => "increment",
        "EXPIRE" | "PEXPIRE" | "PERSIST" => "touch",
        "TTL" | "PTTL" => "get",
        _ => return None,
    })
}

/// A strictly positive decimal integer.
fn positive(arg: &[u8]) -> Option<u64> {
    std::str::from_utf8(arg).ok()?.parse::<u64>().ok().filter(|n| *n > 0)
}

/// The value of the newest live sibling (the `lww` view of a sibling set).
fn newest(siblings: &[crate::version::Sibling]) -> Option<Bytes> {
    siblings.iter().filter(|s| s.value.is_some()).max_by_key(|s| s.lww_key()).and_then(|s| s.value.clone())
}
