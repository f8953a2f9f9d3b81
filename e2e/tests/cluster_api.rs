//! What a client sees of a three-node cluster through any one node.
//!
//! - A write forwarded to the key's replica keeps the error code that replica
//!   gave (`RKV-NOT-AN-INTEGER`, `RKV-OVERFLOW`, a CAS mismatch's 409) over
//!   gRPC and HTTP, instead of a generic `RKV-REMOTE`; the forwarded-writes
//!   metric proves the requests really were forwarded.

use anyhow::{Context as _, Result, ensure};
use bytes::Bytes;
use ringkv_e2e::cluster::Cluster;
use ringkv_proto::v1::IncrementRequest;
use serde_json::{Value, json};

/// POSTs `body` to `path` on node `i`; the status and JSON body.
async fn post(cluster: &Cluster, i: usize, path: &str, body: Value) -> Result<(u16, Value)> {
    let url = format!("{}{path}", cluster.node(i).http_base());
    let response = reqwest::Client::new().post(&url).json(&body).send().await.with_context(|| url.clone())?;
    let status = response.status().as_u16();
    Ok((status, response.json().await.with_context(|| format!("{url}: body is not JSON"))?))
}

async fn grpc_increment(cluster: &Cluster, i: usize, key: &str) -> Result<tonic::Status> {
    let mut kv = ringkv_e2e::grpc::connect(&cluster.node(i).grpc_endpoint()).await?;
    let request = IncrementRequest { key: Bytes::copy_from_slice(key.as_bytes()), delta: 1, ..Default::default() };
    kv.increment(request).await.err().with_context(|| format!("node {i}: gRPC increment of {key:?} succeeded"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn forwarded_writes_keep_the_error_code_of_the_replica() -> Result<()> {
    // Increments and CAS are coordinated by the key's first live replica, so
    // two of the three nodes forward them.
    let cluster = Cluster::test().nodes(3).start().await?;
    let put = |key: &str, value: &str| {
        let url = format!("{}/api/v1/keys/{key}", cluster.node(0).http_base());
        let body = json!({ "value": value });
        async move { reqwest::Client::new().put(&url).json(&body).send().await?.error_for_status() }
    };
    put("word", "abc").await?;
    put("max", &i64::MAX.to_string()).await?;

    for i in 0..cluster.len() {
        let (status, body) = post(&cluster, i, "/api/v1/keys/word/incr", json!({ "delta": 1 })).await?;
        ensure!(status == 409 && body["code"] == "RKV-NOT-AN-INTEGER", "node {i}: incr of text: {status} {body}");
        let (status, body) = post(&cluster, i, "/api/v1/keys/max/incr", json!({ "delta": 1 })).await?;
        ensure!(status == 409 && body["code"] == "RKV-OVERFLOW", "node {i}: incr past i64::MAX: {status} {body}");
        let cas = json!({ "expected_value": "not-abc", "new_value": "x" });
        let (status, body) = post(&cluster, i, "/api/v1/keys/word/cas", cas).await?;
        ensure!(status == 409 && body["success"] == false, "node {i}: CAS mismatch: {status} {body}");
        let status = grpc_increment(&cluster, i, "word").await?;
        ensure!(status.code() == tonic::Code::FailedPrecondition, "node {i}: gRPC incr of text: {status:?}");
        ensure!(status.message().starts_with("[RKV-NOT-AN-INTEGER] "), "node {i}: gRPC incr of text: {status:?}");
        ensure!(!status.message().contains("RKV-REMOTE"), "node {i}: gRPC incr of text: {status:?}");
    }
    let mut forwarded = 0.0;
    for i in 0..cluster.len() {
        forwarded += cluster.metric_sum(i, "ringkv_forwarded_writes_total").await?;
    }
    // 2 nodes × (2 incr + 1 CAS + 1 gRPC incr) at least.
    ensure!(forwarded >= 8.0, "only {forwarded} writes were forwarded: the test did not exercise forwarding");
    Ok(())
}
