//! [`RingKvHttp`]: RingKV over its HTTP/JSON API, with raw bodies.
//!
//! Writes send the value as the raw body (`Content-Type:
//! application/octet-stream`), reads ask for raw bytes (`?raw=true`), so no
//! JSON or base64 is on the single-key path. reqwest keeps a pool of
//! HTTP/1.1 keep-alive connections, one per concurrent request, so the
//! number of connections follows the concurrency. Scans use
//! `GET /api/v1/keys?prefix=user&cursor=<start>&values=true` (see
//! `ringkv_grpc` for why the start key works as a cursor).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use std::collections::BTreeMap;

use bytes::Bytes;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderValue};
use reqwest::{RequestBuilder, Response, StatusCode};
use ringkv_client::ConnectionConfig;

use crate::bench::keys::KEY_PREFIX;
use crate::bench::target::{Target, TargetError, TargetInfo};

const CONSISTENCY_HEADER: &str = "consistency-level";
const CONTEXT_HEADER: &str = "x-causal-context";

/// RingKV's HTTP API at `base` (`http://host:port`).
#[derive(Debug)]
pub struct RingKvHttp {
    http: reqwest::Client,
    base: String,
    consistency: Option<HeaderValue>,
    tls: bool,
    token: bool,
}

impl RingKvHttp {
    /// A client of the node at `endpoint` (`host:port` or `http://host:port`)
    /// with up to `pool` idle keep-alive connections.
    pub fn connect(endpoint: &str, pool: usize, consistency: Option<&str>) -> Result<Self, TargetError> {
        Self::connect_with(&ConnectionConfig::new(endpoint), endpoint, pool, consistency)
    }

    /// [`RingKvHttp::connect`] with the TLS files (for `https://` endpoints)
    /// and the bearer token of `connection` (its endpoint is ignored).
    pub fn connect_with(
        connection: &ConnectionConfig,
        endpoint: &str,
        pool: usize,
        consistency: Option<&str>,
    ) -> Result<Self, TargetError> {
        let connect_error = |reason: String| TargetError::Connect { endpoint: endpoint.to_owned(), reason };
        let base = if endpoint.contains("://") { endpoint.to_owned() } else { format!("http://{endpoint}") };
        let tls = base.to_ascii_lowercase().starts_with("https://");
        let mut builder = reqwest::Client::builder().pool_max_idle_per_host(pool.max(1)).tcp_nodelay(true);
        if tls {
            let files = connection.tls.as_ref().ok_or_else(|| connect_error("https:// needs --tls-ca".to_owned()))?;
            let mut config = files.load().map_err(|e| connect_error(e.to_string()))?;
            // The node's HTTP port speaks HTTP/1.1 (reqwest is built without h2 here).
            config.alpn_protocols = vec![b"http/1.1".to_vec()];
            builder = builder.use_preconfigured_tls(config);
        }
        if let Some(token) = &connection.token {
            let mut value = HeaderValue::from_str(&format!("Bearer {}", token.expose()))
                .map_err(|_| connect_error("the token is not a valid header value".to_owned()))?;
            value.set_sensitive(true);
            builder = builder.default_headers(HeaderMap::from_iter([(AUTHORIZATION, value)]));
        }
        let http = builder.build().map_err(|e| connect_error(e.to_string()))?;
        let consistency =
            consistency.map(HeaderValue::from_str).transpose().map_err(|e| connect_error(e.to_string()))?;
        let token = connection.token.is_some();
        Ok(Self { http, base: base.trim_end_matches('/').to_owned(), consistency, tls, token })
    }

    fn key_url(&self, key: &str) -> String {
        // YCSB keys are `user<digits>`: nothing to percent-encode.
        format!("{}/api/v1/keys/{key}", self.base)
    }

    fn with_level(&self, request: RequestBuilder) -> RequestBuilder {
        match &self.consistency {
            Some(level) => request.header(CONSISTENCY_HEADER, level.clone()),
            None => request,
        }
    }

