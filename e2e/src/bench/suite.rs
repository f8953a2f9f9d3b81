//! `kvbench suite`: the standard matrix, RingKV and its peers in one run.
//!
//! Each [`Scenario`] starts a fresh RingKV (`kvnode dev --nodes N --sync S`,
//! so single nodes and clusters start the same way) and, when installed, its
//! peer (`scripts/peers.sh`: Redis in the same durability class, or etcd),
//! loads the same records into both, runs the same workloads with the same
//! client settings, and stops both. The results become JSON reports, PNG
//! plots ([`super::plot`]) and the generated part of `docs/benchmarks.md`
//! ([`super::markdown`]).
//!
//! A peer that is not installed is skipped with the command that installs
//! it; the suite never downloads anything.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, Result, bail};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use super::report::{FORMAT_VERSION, Params};
use super::runner::{self, RunConfig, Stop, Warmup};
use super::targets::{Etcd, Redis, RingKvGrpc};
use super::{Machine, Report, Summary, Target, Workload};

/// The store a scenario compares RingKV with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer {
    /// `redis-server` with this `scripts/peers.sh --mode` (none, everysec, always).
    Redis(&'static str),
    /// `etcd` with this many members.
    Etcd(u32),
}

impl Peer {
    /// Human name with its settings.
    pub fn label(self) -> String {
        match self {
            Self::Redis("none") => "Redis, no persistence".into(),
            Self::Redis(mode) => format!("Redis, appendfsync {mode}"),
            Self::Etcd(1) => "etcd, 1 member".into(),
            Self::Etcd(n) => format!("etcd, {n} members"),
        }
    }

    fn binary(self) -> &'static str {
        match self {
            Self::Redis(_) => "redis-server",
            Self::Etcd(_) => "etcd",
        }
    }

    fn install_hint(self) -> &'static str {
        match self {
            Self::Redis(_) => "apt-get install redis-server",
            Self::Etcd(_) => "apt-get install etcd-server etcd-client",
        }
    }

    fn peers_args(self) -> Vec<String> {
        match self {
            Self::Redis(mode) => vec!["redis".into(), "--mode".into(), mode.into()],
            Self::Etcd(n) => vec!["etcd".into(), "--members".into(), n.to_string()],
        }
    }
}

/// How kvbench talks to RingKV.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// gRPC through ringkv-client (one HTTP/2 channel per node).
    Grpc,
    /// The RESP listener through the Redis client (one multiplexed connection per node).
    Resp,
}

impl Protocol {
    /// The kvbench target name (`TargetInfo::name`).
    pub fn target_name(self) -> &'static str {
        match self {
            Self::Grpc => "ringkv-grpc",
            Self::Resp => "ringkv-resp",
        }
    }

    /// Label in tables and plots.
    pub fn label(self) -> &'static str {
        match self {
            Self::Grpc => "RingKV gRPC",
            Self::Resp => "RingKV RESP",
        }
    }
}

/// What the suite checks a scenario against (the targets).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Goal {
    /// RingKV throughput of `workload` at least `ratio` × the peer's.
    Ratio {
        /// Workload letter.
        workload: char,
        /// Minimum ratio.
        ratio: f64,
    },
    /// RingKV's p99 of every operation below `p99_ms` at half its peak throughput of `workload`.
    HalfPeakP99 {
        /// Workload letter.
        workload: char,
        /// Largest p99 in milliseconds.
        p99_ms: f64,
    },
}

/// One row of the matrix.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Short id (file names, anchors).
    pub id: &'static str,
    /// Title in the report.
    pub title: &'static str,
    /// RingKV nodes (replication factor = min(3, nodes), as `kvnode dev` does).
    pub nodes: u16,
    /// RingKV durability.
    pub sync: &'static str,
    /// RingKV consistency level for reads and writes (`None`: the server's default).
    pub consistency: Option<&'static str>,
    /// Protocols RingKV is measured over; the first loads the records. The RESP
    /// listener uses the server's default consistency (QUORUM) and node 0.
    pub protocols: Vec<Protocol>,
    /// The peer.
    pub peer: Peer,
    /// Workload letters, run in order on the same loaded data.
    pub workloads: Vec<char>,
    /// Records loaded.
    pub records: u64,
    /// Targets.
    pub goals: Vec<Goal>,
}

