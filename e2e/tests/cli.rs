//! `kvctl` end to end against a real node: put/get/del, not-found exit code,
//! counters, prefix listing, `--json`, and agreement with the HTTP API.

use anyhow::{Context as _, Result, ensure};
use ringkv_e2e::{NodeOptions, NodeProcess, kvctl};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kvctl_commands() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let node = NodeProcess::start(NodeOptions::new(dir.path().join("data"))).await?;
    let ep = node.grpc_addr();

    let put = kvctl(ep, &["put", "k", "v"]).await?;
    ensure!(put.success(), "{put}");
    let get = kvctl(ep, &["get", "k"]).await?;
    ensure!(get.success() && get.stdout == "v\n", "{get}");

    // The same key over HTTP.
    let url = format!("{}/api/v1/keys/k", node.http_base());
    let response = reqwest::get(&url).await?;
    ensure!(response.status() == 200, "GET {url}: {}", response.status());
    let body: serde_json::Value = response.json().await.context("HTTP GET body is not JSON")?;
    ensure!(body["value"] == "v", "GET {url}: {body}");
    ensure!(body["key"] == "k", "GET {url}: {body}");

    let missing = kvctl(ep, &["get", "missing"]).await?;
    ensure!(missing.code == Some(1), "{missing}");
    ensure!(missing.stderr.to_lowercase().contains("not found"), "{missing}");

    let del = kvctl(ep, &["del", "k"]).await?;
    ensure!(del.success(), "{del}");
    let gone = kvctl(ep, &["get", "k"]).await?;
    ensure!(gone.code == Some(1), "get after del: {gone}");

    let first = kvctl(ep, &["incr", "counter"]).await?;
    ensure!(first.success() && first.stdout.trim() == "1", "{first}");
    let second = kvctl(ep, &["incr", "counter"]).await?;
    ensure!(second.success() && second.stdout.trim() == "2", "{second}");

    for key in ["user:1", "user:2", "other"] {
        let put = kvctl(ep, &["put", key, "x"]).await?;
        ensure!(put.success(), "{put}");
    }
    let list = kvctl(ep, &["list", "user:"]).await?;
    ensure!(list.success(), "{list}");
    let listed: Vec<&str> = list.stdout.lines().collect();
    ensure!(listed == ["user:1", "user:2"], "{list}");

    let json_get = kvctl(ep, &["--json", "get", "user:1"]).await?;
    ensure!(json_get.success(), "{json_get}");
    let parsed: serde_json::Value = serde_json::from_str(json_get.stdout.trim()).context(json_get.to_string())?;
    ensure!(parsed["value"] == "x" || parsed.to_string().contains("\"x\""), "{json_get}");

    let json_list = kvctl(ep, &["--json", "list", "user:"]).await?;
    ensure!(json_list.success(), "{json_list}");
    for line in json_list.stdout.lines().filter(|l| !l.trim().is_empty()) {
        serde_json::from_str::<serde_json::Value>(line).with_context(|| format!("not JSON: {line:?}\n{json_list}"))?;
    }
    ensure!(json_list.stdout.contains("user:1") && json_list.stdout.contains("user:2"), "{json_list}");
    Ok(())
}
