//! [`HttpError`]: every failure of an HTTP request, as one JSON shape.
//!
//! Coordinator errors ([`KvError`]) keep the status and code given by
//! `server::status::classify`, the one mapping shared with gRPC. Failures
//! that never reach the coordinator (malformed JSON, oversized bodies, bad
//! base64, bad query strings) get their own stable codes here. Either way the
//! body is `{"error": "<message>", "code": "RKV-…"}` and the response carries
//! an [`Outcome`] extension so the metrics middleware can label it.

use axum::Json;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde_json::json;

use crate::error::KvError;
use crate::server::status::classify;

/// Why an HTTP request failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpError {
    /// The coordinator refused or failed the operation.
    #[error(transparent)]
    Kv(#[from] KvError),
    /// The body is not the JSON this endpoint expects.
    #[error("request body is not valid JSON for this endpoint: {reason}")]
    BadJson {
        /// serde's explanation, with line and column.
        reason: String,
    },
    /// The body is larger than the HTTP body limit.
    #[error(
        "request body is {}over the limit of {limit} bytes (server.max_value_bytes = {max_value} plus room for JSON and base64); send a smaller value or raise server.max_value_bytes",
        declared_size(*len)
    )]
    BodyTooLarge {
        /// Declared size (`Content-Length`), when known.
        len: Option<u64>,
        /// The body limit in bytes.
        limit: usize,
        /// `server.max_value_bytes`.
        max_value: usize,
    },
    /// The body could not be read.
    #[error("request body could not be read: {reason}")]
    BodyRead {
        /// What went wrong.
        reason: String,
    },
    /// A base64 field does not decode.
    #[error("{field} is not valid base64 ({reason}); use URL-safe base64, padding optional")]
    BadBase64 {
        /// The field (or header, or query parameter).
        field: String,
        /// Decoder error.
        reason: String,
    },
    /// A value given in neither or both of its forms.
    #[error(
        "{}; give exactly one of \"{field}\" (UTF-8 text) or \"{field}_base64\" (binary)",
        if *both { "both forms of the value were given" } else { "the value is missing" }
    )]
    ValueChoice {
        /// Base name of the field (`value`, `new_value`).
        field: String,
        /// True when both were given, false when neither.
        both: bool,
    },
    /// A compare-and-set with zero or several expectations.
    #[error(
        "compare-and-set needs exactly one expectation, got {given}; use one of expected_version, expected_value, expected_value_base64, expected_context, expect_absent"
    )]
    CasExpectation {
        /// How many were given.
        given: usize,
    },
    /// A batch operation that deletes but carries a value.
    #[error("operations[{index}] has \"delete\": true and a value; give one or the other")]
    DeleteWithValue {
        /// Position of the operation.
        index: usize,
    },
    /// The query string does not parse.
    #[error("query string is invalid: {reason}")]
    BadQuery {
        /// axum/serde's explanation.
        reason: String,
    },
    /// The path does not parse (e.g. a key that is not UTF-8 once decoded).
    #[error("path is invalid: {reason}; keys in paths are percent-encoded UTF-8 (binary keys: use gRPC)")]
    BadPath {
        /// axum's explanation.
        reason: String,
    },
    /// A header is not valid text.
    #[error("header {name} is not valid ASCII text")]
    BadHeader {
        /// The header.
        name: &'static str,
    },
    /// No such endpoint.
    #[error("no endpoint {method} {path}; see the API reference for /api/v1")]
    NoRoute {
        /// The method.
        method: String,
        /// The path.
        path: String,
    },
    /// The endpoint exists but not with this method.
    #[error("method {method} is not allowed on {path}")]
    MethodNotAllowed {
        /// The method.
        method: String,
        /// The path.
        path: String,
    },
}

fn declared_size(len: Option<u64>) -> String {
    len.map(|n| format!("{n} bytes, ")).unwrap_or_default()
}

/// The metrics outcome of a response: `ok` or the error's stable code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome(pub &'static str);

impl HttpError {
    /// The HTTP status and stable code of this error.
    pub fn class(&self) -> (StatusCode, &'static str) {
        use HttpError as E;
        match self {
            E::Kv(e) => {
                let c = classify(e);
                (c.http, c.code)
            }
            E::BadJson { .. } => (StatusCode::BAD_REQUEST, "RKV-BAD-JSON"),
            E::BodyTooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "RKV-BODY-TOO-LARGE"),
            E::BodyRead { .. } => (StatusCode::BAD_REQUEST, "RKV-BAD-BODY"),
            E::BadBase64 { .. } => (StatusCode::BAD_REQUEST, "RKV-BAD-BASE64"),
            E::ValueChoice { .. } | E::CasExpectation { .. } | E::DeleteWithValue { .. } => {
                (StatusCode::BAD_REQUEST, "RKV-BAD-REQUEST")
            }
            E::BadQuery { .. } => (StatusCode::BAD_REQUEST, "RKV-BAD-QUERY"),
            E::BadPath { .. } => (StatusCode::BAD_REQUEST, "RKV-BAD-PATH"),
            E::BadHeader { .. } => (StatusCode::BAD_REQUEST, "RKV-BAD-HEADER"),
            E::NoRoute { .. } => (StatusCode::NOT_FOUND, "RKV-NO-ROUTE"),
            E::MethodNotAllowed { .. } => (StatusCode::METHOD_NOT_ALLOWED, "RKV-METHOD-NOT-ALLOWED"),
        }
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let (status, code) = self.class();
        let body = json!({ "error": self.to_string(), "code": code });
        let mut response = (status, Json(body)).into_response();
        response.extensions_mut().insert(Outcome(code));
        response
    }
}

/// `404 {"key", "error": "not found", "code": "RKV-NOT-FOUND"}`.
pub(super) fn not_found(key: &str) -> Response {
    let body = json!({ "key": key, "error": "not found", "code": "RKV-NOT-FOUND" });
    (StatusCode::NOT_FOUND, Json(body)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coordinator_errors_keep_their_shared_class() {
        let err = HttpError::from(KvError::KeyTooLarge { len: 2000, max: 1024 });
        assert_eq!(err.class(), (StatusCode::PAYLOAD_TOO_LARGE, "RKV-KEY-TOO-LARGE"));
    }

    #[test]
    fn body_too_large_names_sizes_and_setting() {
        let known = HttpError::BodyTooLarge { len: Some(5000), limit: 4000, max_value: 3000 }.to_string();
        assert!(known.contains("5000 bytes") && known.contains("4000") && known.contains("server.max_value_bytes"));
        let unknown = HttpError::BodyTooLarge { len: None, limit: 4000, max_value: 3000 }.to_string();
        assert!(unknown.starts_with("request body is over the limit of 4000 bytes"), "{unknown}");
    }
}