/// How the suite runs.
#[derive(Debug, Clone)]
pub struct SuiteConfig {
    /// The `kvnode` binary (release build).
    pub kvnode: PathBuf,
    /// `scripts/peers.sh`.
    pub peers_script: PathBuf,
    /// Where data directories go (removed after each scenario).
    pub work_dir: PathBuf,
    /// Where JSON reports and plots go (`docs/bench`).
    pub results_dir: PathBuf,
    /// Records for read-only scenarios (1 M in the standard run).
    pub read_records: u64,
    /// Records for the others (100 K).
    pub records: u64,
    /// Measured time per workload.
    pub duration: Duration,
    /// Warm-up per workload.
    pub warmup: Duration,
    /// Client tasks.
    pub concurrency: usize,
    /// Only these scenario ids (empty: all).
    pub only: Vec<String>,
    /// gRPC base port for RingKV (`kvnode dev --grpc-base-port`).
    pub grpc_base_port: u16,
    /// HTTP base port.
    pub http_base_port: u16,
    /// RESP base port.
    pub resp_base_port: u16,
}

/// The standard matrix of issue 4.
pub fn standard_matrix(config: &SuiteConfig) -> Vec<Scenario> {
    vec![
        Scenario {
            id: "get",
            title: "Single node, sync=periodic, GET (workload C) vs Redis without persistence",
            nodes: 1,
            sync: "periodic",
            consistency: None,
            protocols: vec![Protocol::Resp, Protocol::Grpc],
            peer: Peer::Redis("none"),
            workloads: vec!['c'],
            records: config.read_records,
            goals: vec![Goal::Ratio { workload: 'c', ratio: 1.0 }],
        },
        Scenario {
            id: "put",
            title: "Single node, sync=periodic, PUT (workload W) and YCSB A-F vs Redis appendfsync everysec",
            nodes: 1,
            sync: "periodic",
            consistency: None,
            protocols: vec![Protocol::Resp, Protocol::Grpc],
            peer: Peer::Redis("everysec"),
            workloads: vec!['w', 'a', 'b', 'c', 'd', 'e', 'f'],
            records: config.records,
            goals: vec![Goal::Ratio { workload: 'w', ratio: 1.0 }],
        },
        Scenario {
            id: "put-always",
            title: "Single node, sync=always, PUT (workload W) vs Redis appendfsync always",
            nodes: 1,
            sync: "always",
            consistency: None,
            protocols: vec![Protocol::Resp, Protocol::Grpc],
            peer: Peer::Redis("always"),
            workloads: vec!['w'],
            records: config.records,
            goals: vec![Goal::Ratio { workload: 'w', ratio: 1.0 }],
        },
        Scenario {
            id: "cluster",
            title: "3 nodes, RF 3, QUORUM, sync=periodic, vs etcd with 3 members",
            nodes: 3,
            sync: "periodic",
            consistency: Some("QUORUM"),
            protocols: vec![Protocol::Resp, Protocol::Grpc],
            peer: Peer::Etcd(3),
            workloads: vec!['a', 'w'],
            records: config.records,
            goals: vec![
                Goal::Ratio { workload: 'a', ratio: 2.0 },
                Goal::Ratio { workload: 'w', ratio: 2.0 },
                Goal::HalfPeakP99 { workload: 'a', p99_ms: 5.0 },
            ],
        },
    ]
}

/// One measured run.
#[derive(Debug, Clone)]
pub struct Measured {
    /// The report (also written as JSON).
    pub report: Report,
    /// Path of the JSON file.
    pub json: PathBuf,
    /// Whether it ran paced at half of the peak (the p99 goal).
    pub half_peak: bool,
}

impl Measured {
    /// The run summary (every suite report has one).
    pub fn run(&self) -> Option<&Summary> {
        self.report.run.as_ref()
    }
}

/// The results of one scenario.
#[derive(Debug, Clone)]
pub struct ScenarioResult {
    /// The scenario.
    pub scenario: Scenario,
    /// RingKV's runs.
    pub ringkv: Vec<Measured>,
    /// The peer's runs (empty when skipped).
    pub peer: Vec<Measured>,
    /// Why the peer was skipped.
    pub peer_skipped: Option<String>,
}

/// Everything the suite measured.
#[derive(Debug, Clone)]
pub struct SuiteResult {
    /// Per scenario.
    pub scenarios: Vec<ScenarioResult>,
    /// Where it ran.
    pub machine: Machine,
    /// Seconds since the epoch at the start.
    pub started_at_unix_s: u64,
    /// `git rev-parse --short HEAD`, when available.
    pub commit: Option<String>,
    /// Peer versions (`redis-server --version`, `etcd --version`).
    pub peer_versions: Vec<String>,
    /// The suite's settings.
    pub config: SuiteConfig,
}

/// A started `kvnode dev` cluster; stopped (SIGTERM, then kill) by [`Ringkv::stop`] or on drop.
struct Ringkv {
    child: Child,
    data_dir: PathBuf,
}

