//! Crash recovery: with `--sync always`, every write the node acknowledged
//! survives a SIGKILL in the middle of a write storm, and recovery invents
//! nothing (every key found was written, with exactly its value).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Result, bail, ensure};
use ringkv_e2e::node::killed_by_sigkill;
use ringkv_e2e::{NodeOptions, NodeProcess, SyncMode, grpc, wait_until};

const CLIENTS: usize = 8;
const ACKED_BEFORE_KILL: usize = 2000;
/// Writers stop by themselves after this many writes, so a kill that never
/// happens cannot make the test spin forever.
const MAX_WRITES_PER_CLIENT: usize = 100_000;

fn key(client: usize, seq: usize) -> String {
    format!("c{client}-{seq}")
}

fn value_of(key: &str) -> String {
    format!("v-{key}")
}

/// What one writer did: keys it sent (acked or not), keys acknowledged, and
/// whether it stopped on an error (the kill) rather than by running out.
#[derive(Debug, Default)]
struct WriterLog {
    attempted: Vec<String>,
    acked: Vec<String>,
    stopped_on_error: bool,
}

async fn writer(endpoint: String, client: usize, acked_total: Arc<AtomicUsize>) -> Result<WriterLog> {
    let mut kv = grpc::connect(&endpoint).await?;
    let mut log = WriterLog::default();
    for seq in 0..MAX_WRITES_PER_CLIENT {
        let key = key(client, seq);
        // Recorded before sending: a write that errors may still have landed.
        log.attempted.push(key.clone());
        match grpc::put(&mut kv, &key, &value_of(&key), None).await {
            Ok(()) => {
                log.acked.push(key);
                acked_total.fetch_add(1, Ordering::SeqCst);
            }
            Err(_) => {
                log.stopped_on_error = true;
                break;
            }
        }
    }
    Ok(log)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acked_writes_survive_sigkill() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let mut node = NodeProcess::start(NodeOptions::new(dir.path().join("data")).sync(SyncMode::Always)).await?;

    let acked_total = Arc::new(AtomicUsize::new(0));
    let writers: Vec<_> =
        (0..CLIENTS).map(|c| tokio::spawn(writer(node.grpc_endpoint(), c, acked_total.clone()))).collect();
    wait_until(Duration::from_secs(40), "2000 writes are acknowledged", async || {
        acked_total.load(Ordering::SeqCst) >= ACKED_BEFORE_KILL
    })
    .await?;

    let status = node.kill9()?;
    let acked_at_kill = acked_total.load(Ordering::SeqCst);
    ensure!(killed_by_sigkill(&status), "kvnode was not killed by SIGKILL: {status}");

    let mut attempted = BTreeSet::new();
    let mut acked = BTreeSet::new();
    for handle in writers {
        let log = handle.await??;
        ensure!(log.stopped_on_error, "a writer ran out of work before the kill: the kill came too late");
        attempted.extend(log.attempted);
        acked.extend(log.acked);
    }
    println!("killed with {acked_at_kill} acked; total acked {}, attempted {}", acked.len(), attempted.len());
    ensure!(acked.len() >= ACKED_BEFORE_KILL);

    node.restart().await?;
    let mut kv = grpc::connect(&node.grpc_endpoint()).await?;
    check_acked_present(&node.grpc_endpoint(), &acked).await?;
    check_nothing_invented(&mut kv, &attempted, &acked).await?;
    Ok(())
}

/// Every acknowledged key reads back with exactly its value (8 readers in parallel).
async fn check_acked_present(endpoint: &str, acked: &BTreeSet<String>) -> Result<()> {
    let keys: Vec<String> = acked.iter().cloned().collect();
    let mut readers = Vec::new();
    for chunk in keys.chunks(keys.len().div_ceil(CLIENTS).max(1)) {
        let (chunk, endpoint) = (chunk.to_vec(), endpoint.to_owned());
        readers.push(tokio::spawn(async move {
            let mut kv = grpc::connect(&endpoint).await?;
            let mut wrong = Vec::new();
            for key in chunk {
                let got = grpc::get_value(&mut kv, &key).await?;
                if got.as_deref() != Some(value_of(&key).as_bytes()) {
                    wrong.push((key, got));
                }
            }
            anyhow::Ok(wrong)
        }));
    }
    let mut wrong = Vec::new();
    for reader in readers {
        wrong.extend(reader.await??);
    }
    if !wrong.is_empty() {
        bail!("{} acked writes lost or wrong after restart, e.g. {:?}", wrong.len(), &wrong[..wrong.len().min(10)]);
    }
    Ok(())
}

/// A full scan finds only keys that were attempted, each with its value,
/// and finds every acked key.
async fn check_nothing_invented(
    kv: &mut ringkv_proto::v1::kv_client::KvClient<tonic::transport::Channel>,
    attempted: &BTreeSet<String>,
    acked: &BTreeSet<String>,
) -> Result<()> {
    let entries = grpc::scan_all(kv).await?;
    let mut found = BTreeMap::new();
    for entry in entries {
        let key = String::from_utf8_lossy(&entry.key).into_owned();
        ensure!(attempted.contains(&key), "scan found key {key:?} that was never written");
        ensure!(entry.value.as_ref() == value_of(&key).as_bytes(), "scan found {key:?} with value {:?}", entry.value);
        ensure!(found.insert(key.clone(), ()).is_none(), "scan returned {key:?} twice");
    }
    let missing: Vec<_> = acked.iter().filter(|k| !found.contains_key(*k)).take(10).collect();
    ensure!(missing.is_empty(), "scan misses acked keys, e.g. {missing:?}");
    println!("scan found {} keys ({} acked, {} attempted)", found.len(), acked.len(), attempted.len());
    Ok(())
}
