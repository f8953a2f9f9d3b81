//! HTTP smoke test: health and readiness answer 200, the key API round-trips
//! a value, and `/metrics` counts the requests it served and lists the
//! background workers' states.

use anyhow::{Result, ensure};
use ringkv_e2e::{NodeOptions, NodeProcess, grpc};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_keys_and_metrics() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let node = NodeProcess::start(NodeOptions::new(dir.path().join("data"))).await?;
    let http = reqwest::Client::new();
    let base = node.http_base();

    for path in ["/healthz", "/readyz"] {
        let status = http.get(format!("{base}{path}")).send().await?.status();
        ensure!(status == 200, "{path}: {status}");
    }

    let put = http
        .put(format!("{base}/api/v1/keys/smoke"))
        .json(&serde_json::json!({ "value": "hello", "ttl": 3600 }))
        .send()
        .await?;
    ensure!(put.status().is_success(), "PUT smoke: {}", put.status());
    let body: serde_json::Value = http.get(format!("{base}/api/v1/keys/smoke")).send().await?.json().await?;
    ensure!(body["value"] == "hello" && body["key"] == "smoke", "GET smoke: {body}");

    let mut kv = grpc::connect(&node.grpc_endpoint()).await?;
    ensure!(grpc::get_value(&mut kv, "smoke").await?.as_deref() == Some(&b"hello"[..]), "gRPC disagrees with HTTP");

    let missing = http.get(format!("{base}/api/v1/keys/no-such-key")).send().await?.status();
    ensure!(missing == 404, "GET of a missing key: {missing}");

    let metrics = http.get(format!("{base}/metrics")).send().await?.text().await?;
    ensure!(metrics.contains("ringkv_requests_total"), "/metrics lacks ringkv_requests_total:\n{metrics}");
    for worker in ["periodic-sync", "purge", "anti-entropy", "gossip", "hinted-handoff"] {
        for name in ["ringkv_worker_state", "ringkv_worker_errors_total"] {
            let series = format!("{name}{{worker=\"{worker}\"}} ");
            ensure!(metrics.lines().any(|l| l.starts_with(&series)), "/metrics lacks {series}:\n{metrics}");
        }
    }
    Ok(())
}