impl Ringkv {
    async fn start(config: &SuiteConfig, scenario: &Scenario) -> Result<Self> {
        let data_dir = config.work_dir.join(format!("ringkv-{}", scenario.id));
        let _ = std::fs::remove_dir_all(&data_dir);
        let mut child = Command::new(&config.kvnode)
            .arg("dev")
            .arg("--nodes")
            .arg(scenario.nodes.to_string())
            .arg("--sync")
            .arg(scenario.sync)
            .arg("--data-dir")
            .arg(&data_dir)
            .arg("--grpc-base-port")
            .arg(config.grpc_base_port.to_string())
            .arg("--http-base-port")
            .arg(config.http_base_port.to_string())
            .arg("--resp-base-port")
            .arg(config.resp_base_port.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| {
                format!("cannot start {} (build it with `cargo build --release --bins`)", config.kvnode.display())
            })?;
        let stdout = child.stdout.take().context("kvnode dev has no stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let ready = tokio::time::timeout(Duration::from_secs(60), async {
            while let Some(line) = lines.next_line().await? {
                if line.starts_with("RingKV dev cluster") {
                    return Ok::<bool, std::io::Error>(true);
                }
            }
            Ok(false)
        })
        .await;
        match ready {
            Ok(Ok(true)) => {}
            Ok(Ok(false)) => bail!("kvnode dev exited before the cluster formed"),
            Ok(Err(e)) => bail!("reading kvnode dev's output: {e}"),
            Err(_) => bail!("the {}-node cluster did not form within 60 s", scenario.nodes),
        }
        // Keep draining stdout so the cluster never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(Self { child, data_dir })
    }

    async fn stop(mut self) -> Result<()> {
        if let Some(pid) = self.child.id() {
            // SAFETY-free: kill(2) through the `kill` command keeps this crate free of libc.
            let _ = Command::new("kill").arg("-TERM").arg(pid.to_string()).status().await;
        }
        if tokio::time::timeout(Duration::from_secs(40), self.child.wait()).await.is_err() {
            let _ = self.child.kill().await;
        }
        let _ = std::fs::remove_dir_all(&self.data_dir);
        Ok(())
    }
}

fn on_path(binary: &str) -> bool {
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(binary).is_file()))
        .unwrap_or(false)
}

async fn peers_script(config: &SuiteConfig, action: &str, peer: Peer) -> Result<()> {
    let status = Command::new("bash")
        .arg(&config.peers_script)
        .arg(action)
        .args(peer.peers_args())
        .stdout(Stdio::null())
        .status()
        .await
        .with_context(|| format!("cannot run {}", config.peers_script.display()))?;
    if !status.success() {
        bail!("`{} {action} {}` failed: {status}", config.peers_script.display(), peer.peers_args().join(" "));
    }
    Ok(())
}

async fn version_of(binary: &str) -> Option<String> {
    let out = Command::new(binary).arg("--version").output().await.ok()?;
    String::from_utf8_lossy(&out.stdout).lines().next().map(|l| l.trim().to_owned())
}

fn run_config(config: &SuiteConfig, workload: char, records: u64, rate: Option<f64>) -> Result<RunConfig> {
    let workload: Workload = workload.to_string().parse()?;
    Ok(RunConfig {
        workload,
        records,
        value_size: 100,
        stop: Stop::Duration(config.duration),
        concurrency: config.concurrency,
        warmup: if config.warmup.is_zero() { Warmup::None } else { Warmup::Time(config.warmup) },
        seed: 1,
        progress: true,
        rate,
    })
}

fn warmup_text(warmup: Warmup) -> String {
    match warmup {
        Warmup::None => "0".to_owned(),
        Warmup::Time(d) => format!("{}ms", d.as_millis()),
        Warmup::Operations(n) => n.to_string(),
    }
}

/// Loads the records (unless `load` is false: they are there), then runs
/// each workload; writes one JSON per run.
async fn measure<T: Target>(
    target: T,
    config: &SuiteConfig,
    scenario: &Scenario,
    who: &str,
    load: bool,
    half_peak: Option<char>,
) -> Result<Vec<Measured>> {
    let target = Arc::new(target);
    let mut out = Vec::new();
    let mut load = if load {
        let load_config = run_config(config, 'c', scenario.records, None)?;
        eprintln!("suite: {} / {who}: loading {} records", scenario.id, scenario.records);
        let load = runner::load(target.clone(), &load_config).await;
        if load.errors > 0 {
            bail!("loading {who} failed: {} errors, e.g. {:?}", load.errors, load.error_samples.first());
        }
        Some(load)
    } else {
        None
    };
    for &letter in &scenario.workloads {
        let workload: Workload = letter.to_string().parse()?;
        if !target.supports_scan() && workload.mix.iter().any(|(op, _)| *op == super::OpKind::Scan) {
            eprintln!("suite: {} / {who}: skipping workload {letter} (no scans over this protocol)", scenario.id);
            continue;
        }
        let mut runs = vec![(None, false)];
        if half_peak == Some(letter) {
            runs.push((Some(()), true));
        }
        let mut peak = 0.0;
        for (_, paced) in runs {
            let rate = paced.then_some(peak / 2.0);
            let run_config = run_config(config, letter, scenario.records, rate)?;
            eprintln!(
                "suite: {} / {who}: workload {letter}{}",
                scenario.id,
                rate.map(|r| format!(" paced at {r:.0} ops/s")).unwrap_or_default()
            );
            let started_at_unix_s = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
            let summary = runner::run(target.clone(), &run_config).await;
            if !paced {
                peak = summary.throughput_ops_s;
            }
            let report = Report {
                format_version: FORMAT_VERSION,
                kvbench_version: env!("CARGO_PKG_VERSION"),
                started_at_unix_s,
                target: target.info(),
                workload: run_config.workload.clone(),
                params: Params::of(&run_config, warmup_text(run_config.warmup), load.is_some()),
                load: load.take(),
                run: Some(summary),
                machine: Machine::detect(),
            };
            let slug: String = who.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect();
            let name = format!("{}-{slug}-{letter}{}.json", scenario.id, if paced { "-half-peak" } else { "" });
            let json = config.results_dir.join("results").join(name);
            std::fs::create_dir_all(json.parent().unwrap_or(Path::new(".")))?;
            std::fs::write(&json, serde_json::to_string_pretty(&report)? + "\n")
                .with_context(|| format!("writing {}", json.display()))?;
            out.push(Measured { report, json, half_peak: paced });
        }
    }
    Ok(out)
}