    async fn send(&self, op: &'static str, request: RequestBuilder) -> Result<Response, TargetError> {
        self.with_level(request).send().await.map_err(|source| TargetError::Http { op, source })
    }

    /// GET raw: `Some(context)` when found.
    async fn get(&self, op: &'static str, key: &str) -> Result<Option<Option<HeaderValue>>, TargetError> {
        let response = self.send(op, self.http.get(self.key_url(key)).query(&[("raw", "true")])).await?;
        let status = response.status();
        let context = response.headers().get(CONTEXT_HEADER).cloned();
        // Drain the body so the connection goes back to the pool.
        response.bytes().await.map_err(|source| TargetError::Http { op, source })?;
        match status {
            StatusCode::OK | StatusCode::MULTIPLE_CHOICES => Ok(Some(context)),
            StatusCode::NOT_FOUND => Ok(None),
            other => Err(TargetError::HttpStatus { op, status: other.as_u16() }),
        }
    }

    async fn put(
        &self,
        op: &'static str,
        key: &str,
        value: Bytes,
        context: Option<HeaderValue>,
    ) -> Result<(), TargetError> {
        let mut request = self
            .http
            .put(self.key_url(key))
            .header(CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"))
            .body(value);
        if let Some(context) = context {
            request = request.header(CONTEXT_HEADER, context);
        }
        let response = self.send(op, request).await?;
        let status = response.status();
        response.bytes().await.map_err(|source| TargetError::Http { op, source })?;
        if status.is_success() { Ok(()) } else { Err(TargetError::HttpStatus { op, status: status.as_u16() }) }
    }
}

impl Target for RingKvHttp {
    fn info(&self) -> TargetInfo {
        let consistency = self.consistency.as_ref().and_then(|v| v.to_str().ok()).unwrap_or("server default");
        TargetInfo {
            name: "ringkv-http".to_owned(),
            endpoint: self.base.clone(),
            settings: BTreeMap::from([
                ("connections".to_owned(), "HTTP/1.1 keep-alive pool (one per concurrent request)".to_owned()),
                ("consistency".to_owned(), consistency.to_owned()),
                ("bodies".to_owned(), "raw (application/octet-stream, ?raw=true)".to_owned()),
                ("scan".to_owned(), "GET /api/v1/keys?prefix=user&cursor=<start key>&values=true".to_owned()),
                ("tls".to_owned(), super::ringkv_grpc::on_off(self.tls)),
                ("token".to_owned(), super::ringkv_grpc::on_off(self.token)),
            ]),
        }
    }

    async fn read(&self, key: &str) -> Result<bool, TargetError> {
        Ok(self.get("read", key).await?.is_some())
    }

    async fn update(&self, key: &str, value: Bytes) -> Result<(), TargetError> {
        self.put("update", key, value, None).await
    }

    async fn insert(&self, key: &str, value: Bytes) -> Result<(), TargetError> {
        self.put("insert", key, value, None).await
    }

    async fn scan(&self, start: &str, count: u32) -> Result<usize, TargetError> {
        const OP: &str = "scan";
        let cursor = URL_SAFE_NO_PAD.encode(start.as_bytes());
        let limit = count.to_string();
        let query =
            [("prefix", KEY_PREFIX), ("cursor", cursor.as_str()), ("limit", limit.as_str()), ("values", "true")];
        let response = self.send(OP, self.http.get(format!("{}/api/v1/keys", self.base)).query(&query)).await?;
        let status = response.status();
        if !status.is_success() {
            return Err(TargetError::HttpStatus { op: OP, status: status.as_u16() });
        }
        let body: serde_json::Value = response.json().await.map_err(|source| TargetError::Http { op: OP, source })?;
        let keys = body.get("keys").and_then(serde_json::Value::as_array);
        keys.map(Vec::len).ok_or(TargetError::Malformed { op: OP, reason: "no \"keys\" array" })
    }

    async fn read_modify_write(&self, key: &str, value: Bytes) -> Result<(), TargetError> {
        let context = self.get("read-modify-write", key).await?.flatten();
        self.put("read-modify-write", key, value, context).await
    }
}
