//! Anti-entropy repair with real processes: three nodes, replication factor 3.
//!
//! Every key is written at ALL. A first `kvctl repair` builds the Merkle
//! trees and finds nothing to do. Then, through the test hooks (nodes run
//! with `RINGKV_TEST_HOOKS=1`), node 1 loses the latest write of 1 % of the
//! keys (its older record is put back under the newer one) and loses a few
//! keys outright. `kvctl repair` on node 1 restores every one of them: its
//! local records equal node 0's again, reads at ONE through it return the
//! right values, its progress output is monotonic and ends done with no
//! failed range, it moved only a small part of the data, and it exits 0.
//! The summary lines (with MiB/s compared and transferred) are printed; a
//! `--full` repair (trees rebuilt from disk) is timed too.
//!
//! Size: 1000 keys of 200-byte values by default. For a throughput
//! measurement set `RINGKV_REPAIR_KEYS` and `RINGKV_REPAIR_VALUE_BYTES`, e.g.
//! `RINGKV_REPAIR_KEYS=20000 RINGKV_REPAIR_VALUE_BYTES=1024 cargo test -p ringkv-e2e --test repair -- --nocapture`.

use std::time::Instant;

use anyhow::{Context as _, Result, ensure};
use ringkv_e2e::cluster::Cluster;
use ringkv_e2e::{grpc, kvctl};
use ringkv_proto::cluster::v1::anti_entropy_test_hooks_client::AntiEntropyTestHooksClient;
use ringkv_proto::cluster::v1::{EncodedRecord, GetLocalRequest, PutLocalRequest};
use ringkv_proto::v1::ConsistencyLevel;
use serde_json::Value;
use tonic::transport::Channel;

/// Keys node 1 loses outright.
const LOST: usize = 5;
/// Requests in flight while loading and checking.
const PARALLEL: usize = 16;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn key(i: usize) -> String {
    format!("repair-key-{i:06}")
}

fn value(i: usize, generation: u32, size: usize) -> String {
    let head = format!("value-{generation}-of-{i}-");
    let pad = size.saturating_sub(head.len());
    format!("{head}{}", "x".repeat(pad))
}

