//! Read-modify-write endpoints under `/api/v1/keys/{key}/…`.
//!
//! - `POST …/cas` `{"expected_version"|"expected_value"|"expected_value_base64"
//!   |"expected_context"|"expect_absent": true, "new_value"|"new_value_base64",
//!   "ttl"?}` with exactly one expectation: 200
//!   `{"success":true,"new_version","context"}`, or 409
//!   `{"success":false,"current_version","context","current":[siblings]}`.
//! - `POST …/ttl` `{"ttl": N}` (0 clears; `"ttl_seconds"` is accepted as an
//!   alias, the name this endpoint used before): `{"key","ttl","ttl_seconds","version"}`
//!   (both names carry N), 404 when absent.
//! - `POST …/incr` `{"delta": N, "ttl"?}` (body optional, delta 1):
//!   `{"key","value","version"}`; 409 `RKV-NOT-AN-INTEGER` on a non-integer value.
//!
//! Atomicity comes from the coordinator's per-key lock; nothing here reads
//! before writing.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde::Deserialize;
use serde_json::json;

use crate::replication::CasExpectation;

use super::Ctx;
use super::error::{HttpError, not_found};
use super::extract::{Body, JsonBody, Key, Level, Params, parse_json};
use super::json::{b64, context_from, siblings, unb64, value_from};
use super::keys::{KeyspaceQuery, keyspace, with_context};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CasBody {
    expected_version: Option<u64>,
    expected_value: Option<String>,
    expected_value_base64: Option<String>,
    expected_context: Option<String>,
    #[serde(default)]
    expect_absent: bool,
    new_value: Option<String>,
    new_value_base64: Option<String>,
    ttl: Option<u64>,
}

impl CasBody {
    /// The one expectation of the request.
    fn expectation(&self) -> Result<CasExpectation, HttpError> {
        let given = [
            self.expected_version.is_some(),
            self.expected_value.is_some(),
            self.expected_value_base64.is_some(),
            self.expected_context.is_some(),
            self.expect_absent,
        ]
        .into_iter()
        .filter(|g| *g)
        .count();
        if given != 1 {
            return Err(HttpError::CasExpectation { given });
        }
        if let Some(v) = self.expected_version {
            return Ok(CasExpectation::Version(v));
        }
        if let Some(v) = &self.expected_value {
            return Ok(CasExpectation::Value(Bytes::from(v.clone())));
        }
        if let Some(v) = &self.expected_value_base64 {
            return Ok(CasExpectation::Value(unb64("expected_value_base64", v)?));
        }
        if let Some(c) = &self.expected_context {
            return Ok(CasExpectation::Context(context_from("expected_context", Some(c))?));
        }
        Ok(CasExpectation::Absent)
    }
}

/// The expectation, new value and TTL of a CAS body.
pub(super) fn cas_request(body: CasBody) -> Result<(CasExpectation, Bytes, Option<u64>), HttpError> {
    let expected = body.expectation()?;
    let new_value = value_from("new_value", body.new_value, body.new_value_base64.as_deref())?;
    Ok((expected, new_value, body.ttl))
}

/// `POST /keys/{key}/cas`.
pub(super) async fn cas(
    State(ctx): State<Ctx>,
    Key(key): Key,
    Level(consistency): Level,
    Params(q): Params<KeyspaceQuery>,
    JsonBody(body): JsonBody<CasBody>,
) -> Result<Response, HttpError> {
    let (expected, new_value, ttl) = cas_request(body)?;
    let outcome = ctx
        .http
        .coordinator
        .compare_and_set(keyspace(&q.keyspace), Bytes::from(key), expected, new_value, ttl, consistency)
        .await?;
    let context = b64(&outcome.context);
    let response = if outcome.applied {
        Json(json!({ "success": true, "new_version": outcome.version, "context": context })).into_response()
    } else {
        let body = json!({
            "success": false,
            "current_version": outcome.version,
            "context": context,
            "current": siblings(&outcome.current),
        });
        (StatusCode::CONFLICT, Json(body)).into_response()
    };
    Ok(with_context(response, &outcome.context))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TtlBody {
    /// The same name as PUT, CAS and incr use.
    #[serde(alias = "ttl_seconds")]
    ttl: u64,
}

/// `POST /keys/{key}/ttl`.
pub(super) async fn touch(
    State(ctx): State<Ctx>,
    Key(key): Key,
    Level(consistency): Level,
    Params(q): Params<KeyspaceQuery>,
    JsonBody(body): JsonBody<TtlBody>,
) -> Result<Response, HttpError> {
    let ttl = body.ttl;
    let coordinator = &ctx.http.coordinator;
    match coordinator.touch(keyspace(&q.keyspace), Bytes::from(key.clone()), ttl, consistency).await? {
        Some(version) => {
            Ok(Json(json!({ "key": key, "ttl": ttl, "ttl_seconds": ttl, "version": version })).into_response())
        }
        None => Ok(not_found(&key)),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct IncrBody {
    #[serde(default = "one")]
    delta: i64,
    ttl: Option<u64>,
}

fn one() -> i64 {
    1
}

/// The delta and TTL of an increment body (absent or blank: delta 1).
pub(super) fn incr_request(raw: &[u8]) -> Result<(i64, Option<u64>), HttpError> {
    let body = if raw.iter().all(u8::is_ascii_whitespace) {
        IncrBody { delta: 1, ttl: None }
    } else {
        parse_json::<IncrBody>(raw)?
    };
    Ok((body.delta, body.ttl))
}

/// `POST /keys/{key}/incr`.
pub(super) async fn incr(
    State(ctx): State<Ctx>,
    Key(key): Key,
    Level(consistency): Level,
    Params(q): Params<KeyspaceQuery>,
    Body(raw): Body,
) -> Result<Response, HttpError> {
    let (delta, ttl) = incr_request(&raw)?;
    let coordinator = &ctx.http.coordinator;
    let ks = keyspace(&q.keyspace);
    let (value, version) = coordinator.increment(ks, Bytes::from(key.clone()), delta, ttl, consistency).await?;
    Ok(Json(json!({ "key": key, "value": value, "version": version })).into_response())
}
