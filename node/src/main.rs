//! `kvnode`: the RingKV storage node.
//!
//! `kvnode serve --data-dir DIR --grpc-addr HOST:PORT --http-addr HOST:PORT [--config FILE]`
//! runs one node. Flags override the config file; the config file overrides
//! the defaults. Once both listeners are bound and the node is ready, one
//! line goes to stdout: `RINGKV_READY grpc=ADDR http=ADDR host_id=HEX [resp=ADDR]`
//! (scripts and tests wait for it); logs go to stderr.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use ringkv_node::assembly::Node;
use ringkv_node::config::Config;
use ringkv_node::storage::SyncPolicy;
use tokio_util::sync::CancellationToken;

mod dev;

#[derive(Debug, Parser)]
#[command(name = "kvnode", version, about = "RingKV storage node")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs one storage node until SIGTERM/SIGINT.
    Serve(Box<ServeArgs>),
    /// Runs a local cluster of N nodes (separate processes) until Ctrl-C.
    Dev(dev::DevArgs),
}

#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// Directory for this node's data (created if missing) [default: ./data/node].
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// gRPC listen address [default: 127.0.0.1:7100].
    #[arg(long, value_name = "HOST:PORT")]
    grpc_addr: Option<SocketAddr>,
    /// HTTP listen address [default: 127.0.0.1:7180].
    #[arg(long, value_name = "HOST:PORT")]
    http_addr: Option<SocketAddr>,
    /// RESP (Redis protocol) listen address, e.g. 127.0.0.1:7379 [default: off].
    #[arg(long, value_name = "HOST:PORT")]
    resp_addr: Option<SocketAddr>,
    /// TOML config file (sections [server], [storage], [replication], [[keyspaces]]).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Durability: always (fsync before ack, group commit), periodic, or none [default: periodic].
    #[arg(long, value_enum)]
    sync: Option<SyncArg>,
    /// gRPC addresses of other nodes (HOST:PORT, comma-separated) to form a cluster with.
    #[arg(long, value_delimiter = ',', value_name = "HOST:PORT,...")]
    seeds: Vec<String>,
    /// The DNS name (HOST:PORT) peers find this node's gRPC address by when
    /// its IP changes (in Kubernetes: POD.SERVICE.NAMESPACE.svc:PORT).
    #[arg(long, value_name = "HOST:PORT")]
    advertise_name: Option<String>,
    /// Replicas per key for keyspaces that set none [default: 1].
    #[arg(long, value_name = "N")]
    replication_factor: Option<u32>,
    /// Zone (datacenter) of this node, for zone-aware placement and LOCAL_QUORUM.
    #[arg(long)]
    zone: Option<String>,
    /// Rack of this node.
    #[arg(long)]
    rack: Option<String>,
    /// Tokens this node takes when it first starts [default: 64].
    #[arg(long)]
    vnodes: Option<u32>,
    /// Largest key in bytes [default: 1024].
    #[arg(long)]
    max_key_bytes: Option<usize>,
    /// Largest value in bytes [default: 1048576].
    #[arg(long)]
    max_value_bytes: Option<usize>,
    /// Replace the dead node with this host id: this node must start with an
    /// empty data directory and --seeds; it takes the dead node's host id and
    /// tokens and streams its ranges from the surviving replicas.
    #[arg(long, value_name = "HOST_ID")]
    replace: Option<String>,
    /// Average rate of incoming range streams in MB/s, 0 = unlimited [default: 64].
    #[arg(long, value_name = "MB_PER_S")]
    stream_throughput: Option<u64>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum SyncArg {
    Always,
    Periodic,
    None,
}

impl ServeArgs {
    fn into_config(self) -> anyhow::Result<Config> {
        let mut config = match &self.config {
            Some(path) => Config::from_file(path)?,
            None => Config::default(),
        };
        if let Some(dir) = self.data_dir {
            config.storage.data_dir = dir;
        }
        if let Some(addr) = self.grpc_addr {
            config.server.grpc_addr = addr;
        }
        if let Some(addr) = self.http_addr {
            config.server.http_addr = addr;
        }
        if let Some(addr) = self.resp_addr {
            config.server.resp_addr = Some(addr);
        }
        if let Some(sync) = self.sync {
            config.storage.sync = match sync {
                SyncArg::Always => SyncPolicy::Always,
                SyncArg::Periodic => SyncPolicy::Periodic,
                SyncArg::None => SyncPolicy::None,
            };
        }
        if !self.seeds.is_empty() {
            config.membership.seeds = self.seeds;
        }
        if let Some(name) = self.advertise_name {
            config.membership.advertise_name = name;
        }
        if let Some(rf) = self.replication_factor {
            config.replication.replication_factor = rf;
        }
        if let Some(zone) = self.zone {
            config.ring.zone = zone;
        }
        if let Some(rack) = self.rack {
            config.ring.rack = rack;
        }
        if let Some(v) = self.vnodes {
            config.ring.vnodes = v;
        }
        if let Some(n) = self.max_key_bytes {
            config.server.max_key_bytes = n;
        }
        if let Some(n) = self.max_value_bytes {
            config.server.max_value_bytes = n;
        }
        if let Some(host_id) = self.replace {
            config.topology.replace_host_id = Some(host_id);
        }
        if let Some(rate) = self.stream_throughput {
            config.streaming.throughput_mb_per_s = rate;
        }
        config.validate()?;
        Ok(config)
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,fjall=info,lsm_tree=warn"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt().with_env_filter(filter).with_ansi(ansi).with_writer(std::io::stderr).init();
}

/// Cancels `token` on the first SIGTERM or SIGINT.
fn cancel_on_signals(token: CancellationToken) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("cannot install the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot install the SIGINT handler")?;
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM received"),
            _ = int.recv() => tracing::info!("SIGINT received"),
        }
        token.cancel();
    });
    Ok(())
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let mut config = args.into_config()?;
    // Test hooks (direct local writes bypassing versioning) exist only for e2e tests.
    config.antientropy.test_hooks = std::env::var_os("RINGKV_TEST_HOOKS").is_some_and(|v| v == "1");
    if config.antientropy.test_hooks {
        tracing::warn!(
            "RINGKV_TEST_HOOKS=1: serving test hooks that write local storage directly; never in production"
        );
    }
    std::fs::create_dir_all(&config.storage.data_dir)
        .with_context(|| format!("cannot create data directory {}", config.storage.data_dir.display()))?;
    let shutdown = CancellationToken::new();
    cancel_on_signals(shutdown.clone())?;
    let node = Node::start(config, shutdown).await?;
    let id = node.identity();
    let resp = id.resp_addr.map(|a| format!(" resp={a}")).unwrap_or_default();
    println!("RINGKV_READY grpc={} http={} host_id={}{resp}", id.grpc_addr, id.http_addr, id.host_id);
    node.stopped().await?;
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    init_logging();
    match Cli::parse().command {
        Command::Serve(args) => serve(*args).await,
        Command::Dev(args) => dev::run(args).await,
    }
}
