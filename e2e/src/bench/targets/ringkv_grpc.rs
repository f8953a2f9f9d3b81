//! [`RingKvGrpc`]: RingKV over gRPC through `ringkv_client::Client`.
//!
//! One HTTP/2 connection multiplexes every task's requests; since a single
//! connection (one TCP stream, one h2 codec task) can become the bottleneck
//! on the client side, `connections` channels are opened and requests go to
//! them round-robin. Reads are not retried (a benchmark counts failures, it
//! does not hide them). Scans use LIST under the key prefix with the start
//! key as cursor: RingKV's LIST cursor is the last key returned, so the page
//! holds the keys just after `start` in key order (YCSB's scan semantics up
//! to the start key itself).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use ringkv_client::{Client, ConnectionConfig, ListOptions, PutOptions, RetryPolicy, parse_consistency};

use crate::bench::keys::KEY_PREFIX;
use crate::bench::target::{Target, TargetError, TargetInfo};

/// RingKV's gRPC API, over `connections` round-robin channels.
#[derive(Debug)]
pub struct RingKvGrpc {
    clients: Vec<Client>,
    next: AtomicUsize,
    endpoint: String,
    consistency: Option<String>,
    /// Whether the channels run TLS / send a token (for the report).
    tls: bool,
    token: bool,
}

impl RingKvGrpc {
    /// Connects `connections` channels (at least one per node) to `endpoint`
    /// (one node, or several comma-separated: channel i goes to node i mod n),
    /// with an optional consistency level (`QUORUM`, `r=2,w=2`, ...).
    pub async fn connect(endpoint: &str, connections: usize, consistency: Option<&str>) -> Result<Self, TargetError> {
        Self::connect_with(&ConnectionConfig::new(endpoint), endpoint, connections, consistency).await
    }

    /// [`RingKvGrpc::connect`] with the TLS files and token of `connection`
    /// (its endpoint is ignored: each node of `endpoint` is dialed with them;
    /// `https://` nodes run TLS).
    pub async fn connect_with(
        connection: &ConnectionConfig,
        endpoint: &str,
        connections: usize,
        consistency: Option<&str>,
    ) -> Result<Self, TargetError> {
        let connect_error = |reason: String| TargetError::Connect { endpoint: endpoint.to_owned(), reason };
        let level = consistency.map(parse_consistency).transpose().map_err(|e| connect_error(e.to_string()))?;
        let nodes: Vec<&str> = endpoint.split(',').map(str::trim).filter(|e| !e.is_empty()).collect();
        if nodes.is_empty() {
            return Err(connect_error("no endpoint given".to_owned()));
        }
        let count = connections.max(nodes.len());
        let mut clients = Vec::with_capacity(count);
        for i in 0..count {
            let node = ConnectionConfig { endpoint: nodes[i % nodes.len()].to_owned(), ..connection.clone() };
            let mut builder = node.builder().retry(RetryPolicy::none());
            if let Some(level) = level {
                builder = builder.consistency(level);
            }
            clients.push(builder.connect().await.map_err(|e| connect_error(e.to_string()))?);
        }
        Ok(Self {
            clients,
            next: AtomicUsize::new(0),
            endpoint: endpoint.to_owned(),
            consistency: consistency.map(str::to_owned),
            tls: nodes.iter().any(|n| n.trim().to_ascii_lowercase().starts_with("https://")),
            token: connection.token.is_some(),
        })
    }

    fn client(&self) -> &Client {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.clients.len();
        &self.clients[i]
    }
}

/// `on` / `off`, for report settings.
pub(crate) fn on_off(on: bool) -> String {
    (if on { "on" } else { "off" }).to_owned()
}

impl Target for RingKvGrpc {
    fn info(&self) -> TargetInfo {
        let consistency = self.consistency.clone().unwrap_or_else(|| "server default".to_owned());
        TargetInfo {
            name: "ringkv-grpc".to_owned(),
            endpoint: self.endpoint.clone(),
            settings: BTreeMap::from([
                ("connections".to_owned(), self.clients.len().to_string()),
                ("consistency".to_owned(), consistency),
                ("scan".to_owned(), "LIST prefix=user cursor=start key".to_owned()),
                ("tls".to_owned(), on_off(self.tls)),
                ("token".to_owned(), on_off(self.token)),
            ]),
        }
    }

    async fn read(&self, key: &str) -> Result<bool, TargetError> {
        Ok(self.client().get(Bytes::copy_from_slice(key.as_bytes())).await?.is_some())
    }

    async fn update(&self, key: &str, value: Bytes) -> Result<(), TargetError> {
        self.client().put(Bytes::copy_from_slice(key.as_bytes()), value, PutOptions::default()).await?;
        Ok(())
    }

    async fn insert(&self, key: &str, value: Bytes) -> Result<(), TargetError> {
        self.update(key, value).await
    }

    async fn scan(&self, start: &str, count: u32) -> Result<usize, TargetError> {
        let options =
            ListOptions { limit: count, cursor: Bytes::copy_from_slice(start.as_bytes()), include_values: true };
        let page = self.client().list(Bytes::from_static(KEY_PREFIX.as_bytes()), options).await?;
        Ok(page.entries.len())
    }

    async fn read_modify_write(&self, key: &str, value: Bytes) -> Result<(), TargetError> {
        let client = self.client();
        let key = Bytes::copy_from_slice(key.as_bytes());
        let context = client.get(key.clone()).await?.map(|record| record.context).unwrap_or_default();
        client.put(key, value, PutOptions { context, ..PutOptions::default() }).await?;
        Ok(())
    }
}
