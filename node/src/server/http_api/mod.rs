//! The HTTP/JSON front end: `/api/v1`, `/metrics`, `/healthz`, `/readyz`.
//!
//! Role: translate HTTP requests into [`Coordinator`] calls and their results
//! into JSON. No storage logic lives here; this module may call
//! `replication` (the coordinator and its types), `server::status` (error
//! classes), `server::metrics`, `server::admin` (the cluster status shared
//! with gRPC) and `storage` (stats only).
//!
//! # Conventions
//! - Every data endpoint takes `?keyspace=NAME` (default `default`) and the
//!   `Consistency-Level` header: a level (`ONE`, `TWO`, `THREE`, `QUORUM`,
//!   `ALL`, `LOCAL_QUORUM`, `EACH_QUORUM`, `ANY`, case-insensitive) or
//!   explicit counts `r=N`, `w=N`, `r=N,w=N`.
//! - Unknown query parameters are refused (400), so that a typo such as
//!   `?keyspce=` cannot silently write to the default keyspace.
//! - Contexts, cursors and binary values travel as URL-safe base64 without
//!   padding, in bodies as in headers (input also accepts the standard
//!   alphabet and padding). Values are returned as `"value"` when UTF-8, else
//!   as `"value_base64"`; inputs accept either (exactly one).
//! - The causal context of a key is returned in bodies (`"context"`) and in
//!   the `X-Causal-Context` header; writes take it from the body, the header
//!   or `?context=` (DELETE).
//! - Keys in paths are percent-decoded UTF-8; binary keys are gRPC-only.
//!   Listings show such keys as `"keys_base64"` (see `paging`).
//! - Every error body is `{"error": "<message>", "code": "RKV-…"}`; the
//!   status comes from `server::status::classify` for coordinator errors and
//!   from [`HttpError::class`] for input that never reached it.
//! - Bodies are limited to `max_value_bytes * 4 / 3 + 64 KiB` (room for JSON
//!   and base64); the coordinator enforces the exact value limit.
//! - Every `/api/v1` request is recorded with `NodeMetrics::observe("http", op, outcome, elapsed)`.
//!
//! # Endpoints
//! See `keys` (single key: PUT/GET/HEAD/DELETE), `rmw` (cas, ttl, incr),
//! `batch`, `paging` (list, scan) and `admin`.

mod admin;
mod batch;
mod error;
mod extract;
pub(crate) mod fuzz;
mod json;
mod keys;
mod paging;
mod rmw;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, any, delete, get, head, post, put};
use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{Method, StatusCode, Uri};
use tokio_util::sync::CancellationToken;

use crate::replication::{Consistency, Coordinator};
use crate::storage::Storage;

use super::admin::AdminService;
use super::metrics::NodeMetrics;
use super::{NodeIdentity, Readiness};

pub use error::{HttpError, Outcome};

/// What the HTTP handlers need. Cheap to clone.
#[derive(Debug, Clone)]
pub struct HttpState {
    /// Serves every data operation.
    pub coordinator: Coordinator,
    /// Local storage (its stats for `/metrics` and the cluster status page).
    pub storage: Arc<dyn Storage>,
    /// Request metrics and `/metrics`.
    pub metrics: NodeMetrics,
    /// Who this node is (cluster status).
    pub identity: NodeIdentity,
    /// Whether `/readyz` answers ready.
    pub readiness: Readiness,
    /// Answers `/admin/cluster/status` as gRPC `Admin.ClusterStatus` does.
    pub admin: AdminService,
}

/// Router state: the public state plus body limits.
#[derive(Debug, Clone)]
struct Ctx {
    http: HttpState,
    /// Largest accepted body, in bytes.
    body_limit: usize,
    /// `server.max_value_bytes`, for messages.
    max_value_bytes: usize,
}

/// The body limit for a value limit: room for base64 (4/3) and JSON (64 KiB).
fn body_limit(max_value_bytes: usize) -> usize {
    (max_value_bytes / 3).saturating_mul(4).saturating_add(4).saturating_add(64 * 1024)
}

