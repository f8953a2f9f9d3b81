//! Bad input is refused with the documented status and a useful message,
//! over gRPC (INVALID_ARGUMENT naming the limit) and HTTP (413 for oversized
//! keys/values, 400 with a JSON `{"error","code"}` body for the rest), and
//! none of it hurts the node or its data. Error codes (`RKV-…`) are the
//! stable, documented ones of `node/src/server/status.rs`.

use anyhow::{Context as _, Result, ensure};
use bytes::Bytes;
use ringkv_e2e::{NodeOptions, NodeProcess, grpc};
use ringkv_proto::v1::{GetRequest, PutRequest};
use tonic::Code;

const MAX_KEY: usize = 1024;
const MAX_VALUE: usize = 1024 * 1024;
/// One second more than the default `server.max_ttl_seconds` (20 years).
const TTL_TOO_LONG: u64 = 20 * 365 * 24 * 3600 + 1;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_and_harmless() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let node = NodeProcess::start(NodeOptions::new(dir.path().join("data"))).await?;
    let mut kv = grpc::connect(&node.grpc_endpoint()).await?;
    grpc::put(&mut kv, "keep", "intact", None).await?;

    grpc_refusals(&node).await?;
    http_refusals(&node).await?;

    let health = reqwest::get(format!("{}/healthz", node.http_base())).await?;
    ensure!(health.status() == 200, "/healthz after bad input: {}", health.status());
    ensure!(grpc::get_value(&mut kv, "keep").await?.as_deref() == Some(&b"intact"[..]), "earlier data lost");
    let body: serde_json::Value = reqwest::get(format!("{}/api/v1/keys/keep", node.http_base())).await?.json().await?;
    ensure!(body["value"] == "intact", "HTTP GET keep: {body}");
    Ok(())
}

fn put_request(key: Vec<u8>, value: Vec<u8>) -> PutRequest {
    PutRequest { key: Bytes::from(key), value: Bytes::from(value), ..Default::default() }
}

/// Expects `result` to be INVALID_ARGUMENT whose message contains `needle`.
fn expect_invalid<T: std::fmt::Debug>(what: &str, result: Result<T, tonic::Status>, needle: &str) -> Result<()> {
    match result {
        Err(status) => {
            ensure!(status.code() == Code::InvalidArgument, "{what}: expected INVALID_ARGUMENT, got {status:?}");
            ensure!(status.message().contains(needle), "{what}: message lacks {needle:?}: {:?}", status.message());
            Ok(())
        }
        Ok(ok) => anyhow::bail!("{what}: accepted: {ok:?}"),
    }
}

async fn grpc_refusals(node: &NodeProcess) -> Result<()> {
    let mut kv = grpc::connect(&node.grpc_endpoint()).await?;
    let r = kv.put(put_request(vec![b'k'; MAX_KEY + 1], b"v".to_vec())).await;
    expect_invalid("1025-byte key", r, "1024")?;
    let r = kv.put(put_request(b"big".to_vec(), vec![b'v'; MAX_VALUE + 1])).await;
    expect_invalid("1 MiB + 1 value", r, "1048576")?;
    let r = kv.put(put_request(Vec::new(), b"v".to_vec())).await;
    expect_invalid("empty key", r, "RKV-EMPTY-KEY")?;
    let r = kv.get(GetRequest { key: Bytes::new(), ..Default::default() }).await;
    expect_invalid("get of an empty key", r, "RKV-EMPTY-KEY")?;
    let r =
        kv.put(PutRequest { keyspace: "no-such-keyspace".into(), ..put_request(b"k".to_vec(), b"v".to_vec()) }).await;
    expect_invalid("unknown keyspace", r, "no-such-keyspace")?;
    let r = kv.put(PutRequest { ttl_seconds: Some(TTL_TOO_LONG), ..put_request(b"k".to_vec(), b"v".to_vec()) }).await;
    expect_invalid("TTL out of range", r, "RKV-TTL-RANGE")?;
    // Exactly at the limits is fine.
    kv.put(put_request(vec![b'k'; MAX_KEY], vec![b'v'; MAX_VALUE])).await.context("put at the limits")?;
    Ok(())
}

/// Checks an HTTP error: its status, and a JSON `{"error", "code"}` body
/// with this stable code whose message contains `needle`.
async fn expect_http_error(
    what: &str,
    response: reqwest::Response,
    status: u16,
    code: &str,
    needle: &str,
) -> Result<()> {
    let got = response.status();
    let text = response.text().await?;
    ensure!(got.as_u16() == status, "{what}: expected {status}, got {got}: {text}");
    let body: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{what}: error body is not JSON: {text:?}"))?;
    let message = body["error"].as_str().unwrap_or_default();
    ensure!(body["code"] == code, "{what}: expected code {code}: {body}");
    ensure!(message.contains(needle), "{what}: error message lacks {needle:?}: {body}");
    Ok(())
}

async fn http_refusals(node: &NodeProcess) -> Result<()> {
    let http = reqwest::Client::new();
    let keys = format!("{}/api/v1/keys", node.http_base());
    let value = |v: &str| serde_json::json!({ "value": v });

    let long_key = "k".repeat(MAX_KEY + 1);
    let r = http.put(format!("{keys}/{long_key}")).json(&value("v")).send().await?;
    expect_http_error("HTTP 1025-byte key", r, 413, "RKV-KEY-TOO-LARGE", "1024").await?;
    let r = http.put(format!("{keys}/big")).json(&value(&"v".repeat(MAX_VALUE + 1))).send().await?;
    expect_http_error("HTTP 1 MiB + 1 value", r, 413, "RKV-VALUE-TOO-LARGE", "1048576").await?;

    let r = http.put(format!("{keys}/")).json(&value("v")).send().await?;
    expect_http_error("HTTP empty key", r, 400, "RKV-EMPTY-KEY", "").await?;

    let r = http.put(format!("{keys}/k?keyspace=no-such-keyspace")).json(&value("v")).send().await?;
    expect_http_error("HTTP unknown keyspace", r, 400, "RKV-UNKNOWN-KEYSPACE", "no-such-keyspace").await?;

    let r = http
        .put(format!("{keys}/k"))
        .header("content-type", "application/json")
        .body("{\"value\": \"unterminated")
        .send()
        .await?;
    expect_http_error("HTTP malformed JSON", r, 400, "RKV-BAD-JSON", "").await?;

    let r =
        http.put(format!("{keys}/k")).json(&serde_json::json!({ "value": "v", "ttl": TTL_TOO_LONG })).send().await?;
    expect_http_error("HTTP TTL out of range", r, 400, "RKV-TTL-RANGE", "").await?;

    let r = http.get(format!("{keys}/keep")).header("Consistency-Level", "EVENTUAL").send().await?;
    expect_http_error("HTTP Consistency-Level: EVENTUAL", r, 400, "RKV-UNKNOWN-CONSISTENCY", "EVENTUAL").await?;
    Ok(())
}
