//! A full disk: writes are refused with a clear "disk full" error (gRPC
//! RESOURCE_EXHAUSTED / HTTP 507), reads keep working, nothing acknowledged is
//! lost, and after space is freed a restart recovers every acknowledged write.
//!
//! Needs root (it mounts a small tmpfs), so it is opt-in:
//! `cargo test -p ringkv-e2e --test disk_full -- --ignored`.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, ensure};
use ringkv_e2e::{NodeOptions, NodeProcess, SyncMode, grpc};

/// Unmounts the tmpfs when the test ends, whatever happens.
struct Mount<'a>(&'a Path);

impl Drop for Mount<'_> {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.0).status();
    }
}

fn mount_tmpfs(dir: &Path, size: &str) -> Result<()> {
    let status =
        Command::new("mount").args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"]).arg(dir).status()?;
    ensure!(status.success(), "mounting a tmpfs needs root: {status}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root to mount a tmpfs; run with --ignored"]
async fn full_disk_refuses_writes_clearly_and_loses_nothing() -> Result<()> {
    let dir = tempfile::tempdir()?;
    mount_tmpfs(dir.path(), "100m")?;
    let _mount = Mount(dir.path());
    let mut node = NodeProcess::start(NodeOptions::new(dir.path().join("data")).sync(SyncMode::Always)).await?;
    let mut kv = grpc::connect(&node.grpc_endpoint()).await?;
    let value: String = "x".repeat(1_000_000);
    let mut acked = Vec::new();
    let mut refusal = None;
    for i in 0..400 {
        let key = format!("big-{i:03}");
        match grpc::put(&mut kv, &key, &value, None).await {
            Ok(()) => acked.push(key),
            Err(e) => {
                refusal = Some(format!("{e:#}"));
                break;
            }
        }
    }
    let refusal = refusal.context("the 100 MB volume never filled up: the fault did not fire")?;
    ensure!(refusal.contains("disk full") || refusal.contains("RKV-DISK-FULL"), "unclear refusal: {refusal}");
    ensure!(!acked.is_empty(), "nothing was written before the disk filled");
    let first = grpc::get_value(&mut kv, &acked[0]).await?;
    ensure!(first.as_deref() == Some(value.as_bytes()), "reads must keep working on a full disk");
    let http = reqwest::Client::new()
        .put(format!("{}/api/v1/keys/after-full", node.http_base()))
        .header("content-type", "application/json")
        .body(r#"{"value":"v"}"#)
        .send()
        .await?;
    ensure!(http.status().as_u16() == 507, "HTTP on a full disk: {}", http.status());

    node.kill9()?;
    let status = Command::new("mount").args(["-o", "remount,size=400m"]).arg(dir.path()).status()?;
    ensure!(status.success(), "cannot grow the tmpfs: {status}");
    node.restart().await?;
    let mut kv = grpc::connect(&node.grpc_endpoint()).await?;
    for key in &acked {
        let got = grpc::get_value(&mut kv, key).await?;
        ensure!(got.as_deref() == Some(value.as_bytes()), "{key} lost after the disk filled");
    }
    Ok(())
}