/// Builds the HTTP router. `max_value_bytes` sizes the body limit.
pub fn router(state: HttpState, max_value_bytes: usize) -> Router {
    let ctx = Ctx { http: state, body_limit: body_limit(max_value_bytes), max_value_bytes };
    let api = api_routes(&ctx);
    Router::new()
        .nest("/api/v1", api)
        .route("/metrics", get(metrics_text))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .fallback(no_route)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(ctx.body_limit))
        .with_state(ctx)
}

fn api_routes(ctx: &Ctx) -> Router<Ctx> {
    let obs = |op, route| observed(ctx, op, route);
    let key = obs("get", get(keys::get))
        .merge(obs("head", head(keys::head)))
        .merge(obs("put", put(keys::put)))
        .merge(obs("delete", delete(keys::delete)));
    Router::new()
        .route("/keys/{key}", key)
        .route("/keys/", obs("invalid", any(empty_key)))
        .route("/keys/{key}/cas", obs("cas", post(rmw::cas)))
        .route("/keys/{key}/ttl", obs("touch", post(rmw::touch)))
        .route("/keys/{key}/incr", obs("incr", post(rmw::incr)))
        .route("/keys", obs("list", get(paging::list)))
        .route("/scan", obs("scan", get(paging::scan)))
        .route("/batch/put", obs("batch_write", post(batch::put)))
        .route("/batch/get", obs("batch_get", post(batch::get)))
        .route("/admin/cluster/status", obs("cluster_status", get(admin::cluster_status)))
        .route("/admin/keyspaces", obs("keyspaces", get(admin::keyspaces)))
}

/// What the metrics middleware of one route records under.
#[derive(Debug, Clone)]
struct Observed {
    metrics: NodeMetrics,
    op: &'static str,
}

/// Wraps `route` so that each request is recorded as `op`.
fn observed(ctx: &Ctx, op: &'static str, route: MethodRouter<Ctx>) -> MethodRouter<Ctx> {
    let observed = Observed { metrics: ctx.http.metrics.clone(), op };
    route.layer(middleware::from_fn_with_state(observed, record))
}

/// Records one request; the outcome is `ok` unless the response carries an
/// error [`Outcome`] (set by [`HttpError`]'s response).
async fn record(State(o): State<Observed>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let response = next.run(req).await;
    let outcome = response.extensions().get::<Outcome>().map_or("ok", |out| out.0);
    o.metrics.observe("http", o.op, outcome, start.elapsed());
    response
}

/// Graceful HTTP server: stops accepting when `shutdown` is cancelled and
/// returns once in-flight requests have finished.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    use axum::serve::ListenerExt;
    // Without TCP_NODELAY small responses wait for the peer's delayed ACK (~40 ms).
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY on an HTTP connection");
        }
    });
    axum::serve(listener, router).with_graceful_shutdown(async move { shutdown.cancelled().await }).await
}

async fn ready(State(ctx): State<Ctx>) -> Response {
    if ctx.http.readiness.is_ready() {
        (StatusCode::OK, "ready").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready").into_response()
    }
}

async fn metrics_text(State(ctx): State<Ctx>) -> Response {
    // Rendering reads storage stats, which may block.
    let http = ctx.http.clone();
    let text =
        tokio::task::spawn_blocking(move || http.metrics.render(http.storage.as_ref())).await.unwrap_or_default();
    ([(CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

/// `/api/v1/keys/` (empty key): the coordinator's own validation answers, so
/// the message names the configured key size limit.
async fn empty_key(State(ctx): State<Ctx>) -> Result<Response, HttpError> {
    let coordinator = &ctx.http.coordinator;
    coordinator.get(crate::DEFAULT_KEYSPACE, Bytes::new(), Consistency::default()).await?;
    Err(HttpError::NoRoute { method: "ANY".to_owned(), path: "/api/v1/keys/".to_owned() })
}

async fn no_route(method: Method, uri: Uri) -> HttpError {
    HttpError::NoRoute { method: method.to_string(), path: uri.path().to_owned() }
}

async fn method_not_allowed(method: Method, uri: Uri) -> HttpError {
    HttpError::MethodNotAllowed { method: method.to_string(), path: uri.path().to_owned() }
}
