//! Single-key endpoints: `PUT`, `GET`, `HEAD`, `DELETE /api/v1/keys/{key}`.
//!
//! - `PUT`: with `Content-Type: application/json` the body is
//!   `{"value"|"value_base64", "ttl"?, "if_not_exists"?, "context"?}`;
//!   otherwise the raw body is the value and `?ttl=`, `?if_not_exists=` and
//!   the `X-Causal-Context` header give the options (JSON bodies also fall
//!   back to these when a field is absent). 200
//!   `{"key","version","timestamp" (µs),"status":"success","context"}`, or
//!   412 `{"key","status":"exists","version","context"}` when
//!   `if_not_exists` found a live value. `ttl` is 1 to `server.max_ttl_seconds`
//!   seconds; 0 is refused (400 `RKV-TTL-RANGE`), as over gRPC and RESP.
//! - `GET`: 200 `{"key","value"|"value_base64","version","timestamp",
//!   "ttl_remaining"?,"ttl_remaining_ms"?,"context"}`; 300
//!   `{"key","siblings":[…],"context","version"}` with several live
//!   siblings (also when raw bytes were asked for); `?raw=true` or
//!   `Accept: application/octet-stream` returns the bytes of a single value.
//!   404 `{"key","error":"not found","code":"RKV-NOT-FOUND"}`.
//! - `HEAD`: 200 or 404, no body.
//! - `DELETE`: `{"key","deleted": <a live value existed>,"version","context"}`.
//!
//! Every response about a key carries its context in `X-Causal-Context`.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::{Json, body::Bytes};
use http::header::CONTENT_TYPE;
use http::{HeaderMap, HeaderValue, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::replication::{Consistency, PutOptions, ReadResult, WriteResult};

use super::Ctx;
use super::error::{HttpError, not_found};
use super::extract::{Body, CONTEXT_HEADER, Key, Level, Params, accepts_raw, context_header, is_json, parse_json};
use super::json::{b64, context_from, object, put_value, siblings, value_from};

/// `?keyspace=` alone.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct KeyspaceQuery {
    pub keyspace: Option<String>,
}

