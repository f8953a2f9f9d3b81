//! The `http` fuzz target's body (see [`crate::fuzzing`]): client input of
//! the HTTP API that never needs a coordinator — JSON bodies, query strings,
//! the `Consistency-Level` header and base64 fields — run through the same
//! functions the handlers call.
//!
//! Besides "no panic", every input is checked against what an independent
//! reading of it says: a body that parses is compared field by field with
//! the same bytes read as an untyped `serde_json::Value`; a query string
//! with an unknown parameter must be refused; every error must be one of
//! the typed errors that endpoint can give, with its stable `RKV-*` code.
//!
//! This module may call the HTTP API's own parsers only.

use axum::extract::FromRequestParts as _;
use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::replication::{CasExpectation, Consistency};

use super::error::HttpError;
use super::extract::{Params, parse_consistency, parse_json};
use super::json::{b64, unb64};
use super::keys::{DeleteQuery, KeyspaceQuery, PutQuery, ReadQuery};
use super::paging::{ListQuery, ScanQuery};
use super::rmw::TtlBody;
use super::{batch, keys, rmw};

/// One fuzz input: the first byte picks what the rest is.
pub(crate) fn input(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else { return };
    match selector % 8 {
        0 => put_body(rest),
        1 => batch_put_body(rest),
        2 => batch_get_body(rest),
        3 => cas_body(rest),
        4 => incr_and_ttl_body(rest),
        5 => query_string(rest),
        6 => consistency_header(rest),
        _ => base64_field(rest),
    }
}

/// Panics unless `err` is one of `allowed` (by code) with a message.
fn check_error(err: &HttpError, allowed: &[&str]) {
    let (status, code) = err.class();
    assert!(status.is_client_error(), "input error {err} has status {status}");
    assert!(allowed.contains(&code), "unexpected error {code}: {err}");
    assert!(!err.to_string().is_empty());
}

/// The JSON object the body holds, read without the endpoint's types.
fn untyped(body: &[u8]) -> Option<Map<String, Value>> {
    match serde_json::from_slice(body).ok()? {
        Value::Object(map) => Some(map),
        _ => None,
    }
}

/// A string field; JSON `null` is absent, as for `Option<String>`.
fn text<'a>(obj: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    obj.get(name).and_then(Value::as_str)
}

/// The bytes a `name`/`name_base64` pair gives, read independently.
fn expected_value(obj: &Map<String, Value>, name: &str) -> Bytes {
    match (text(obj, name), text(obj, &format!("{name}_base64"))) {
        (Some(t), None) => Bytes::copy_from_slice(t.as_bytes()),
        (None, Some(b)) => checked_b64(b),
        other => panic!("{name}: a value was accepted from {other:?}"),
    }
}

/// Decodes accepted base64 and checks that it re-encodes to the same bytes.
fn checked_b64(text: &str) -> Bytes {
    let bytes = unb64("f", text).unwrap_or_else(|e| panic!("accepted base64 {text:?} no longer decodes: {e}"));
    assert_eq!(unb64("f", &b64(&bytes)).ok().as_ref(), Some(&bytes), "base64 round trip");
    bytes
}

fn expected_context(obj: &Map<String, Value>, name: &str) -> Bytes {
    match text(obj, name).map(str::trim) {
        None | Some("") => Bytes::new(),
        Some(t) => checked_b64(t),
    }
}

fn put_body(body: &[u8]) {
    let Some(q) = query::<PutQuery>("") else { panic!("an empty PUT query must parse") };
    match keys::put_from_json(body, &q, None, Consistency::default()) {
        Ok((value, opts)) => {
            let Some(obj) = untyped(body) else { return }; // serde's positional (array) form
            assert_eq!(value, expected_value(&obj, "value"));
            assert_eq!(opts.ttl_seconds, obj.get("ttl").and_then(Value::as_u64));
            assert_eq!(opts.if_absent, obj.get("if_not_exists").and_then(Value::as_bool).unwrap_or(false));
            assert_eq!(opts.context, expected_context(&obj, "context"));
        }
        Err(e) => check_error(&e, &["RKV-BAD-JSON", "RKV-BAD-BASE64", "RKV-BAD-REQUEST"]),
    }
}

