//! `kvnode dev --nodes 3`: the local cluster a developer starts by hand.
//!
//! It announces every node and then `RingKV dev cluster:`; its nodes form one
//! cluster (a value written through node 0 is read at QUORUM through node 2,
//! `kvctl status` lists three nodes); SIGINT stops it within a deadline and
//! leaves no `kvnode` child behind.
//!
//! `kvnode dev` takes fixed base ports, so the test picks a random range in
//! which every port is free right now, and tries another range if the dev
//! cluster cannot start (another process may have taken a port meanwhile).

use std::collections::hash_map::RandomState;
use std::fs::File;
use std::hash::BuildHasher as _;
use std::io::{BufRead as _, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail, ensure};
use ringkv_e2e::binaries::binaries;
use ringkv_e2e::cluster::StatusView;
use ringkv_e2e::node::ReadyLine;
use ringkv_e2e::{kvctl, wait_until};

const NODES: u16 = 3;
/// How long `kvnode dev` may take to announce its cluster.
const START_TIMEOUT: Duration = Duration::from_secs(40);
/// How long the nodes may take to see each other alive.
const CONVERGE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long `kvnode dev` may take to stop after SIGINT.
const STOP_TIMEOUT: Duration = Duration::from_secs(20);
const ATTEMPTS: usize = 4;
const CLUSTER_LINE: &str = "RingKV dev cluster:";

/// A running `kvnode dev` and the nodes it announced. Dropping it SIGKILLs
/// the dev process and its nodes (by pid), so a failing test leaks nothing.
#[derive(Debug)]
struct DevCluster {
    child: Child,
    nodes: Vec<ReadyLine>,
    node_pids: Vec<u32>,
    stderr_path: std::path::PathBuf,
}

impl Drop for DevCluster {
    fn drop(&mut self) {
        for pid in &self.node_pids {
            if is_kvnode(*pid) {
                let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("kvnode dev stderr:\n{}", std::fs::read_to_string(&self.stderr_path).unwrap_or_default());
        }
    }
}

/// A random base port such that `base..base + 2 * NODES` are all free now:
/// the gRPC ports, then the HTTP ports.
fn free_port_range() -> Result<u16> {
    for _ in 0..100 {
        let random = RandomState::new().hash_one(Instant::now());
        let base = 20_000 + u16::try_from(random % 40_000).unwrap_or(0);
        let free =
            (base..base + 2 * NODES).all(|port| TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port))).is_ok());
        if free {
            return Ok(base);
        }
    }
    bail!("no free range of {} ports found", 2 * NODES)
}

/// Pids of the processes whose parent is `parent` (Linux `/proc`).
fn children_of(parent: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            // `pid (comm) state ppid …`; comm may hold spaces, so split after the last ')'.
            let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
            after.split_whitespace().nth(1).and_then(|p| p.parse::<u32>().ok()) == Some(parent)
        })
        .collect()
}

/// True while `pid` is a live (not zombie) `kvnode` process.
fn is_kvnode(pid: u32) -> bool {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let zombie = stat.rsplit_once(')').is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'));
    !zombie && String::from_utf8_lossy(&cmdline).contains("kvnode")
}

