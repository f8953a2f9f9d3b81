//! TTL end to end: a key written with a 1 s TTL (over gRPC, and with
//! `kvctl put --ttl 1`) is readable at once, then disappears from reads and
//! listings within a few seconds, while a key without TTL stays. A TTL of 0
//! is refused alike over gRPC, HTTP and RESP, and the HTTP TTL endpoint
//! takes `ttl`, the name PUT uses (`ttl_seconds` stays an alias).

use std::time::Duration;

use anyhow::{Context as _, Result, ensure};
use bytes::Bytes;
use ringkv_e2e::{NodeOptions, NodeProcess, grpc, kvctl, wait_until};
use ringkv_proto::v1::PutRequest;

/// Expiry must be visible within this long of a 1 s TTL.
const EXPIRY_DEADLINE: Duration = Duration::from_secs(6);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_with_ttl_expire() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let node = NodeProcess::start(NodeOptions::new(dir.path().join("data"))).await?;
    let mut kv = grpc::connect(&node.grpc_endpoint()).await?;
    let endpoint = node.grpc_addr();

    grpc::put(&mut kv, "ttl-forever", "stays", None).await?;
    grpc::put(&mut kv, "ttl-grpc", "short", Some(1)).await?;
    let put = kvctl(endpoint, &["put", "ttl-cli", "short-cli", "--ttl", "1"]).await?;
    ensure!(put.success(), "{put}");

    // Readable at once.
    ensure!(grpc::get_value(&mut kv, "ttl-grpc").await?.as_deref() == Some(&b"short"[..]));
    let get = kvctl(endpoint, &["get", "ttl-cli"]).await?;
    ensure!(get.success() && get.stdout == "short-cli\n", "{get}");
    let listed = grpc::list_keys(&mut kv, "ttl-").await?;
    ensure!(listed.contains(&"ttl-grpc".to_owned()), "fresh TTL key not listed: {listed:?}");
    let response = grpc::get(&mut kv, "ttl-grpc").await?;
    ensure!(
        response.ttl_remaining_ms.is_some_and(|ms| ms <= 1000),
        "ttl_remaining_ms = {:?}",
        response.ttl_remaining_ms
    );

    // Gone within the deadline, through both interfaces.
    wait_until(EXPIRY_DEADLINE, "ttl-grpc has expired", async || {
        matches!(grpc::get_value(&mut kv, "ttl-grpc").await, Ok(None))
    })
    .await?;
    wait_until(EXPIRY_DEADLINE, "kvctl get ttl-cli exits 1", async || {
        kvctl(endpoint, &["get", "ttl-cli"]).await.is_ok_and(|out| out.code == Some(1))
    })
    .await?;

    let listed = grpc::list_keys(&mut kv, "ttl-").await?;
    ensure!(listed == ["ttl-forever"], "after expiry, list ttl- = {listed:?}");
    let list = kvctl(endpoint, &["list", "ttl-"]).await?;
    ensure!(list.success(), "{list}");
    ensure!(!list.stdout.contains("ttl-grpc") && !list.stdout.contains("ttl-cli"), "{list}");
    ensure!(list.stdout.contains("ttl-forever"), "{list}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ttl_of_zero_is_refused_on_every_protocol() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let node =
        NodeProcess::start(NodeOptions::new(dir.path().join("data")).arg("--resp-addr").arg("127.0.0.1:0")).await?;
    let mut kv = grpc::connect(&node.grpc_endpoint()).await?;
    let put = PutRequest {
        key: Bytes::from_static(b"z-grpc"),
        value: Bytes::from_static(b"v"),
        ttl_seconds: Some(0),
        ..Default::default()
    };
    let status = kv.put(put).await.expect_err("gRPC put with ttl_seconds = 0 was accepted");
    ensure!(status.code() == tonic::Code::InvalidArgument, "gRPC ttl 0: {status:?}");
    ensure!(
        status.message().contains("[RKV-TTL-RANGE] ttl of 0 s is out of range; use 1 to"),
        "gRPC ttl 0: {status:?}"
    );
    let cli = kvctl(node.grpc_addr(), &["put", "z-cli", "v", "--ttl", "0"]).await?;
    ensure!(!cli.success() && cli.stderr.contains("RKV-TTL-RANGE"), "kvctl put --ttl 0: {cli}");

    let http = reqwest::Client::new();
    let base = node.http_base();
    let raw = http.put(format!("{base}/api/v1/keys/z-http?ttl=0")).body("v").send().await?;
    let json = http
        .put(format!("{base}/api/v1/keys/z-http"))
        .json(&serde_json::json!({ "value": "v", "ttl": 0 }))
        .send()
        .await?;
    for (what, response) in [("?ttl=0", raw), ("{\"ttl\": 0}", json)] {
        let status = response.status();
        let body: serde_json::Value = response.json().await?;
        ensure!(status == 400 && body["code"] == "RKV-TTL-RANGE", "HTTP PUT {what}: {status} {body}");
    }

    let resp = redis::Client::open(node.resp_url().context("no resp= address")?)?;
    let mut con = resp.get_multiplexed_async_connection().await?;
    let err = redis::cmd("SET").arg("z-resp").arg("v").arg("EX").arg(0).query_async::<()>(&mut con).await;
    let err = err.expect_err("RESP SET EX 0 was accepted");
    ensure!(err.to_string().contains("invalid expire time"), "RESP SET EX 0: {err}");

    for key in ["z-grpc", "z-cli", "z-http", "z-resp"] {
        ensure!(grpc::get_value(&mut kv, key).await?.is_none(), "{key} was written by a refused request");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ttl_endpoint_takes_the_ttl_name_put_uses() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let node = NodeProcess::start(NodeOptions::new(dir.path().join("data"))).await?;
    let mut kv = grpc::connect(&node.grpc_endpoint()).await?;
    grpc::put(&mut kv, "touched", "v", None).await?;
    let http = reqwest::Client::new();
    let url = format!("{}/api/v1/keys/touched/ttl", node.http_base());

    let touched = http.post(&url).json(&serde_json::json!({ "ttl": 120 })).send().await?;
    let status = touched.status();
    let body: serde_json::Value = touched.json().await?;
    ensure!(status == 200 && body["ttl"] == 120, "POST ttl {{\"ttl\": 120}}: {status} {body}");
    let remaining = grpc::get(&mut kv, "touched").await?.ttl_remaining_ms;
    ensure!(remaining.is_some_and(|ms| ms > 100_000 && ms <= 120_000), "ttl_remaining_ms = {remaining:?}");

    // The old name still works, and 0 clears the TTL as documented.
    let cleared = http.post(&url).json(&serde_json::json!({ "ttl_seconds": 0 })).send().await?;
    ensure!(cleared.status() == 200, "POST ttl {{\"ttl_seconds\": 0}}: {}", cleared.status());
    let remaining = grpc::get(&mut kv, "touched").await?.ttl_remaining_ms;
    ensure!(remaining.is_none(), "after clearing, ttl_remaining_ms = {remaining:?}");
    Ok(())
}