/// Writes `keys` at ALL through node `via`, `PARALLEL` at a time.
async fn load(cluster: &Cluster, via: usize, keys: Vec<(String, String)>) -> Result<()> {
    let kv = grpc::connect(&cluster.node(via).grpc_endpoint()).await?;
    let chunks: Vec<Vec<(String, String)>> =
        keys.chunks(keys.len().div_ceil(PARALLEL).max(1)).map(<[_]>::to_vec).collect();
    let mut tasks = tokio::task::JoinSet::new();
    for chunk in chunks {
        let mut kv = kv.clone();
        tasks.spawn(async move {
            for (k, v) in chunk {
                grpc::put_at(&mut kv, &k, &v, ConsistencyLevel::All).await?;
            }
            anyhow::Ok(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.context("load task panicked")??;
    }
    Ok(())
}

/// Keys (by index) whose local record differs between nodes 0 and 1, or is missing on node 0.
async fn differing_locally(cluster: &Cluster, keys: usize) -> Result<Vec<usize>> {
    let (hooks0, hooks1) = (hooks(cluster, 0).await?, hooks(cluster, 1).await?);
    let mut tasks = tokio::task::JoinSet::new();
    for part in 0..PARALLEL {
        let (mut h0, mut h1) = (hooks0.clone(), hooks1.clone());
        tasks.spawn(async move {
            let mut wrong = Vec::new();
            for i in (part..keys).step_by(PARALLEL) {
                let (good, here) = (local_record(&mut h0, &key(i)).await?, local_record(&mut h1, &key(i)).await?);
                if good != here || good.is_none() {
                    wrong.push(i);
                }
            }
            anyhow::Ok(wrong)
        });
    }
    let mut wrong = Vec::new();
    while let Some(done) = tasks.join_next().await {
        wrong.extend(done.context("check task panicked")??);
    }
    wrong.sort_unstable();
    Ok(wrong)
}

async fn hooks(cluster: &Cluster, node: usize) -> Result<AntiEntropyTestHooksClient<Channel>> {
    let endpoint = cluster.node(node).grpc_endpoint();
    AntiEntropyTestHooksClient::connect(endpoint.clone()).await.with_context(|| format!("connect hooks {endpoint}"))
}

async fn local_record(client: &mut AntiEntropyTestHooksClient<Channel>, key: &str) -> Result<Option<EncodedRecord>> {
    let request = GetLocalRequest { keyspace: "default".into(), key: key.as_bytes().to_vec().into() };
    Ok(client.get_local(request).await.with_context(|| format!("GetLocal {key}"))?.into_inner().record)
}

async fn put_local(
    client: &mut AntiEntropyTestHooksClient<Channel>,
    key: &str,
    record: Option<EncodedRecord>,
) -> Result<()> {
    let request = PutLocalRequest { keyspace: "default".into(), key: key.as_bytes().to_vec().into(), record };
    client.put_local(request).await.with_context(|| format!("PutLocal {key}"))?;
    Ok(())
}

/// Runs `kvctl --json repair ARGS` on node `via`; checks the stream is sane and returns the final object.
async fn repair_json(cluster: &Cluster, via: usize, args: &[&str]) -> Result<Value> {
    let mut argv = vec!["--json", "--timeout", "30", "repair"];
    argv.extend_from_slice(args);
    let out = kvctl(cluster.node(via).grpc_addr(), &argv).await?;
    ensure!(out.success(), "repair failed: {out}");
    let lines: Vec<Value> =
        out.stdout.lines().map(serde_json::from_str).collect::<Result<_, _>>().with_context(|| format!("{out}"))?;
    let last = lines.last().cloned().with_context(|| format!("no progress at all: {out}"))?;
    let total = last["ranges_total"].as_u64().context("ranges_total")?;
    ensure!(total > 0 && last["done"] == true, "final progress is not done: {last}");
    ensure!(lines.len() as u64 == total + 1, "{} progress lines for {total} ranges: {out}", lines.len());
    let done: Vec<u64> = lines.iter().filter_map(|l| l["ranges_done"].as_u64()).collect();
    ensure!(done.windows(2).all(|w| w[0] <= w[1]) && done.last() == Some(&total), "ranges_done {done:?}");
    ensure!(last["ranges_failed"] == 0, "some range failed: {last}");
    ensure!(last["last_full_sync_ms"].as_i64().is_some_and(|t| t > 0), "no last full sync reported: {last}");
    Ok(last)
}

fn n(v: &Value, field: &str) -> u64 {
    v[field].as_u64().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kvctl_repair_restores_a_damaged_replica() -> Result<()> {
    let (keys, size) = (env_or("RINGKV_REPAIR_KEYS", 1000), env_or("RINGKV_REPAIR_VALUE_BYTES", 200));
    let stale = keys / 100;
    let started = Instant::now();
    let cluster = Cluster::test().nodes(3).rf(3).env("RINGKV_TEST_HOOKS", "1").start().await?;
    load(&cluster, 0, (0..keys).map(|i| (key(i), value(i, 1, size))).collect()).await?;
    println!("loaded {keys} keys of {size} bytes at ALL after {:?}", started.elapsed());
    let mut kv = grpc::connect(&cluster.node(0).grpc_endpoint()).await?;

    let first = repair_json(&cluster, 1, &[]).await?;
    ensure!(n(&first, "buckets_differing") == 0, "replicas written at ALL differ: {first}");
    println!("first repair (builds trees): {first}");

    // Node 1 loses the newest write of 1 % of the keys, and LOST keys outright.
    let mut hooks1 = hooks(&cluster, 1).await?;
    for i in 0..stale {
        let old = local_record(&mut hooks1, &key(i)).await?.context("node 1 lacks a key written at ALL")?;
        grpc::put_at(&mut kv, &key(i), &value(i, 2, size), ConsistencyLevel::All).await?;
        put_local(&mut hooks1, &key(i), Some(old)).await?;
    }
    for i in stale..stale + LOST {
        put_local(&mut hooks1, &key(i), None).await?;
    }
    let damaged = differing_locally(&cluster, keys).await?;
    ensure!(damaged == (0..stale + LOST).collect::<Vec<_>>(), "the damage did not take as planned: {damaged:?}");
    println!("damaged {} keys on node 1 after {:?}", stale + LOST, started.elapsed());

    let repaired = repair_json(&cluster, 1, &[]).await?;
    println!("repair of the damage: {repaired}");
    ensure!(n(&repaired, "buckets_differing") >= 1, "no differing bucket found: {repaired}");
    ensure!(n(&repaired, "keys_repaired") >= (stale + LOST) as u64, "too few keys repaired: {repaired}");
    ensure!(
        n(&repaired, "bytes_transferred") * 10 < n(&repaired, "bytes_compared"),
        "more than a tenth of the data travelled: {repaired}"
    );

    let wrong = differing_locally(&cluster, keys).await?;
    ensure!(
        wrong.is_empty(),
        "{} keys differ between nodes 0 and 1 after repair: {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(10)]
    );
    let mut kv1 = grpc::connect(&cluster.node(1).grpc_endpoint()).await?;
    for i in 0..stale + LOST {
        let expected = value(i, if i < stale { 2 } else { 1 }, size);
        let got = grpc::get_value_at(&mut kv1, &key(i), ConsistencyLevel::One).await?;
        ensure!(got.as_deref() == Some(expected.as_bytes()), "ONE read of {} through node 1: {got:?}", key(i));
    }

    let human = kvctl(cluster.node(1).grpc_addr(), &["--timeout", "30", "repair"]).await?;
    ensure!(human.success(), "human repair: {human}");
    ensure!(
        human.stdout.starts_with("repaired ") && human.stdout.contains("(0 failed)"),
        "unexpected summary: {human}"
    );
    println!("incremental trees: {}", human.stdout.trim());
    let full = kvctl(cluster.node(1).grpc_addr(), &["--timeout", "30", "repair", "--full"]).await?;
    ensure!(full.success() && full.stdout.contains("0 differing bucket(s)"), "full repair: {full}");
    println!("full (trees rebuilt from disk): {}", full.stdout.trim());
    println!("done after {:?}", started.elapsed());
    Ok(())
}
