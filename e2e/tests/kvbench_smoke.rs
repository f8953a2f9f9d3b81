//! Smoke run of `kvbench` against one real `kvnode`: loads 200 records and
//! runs workload A for 300 operations with 4 client tasks over gRPC and over
//! HTTP, then checks that the JSON report parses and counts operations and
//! no errors. Keeps the benchmark working; it measures nothing (CI runs it;
//! no Redis needed).

use std::path::Path;
use std::process::Command;

use anyhow::{Context as _, Result, ensure};
use ringkv_e2e::{NodeOptions, NodeProcess, SyncMode};
use serde_json::Value;

const KVBENCH: &str = env!("CARGO_BIN_EXE_kvbench");

/// Runs `kvbench run` and returns the parsed JSON report.
fn kvbench(target: &str, endpoint: &str, json: &Path) -> Result<Value> {
    let output = Command::new(KVBENCH)
        .args(["run", "--target", target, "--endpoint", endpoint, "--workload", "a", "--load"])
        .args(["--records", "200", "--operations", "300", "--concurrency", "4", "--warmup", "20"])
        .args(["--no-progress", "--json"])
        .arg(json)
        .output()
        .context("running kvbench")?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    ensure!(output.status.success(), "kvbench {target} failed: {}\n{stdout}\n{stderr}", output.status);
    ensure!(stdout.contains("READ") && stdout.contains("UPDATE"), "table without READ/UPDATE rows:\n{stdout}");
    let text = std::fs::read_to_string(json).with_context(|| format!("reading {}", json.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing the report:\n{text}"))
}

/// Checks one report: the target, nonzero work, no errors, both phases.
fn check(report: &Value, target: &str) -> Result<()> {
    ensure!(report["target"]["name"] == target, "target: {}", report["target"]);
    ensure!(report["workload"]["name"] == "a", "workload: {}", report["workload"]);
    ensure!(report["machine"]["nproc"].as_u64().is_some_and(|n| n >= 1), "machine: {}", report["machine"]);
    let load = &report["load"];
    ensure!(load["operations"] == 200 && load["errors"] == 0, "load phase: {load}");
    let run = &report["run"];
    ensure!(run["errors"] == 0, "run errors: {}", run["error_samples"]);
    ensure!(run["operations"] == 300, "run operations: {}", run["operations"]);
    ensure!(run["throughput_ops_s"].as_f64().is_some_and(|t| t > 0.0), "throughput: {}", run["throughput_ops_s"]);
    let ops = run["ops"].as_array().context("run.ops is not an array")?;
    for name in ["READ", "UPDATE"] {
        let op = ops.iter().find(|o| o["op"] == name).with_context(|| format!("no {name} stats: {run}"))?;
        ensure!(op["count"].as_u64().is_some_and(|c| c > 0), "{name}: {op}");
        ensure!(op["p99_us"].as_u64() >= op["p50_us"].as_u64() && op["max_us"].as_u64() > Some(0), "{name}: {op}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kvbench_runs_workload_a_over_grpc_and_http() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let node = NodeProcess::start(NodeOptions::new(dir.path().join("data")).sync(SyncMode::Periodic)).await?;
    let grpc = node.grpc_addr().to_string();
    let http = node.http_base();
    let reports = tokio::task::spawn_blocking({
        let dir = dir.path().to_owned();
        move || -> Result<Vec<(String, Value)>> {
            let mut reports = Vec::new();
            for (target, endpoint) in [("ringkv-grpc", grpc.as_str()), ("ringkv-http", http.as_str())] {
                reports.push((target.to_owned(), kvbench(target, endpoint, &dir.join(format!("{target}.json")))?));
            }
            Ok(reports)
        }
    })
    .await??;
    for (target, report) in &reports {
        check(report, target).with_context(|| format!("{target} report"))?;
    }
    Ok(())
}