fn batch_put_body(body: &[u8]) {
    let ops = parse_json::<batch::PutBatch>(body).and_then(batch::batch_ops);
    match ops {
        Ok((keys, ops, atomic)) => {
            assert_eq!(keys.len(), ops.len());
            for (key, op) in keys.iter().zip(&ops) {
                assert_eq!(op.key.as_ref(), key.as_bytes());
            }
            let Some(obj) = untyped(body) else { return };
            assert_eq!(atomic, obj.get("atomic").and_then(Value::as_bool).unwrap_or(false));
            let Some(list) = obj.get("operations").and_then(Value::as_array) else { panic!("no operations: {obj:?}") };
            assert_eq!(list.len(), ops.len());
            for (given, op) in list.iter().zip(&ops) {
                let Some(given) = given.as_object() else { continue };
                let delete = given.get("delete").and_then(Value::as_bool).unwrap_or(false);
                assert_eq!(op.value.is_none(), delete, "only deletes carry no value");
                if !delete {
                    assert_eq!(op.value.as_ref(), Some(&expected_value(given, "value")));
                }
                assert_eq!(op.ttl_seconds, given.get("ttl").and_then(Value::as_u64));
                assert_eq!(op.context, expected_context(given, "context"));
            }
        }
        Err(e) => check_error(&e, &["RKV-BAD-JSON", "RKV-BAD-BASE64", "RKV-BAD-REQUEST"]),
    }
}

fn batch_get_body(body: &[u8]) {
    match parse_json::<batch::GetBatch>(body).map(batch::batch_keys) {
        Ok(keys) => {
            let Some(obj) = untyped(body) else { return };
            let given: Vec<Bytes> = obj["keys"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|k| Bytes::copy_from_slice(k.as_str().unwrap_or_default().as_bytes()))
                .collect();
            assert_eq!(keys, given);
        }
        Err(e) => check_error(&e, &["RKV-BAD-JSON"]),
    }
}

fn cas_body(body: &[u8]) {
    match parse_json::<rmw::CasBody>(body).and_then(rmw::cas_request) {
        Ok((expected, new_value, ttl)) => {
            let Some(obj) = untyped(body) else { return };
            let want = if let Some(v) = obj.get("expected_version").and_then(Value::as_u64) {
                CasExpectation::Version(v)
            } else if let Some(v) = text(&obj, "expected_value") {
                CasExpectation::Value(Bytes::copy_from_slice(v.as_bytes()))
            } else if let Some(v) = text(&obj, "expected_value_base64") {
                CasExpectation::Value(checked_b64(v))
            } else if obj.contains_key("expected_context") && !obj["expected_context"].is_null() {
                CasExpectation::Context(expected_context(&obj, "expected_context"))
            } else {
                assert_eq!(obj.get("expect_absent").and_then(Value::as_bool), Some(true), "no expectation: {obj:?}");
                CasExpectation::Absent
            };
            assert_eq!(expected, want);
            assert_eq!(new_value, expected_value(&obj, "new_value"));
            assert_eq!(ttl, obj.get("ttl").and_then(Value::as_u64));
        }
        Err(HttpError::CasExpectation { given }) => assert_ne!(given, 1, "one expectation was refused"),
        Err(e) => check_error(&e, &["RKV-BAD-JSON", "RKV-BAD-BASE64", "RKV-BAD-REQUEST"]),
    }
}

