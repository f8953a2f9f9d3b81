//! `kv-operator`: the RingKV Kubernetes operator.
//!
//! - `kv-operator run [--http-addr ADDR]` watches KVClusters and reconciles
//!   them; serves `/metrics` and `/healthz`.
//! - `kv-operator drain --endpoint HOST:PORT` drains one node (the pods'
//!   preStop hook; the same image carries kvnode and kv-operator).

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use kube::runtime::events::Reporter;
use ringkv_operator::admin;
use ringkv_operator::controller::{self, Context};
use ringkv_operator::telemetry::{self, Metrics};

#[derive(Debug, Parser)]
#[command(name = "kv-operator", version, about = "RingKV Kubernetes operator")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs the operator until SIGTERM/SIGINT.
    Run {
        /// Address of the operator's own /metrics and /healthz.
        #[arg(long, env = "KV_OPERATOR_HTTP_ADDR", default_value = "0.0.0.0:8080")]
        http_addr: SocketAddr,
        /// Admin API endpoint to use instead of each cluster's client Service
        /// (for an operator running outside the cluster, e.g. through a port-forward).
        #[arg(long, env = "KV_OPERATOR_ADMIN_ENDPOINT")]
        admin_endpoint: Option<String>,
    },
    /// Drains the node at HOST:PORT (stop writes, flush, fsync) before it stops.
    Drain {
        /// The node's gRPC address.
        #[arg(long)]
        endpoint: String,
    },
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM received"),
                _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received"),
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "no SIGTERM handler; stopping on Ctrl-C only");
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

async fn run(http_addr: SocketAddr, admin_endpoint: Option<String>) -> anyhow::Result<()> {
    let client = kube::Client::try_default()
        .await
        .context("cannot build a Kubernetes client (in-cluster service account or KUBECONFIG)")?;
    let metrics = Metrics::new().context("cannot register the operator's metrics")?;
    let listener = tokio::net::TcpListener::bind(http_addr)
        .await
        .with_context(|| format!("cannot listen on {http_addr} for /metrics and /healthz"))?;
    let app = telemetry::router(metrics.clone());
    let http = tokio::spawn(async move { axum::serve(listener, app).await });
    let reporter = Reporter { controller: "kv-operator".into(), instance: std::env::var("POD_NAME").ok() };
    let ctx = Arc::new(Context::production(client, reporter, metrics, admin_endpoint));
    tracing::info!(%http_addr, "kv-operator started");
    // After the signal, in-flight reconciles get controller::SHUTDOWN_GRACE, then are dropped.
    controller::run(ctx, shutdown_signal()).await;
    http.abort();
    tracing::info!("kv-operator stopped");
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,kube=warn"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the async runtime")?;
    let result = runtime.block_on(async {
        match Cli::parse().command {
            Command::Run { http_addr, admin_endpoint } => run(http_addr, admin_endpoint).await,
            Command::Drain { endpoint } => {
                admin::drain(&endpoint).await.with_context(|| format!("cannot drain the node at {endpoint}"))?;
                tracing::info!(%endpoint, "node drained");
                Ok(())
            }
        }
    });
    // Tasks still blocked (e.g. a DNS lookup of an unreachable API server) must not hold the exit.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    result
}