/// Starts `kvnode dev` on the given bases and waits for its cluster line.
fn start_dev(root: &Path, grpc_base: u16, http_base: u16, attempt: usize) -> Result<DevCluster> {
    let data_dir = root.join(format!("dev-{attempt}"));
    let stderr_path = root.join(format!("dev-{attempt}.stderr.log"));
    let stderr = File::create(&stderr_path)?;
    let mut cmd = Command::new(&binaries()?.kvnode);
    cmd.arg("dev")
        .args(["--nodes", &NODES.to_string(), "--data-dir"])
        .arg(&data_dir)
        .args(["--grpc-base-port", &grpc_base.to_string(), "--http-base-port", &http_base.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr);
    let mut child = cmd.spawn().with_context(|| format!("spawn {cmd:?}"))?;
    let stdout = child.stdout.take().context("dev stdout not piped")?;
    let (tx, rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut dev = DevCluster { child, nodes: Vec::new(), node_pids: Vec::new(), stderr_path };
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        let line = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())).with_context(|| {
            format!("no {CLUSTER_LINE:?} line within {START_TIMEOUT:?}; nodes seen: {:?}", dev.nodes)
        })?;
        if line.starts_with(CLUSTER_LINE) {
            break;
        }
        if let Some((_, rest)) = line.split_once(": ").filter(|(head, _)| head.starts_with("node "))
            && let Some(ready) = ReadyLine::parse(&format!("RINGKV_READY {rest}"))
        {
            dev.nodes.push(ready);
        }
    }
    dev.node_pids = children_of(dev.child.id());
    Ok(dev)
}

/// Starts `kvnode dev`, on another random port range if a start fails.
fn start_dev_on_free_ports(root: &Path) -> Result<DevCluster> {
    let mut errors = Vec::new();
    for attempt in 0..ATTEMPTS {
        let grpc_base = free_port_range()?;
        let http_base = grpc_base + NODES;
        match start_dev(root, grpc_base, http_base, attempt) {
            Ok(dev) => return Ok(dev),
            Err(e) => errors.push(format!("ports {grpc_base}/{http_base}: {e:#}")),
        }
    }
    bail!("kvnode dev did not start in {ATTEMPTS} attempts:\n{}", errors.join("\n"))
}

/// Waits until every node's status lists `NODES` members, all ALIVE.
async fn wait_converged(dev: &DevCluster) -> Result<()> {
    let mut last = Vec::new();
    let waited = wait_until(CONVERGE_TIMEOUT, "every dev node sees 3 members ALIVE", async || {
        last.clear();
        let mut all = true;
        for node in &dev.nodes {
            let view = match kvctl(node.grpc, &["--json", "status"]).await {
                Ok(out) if out.success() => StatusView::parse(&out.stdout).map_err(|e| format!("{e:#}")),
                Ok(out) => Err(out.to_string()),
                Err(e) => Err(format!("{e:#}")),
            };
            match view {
                Ok(view) => {
                    all &= view.members.len() == usize::from(NODES)
                        && view.members.values().all(|m| m.liveness == "ALIVE");
                    last.push(view.to_string());
                }
                Err(e) => {
                    all = false;
                    last.push(e);
                }
            }
        }
        all
    })
    .await;
    waited.with_context(|| format!("last seen:\n{}", last.join("\n")))
}

