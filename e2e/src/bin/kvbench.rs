//! `kvbench`: YCSB-style benchmark of RingKV (gRPC, HTTP), Redis and etcd.
//!
//! `kvbench run --target ringkv-grpc --endpoint 127.0.0.1:7100 --workload a --load --records 100000 --duration 20`
//! loads the records, runs workload A for 20 s with 50 client tasks, prints
//! a table and, with `--json FILE`, writes the report (see
//! `ringkv_e2e::bench::report`). The library side lives in `ringkv_e2e::bench`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, Result, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};
use ringkv_e2e::bench::keys::Distribution;
use ringkv_e2e::bench::report::{FORMAT_VERSION, Params};
use ringkv_e2e::bench::targets::{Etcd, Redis, RingKvGrpc, RingKvHttp};
use ringkv_e2e::bench::{Machine, Report, RunConfig, Stop, Target, Warmup, Workload, runner};

/// YCSB-style benchmark of RingKV and its peers.
#[derive(Debug, Parser)]
#[command(name = "kvbench", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a workload (optionally loading the records first with --load).
    Run(RunArgs),
    /// Only load the records (inserts 0..records), then exit.
    Load(RunArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum TargetKind {
    /// RingKV over gRPC (ringkv-client).
    RingkvGrpc,
    /// RingKV over HTTP (raw bodies).
    RingkvHttp,
    /// Redis over RESP.
    Redis,
    /// etcd v3 over gRPC (KV service).
    Etcd,
}

impl TargetKind {
    fn default_endpoint(self) -> &'static str {
        match self {
            Self::RingkvGrpc => "127.0.0.1:7100",
            Self::RingkvHttp => "127.0.0.1:7180",
            Self::Redis => "127.0.0.1:6399",
            Self::Etcd => "127.0.0.1:2379",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum DistArg {
    Uniform,
    Zipfian,
    Latest,
}

#[derive(Debug, Clone, Args)]
struct RunArgs {
    /// The store to benchmark.
    #[arg(long, value_enum, default_value = "ringkv-grpc")]
    target: TargetKind,
    /// host:port of the store [default: 127.0.0.1:7100 gRPC, :7180 HTTP, :6399 Redis, :2379 etcd].
    /// etcd takes several members, comma-separated (a,b,c), used round-robin.
    #[arg(long)]
    endpoint: Option<String>,
    /// YCSB core workload: a (50/50 read/update), b (95/5), c (read only),
    /// d (read latest), e (short scans), f (read-modify-write).
    #[arg(long, default_value = "a")]
    workload: String,
    /// Overrides the workload's key distribution.
    #[arg(long, value_enum)]
    distribution: Option<DistArg>,
    /// Number of records (loaded by --load; the key space of reads).
    #[arg(long, default_value_t = 10_000)]
    records: u64,
    /// Bytes per value.
    #[arg(long, default_value_t = 100)]
    value_size: usize,
    /// Stop after this many measured operations.
    #[arg(long, conflicts_with = "duration")]
    operations: Option<u64>,
    /// Stop after this long (seconds, or with a unit: 20s, 500ms, 2m) [default: 10s].
    #[arg(long)]
    duration: Option<String>,
    /// Client tasks (async, on one multi-threaded runtime).
    #[arg(long, default_value_t = 50)]
    concurrency: usize,
    /// Discarded at the start: a time (5s, 500ms) or an operation count (1000).
    #[arg(long, default_value = "0")]
    warmup: String,
    /// Insert the records before the run (with a progress bar).
    #[arg(long)]
    load: bool,
    /// RNG seed (task i uses seed + i).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// gRPC channels / Redis connections, used round-robin (etcd: at least one per member).
    #[arg(long, default_value_t = 1)]
    connections: usize,
    /// RingKV consistency level (ONE, QUORUM, ALL, r=N,w=N, ...) [default: the server's].
    #[arg(long)]
    consistency: Option<String>,
    /// Write the JSON report to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Hide the progress bars (they are hidden anyway when stderr is not a terminal).
    #[arg(long)]
    no_progress: bool,
}

/// Parses `20`, `20s`, `500ms`, `2m` into a duration.
fn parse_duration(text: &str) -> Result<Duration> {
    let text = text.trim();
    let (number, scale) = if let Some(n) = text.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = text.strip_suffix('m') {
        (n, 60.0)
    } else {
        (text, 1.0)
    };
    let value: f64 = number.trim().parse().with_context(|| format!("not a duration: {text:?}"))?;
    if !value.is_finite() || value < 0.0 {
        bail!("not a duration: {text:?}");
    }
    Ok(Duration::from_secs_f64(value * scale))
}

/// `0` → none, a plain integer → operations, anything with a unit → time.
fn parse_warmup(text: &str) -> Result<Warmup> {
    match text.trim().parse::<u64>() {
        Ok(0) => Ok(Warmup::None),
        Ok(n) => Ok(Warmup::Operations(n)),
        Err(_) => parse_duration(text).map(Warmup::Time),
    }
}

fn run_config(args: &RunArgs) -> Result<RunConfig> {
    let mut workload: Workload = args.workload.parse()?;
    if let Some(d) = args.distribution {
        workload.distribution = match d {
            DistArg::Uniform => Distribution::Uniform,
            DistArg::Zipfian => Distribution::Zipfian,
            DistArg::Latest => Distribution::Latest,
        };
    }
    let stop = match (args.operations, &args.duration) {
        (Some(n), _) => Stop::Operations(n),
        (None, Some(d)) => Stop::Duration(parse_duration(d)?),
        (None, None) => Stop::Duration(Duration::from_secs(10)),
    };
    if args.records == 0 {
        bail!("--records must be at least 1");
    }
    Ok(RunConfig {
        workload,
        records: args.records,
        value_size: args.value_size,
        stop,
        concurrency: args.concurrency.max(1),
        warmup: parse_warmup(&args.warmup)?,
        seed: args.seed,
        progress: !args.no_progress,
    })
}

fn params(args: &RunArgs, config: &RunConfig, load: bool) -> Params {
    let (operations, duration_s) = match config.stop {
        Stop::Operations(n) => (Some(n), None),
        Stop::Duration(d) => (None, Some(d.as_secs_f64())),
    };
    Params {
        records: config.records,
        value_size: config.value_size,
        operations,
        duration_s,
        concurrency: config.concurrency,
        warmup: args.warmup.clone(),
        load,
        seed: config.seed,
    }
}

/// Loads and/or runs against one target; prints the tables, writes the JSON.
async fn bench<T: Target>(target: T, args: &RunArgs, run_phase: bool) -> Result<()> {
    let config = run_config(args)?;
    let target = Arc::new(target);
    let started_at_unix_s = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let info = target.info();
    eprintln!("kvbench: {} at {} {:?}", info.name, info.endpoint, info.settings);
    let load_phase = args.load || !run_phase;
    let load = if load_phase { Some(runner::load(target.clone(), &config).await) } else { None };
    if let Some(load) = &load {
        print!("{}", load.table("load"));
    }
    let run = if run_phase {
        let summary = runner::run(target, &config).await;
        print!("{}", summary.table(&format!("workload {} ({})", config.workload.name, config.workload.description)));
        Some(summary)
    } else {
        None
    };
    let report = Report {
        format_version: FORMAT_VERSION,
        kvbench_version: env!("CARGO_PKG_VERSION"),
        started_at_unix_s,
        target: info,
        workload: config.workload.clone(),
        params: params(args, &config, load_phase),
        load,
        run,
        machine: Machine::detect(),
    };
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&report)?;
        std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

async fn dispatch(args: RunArgs, run_phase: bool) -> Result<()> {
    let endpoint = args.endpoint.clone().unwrap_or_else(|| args.target.default_endpoint().to_owned());
    let consistency = args.consistency.as_deref();
    match args.target {
        TargetKind::RingkvGrpc => {
            let target = RingKvGrpc::connect(&endpoint, args.connections, consistency).await?;
            bench(target, &args, run_phase).await
        }
        TargetKind::RingkvHttp => {
            let target = RingKvHttp::connect(&endpoint, args.concurrency, consistency)?;
            bench(target, &args, run_phase).await
        }
        TargetKind::Redis => {
            if consistency.is_some() {
                bail!("--consistency applies to RingKV targets only");
            }
            bench(Redis::connect(&endpoint, args.connections).await?, &args, run_phase).await
        }
        TargetKind::Etcd => {
            if consistency.is_some() {
                bail!("--consistency applies to RingKV targets only (etcd reads are linearizable)");
            }
            bench(Etcd::connect(&endpoint, args.connections).await?, &args, run_phase).await
        }
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Run(args) => dispatch(args, true).await,
        Command::Load(args) => dispatch(args, false).await,
    }
}
