//! `--json` output of `kvctl`: one JSON object per line, built by pure
//! functions from response values.
//!
//! Keys and values are strings when they are valid UTF-8; otherwise the
//! field is named `<field>_base64` and holds standard base64. Contexts and
//! cursors are opaque and always standard base64. Enums are their short
//! names (`NORMAL`, `ALIVE`).

use bytes::Bytes;
use ringkv_client::Record;
use ringkv_client::proto::{
    ClusterStatusResponse, CompareAndSetResponse, DeleteResponse, Entry, IncrementResponse, ListResponse, NodeStatus,
    PutResponse, ScanResponse, Sibling,
};
use serde_json::{Map, Value, json};

use super::encoding::{text_or_base64, to_base64};
use super::human::{liveness_name, node_state_name};

/// Serialises one object as a line.
fn line(value: Value) -> String {
    format!("{value}\n")
}

/// Adds `bytes` as `name` (UTF-8) or `name_base64`.
fn insert_bytes(object: &mut Map<String, Value>, name: &str, bytes: &[u8]) {
    match text_or_base64(bytes) {
        Ok(text) => object.insert(name.to_owned(), text.into()),
        Err(b64) => object.insert(format!("{name}_base64"), b64.into()),
    };
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

fn with_key(key: &[u8], fields: Value) -> Value {
    let mut map = object(fields);
    insert_bytes(&mut map, "key", key);
    Value::Object(map)
}

fn sibling(sibling: &Sibling) -> Value {
    let mut map = object(json!({
        "tombstone": sibling.tombstone,
        "timestamp_micros": sibling.timestamp_micros,
        "expires_at_ms": sibling.expires_at_ms,
    }));
    insert_bytes(&mut map, "value", &sibling.value);
    Value::Object(map)
}

fn record_fields(key: &[u8], record: Option<&Record>) -> Value {
    let fields = match record {
        Some(record) => json!({
            "found": true,
            "siblings": record.siblings.iter().map(sibling).collect::<Vec<_>>(),
            "context": to_base64(&record.context),
            "version": record.version,
        }),
        None => json!({ "found": false, "siblings": [], "context": "", "version": 0 }),
    };
    with_key(key, fields)
}

/// `get`: `{"key","found","siblings":[{"value","timestamp_micros","expires_at_ms","tombstone"}],"context","version"}`
/// (plus `ttl_remaining_ms` when the key has a TTL).
pub fn get(key: &[u8], record: Option<&Record>) -> String {
    let mut value = record_fields(key, record);
    if let (Some(ttl), Value::Object(map)) = (record.and_then(|r| r.ttl_remaining_ms), &mut value) {
        map.insert("ttl_remaining_ms".to_owned(), ttl.into());
    }
    line(value)
}

/// `batch-get`: `{"results":[<get object>...]}`.
pub fn batch_get(results: &[(Bytes, Option<Record>)]) -> String {
    let results: Vec<Value> = results.iter().map(|(key, record)| record_fields(key, record.as_ref())).collect();
    line(json!({ "results": results }))
}

/// `put`: `{"key","applied","version","context","timestamp_micros"}`.
pub fn put(key: &[u8], response: &PutResponse) -> String {
    line(with_key(
        key,
        json!({
            "applied": response.applied,
            "version": response.version,
            "context": to_base64(&response.context),
            "timestamp_micros": response.timestamp_micros,
        }),
    ))
}

/// `del`: `{"key","existed","version","context"}`.
pub fn delete(key: &[u8], response: &DeleteResponse) -> String {
    line(with_key(
        key,
        json!({
            "existed": response.existed,
            "version": response.version,
            "context": to_base64(&response.context),
        }),
    ))
}

/// `cas`: `{"key","applied","version","context","current":[siblings]}`.
pub fn cas(key: &[u8], response: &CompareAndSetResponse) -> String {
    line(with_key(
        key,
        json!({
            "applied": response.applied,
            "version": response.version,
            "context": to_base64(&response.context),
            "current": response.current.iter().map(sibling).collect::<Vec<_>>(),
        }),
    ))
}

/// `incr`: `{"key","value","version"}`.
pub fn incr(key: &[u8], response: &IncrementResponse) -> String {
    line(with_key(key, json!({ "value": response.value, "version": response.version })))
}

/// `ttl`: `{"key","found","version"}`.
pub fn touch(key: &[u8], version: Option<u64>) -> String {
    line(with_key(key, json!({ "found": version.is_some(), "version": version.unwrap_or(0) })))
}

fn entry(entry: &Entry, with_values: bool) -> Value {
    let mut map = Map::new();
    insert_bytes(&mut map, "key", &entry.key);
    if with_values {
        insert_bytes(&mut map, "value", &entry.value);
    }
    Value::Object(map)
}

fn entries(page: &[Entry], with_values: bool) -> Vec<Value> {
    page.iter().map(|e| entry(e, with_values)).collect()
}

/// `list`: `{"entries":[{"key","value"?}],"next_cursor","has_more"}`.
pub fn list(response: &ListResponse, with_values: bool) -> String {
    line(json!({
        "entries": entries(&response.entries, with_values),
        "next_cursor": to_base64(&response.next_cursor),
        "has_more": response.has_more,
    }))
}

/// `scan` (one object per page): `{"entries":[...],"next_cursor","done"}`.
pub fn scan(response: &ScanResponse, with_values: bool) -> String {
    line(json!({
        "entries": entries(&response.entries, with_values),
        "next_cursor": to_base64(&response.next_cursor),
        "done": response.done,
    }))
}

fn node(node: &NodeStatus) -> Value {
    json!({
        "host_id": node.host_id,
        "grpc_addr": node.grpc_addr,
        "http_addr": node.http_addr,
        "zone": node.zone,
        "rack": node.rack,
        "state": node_state_name(node.state),
        "liveness": liveness_name(node.liveness),
        "ownership": node.ownership,
        "load_bytes": node.load_bytes,
        "pending_hints": node.pending_hints,
        "streaming_progress": node.streaming_progress,
        "waiting": node.waiting,
        "last_full_repair_ms": node.last_full_repair_ms,
        "vnodes": node.vnodes,
    })
}

/// `status`: `{"cluster_name","replication_factor","answered_by","nodes":[...]}`.
pub fn status(response: &ClusterStatusResponse) -> String {
    line(json!({
        "cluster_name": response.cluster_name,
        "replication_factor": response.replication_factor,
        "answered_by": response.answered_by,
        "nodes": response.nodes.iter().map(node).collect::<Vec<_>>(),
    }))
}

#[cfg(test)]
#[path = "json_tests.rs"]
mod tests;
