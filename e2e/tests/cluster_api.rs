//! What a client sees of a three-node cluster through any one node.
//!
//! - A write forwarded to the key's replica keeps the error code that replica
//!   gave (`RKV-NOT-AN-INTEGER`, `RKV-OVERFLOW`, a CAS mismatch's 409) over
//!   gRPC and HTTP, instead of a generic `RKV-REMOTE`; the forwarded-writes
//!   metric proves the requests really were forwarded.
//! - HTTP `/admin/cluster/status` lists every member, as `kvctl status` does,
//!   and each member's load is its data, not the 64 MiB fjall pre-allocates
//!   for an empty journal.

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::{Context as _, Result, ensure};
use bytes::Bytes;
use ringkv_e2e::cluster::Cluster;
use ringkv_e2e::wait_until;
use ringkv_proto::v1::IncrementRequest;
use serde_json::{Value, json};

/// An empty node's load must stay far below fjall's 64 MiB journal pre-allocation.
const EMPTY_LOAD_LIMIT: u64 = 16 * 1024 * 1024;

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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn http_cluster_status_lists_every_member_with_its_real_load() -> Result<()> {
    let cluster = Cluster::test().nodes(3).start().await?;
    let members: BTreeSet<String> = (0..cluster.len()).map(|i| cluster.host_id(i)).collect();
    let http = reqwest::Client::new();
    for i in 0..cluster.len() {
        let url = format!("{}/api/v1/admin/cluster/status", cluster.node(i).http_base());
        let mut body = Value::Null;
        // Peers' load arrives by gossip: wait until this node has heard every
        // member's, and sees each ALIVE (a loaded CI machine may make one
        // SUSPECT for a moment).
        let heard = wait_until(Duration::from_secs(30), "every member is healthy and its load known", async || {
            body = match http.get(&url).send().await {
                Ok(response) => response.json().await.unwrap_or(Value::Null),
                Err(_) => Value::Null,
            };
            let nodes = body["nodes"].as_array().map(Vec::as_slice).unwrap_or_default();
            nodes.len() == members.len()
                && nodes.iter().all(|n| n["load_bytes"].as_u64().is_some_and(|b| b > 0) && n["status"] == "healthy")
        })
        .await;
        heard.with_context(|| format!("node {i}: {body}"))?;
        ensure!(body["answered_by"] == cluster.host_id(i), "node {i}: {body}");
        let nodes = body["nodes"].as_array().context("no nodes")?;
        let listed: BTreeSet<String> = nodes.iter().filter_map(|n| n["host_id"].as_str().map(str::to_owned)).collect();
        ensure!(listed == members, "node {i} lists {listed:?}, the cluster is {members:?}");
        for n in nodes {
            ensure!(n["liveness"] == "ALIVE" && n["state"] == "NORMAL" && n["status"] == "healthy", "node {i}: {n}");
            let load = n["load_bytes"].as_u64().unwrap_or(u64::MAX);
            ensure!(load < EMPTY_LOAD_LIMIT, "node {i} reports {load} bytes of load for an empty member: {n}");
            ensure!(n["disk_bytes"] == n["load_bytes"] && n["node_id"] == n["host_id"], "node {i}: {n}");
        }
    }
    // kvctl status (gRPC) agrees about the members and their load.
    let status = cluster.status(0).await?;
    ensure!(status.members.keys().cloned().collect::<BTreeSet<_>>() == members, "kvctl status: {status}");
    let json = cluster.status_json(0).await?;
    for n in json["nodes"].as_array().context("kvctl status: no nodes")? {
        let load = n["load_bytes"].as_u64().unwrap_or(u64::MAX);
        ensure!(load < EMPTY_LOAD_LIMIT, "kvctl status reports {load} bytes of load for an empty member: {n}");
    }
    Ok(())
}