/// SIGINTs the dev process and waits for it to exit.
async fn interrupt(dev: &mut DevCluster) -> Result<ExitStatus> {
    let pid = dev.child.id().to_string();
    let sent = Command::new("kill").args(["-INT", &pid]).status().context("run kill -INT")?;
    ensure!(sent.success(), "kill -INT {pid} failed: {sent}");
    let mut status = None;
    wait_until(STOP_TIMEOUT, "kvnode dev exits after SIGINT", async || {
        status = dev.child.try_wait().ok().flatten();
        status.is_some()
    })
    .await?;
    status.context("no exit status")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_cluster_serves_and_stops_on_sigint() -> Result<()> {
    let started = Instant::now();
    let dir = tempfile::tempdir()?;
    let mut dev = start_dev_on_free_ports(dir.path())?;
    ensure!(dev.nodes.len() == usize::from(NODES), "kvnode dev announced {:?}", dev.nodes);
    let pids = dev.node_pids.clone();
    ensure!(pids.len() == usize::from(NODES), "kvnode dev has children {pids:?}, expected {NODES} kvnode processes");
    ensure!(pids.iter().all(|&pid| is_kvnode(pid)), "children {pids:?} are not all running kvnode");
    wait_converged(&dev).await?;
    println!("dev cluster converged after {:?}", started.elapsed());

    let (first, last) = (dev.nodes[0].grpc, dev.nodes[2].grpc);
    let put = kvctl(first, &["put", "k", "v"]).await?;
    ensure!(put.success(), "{put}");
    let get = kvctl(last, &["--consistency", "QUORUM", "get", "k"]).await?;
    ensure!(get.success() && get.stdout == "v\n", "{get}");
    let status = kvctl(first, &["--json", "status"]).await?;
    ensure!(status.success(), "{status}");
    let view = StatusView::parse(&status.stdout)?;
    ensure!(view.members.len() == usize::from(NODES), "status does not list 3 nodes: {view}");

    let exit = interrupt(&mut dev).await?;
    ensure!(exit.success(), "kvnode dev exited with {exit} after SIGINT");
    wait_until(STOP_TIMEOUT, "every kvnode child of kvnode dev is gone", async || {
        pids.iter().all(|&pid| !is_kvnode(pid))
    })
    .await
    .with_context(|| format!("still running: {:?}", pids.iter().filter(|&&p| is_kvnode(p)).collect::<Vec<_>>()))?;
    println!("dev cluster stopped after {:?}", started.elapsed());
    Ok(())
}

/// Pids of live `kvnode` processes whose command line names `data_dir`
/// (found through `/proc`, so orphans reparented to init count too).
fn kvnodes_using(data_dir: &Path) -> Vec<u32> {
    let needle = data_dir.to_string_lossy().into_owned();
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            is_kvnode(pid) && String::from_utf8_lossy(&cmdline).contains(&needle)
        })
        .collect()
}

/// SIGTERM while the nodes are still starting (right after the first node
/// is announced, long before the cluster can form) stops the nodes already
/// running instead of orphaning them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_startup_leaves_no_node_behind() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let data_dir = dir.path().join("dev");
    let stderr_path = dir.path().join("dev.stderr.log");
    let base = free_port_range()?;
    let mut cmd = Command::new(&binaries()?.kvnode);
    cmd.arg("dev")
        .args(["--nodes", &NODES.to_string(), "--data-dir"])
        .arg(&data_dir)
        .args(["--grpc-base-port", &base.to_string(), "--http-base-port", &(base + NODES).to_string()])
        // No RESP listeners: the other test's dev cluster holds the default RESP ports.
        .args(["--resp-base-port", "0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(File::create(&stderr_path)?);
    let mut child = cmd.spawn().with_context(|| format!("spawn {cmd:?}"))?;
    let stdout = child.stdout.take().context("dev stdout not piped")?;
    let mut lines = BufReader::new(stdout).lines();
    let Some(first) = lines.next() else {
        bail!("kvnode dev printed nothing:\n{}", std::fs::read_to_string(&stderr_path).unwrap_or_default());
    };
    let first = first?;
    ensure!(first.starts_with("node 0: "), "first line {first:?}");
    let sent = Command::new("kill").args(["-TERM", &child.id().to_string()]).status()?;
    ensure!(sent.success(), "kill -TERM failed: {sent}");
    let mut status = None;
    wait_until(STOP_TIMEOUT, "kvnode dev exits after SIGTERM", async || {
        status = child.try_wait().ok().flatten();
        status.is_some()
    })
    .await?;
    let stderr = std::fs::read_to_string(&stderr_path)?;
    ensure!(stderr.contains("stopped while the cluster was starting"), "the signal landed after startup:\n{stderr}");
    ensure!(status.is_some_and(|s| s.success()), "kvnode dev exited with {status:?}:\n{stderr}");
    let mut left = Vec::new();
    let gone = wait_until(STOP_TIMEOUT, "no kvnode of this dev cluster is left", async || {
        left = kvnodes_using(&data_dir);
        left.is_empty()
    })
    .await;
    if gone.is_err() {
        for pid in &left {
            let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
        }
    }
    gone.with_context(|| format!("orphaned nodes: {left:?}"))
}