/// The keyspace named by a query, `default` when absent.
pub(super) fn keyspace(name: &Option<String>) -> &str {
    name.as_deref().unwrap_or(crate::DEFAULT_KEYSPACE)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ReadQuery {
    keyspace: Option<String>,
    #[serde(default)]
    raw: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PutQuery {
    keyspace: Option<String>,
    ttl: Option<u64>,
    #[serde(default)]
    if_not_exists: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PutBody {
    value: Option<String>,
    value_base64: Option<String>,
    ttl: Option<u64>,
    #[serde(default)]
    if_not_exists: bool,
    context: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DeleteQuery {
    keyspace: Option<String>,
    context: Option<String>,
}

/// Adds `X-Causal-Context` to a response when the context is not empty.
pub(super) fn with_context(mut response: Response, context: &[u8]) -> Response {
    if !context.is_empty()
        && let Ok(value) = HeaderValue::from_str(&b64(context))
    {
        response.headers_mut().insert(CONTEXT_HEADER, value);
    }
    response
}

/// `GET /keys/{key}`.
pub(super) async fn get(
    State(ctx): State<Ctx>,
    Key(key): Key,
    Level(consistency): Level,
    Params(q): Params<ReadQuery>,
    headers: HeaderMap,
) -> Result<Response, HttpError> {
    let read = ctx.http.coordinator.get(keyspace(&q.keyspace), Bytes::from(key.clone()), consistency).await?;
    let raw = q.raw || accepts_raw(&headers);
    Ok(with_context(read_response(&key, &read, raw), &read.context))
}

fn read_response(key: &str, read: &ReadResult, raw: bool) -> Response {
    let context = b64(&read.context);
    match read.siblings.as_slice() {
        _ if !read.found => not_found(key),
        [single] if raw => {
            let bytes = single.value.clone().unwrap_or_default();
            ([(CONTENT_TYPE, "application/octet-stream")], bytes).into_response()
        }
        [single] => {
            let mut body = object(json!({
                "key": key,
                "version": read.version,
                "timestamp": single.timestamp_micros,
                "context": context,
            }));
            put_value(&mut body, single.value.as_deref().unwrap_or_default());
            if let Some(ms) = read.ttl_remaining_ms {
                let ms = ms.max(0);
                body.insert("ttl_remaining".into(), json!(ms.saturating_add(999) / 1000));
                body.insert("ttl_remaining_ms".into(), json!(ms));
            }
            Json(Value::Object(body)).into_response()
        }
        many => {
            let body = json!({
                "key": key,
                "siblings": siblings(many),
                "context": context,
                "version": read.version,
            });
            (StatusCode::MULTIPLE_CHOICES, Json(body)).into_response()
        }
    }
}

/// `HEAD /keys/{key}`.
pub(super) async fn head(
    State(ctx): State<Ctx>,
    Key(key): Key,
    Level(consistency): Level,
    Params(q): Params<ReadQuery>,
) -> Result<Response, HttpError> {
    let read = ctx.http.coordinator.get(keyspace(&q.keyspace), Bytes::from(key), consistency).await?;
    let status = if read.found { StatusCode::OK } else { StatusCode::NOT_FOUND };
    Ok(with_context(status.into_response(), &read.context))
}

/// `PUT /keys/{key}`.
pub(super) async fn put(
    State(ctx): State<Ctx>,
    Key(key): Key,
    Level(consistency): Level,
    Params(q): Params<PutQuery>,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Response, HttpError> {
    let header_context = context_header(&headers)?;
    let (value, opts) = if is_json(&headers) {
        put_from_json(&body, &q, header_context, consistency)?
    } else {
        let context = context_from("X-Causal-Context", header_context)?;
        (body, PutOptions { context, ttl_seconds: q.ttl, if_absent: q.if_not_exists, consistency })
    };
    let keyspace = keyspace(&q.keyspace);
    let written = ctx.http.coordinator.put(keyspace, Bytes::from(key.clone()), value, opts).await?;
    Ok(with_context(write_response(&key, &written), &written.context))
}

/// The value and options of a JSON `PUT` body (query and header as fallbacks).
pub(super) fn put_from_json(
    body: &[u8],
    q: &PutQuery,
    header_context: Option<&str>,
    consistency: Consistency,
) -> Result<(Bytes, PutOptions), HttpError> {
    let b: PutBody = parse_json(body)?;
    let value = value_from("value", b.value, b.value_base64.as_deref())?;
    let context = match b.context.as_deref() {
        Some(c) => context_from("context", Some(c))?,
        None => context_from("X-Causal-Context", header_context)?,
    };
    let if_absent = b.if_not_exists || q.if_not_exists;
    Ok((value, PutOptions { context, ttl_seconds: b.ttl.or(q.ttl), if_absent, consistency }))
}

fn write_response(key: &str, w: &WriteResult) -> Response {
    let context = b64(&w.context);
    if !w.applied {
        let body = json!({ "key": key, "status": "exists", "version": w.version, "context": context });
        return (StatusCode::PRECONDITION_FAILED, Json(body)).into_response();
    }
    let body = json!({
        "key": key,
        "version": w.version,
        "timestamp": w.timestamp_micros,
        "status": "success",
        "context": context,
    });
    Json(body).into_response()
}

/// `DELETE /keys/{key}`.
pub(super) async fn delete(
    State(ctx): State<Ctx>,
    Key(key): Key,
    Level(consistency): Level,
    Params(q): Params<DeleteQuery>,
    headers: HeaderMap,
) -> Result<Response, HttpError> {
    let context = match q.context.as_deref() {
        Some(c) => context_from("context", Some(c))?,
        None => context_from("X-Causal-Context", context_header(&headers)?)?,
    };
    let keyspace = keyspace(&q.keyspace);
    let w = ctx.http.coordinator.delete(keyspace, Bytes::from(key.clone()), context, consistency).await?;
    let body = json!({ "key": key, "deleted": w.existed, "version": w.version, "context": b64(&w.context) });
    Ok(with_context(Json(body).into_response(), &w.context))
}
