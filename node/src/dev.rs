//! `kvnode dev`: a local cluster of separate `kvnode serve` processes.
//!
//! Node i listens on gRPC 127.0.0.1:(7100+i), HTTP 127.0.0.1:(7180+i) and RESP
//! (Redis protocol) 127.0.0.1:(7379+i), with
//! data under `DIR/node-i`; every node gets the others as seeds. Ctrl-C (or
//! SIGTERM) stops every node gracefully (SIGTERM each, wait), then exits.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// Arguments of `kvnode dev`.
#[derive(Debug, clap::Args)]
pub struct DevArgs {
    /// Number of nodes.
    #[arg(long, default_value_t = 3)]
    nodes: u16,
    /// Folder holding every node's data.
    #[arg(long, default_value = "./data/dev")]
    data_dir: PathBuf,
    /// Replicas per key [default: min(3, nodes)].
    #[arg(long)]
    replication_factor: Option<u32>,
    /// First gRPC port; node i uses base+i.
    #[arg(long, default_value_t = 7100)]
    grpc_base_port: u16,
    /// First HTTP port; node i uses base+i.
    #[arg(long, default_value_t = 7180)]
    http_base_port: u16,
    /// First RESP (Redis protocol) port; node i uses base+i (0: no RESP listener).
    #[arg(long, default_value_t = 7379)]
    resp_base_port: u16,
    /// Durability of every node: always, periodic or none.
    #[arg(long, default_value = "periodic")]
    sync: String,
}

fn spawn_node(args: &DevArgs, i: u16, rf: u32) -> anyhow::Result<Child> {
    let exe = std::env::current_exe().context("cannot find the kvnode executable")?;
    let seeds: Vec<String> =
        (0..args.nodes).filter(|j| *j != i).map(|j| format!("127.0.0.1:{}", args.grpc_base_port + j)).collect();
    let mut cmd = Command::new(exe);
    cmd.arg("serve")
        .arg("--data-dir")
        .arg(args.data_dir.join(format!("node-{i}")))
        .arg("--grpc-addr")
        .arg(format!("127.0.0.1:{}", args.grpc_base_port + i))
        .arg("--http-addr")
        .arg(format!("127.0.0.1:{}", args.http_base_port + i))
        .arg("--replication-factor")
        .arg(rf.to_string())
        .arg("--sync")
        .arg(&args.sync)
        .stdout(Stdio::piped())
        .kill_on_drop(true);
    if args.resp_base_port != 0 {
        cmd.arg("--resp-addr").arg(format!("127.0.0.1:{}", args.resp_base_port + i));
    }
    if !seeds.is_empty() {
        cmd.arg("--seeds").arg(seeds.join(","));
    }
    cmd.spawn().with_context(|| format!("cannot start node {i}"))
}

/// Starts the nodes, prints their endpoints, and stops them all on Ctrl-C.
/// The signal handlers come first: a Ctrl-C or SIGTERM while the nodes are
/// still starting stops the ones already running instead of orphaning them.
pub async fn run(args: DevArgs) -> anyhow::Result<()> {
    if args.nodes == 0 {
        bail!("--nodes must be at least 1");
    }
    let rf = args.replication_factor.unwrap_or_else(|| u32::from(args.nodes.min(3)));
    if rf == 0 || rf > u32::from(args.nodes) {
        bail!("--replication-factor {rf} must be between 1 and the number of nodes ({})", args.nodes);
    }
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("cannot create data directory {}", args.data_dir.display()))?;
    let mut stop = StopSignal::install()?;
    let mut children = Vec::new();
    let started = tokio::select! {
        started = start_cluster(&args, rf, &mut children) => Some(started),
        () = stop.recv() => None,
    };
    let result = match started {
        Some(Ok(())) => {
            println!(
                "RingKV dev cluster: {} nodes, replication factor {rf}, data in {}. \
                 Try: kvctl --endpoint 127.0.0.1:{} status. Ctrl-C stops every node.",
                args.nodes,
                args.data_dir.display(),
                args.grpc_base_port
            );
            stop.recv().await;
            Ok(())
        }
        Some(Err(e)) => Err(e),
        None => {
            eprintln!("stopped while the cluster was starting");
            Ok(())
        }
    };
    stop_all(children).await;
    result
}

/// Spawns every node (pushing each into `children` as soon as it runs),
/// prints its endpoints, then waits until the cluster has formed.
async fn start_cluster(args: &DevArgs, rf: u32, children: &mut Vec<Child>) -> anyhow::Result<()> {
    for i in 0..args.nodes {
        let mut child = spawn_node(args, i, rf)?;
        let stdout = child.stdout.take().context("node stdout is not captured")?;
        children.push(child);
        let mut lines = BufReader::new(stdout).lines();
        let ready = tokio::time::timeout(Duration::from_secs(60), async {
            while let Some(line) = lines.next_line().await? {
                if line.starts_with("RINGKV_READY") {
                    return Ok::<_, std::io::Error>(Some(line));
                }
            }
            Ok(None)
        })
        .await;
        match ready {
            Ok(Ok(Some(line))) => println!("node {i}: {}", line.trim_start_matches("RINGKV_READY ")),
            _ => bail!("node {i} did not become ready; see its log above"),
        }
        // Keep draining the node's stdout so that a later line never meets a closed pipe.
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                println!("node {i}: {line}");
            }
        });
    }
    wait_until_formed(args).await
}

/// SIGTERMs every node (each drains and fsyncs) and waits for it, killing
/// one that takes longer than 30 s.
async fn stop_all(children: Vec<Child>) {
    for child in &children {
        if let Some(pid) = child.id() {
            let _ = std::process::Command::new("kill").arg("-TERM").arg(pid.to_string()).status();
        }
    }
    for (i, mut child) in children.into_iter().enumerate() {
        match tokio::time::timeout(Duration::from_secs(30), child.wait()).await {
            Ok(Ok(status)) => eprintln!("node {i} stopped ({status})"),
            _ => {
                eprintln!("node {i} did not stop in 30 s; killing it");
                let _ = child.kill().await;
            }
        }
    }
}

/// Waits until every node lists every node as alive and NORMAL, so the first request
/// after the banner finds the whole ring.
async fn wait_until_formed(args: &DevArgs) -> anyhow::Result<()> {
    use ringkv_proto::v1::{ClusterStatusRequest, Liveness, NodeState, admin_client::AdminClient};
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    for i in 0..args.nodes {
        let endpoint = format!("http://127.0.0.1:{}", args.grpc_base_port + i);
        loop {
            let formed = async {
                let mut admin = AdminClient::connect(endpoint.clone()).await.ok()?;
                let status = admin.cluster_status(ClusterStatusRequest {}).await.ok()?.into_inner();
                // Alive and NORMAL: a fresh node owns no tokens until it has heard its seeds.
                let alive = status
                    .nodes
                    .iter()
                    .filter(|n| n.liveness == Liveness::Alive as i32 && n.state == NodeState::Normal as i32)
                    .count();
                Some(alive == usize::from(args.nodes))
            };
            if formed.await == Some(true) {
                break;
            }
            if tokio::time::Instant::now() > deadline {
                bail!("node {i} did not see all {} nodes within 30 s; check the logs above", args.nodes);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(())
}

/// Ctrl-C or SIGTERM, listened for from the moment it is installed.
struct StopSignal {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl StopSignal {
    fn install() -> anyhow::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            term: signal(SignalKind::terminate()).context("cannot install the SIGTERM handler")?,
            int: signal(SignalKind::interrupt()).context("cannot install the SIGINT handler")?,
        })
    }

    async fn recv(&mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
    }
}
