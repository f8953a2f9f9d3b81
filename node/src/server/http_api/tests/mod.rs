//! Router tests over an in-memory coordinator (`tower::ServiceExt::oneshot`).
//!
//! `keys` covers single-key endpoints and input errors; `pages` covers
//! batches, paging, admin and the operational endpoints.

mod keys;
mod pages;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use http::{HeaderMap, Method, Request, StatusCode};
use serde_json::Value;
use tower::ServiceExt as _;

use crate::clock::SystemClock;
use crate::config::{Config, ServerConfig};
use crate::replication::{Coordinator, Keyspaces, Limits, NodeParts};
use crate::server::admin::AdminService;
use crate::server::metrics::NodeMetrics;
use crate::server::{NodeIdentity, Readiness};
use crate::storage::MemoryStorage;

use super::{HttpState, router};

/// Value limit of the test router.
const MAX_VALUE: usize = 1024;

/// A router over a fresh in-memory store, and its state.
fn app() -> (Router, HttpState) {
    let server = ServerConfig { max_value_bytes: MAX_VALUE, ..ServerConfig::default() };
    let clock: Arc<dyn crate::clock::Clock> = Arc::new(SystemClock);
    let node = NodeParts::solo(1, Arc::new(MemoryStorage::new()), Arc::clone(&clock));
    let coordinator =
        Coordinator::solo(1, &node, Keyspaces::from_config(&Config::default()), clock, Limits::from(&server));
    let addr = SocketAddr::from(([127, 0, 0, 1], 0));
    let identity = NodeIdentity {
        host_id: "host-1".into(),
        grpc_addr: addr,
        http_addr: addr,
        resp_addr: None,
        data_dir: "/tmp".into(),
    };
    let admin = AdminService::new(coordinator.clone(), node.clone(), identity.clone(), crate::worker::Jobs::default());
    let (metrics, readiness, storage) = (NodeMetrics::new(), Readiness::default(), node.storage);
    let state = HttpState { coordinator, storage, metrics, identity, readiness, admin };
    (router(state.clone(), MAX_VALUE), state)
}

/// One response, body collected.
#[derive(Debug)]
struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts an error reply: status, JSON `{"error","code"}` with `code`.
    fn assert_error(&self, status: StatusCode, code: &str) -> String {
        assert_eq!(self.status, status, "body: {:?}", String::from_utf8_lossy(&self.body));
        let body = self.json();
        assert_eq!(body["code"], code, "{body}");
        body["error"].as_str().unwrap_or_default().to_owned()
    }
}

/// A request builder: method, uri, headers, body.
struct Req {
    builder: http::request::Builder,
    body: Body,
}

fn req(method: Method, uri: &str) -> Req {
    Req { builder: Request::builder().method(method).uri(uri), body: Body::empty() }
}

impl Req {
    fn header(mut self, name: &str, value: &str) -> Self {
        self.builder = self.builder.header(name, value);
        self
    }

    fn json(self, body: Value) -> Self {
        self.header("content-type", "application/json").raw(body.to_string())
    }

    fn raw(mut self, body: impl Into<Body>) -> Self {
        self.body = body.into();
        self
    }

    async fn send(self, app: &Router) -> Reply {
        let request = self.builder.body(self.body).unwrap_or_else(|e| panic!("bad test request: {e}"));
        let response = app.clone().oneshot(request).await.unwrap_or_else(|e| match e {});
        let (parts, body) = response.into_parts();
        let body = axum::body::to_bytes(body, usize::MAX).await.unwrap_or_else(|e| panic!("body: {e}"));
        Reply { status: parts.status, headers: parts.headers, body }
    }
}

/// `PUT /api/v1/keys/{key}` with a JSON text value.
async fn put_text(app: &Router, key: &str, value: &str) -> Reply {
    req(Method::PUT, &format!("/api/v1/keys/{key}")).json(serde_json::json!({ "value": value })).send(app).await
}
