//! Paging endpoints: LIST by prefix and SCAN of a whole keyspace.
//!
//! - `GET /api/v1/keys?prefix=&limit=100&cursor=&values=false` (key order) →
//!   `{"keys":[…],"cursor": "<opaque>"|null,"has_more"}`.
//! - `GET /api/v1/scan?cursor=&count=1000&values=false` (token order) →
//!   `{"keys":[…],"next_cursor": "<opaque>"|null,"done"}`.
//!
//! With `values=true` both add `"entries": [{"key","value"|"value_base64"}]`
//! in page order (a list rather than a map, so binary values and keys fit).
//! Keys that are not UTF-8 (written over gRPC) are not in `"keys"` but in
//! `"keys_base64"`, present only when there are some; in `"entries"` they
//! appear as `"key_base64"`. Cursors are URL-safe base64, opaque: pass them
//! back unchanged. A page may hold fewer keys than asked (tombstones are
//! skipped within a budget) while more remain: rely on `has_more` / `done`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::error::KvError;
use crate::replication::{Cursor, Page};

use super::Ctx;
use super::error::HttpError;
use super::extract::Params;
use super::json::{b64, object, put_key, put_value, unb64};
use super::keys::keyspace;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ListQuery {
    keyspace: Option<String>,
    prefix: Option<String>,
    #[serde(default)]
    limit: usize,
    cursor: Option<String>,
    #[serde(default)]
    values: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ScanQuery {
    keyspace: Option<String>,
    #[serde(default)]
    count: usize,
    cursor: Option<String>,
    #[serde(default)]
    values: bool,
}

/// Decodes a cursor; absent or empty starts from the beginning.
fn cursor(text: Option<&str>) -> Result<Option<Cursor>, HttpError> {
    match text.map(str::trim) {
        None | Some("") => Ok(None),
        Some(t) => unb64("cursor", t).map(|b| Some(Cursor(b))).map_err(|_| HttpError::Kv(KvError::BadCursor)),
    }
}

/// `GET /keys`.
pub(super) async fn list(State(ctx): State<Ctx>, Params(q): Params<ListQuery>) -> Result<Json<Value>, HttpError> {
    let after = cursor(q.cursor.as_deref())?;
    let prefix = Bytes::from(q.prefix.unwrap_or_default());
    let page = ctx.http.coordinator.list(keyspace(&q.keyspace), prefix, q.limit, after, q.values).await?;
    let mut body = page_body(&page, q.values);
    let next = page.next.as_ref().map(|c| b64(&c.0));
    body.insert("has_more".into(), json!(next.is_some()));
    body.insert("cursor".into(), json!(next));
    Ok(Json(Value::Object(body)))
}

/// `GET /scan`.
pub(super) async fn scan(State(ctx): State<Ctx>, Params(q): Params<ScanQuery>) -> Result<Json<Value>, HttpError> {
    let after = cursor(q.cursor.as_deref())?;
    let page = ctx.http.coordinator.scan(keyspace(&q.keyspace), q.count, after, q.values).await?;
    let mut body = page_body(&page, q.values);
    let next = page.next.as_ref().map(|c| b64(&c.0));
    body.insert("done".into(), json!(next.is_none()));
    body.insert("next_cursor".into(), json!(next));
    Ok(Json(Value::Object(body)))
}

/// `keys`, `keys_base64` (when needed) and `entries` (with values).
fn page_body(page: &Page, values: bool) -> Map<String, Value> {
    let mut keys = Vec::new();
    let mut binary_keys = Vec::new();
    for entry in &page.entries {
        match std::str::from_utf8(&entry.key) {
            Ok(text) => keys.push(Value::String(text.to_owned())),
            Err(_) => binary_keys.push(Value::String(b64(&entry.key))),
        }
    }
    let mut body = object(json!({ "keys": keys }));
    if !binary_keys.is_empty() {
        body.insert("keys_base64".into(), Value::Array(binary_keys));
    }
    if values {
        let entries = page
            .entries
            .iter()
            .map(|e| {
                let mut obj = Map::new();
                put_key(&mut obj, &e.key);
                put_value(&mut obj, e.value.as_deref().unwrap_or_default());
                Value::Object(obj)
            })
            .collect();
        body.insert("entries".into(), Value::Array(entries));
    }
    body
}