async fn run_scenario(config: &SuiteConfig, scenario: Scenario) -> Result<ScenarioResult> {
    let half_peak = scenario.goals.iter().find_map(|g| match g {
        Goal::HalfPeakP99 { workload, .. } => Some(*workload),
        Goal::Ratio { .. } => None,
    });
    let ringkv = Ringkv::start(config, &scenario).await?;
    let endpoints: Vec<String> =
        (0..scenario.nodes).map(|i| format!("127.0.0.1:{}", config.grpc_base_port + i)).collect();
    let ringkv_runs = async {
        let mut runs = Vec::new();
        for (i, &protocol) in scenario.protocols.iter().enumerate() {
            let who = format!("{}-{}n-{}", protocol.target_name(), scenario.nodes, scenario.sync);
            let load = i == 0;
            runs.extend(match protocol {
                Protocol::Grpc => {
                    let target =
                        RingKvGrpc::connect(&endpoints.join(","), scenario.nodes.into(), scenario.consistency).await?;
                    measure(target, config, &scenario, &who, load, half_peak).await?
                }
                Protocol::Resp => {
                    let resp = format!("127.0.0.1:{}", config.resp_base_port);
                    measure(Redis::connect_ringkv(&resp, 1).await?, config, &scenario, &who, load, half_peak).await?
                }
            });
        }
        Ok::<_, anyhow::Error>(runs)
    }
    .await;
    ringkv.stop().await?;
    let ringkv_runs = ringkv_runs?;

    let peer = scenario.peer;
    let (peer_runs, peer_skipped) = if !on_path(peer.binary()) {
        let why = format!("{} is not installed ({})", peer.binary(), peer.install_hint());
        eprintln!("suite: {}: skipping the peer: {why}", scenario.id);
        (Vec::new(), Some(why))
    } else {
        peers_script(config, "start", peer).await?;
        let runs = async {
            match peer {
                Peer::Redis(mode) => {
                    let target = Redis::connect("127.0.0.1:6399", 1).await?;
                    measure(target, config, &scenario, &format!("redis-{mode}"), true, half_peak).await
                }
                Peer::Etcd(n) => {
                    let endpoints: Vec<String> = (0..n).map(|i| format!("127.0.0.1:{}", 2379 + 100 * i)).collect();
                    let target = Etcd::connect(&endpoints.join(","), n as usize).await?;
                    measure(target, config, &scenario, &format!("etcd-{n}"), true, half_peak).await
                }
            }
        }
        .await;
        peers_script(config, "stop", peer).await?;
        (runs?, None)
    };
    Ok(ScenarioResult { scenario, ringkv: ringkv_runs, peer: peer_runs, peer_skipped })
}

/// Runs the matrix (or the scenarios in `config.only`).
pub async fn run(config: SuiteConfig) -> Result<SuiteResult> {
    let started_at_unix_s = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let mut scenarios = Vec::new();
    for scenario in standard_matrix(&config) {
        if !config.only.is_empty() && !config.only.iter().any(|id| id == scenario.id) {
            continue;
        }
        scenarios.push(run_scenario(&config, scenario).await?);
    }
    let commit = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .await
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    let mut peer_versions = Vec::new();
    for binary in ["redis-server", "etcd"] {
        if let Some(v) = version_of(binary).await {
            peer_versions.push(v);
        }
    }
    Ok(SuiteResult { scenarios, machine: Machine::detect(), started_at_unix_s, commit, peer_versions, config })
}
