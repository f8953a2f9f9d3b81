//! Journal damage after a crash: garbage behind the last record, garbage at
//! the end of the file, and a torn (truncated) last record. In every case
//! the node starts, keeps every acknowledged write (all but possibly the
//! torn one), and logs that it dropped a tail.

use std::time::Duration;

use anyhow::{Result, ensure};
use ringkv_e2e::journal::{self, JournalFile};
use ringkv_e2e::node::killed_by_sigkill;
use ringkv_e2e::{NodeOptions, NodeProcess, SyncMode, grpc};

const KEYS: usize = 40;

fn key(i: usize) -> String {
    format!("torn-{i:03}")
}

fn value_of(key: &str) -> String {
    format!("value-of-{key}")
}

/// Starts a node with `--sync always`, writes [`KEYS`] keys one after the
/// other (each acknowledged, so each is fsynced), SIGKILLs it and returns it
/// with its newest journal, having printed the data dir listing.
async fn write_then_crash(data_dir: &std::path::Path) -> Result<(NodeProcess, JournalFile)> {
    let mut node = NodeProcess::start(NodeOptions::new(data_dir).sync(SyncMode::Always)).await?;
    let mut kv = grpc::connect(&node.grpc_endpoint()).await?;
    for i in 0..KEYS {
        grpc::put(&mut kv, &key(i), &value_of(&key(i)), None).await?;
    }
    let status = node.kill9()?;
    ensure!(killed_by_sigkill(&status), "kvnode was not killed by SIGKILL: {status}");
    println!("data dir after the crash:\n{}", journal::listing(data_dir));
    let newest = journal::newest_journal(data_dir)?;
    println!("newest journal: {newest:?}");
    Ok((node, newest))
}

/// Restarts, checks that keys `0..must_survive` are intact and that the
/// node says it dropped a journal tail.
async fn restart_and_check(node: &mut NodeProcess, must_survive: usize) -> Result<()> {
    node.restart().await?;
    let mut kv = grpc::connect(&node.grpc_endpoint()).await?;
    let mut lost = Vec::new();
    for i in 0..KEYS {
        let got = grpc::get_value(&mut kv, &key(i)).await?;
        if got.is_none() {
            lost.push(key(i));
        }
        let expected = value_of(&key(i));
        if i < must_survive {
            ensure!(got.as_deref() == Some(expected.as_bytes()), "acked {} after restart: {got:?}", key(i));
        } else {
            ensure!(
                got.is_none() || got.as_deref() == Some(expected.as_bytes()),
                "torn write {} came back as {got:?}",
                key(i)
            );
        }
    }
    println!("lost after restart: {lost:?}");
    let log = node.stderr_log();
    for line in log.lines().filter(|l| l.contains("torn") || l.contains("dropped")) {
        println!("node log: {line}");
    }
    ensure!(
        log.contains("torn") || log.contains("dropped"),
        "node did not log a dropped/torn journal tail; log:\n{}",
        node.stderr_tail(40)
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_after_the_last_record_is_dropped() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let (mut node, newest) = write_then_crash(&data).await?;
    journal::write_garbage_after_records(&newest, &[0xEE; 97])?;
    restart_and_check(&mut node, KEYS).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_appended_to_the_file_is_dropped() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let (mut node, newest) = write_then_crash(&data).await?;
    journal::append_garbage(&newest, b"\xde\xad\xbe\xef not a journal record \xff\xff")?;
    restart_and_check(&mut node, KEYS).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn torn_last_record_loses_at_most_that_write() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let (mut node, newest) = write_then_crash(&data).await?;
    let new_len = journal::tear_last_record(&newest, 5)?;
    println!("tore {} to {new_len} bytes", newest.path.display());
    restart_and_check(&mut node, KEYS - 1).await?;
    // The node keeps working on the repaired journal.
    let mut kv = grpc::connect(&node.grpc_endpoint()).await?;
    grpc::put(&mut kv, "after-repair", "ok", None).await?;
    let status = node.terminate(Duration::from_secs(15)).await?;
    ensure!(status.success(), "graceful shutdown after repair: {status}");
    node.restart().await?;
    let mut kv = grpc::connect(&node.grpc_endpoint()).await?;
    ensure!(grpc::get_value(&mut kv, "after-repair").await?.as_deref() == Some(&b"ok"[..]));
    Ok(())
}