fn incr_and_ttl_body(body: &[u8]) {
    match rmw::incr_request(body) {
        Ok((delta, ttl)) => {
            let blank = body.iter().all(u8::is_ascii_whitespace);
            let Some(obj) = untyped(body).or_else(|| blank.then(Map::new)) else { return };
            assert_eq!(delta, obj.get("delta").and_then(Value::as_i64).unwrap_or(1));
            assert_eq!(ttl, obj.get("ttl").and_then(Value::as_u64));
        }
        Err(e) => check_error(&e, &["RKV-BAD-JSON"]),
    }
    if let Err(e) = parse_json::<TtlBody>(body) {
        check_error(&e, &["RKV-BAD-JSON"]);
    }
}

/// Parses `text` as the query of a request through the [`Params`] extractor.
fn query<T: DeserializeOwned + Send>(text: &str) -> Option<T> {
    params::<T>(text)?.1.ok()
}

/// The query as the request's URI holds it, and the extractor's verdict;
/// `None` when `text` cannot be part of a URI (hyper refuses it first).
fn params<T: DeserializeOwned + Send>(text: &str) -> Option<(String, Result<T, HttpError>)> {
    let request = http::Request::builder().uri(format!("/api/v1/keys/k?{text}")).body(()).ok()?;
    let (mut parts, ()) = request.into_parts();
    let query = parts.uri.query().unwrap_or_default().to_owned();
    let parsed = futures::executor::block_on(Params::<T>::from_request_parts(&mut parts, &()));
    Some((query, parsed.map(|Params(t)| t)))
}

/// Parameter names of a query string, decoded as `application/x-www-form-urlencoded`.
fn names(text: &str) -> Vec<String> {
    text.split('&').filter(|p| !p.is_empty()).map(|p| decode_form(p.split('=').next().unwrap_or_default())).collect()
}

fn decode_form(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => match (bytes.get(i + 1).copied().and_then(hex), bytes.get(i + 2).copied().and_then(hex)) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Every query type refuses a parameter it does not know, with RKV-BAD-QUERY.
fn check_query<T: DeserializeOwned + Send>(text: &str, known: &[&str]) {
    let Some((query, parsed)) = params::<T>(text) else { return };
    let unknown = names(&query).into_iter().find(|n| !known.contains(&n.as_str()));
    match parsed {
        Ok(_) => assert!(unknown.is_none(), "query {query:?} with unknown parameter {unknown:?} was accepted"),
        Err(e) => check_error(&e, &["RKV-BAD-QUERY"]),
    }
}

fn query_string(rest: &[u8]) {
    let Ok(text) = std::str::from_utf8(rest) else { return };
    check_query::<KeyspaceQuery>(text, &["keyspace"]);
    check_query::<ReadQuery>(text, &["keyspace", "raw"]);
    check_query::<PutQuery>(text, &["keyspace", "ttl", "if_not_exists"]);
    check_query::<DeleteQuery>(text, &["keyspace", "context"]);
    check_query::<ListQuery>(text, &["keyspace", "prefix", "limit", "cursor", "values"]);
    check_query::<ScanQuery>(text, &["keyspace", "count", "cursor", "values"]);
}

fn consistency_header(rest: &[u8]) {
    let Ok(text) = std::str::from_utf8(rest) else { return };
    match parse_consistency(text) {
        Ok(c) => {
            let mut parts: Vec<String> = c.level.iter().map(|l| l.name().to_owned()).collect();
            parts.extend(c.r.map(|r| format!("r={r}")));
            parts.extend(c.w.map(|w| format!("w={w}")));
            let again = parse_consistency(&parts.join(","));
            assert_eq!(again.ok(), Some(c), "{text:?} does not round-trip through {parts:?}");
        }
        Err(e) => assert!(text.contains(e.given.as_str()), "the error names {:?}, not in {text:?}", e.given),
    }
}

fn base64_field(rest: &[u8]) {
    let Ok(text) = std::str::from_utf8(rest) else { return };
    match unb64("value_base64", text) {
        Ok(bytes) => {
            assert!(bytes.len() <= text.len() * 3 / 4 + 3, "{} bytes from {} characters", bytes.len(), text.len());
            checked_b64(text);
        }
        Err(e) => check_error(&e, &["RKV-BAD-BASE64"]),
    }
}
