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
use ringkv_client::tls::ClientTlsFiles;
use ringkv_client::{ConnectionConfig, Token};
use ringkv_e2e::bench::keys::Distribution;
use ringkv_e2e::bench::report::{FORMAT_VERSION, Params};
use ringkv_e2e::bench::targets::{Etcd, Redis, RingKvGrpc, RingKvHttp};
use ringkv_e2e::bench::{Machine, Report, RunConfig, Stop, Target, Warmup, Workload, markdown, runner, suite};

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
    /// Run the standard matrix (RingKV vs Redis and etcd) and write docs/benchmarks.md and its plots.
    Suite(SuiteArgs),
}

#[derive(Debug, Clone, Args)]
struct SuiteArgs {
    /// Small and short (2,000 records, 2 s per run): checks the suite works, measures nothing.
    #[arg(long)]
    quick: bool,
    /// Only these scenarios (get, put, put-always, cluster), comma-separated.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Records for the GET scenario [default: 1000000; --quick: 2000].
    #[arg(long)]
    read_records: Option<u64>,
    /// Records for the other scenarios [default: 100000; --quick: 2000].
    #[arg(long)]
    records: Option<u64>,
    /// Measured time per workload [default: 20s; --quick: 2s].
    #[arg(long)]
    duration: Option<String>,
    /// Warm-up per workload [default: 3s; --quick: 0].
    #[arg(long)]
    warmup: Option<String>,
    /// Client tasks.
    #[arg(long, default_value_t = 50)]
    concurrency: usize,
    /// The kvnode binary [default: next to this kvbench].
    #[arg(long)]
    kvnode: Option<PathBuf>,
    /// The document whose generated section is rewritten.
    #[arg(long, default_value = "docs/benchmarks.md")]
    doc: PathBuf,
    /// Where the JSON reports (results/) and plots go.
    #[arg(long, default_value = "docs/bench")]
    results_dir: PathBuf,
    /// Where the nodes keep their data during the run.
    #[arg(long, default_value = "target/kvbench-suite")]
    work_dir: PathBuf,
    /// First gRPC port of the RingKV nodes (HTTP uses this + 80, RESP this + 279).
    #[arg(long, default_value_t = 17100)]
    port: u16,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum TargetKind {
    /// RingKV over gRPC (ringkv-client).
    RingkvGrpc,
    /// RingKV over HTTP (raw bodies).
    RingkvHttp,
    /// RingKV's RESP (Redis protocol) listener, with the Redis client (no scans).
    RingkvResp,
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
            Self::RingkvResp => "127.0.0.1:7379",
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
    /// d (read latest), e (short scans), f (read-modify-write); or w (update only: PUT).
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
    /// Pace the run at this many operations per second in total (default: as fast as possible);
    /// latencies are then measured from each operation's scheduled start.
    #[arg(long)]
    rate: Option<f64>,
    /// Write the JSON report to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Hide the progress bars (they are hidden anyway when stderr is not a terminal).
    #[arg(long)]
    no_progress: bool,
    /// TLS files and token of the RingKV targets.
    #[command(flatten)]
    security: SecurityArgs,
}

/// TLS and token flags of the RingKV targets, as kvctl's: `https://`
/// endpoints (gRPC, HTTP) run TLS with `--tls-ca`; the token is sent as
/// `authorization: Bearer` (gRPC, HTTP) or `AUTH user secret` (RESP).
#[derive(Debug, Clone, Args)]
struct SecurityArgs {
    /// CA certificate (PEM) of the nodes, for https:// endpoints.
    #[arg(long, env = "RINGKV_TLS_CA", value_name = "FILE")]
    tls_ca: Option<PathBuf>,
    /// Client certificate (PEM), for nodes that require one.
    #[arg(long, env = "RINGKV_TLS_CERT", value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// Private key (PEM) of --tls-cert.
    #[arg(long, env = "RINGKV_TLS_KEY", value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Bearer token USER.SECRET.
    #[arg(long, env = "RINGKV_TOKEN", hide_env_values = true, value_name = "TOKEN")]
    token: Option<String>,
    /// Read the token from this file (overrides --token and RINGKV_TOKEN).
    #[arg(long, value_name = "FILE")]
    token_file: Option<PathBuf>,
}

impl SecurityArgs {
    /// The connection settings (the endpoint is filled in per node).
    fn connection(&self) -> Result<ConnectionConfig> {
        let mut config = ConnectionConfig::new("");
        if let Some(ca) = &self.tls_ca {
            config = config.with_tls(ClientTlsFiles {
                ca_file: ca.clone(),
                cert_file: self.tls_cert.clone(),
                key_file: self.tls_key.clone(),
            });
        } else if self.tls_cert.is_some() {
            bail!("--tls-cert needs --tls-ca");
        }
        let token = match (&self.token_file, &self.token) {
            (Some(file), _) => Some(Token::from_file(file)?),
            (None, Some(text)) => Some(Token::new(text)?),
            (None, None) => None,
        };
        Ok(match token {
            Some(token) => config.with_token(token),
            None => config,
        })
    }
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
        rate: args.rate,
    })
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
        params: Params::of(&config, args.warmup.clone(), load_phase),
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
    let security = args.security.connection()?;
    let ringkv = matches!(args.target, TargetKind::RingkvGrpc | TargetKind::RingkvHttp | TargetKind::RingkvResp);
    if !ringkv && (security.tls.is_some() || security.token.is_some()) {
        bail!("--tls-* and --token apply to the RingKV targets only");
    }
    match args.target {
        TargetKind::RingkvGrpc => {
            let target = RingKvGrpc::connect_with(&security, &endpoint, args.connections, consistency).await?;
            bench(target, &args, run_phase).await
        }
        TargetKind::RingkvHttp => {
            let target = RingKvHttp::connect_with(&security, &endpoint, args.concurrency, consistency)?;
            bench(target, &args, run_phase).await
        }
        TargetKind::RingkvResp => {
            if consistency.is_some() {
                bail!("--consistency is not available over RESP (the keyspace default applies)");
            }
            if security.tls.is_some() {
                bail!(
                    "kvbench's ringkv-resp target does not speak TLS yet; measure TLS with ringkv-grpc or ringkv-http"
                );
            }
            let target = Redis::connect_ringkv_as(&endpoint, args.connections, security.token.as_ref()).await?;
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

async fn suite(args: SuiteArgs) -> Result<()> {
    let pick = |given: &Option<String>, full: &str, quick: &str| {
        parse_duration(given.as_deref().unwrap_or(if args.quick { quick } else { full }))
    };
    let kvnode = match &args.kvnode {
        Some(path) => path.clone(),
        None => std::env::current_exe()?.with_file_name(format!("kvnode{}", std::env::consts::EXE_SUFFIX)),
    };
    if !kvnode.is_file() {
        bail!("{} does not exist: build it with `cargo build --release --bins` or pass --kvnode", kvnode.display());
    }
    let peers_script = PathBuf::from("scripts/peers.sh");
    if !peers_script.is_file() {
        bail!("scripts/peers.sh not found: run kvbench suite from the repository root");
    }
    let config = suite::SuiteConfig {
        kvnode,
        peers_script,
        work_dir: args.work_dir.clone(),
        results_dir: args.results_dir.clone(),
        read_records: args.read_records.unwrap_or(if args.quick { 2_000 } else { 1_000_000 }),
        records: args.records.unwrap_or(if args.quick { 2_000 } else { 100_000 }),
        duration: pick(&args.duration, "20s", "2s")?,
        warmup: pick(&args.warmup, "3s", "0")?,
        concurrency: args.concurrency.max(1),
        only: args.only.clone(),
        grpc_base_port: args.port,
        http_base_port: args.port + 80,
        resp_base_port: args.port + 279,
    };
    let result = suite::run(config).await?;
    let plots = markdown::draw_plots(&result, &args.results_dir)?;
    let relative = |file: &str| {
        let dir = args.results_dir.strip_prefix("docs").unwrap_or(&args.results_dir);
        dir.join(file).display().to_string()
    };
    let plots: Vec<(String, String)> = plots.into_iter().map(|(title, file)| (title, relative(&file))).collect();
    let command = std::iter::once("./target/release/kvbench".to_owned())
        .chain(std::env::args().skip(1))
        .collect::<Vec<_>>()
        .join(" ");
    let section = markdown::render(&result, &command, &plots);
    let doc = std::fs::read_to_string(&args.doc).unwrap_or_default();
    std::fs::write(&args.doc, markdown::splice(&doc, &section))
        .with_context(|| format!("writing {}", args.doc.display()))?;
    println!("{section}");
    eprintln!("kvbench suite: wrote {} and {}", args.doc.display(), args.results_dir.display());
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Run(args) => dispatch(args, true).await,
        Command::Load(args) => dispatch(args, false).await,
        Command::Suite(args) => suite(args).await,
    }
}
