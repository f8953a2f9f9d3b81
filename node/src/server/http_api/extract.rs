//! Extractors that turn every malformed input into an [`HttpError`]: query
//! strings, key paths, bodies (with the size limit), JSON, and the
//! `Consistency-Level` and `X-Causal-Context` headers.
//!
//! axum's own rejections answer in plain text; these wrappers never do.
//! This module may call `replication` (consistency types) only.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use http::header::{ACCEPT, CONTENT_LENGTH, CONTENT_TYPE};
use http::request::Parts;
use http::{HeaderMap, StatusCode};
use serde::de::DeserializeOwned;

use crate::error::KvError;
use crate::replication::{Consistency, ConsistencyLevel, UnknownConsistency};

use super::Ctx;
use super::error::HttpError;

/// The header naming the consistency of a request.
pub(super) const CONSISTENCY_HEADER: &str = "consistency-level";
/// The header carrying a causal context (URL-safe base64).
pub(super) const CONTEXT_HEADER: &str = "x-causal-context";

/// A query string parsed into `T`; errors are 400 `RKV-BAD-QUERY`.
#[derive(Debug)]
pub(super) struct Params<T>(pub T);

impl<T: DeserializeOwned + Send, S: Sync> FromRequestParts<S> for Params<T> {
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Query::<T>::try_from_uri(&parts.uri)
            .map(|Query(t)| Params(t))
            .map_err(|e| HttpError::BadQuery { reason: e.body_text() })
    }
}

/// The `{key}` path segment, percent-decoded UTF-8.
#[derive(Debug)]
pub(super) struct Key(pub String);

impl<S: Send + Sync> FromRequestParts<S> for Key {
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Path::<String>::from_request_parts(parts, state)
            .await
            .map(|Path(key)| Key(key))
            .map_err(|e| HttpError::BadPath { reason: e.body_text() })
    }
}

/// The `Consistency-Level` header: a level name (case-insensitive), or
/// explicit counts `r=N`, `w=N` (comma-separated to give both).
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Level(pub Consistency);

impl<S: Sync> FromRequestParts<S> for Level {
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let Some(raw) = parts.headers.get(CONSISTENCY_HEADER) else { return Ok(Level::default()) };
        let text = raw.to_str().map_err(|_| HttpError::BadHeader { name: "Consistency-Level" })?;
        parse_consistency(text).map(Level).map_err(|e| HttpError::Kv(KvError::UnknownConsistency(e)))
    }
}

/// Parses `QUORUM`, `one`, `r=2`, `w=3`, `r=1,w=3`.
pub(super) fn parse_consistency(text: &str) -> Result<Consistency, UnknownConsistency> {
    let unknown = || UnknownConsistency { given: text.to_owned() };
    let mut c = Consistency::default();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.split_once('=') {
            Some((name, n)) => {
                let n: u32 = n.trim().parse().map_err(|_| unknown())?;
                match name.trim().to_ascii_lowercase().as_str() {
                    "r" => c.r = Some(n),
                    "w" => c.w = Some(n),
                    _ => return Err(unknown()),
                }
            }
            None if c.level.is_none() => c.level = Some(part.parse::<ConsistencyLevel>()?),
            None => return Err(unknown()),
        }
    }
    if c == Consistency::default() {
        return Err(unknown());
    }
    Ok(c)
}

/// The `X-Causal-Context` header, when present and not empty.
pub(super) fn context_header(headers: &HeaderMap) -> Result<Option<&str>, HttpError> {
    match headers.get(CONTEXT_HEADER) {
        None => Ok(None),
        Some(v) => {
            let text = v.to_str().map_err(|_| HttpError::BadHeader { name: "X-Causal-Context" })?;
            Ok(Some(text.trim()).filter(|t| !t.is_empty()))
        }
    }
}

/// True when the request's `Content-Type` is JSON (`application/json`, `…+json`).
pub(super) fn is_json(headers: &HeaderMap) -> bool {
    let Some(ct) = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()) else { return false };
    let mime = ct.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    mime == "application/json" || mime.ends_with("+json")
}

/// True when the client asks for raw bytes (`Accept: application/octet-stream`).
pub(super) fn accepts_raw(headers: &HeaderMap) -> bool {
    headers
        .get(ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.to_ascii_lowercase().contains("application/octet-stream"))
}

/// The whole body, within the body limit (`DefaultBodyLimit`, set by the router).
#[derive(Debug)]
pub(super) struct Body(pub Bytes);

impl FromRequest<Ctx> for Body {
    type Rejection = HttpError;

    async fn from_request(req: Request, ctx: &Ctx) -> Result<Self, Self::Rejection> {
        let declared =
            req.headers().get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|s| s.trim().parse::<u64>().ok());
        match Bytes::from_request(req, ctx).await {
            Ok(bytes) => Ok(Body(bytes)),
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Err(HttpError::BodyTooLarge { len: declared, limit: ctx.body_limit, max_value: ctx.max_value_bytes })
            }
            Err(e) => Err(HttpError::BodyRead { reason: e.body_text() }),
        }
    }
}

/// A JSON body parsed into `T`; malformed JSON is 400 `RKV-BAD-JSON` with serde's reason.
#[derive(Debug)]
pub(super) struct JsonBody<T>(pub T);

impl<T: DeserializeOwned> FromRequest<Ctx> for JsonBody<T> {
    type Rejection = HttpError;

    async fn from_request(req: Request, ctx: &Ctx) -> Result<Self, Self::Rejection> {
        let Body(bytes) = Body::from_request(req, ctx).await?;
        parse_json(&bytes).map(JsonBody)
    }
}

/// Parses a JSON body; an empty body is reported as such.
pub(super) fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, HttpError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(HttpError::BadJson { reason: "the body is empty; send a JSON object".to_owned() });
    }
    serde_json::from_slice(bytes).map_err(|e| HttpError::BadJson { reason: e.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consistency_accepts_levels_and_counts() {
        let quorum = parse_consistency("quorum").ok();
        assert_eq!(quorum, Some(Consistency::level(ConsistencyLevel::Quorum)));
        let counts = parse_consistency("r=1, W=2").ok();
        assert_eq!(counts, Some(Consistency { level: None, r: Some(1), w: Some(2) }));
        for bad in ["EVENTUAL", "", "r=x", "q=1", "ONE,TWO", "r=-1"] {
            let err = parse_consistency(bad).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(err.contains("LOCAL_QUORUM"), "{bad:?}: {err}");
        }
    }
}
