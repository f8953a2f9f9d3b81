//! [`Redis`]: a Redis server over RESP with the `redis` crate.
//!
//! `connections` multiplexed connections (each pipelines every task's
//! commands on one TCP stream), used round-robin. Records are plain strings
//! (`GET`/`SET`). Redis has no ordered key scan, so, as YCSB's own Redis
//! binding does, inserts also add the key to a sorted-set index
//! (`ZADD kvbench:index 0 key`, in the same pipeline as the `SET`, so one
//! round trip) and a scan is `ZRANGE kvbench:index [start + BYLEX LIMIT 0 n`
//! followed by `MGET` of those keys. Updates do not touch the index. A
//! read-modify-write is `GET` then `SET`, not atomic (as in YCSB's binding).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use redis::aio::MultiplexedConnection;

use crate::bench::target::{Target, TargetError, TargetInfo};

/// How long one command may wait for its answer.
const RESPONSE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The sorted set that orders keys for scans.
pub const INDEX_KEY: &str = "kvbench:index";

/// A Redis server at `endpoint`, over `connections` multiplexed connections.
#[derive(Debug)]
pub struct Redis {
    connections: Vec<MultiplexedConnection>,
    next: AtomicUsize,
    endpoint: String,
    /// Maintain the sorted-set index for scans (real Redis); off for
    /// RingKV's RESP listener, which has no sorted sets (scans fail).
    index: bool,
    name: &'static str,
}

impl Redis {
    /// Connects to `endpoint` (`host:port` or a `redis://` URL).
    pub async fn connect(endpoint: &str, connections: usize) -> Result<Self, TargetError> {
        let connect_error =
            |e: redis::RedisError| TargetError::Connect { endpoint: endpoint.to_owned(), reason: e.to_string() };
        let url = if endpoint.contains("://") { endpoint.to_owned() } else { format!("redis://{endpoint}/") };
        let client = redis::Client::open(url).map_err(connect_error)?;
        let mut conns = Vec::with_capacity(connections.max(1));
        // The client's default 500 ms response timeout would turn a stall into errors;
        // a benchmark measures stalls (in the latency tail) instead of failing on them.
        let config = redis::AsyncConnectionConfig::new().set_response_timeout(Some(RESPONSE_TIMEOUT));
        for _ in 0..connections.max(1) {
            conns.push(client.get_multiplexed_async_connection_with_config(&config).await.map_err(connect_error)?);
        }
        Ok(Self {
            connections: conns,
            next: AtomicUsize::new(0),
            endpoint: endpoint.to_owned(),
            index: true,
            name: "redis",
        })
    }

    /// RingKV's RESP listener at `endpoint`: plain `GET`/`SET`, no scan index.
    pub async fn connect_ringkv(endpoint: &str, connections: usize) -> Result<Self, TargetError> {
        Self::connect_ringkv_as(endpoint, connections, None).await
    }

    /// [`Redis::connect_ringkv`] authenticating every connection with
    /// `AUTH <user> <secret>` from `token` (`<user>.<secret>`). RESP over
    /// TLS is not supported by this target yet.
    pub async fn connect_ringkv_as(
        endpoint: &str,
        connections: usize,
        token: Option<&ringkv_client::Token>,
    ) -> Result<Self, TargetError> {
        let (url, secret) = match token {
            None => (endpoint.to_owned(), None),
            Some(token) => {
                let (user, secret) = token.expose().split_once('.').unwrap_or((token.expose(), ""));
                let hostport = endpoint.split_once("://").map_or(endpoint, |(_, rest)| rest).trim_end_matches('/');
                (format!("redis://{user}:{secret}@{hostport}/"), Some(secret))
            }
        };
        // The URL holds the secret: errors name the endpoint and redact it.
        let redact = |e: TargetError| match (e, secret) {
            (TargetError::Connect { reason, .. }, Some(secret)) if !secret.is_empty() => {
                TargetError::Connect { endpoint: endpoint.to_owned(), reason: reason.replace(secret, "<redacted>") }
            }
            (TargetError::Connect { reason, .. }, _) => TargetError::Connect { endpoint: endpoint.to_owned(), reason },
            (other, _) => other,
        };
        let mut target = Self::connect(&url, connections).await.map_err(redact)?;
        target.endpoint = endpoint.to_owned();
        target.index = false;
        target.name = "ringkv-resp";
        Ok(target)
    }

    /// A handle on the next connection (clones share the connection).
    fn conn(&self) -> MultiplexedConnection {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.connections.len();
        self.connections[i].clone()
    }
}

impl Target for Redis {
    fn supports_scan(&self) -> bool {
        self.index
    }

    fn info(&self) -> TargetInfo {
        TargetInfo {
            name: self.name.to_owned(),
            endpoint: self.endpoint.clone(),
            settings: BTreeMap::from([
                ("connections".to_owned(), format!("{} multiplexed", self.connections.len())),
                ("records".to_owned(), "GET/SET strings".to_owned()),
                (
                    "scan".to_owned(),
                    if self.index {
                        format!("ZRANGE {INDEX_KEY} BYLEX + MGET (insert also ZADDs)")
                    } else {
                        "not available over RESP".to_owned()
                    },
                ),
            ]),
        }
    }

    async fn read(&self, key: &str) -> Result<bool, TargetError> {
        let value: Option<Vec<u8>> = redis::cmd("GET").arg(key).query_async(&mut self.conn()).await?;
        Ok(value.is_some())
    }

    async fn update(&self, key: &str, value: Bytes) -> Result<(), TargetError> {
        redis::cmd("SET").arg(key).arg(value.as_ref()).exec_async(&mut self.conn()).await?;
        Ok(())
    }

    async fn insert(&self, key: &str, value: Bytes) -> Result<(), TargetError> {
        if !self.index {
            return self.update(key, value).await;
        }
        redis::pipe()
            .cmd("SET")
            .arg(key)
            .arg(value.as_ref())
            .ignore()
            .cmd("ZADD")
            .arg(INDEX_KEY)
            .arg(0)
            .arg(key)
            .ignore()
            .exec_async(&mut self.conn())
            .await?;
        Ok(())
    }

    async fn scan(&self, start: &str, count: u32) -> Result<usize, TargetError> {
        if !self.index {
            return Err(TargetError::Unsupported { op: "scan", target: self.name });
        }
        let mut conn = self.conn();
        let keys: Vec<String> = redis::cmd("ZRANGE")
            .arg(INDEX_KEY)
            .arg(format!("[{start}"))
            .arg("+")
            .arg("BYLEX")
            .arg("LIMIT")
            .arg(0)
            .arg(count)
            .query_async(&mut conn)
            .await?;
        if keys.is_empty() {
            return Ok(0);
        }
        let values: Vec<Option<Vec<u8>>> = redis::cmd("MGET").arg(&keys).query_async(&mut conn).await?;
        Ok(values.iter().flatten().count())
    }

    async fn read_modify_write(&self, key: &str, value: Bytes) -> Result<(), TargetError> {
        let mut conn = self.conn();
        let _old: Option<Vec<u8>> = redis::cmd("GET").arg(key).query_async(&mut conn).await?;
        redis::cmd("SET").arg(key).arg(value.as_ref()).exec_async(&mut conn).await?;
        Ok(())
    }
}
