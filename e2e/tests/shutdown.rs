//! Graceful shutdown: with `--sync periodic` and a timer too slow to ever
//! fire during the test, SIGTERM still flushes and fsyncs every write, exits
//! 0 within the deadline, and a restart finds every write.

use std::time::Duration;

use anyhow::{Result, ensure};
use ringkv_e2e::{NodeOptions, NodeProcess, SyncMode, grpc};

const KEYS: usize = 200;
const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(15);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_flushes_and_exits_zero() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let options = NodeOptions::new(dir.path().join("data"))
        .sync(SyncMode::Periodic)
        .config_toml("[storage]\nsync_interval_ms = 600000\n");
    let mut node = NodeProcess::start(options).await?;
    let mut kv = grpc::connect(&node.grpc_endpoint()).await?;
    for i in 0..KEYS {
        grpc::put(&mut kv, &format!("sd-{i:04}"), &format!("value-{i}"), None).await?;
    }
    drop(kv);

    let status = node.terminate(SHUTDOWN_DEADLINE).await?;
    ensure!(status.success(), "SIGTERM exit status: {status}\n{}", node.stderr_tail(30));

    node.restart().await?;
    let mut kv = grpc::connect(&node.grpc_endpoint()).await?;
    for i in 0..KEYS {
        let key = format!("sd-{i:04}");
        let got = grpc::get_value(&mut kv, &key).await?;
        ensure!(got.as_deref() == Some(format!("value-{i}").as_bytes()), "{key} after graceful restart: {got:?}");
    }
    Ok(())
}
