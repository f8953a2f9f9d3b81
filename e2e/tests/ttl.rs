//! TTL end to end: a key written with a 1 s TTL (over gRPC, and with
//! `kvctl put --ttl 1`) is readable at once, then disappears from reads and
//! listings within a few seconds, while a key without TTL stays.

use std::time::Duration;

use anyhow::{Result, ensure};
use ringkv_e2e::{NodeOptions, NodeProcess, grpc, kvctl, wait_until};

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
