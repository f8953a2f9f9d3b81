//! [`NodeProcess`]: one real `kvnode` process, and how to hurt it.
//!
//! The node is started with ports 0 (or on fixed addresses, e.g. inside a
//! network namespace under `ip netns exec`) and reports its bound addresses on
//! stdout (`RINGKV_READY grpc=… http=… host_id=…`); its stderr (the logs)
//! goes to a file in the data dir, printed when a test panics or a start
//! fails. Dropping a `NodeProcess` SIGKILLs the process, so a failing test
//! never leaks nodes.

use std::fs::File;
use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, anyhow, bail, ensure};

use crate::binaries::binaries;

/// How long a node may take to print its ready line.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);
/// The line prefix that says the node is ready.
pub const READY_PREFIX: &str = "RINGKV_READY";

/// `--sync` policy of a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncMode {
    /// fsync before acknowledging (group commit).
    Always,
    /// fsync on a timer.
    Periodic,
    /// Never fsync explicitly.
    None,
}

impl SyncMode {
    /// The command-line spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Always => "always",
            Self::Periodic => "periodic",
            Self::None => "none",
        }
    }
}

/// How to start a node. A fluent builder: `NodeOptions::new(dir).sync(SyncMode::Always)`.
#[derive(Debug, Clone)]
pub struct NodeOptions {
    /// The node's data directory (created if missing; reused by restarts).
    pub data_dir: PathBuf,
    /// `--sync`; the node's default when `None`.
    pub sync: Option<SyncMode>,
    /// Extra arguments appended to `kvnode serve …`.
    pub extra_args: Vec<String>,
    /// Contents of a TOML config file passed with `--config`.
    pub config_toml: Option<String>,
    /// Extra environment variables of the process (e.g. `RINGKV_TEST_HOOKS=1`).
    pub env: Vec<(String, String)>,
    /// A command the node runs under, e.g. `ip netns exec NS` (it must
    /// exec `kvnode`, not fork it, so that the child's pid is the node's).
    pub wrapper: Vec<String>,
    /// `--grpc-addr`; `127.0.0.1:0` when `None`.
    pub grpc_addr: Option<SocketAddr>,
    /// `--http-addr`; `127.0.0.1:0` when `None`.
    pub http_addr: Option<SocketAddr>,
}

impl NodeOptions {
    /// Defaults: the node's own sync policy, no extra arguments, no config file.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            sync: None,
            extra_args: Vec::new(),
            config_toml: None,
            env: Vec::new(),
            wrapper: Vec::new(),
            grpc_addr: None,
            http_addr: None,
        }
    }

    /// Runs the node inside network namespace `ns` (`ip netns exec NS kvnode …`).
    pub fn netns(mut self, ns: impl Into<String>) -> Self {
        self.wrapper = vec!["ip".into(), "netns".into(), "exec".into(), ns.into()];
        self
    }

    /// Listens on these addresses instead of `127.0.0.1:0` (fixed ports
    /// survive a restart, so peers and seeds keep working).
    pub fn listen(mut self, grpc: SocketAddr, http: SocketAddr) -> Self {
        self.grpc_addr = Some(grpc);
        self.http_addr = Some(http);
        self
    }

    /// Sets `--sync`.
    pub fn sync(mut self, sync: SyncMode) -> Self {
        self.sync = Some(sync);
        self
    }

    /// Appends one extra argument.
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.extra_args.push(arg.into());
        self
    }

    /// Sets an environment variable of the process.
    pub fn env(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((name.into(), value.into()));
        self
    }

    /// Passes a config file with these contents.
    pub fn config_toml(mut self, toml: impl Into<String>) -> Self {
        self.config_toml = Some(toml.into());
        self
    }

    /// Appends `--seeds ADDR,ADDR,…` (nothing when `seeds` is empty: a
    /// node without seeds starts a cluster of its own).
    pub fn seeds<A: std::fmt::Display>(self, seeds: impl IntoIterator<Item = A>) -> Self {
        let seeds: Vec<String> = seeds.into_iter().map(|s| s.to_string()).collect();
        if seeds.is_empty() { self } else { self.arg("--seeds").arg(seeds.join(",")) }
    }

    /// Appends `--replication-factor N`.
    pub fn replication_factor(self, n: u32) -> Self {
        self.arg("--replication-factor").arg(n.to_string())
    }
}

/// What the ready line announced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadyLine {
    /// Bound gRPC address.
    pub grpc: SocketAddr,
    /// Bound HTTP address.
    pub http: SocketAddr,
    /// The node's persistent host id (hex).
    pub host_id: String,
    /// Bound RESP address, when the node serves the Redis protocol.
    pub resp: Option<SocketAddr>,
}

impl ReadyLine {
    /// Parses `RINGKV_READY grpc=ADDR http=ADDR host_id=HEX`; `None` for any other line.
    pub fn parse(line: &str) -> Option<Self> {
        let mut words = line.split_whitespace();
        if words.next()? != READY_PREFIX {
            return None;
        }
        let (mut grpc, mut http, mut host_id, mut resp) = (None, None, None, None);
        for word in words {
            match word.split_once('=')? {
                ("grpc", v) => grpc = v.parse().ok(),
                ("http", v) => http = v.parse().ok(),
                ("host_id", v) => host_id = Some(v.to_owned()),
                ("resp", v) => resp = v.parse().ok(),
                _ => {}
            }
        }
        Some(Self { grpc: grpc?, http: http?, host_id: host_id?, resp })
    }
}

/// A running (or stopped) `kvnode` process.
#[derive(Debug)]
pub struct NodeProcess {
    options: NodeOptions,
    child: Child,
    ready: ReadyLine,
    stderr_path: PathBuf,
    starts: u32,
}

impl NodeProcess {
    /// Spawns `kvnode serve` and waits (up to [`START_TIMEOUT`]) for its ready line.
    pub async fn start(options: NodeOptions) -> Result<Self> {
        Self::start_nth(options, 1).await
    }

    async fn start_nth(options: NodeOptions, starts: u32) -> Result<Self> {
        let opts = options.clone();
        let (child, ready, stderr_path) = tokio::task::spawn_blocking(move || spawn_and_wait_ready(&opts, starts))
            .await
            .context("start task panicked")??;
        Ok(Self { options, child, ready, stderr_path, starts })
    }

    /// `http://127.0.0.1:PORT` of the gRPC listener (for tonic).
    pub fn grpc_endpoint(&self) -> String {
        format!("http://{}", self.ready.grpc)
    }

    /// `127.0.0.1:PORT` of the gRPC listener (for `kvctl --endpoint`).
    pub fn grpc_addr(&self) -> SocketAddr {
        self.ready.grpc
    }

    /// `http://127.0.0.1:PORT` of the HTTP listener, without a trailing slash.
    pub fn http_base(&self) -> String {
        format!("http://{}", self.ready.http)
    }

    /// `redis://127.0.0.1:PORT/` of the RESP listener, when started with `--resp-addr`.
    pub fn resp_url(&self) -> Option<String> {
        self.ready.resp.map(|a| format!("redis://{a}/"))
    }

    /// The host id the node announced.
    pub fn host_id(&self) -> &str {
        &self.ready.host_id
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.options.data_dir
    }

    /// True while the process has not exited.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGKILLs the process (`Child::kill` is SIGKILL on Unix) and reaps it.
    /// Returns its exit status: a test asserts [`killed_by_sigkill`] on it to
    /// prove the fault fired (a process that had already exited keeps its
    /// own status).
    pub fn kill9(&mut self) -> Result<ExitStatus> {
        self.child.kill().context("SIGKILL kvnode")?;
        self.child.wait().context("reap kvnode")
    }

    /// SIGSTOPs the process: it stays alive but answers nothing (a long GC
    /// pause, a frozen VM). Fails unless the kernel reports it stopped.
    pub async fn pause(&mut self) -> Result<()> {
        self.signal("STOP")?;
        let pid = self.pid();
        crate::wait::wait_until(Duration::from_secs(5), &format!("pid {pid} is stopped"), async || {
            process_state(pid) == Some('T')
        })
        .await
    }

    /// SIGCONTs a [`pause`](Self::pause)d process. Fails unless it runs again.
    pub async fn resume(&mut self) -> Result<()> {
        self.signal("CONT")?;
        let pid = self.pid();
        crate::wait::wait_until(Duration::from_secs(5), &format!("pid {pid} runs again"), async || {
            process_state(pid).is_some_and(|s| s != 'T')
        })
        .await
    }

    fn signal(&self, name: &str) -> Result<()> {
        let pid = self.pid().to_string();
        let status = Command::new("kill").args([&format!("-{name}"), &pid]).status().context("run kill")?;
        ensure!(status.success(), "kill -{name} {pid} failed: {status}");
        Ok(())
    }

    /// Sends SIGTERM and waits up to `timeout` for the process to exit;
    /// SIGKILLs it and fails if it does not.
    pub async fn terminate(&mut self, timeout: Duration) -> Result<ExitStatus> {
        let pid = self.pid().to_string();
        let status = Command::new("kill").args(["-TERM", &pid]).status().context("run kill -TERM")?;
        if !status.success() {
            bail!("kill -TERM {pid} failed: {status}");
        }
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().context("wait for kvnode")? {
                return Ok(status);
            }
            if tokio::time::Instant::now() >= deadline {
                let _ = self.kill9();
                bail!("kvnode did not exit within {timeout:?} of SIGTERM\n{}", self.stderr_tail(40));
            }
            tokio::time::sleep(crate::wait::POLL_INTERVAL).await;
        }
    }

    /// Starts the node again on the same data dir (with new ports). The old
    /// process must have exited (use [`kill9`](Self::kill9) or
    /// [`terminate`](Self::terminate) first).
    pub async fn restart(&mut self) -> Result<()> {
        if self.is_running() {
            bail!("restart() of a running node (pid {}); kill9() or terminate() it first", self.pid());
        }
        let next = Self::start_nth(self.options.clone(), self.starts + 1).await?;
        // The old child is reaped; replacing it drops nothing that runs.
        *self = next;
        Ok(())
    }

    /// Starts the node again with other `options` (typically other
    /// `--seeds`, since a peer's address changes when it restarts). The data
    /// dir must stay the same: this is the same node coming back. The old
    /// process must have exited, as for [`restart`](Self::restart).
    pub async fn restart_with(&mut self, options: NodeOptions) -> Result<()> {
        if self.is_running() {
            bail!("restart_with() of a running node (pid {}); kill9() or terminate() it first", self.pid());
        }
        if options.data_dir != self.options.data_dir {
            bail!(
                "restart_with() must keep the data dir {} (got {})",
                self.options.data_dir.display(),
                options.data_dir.display()
            );
        }
        let next = Self::start_nth(options, self.starts + 1).await?;
        *self = next;
        Ok(())
    }

    /// The options of the current run.
    pub fn options(&self) -> &NodeOptions {
        &self.options
    }

    /// Path of the stderr log of the current run.
    pub fn stderr_path(&self) -> &Path {
        &self.stderr_path
    }

    /// The whole stderr log of the current run.
    pub fn stderr_log(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// The last `lines` lines of the current run's stderr, with a header.
    pub fn stderr_tail(&self, lines: usize) -> String {
        tail_of(&self.stderr_path, lines)
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("{}", self.stderr_tail(60));
        }
    }
}

/// The state letter of process `pid` in `/proc/PID/stat` (`R`, `S`, `T` = stopped, …).
pub fn process_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `pid (comm) S …`: the comm may contain spaces and parentheses.
    stat.rsplit_once(')')?.1.split_whitespace().next()?.chars().next()
}

/// True when `status` says the process died of SIGKILL.
pub fn killed_by_sigkill(status: &ExitStatus) -> bool {
    use std::os::unix::process::ExitStatusExt as _;
    status.signal() == Some(9)
}

/// The node's `Error:` line (kept even when a backtrace follows it, as with
/// `RUST_BACKTRACE=1`) and the last `lines` lines of its log, without backtrace frames.
fn tail_of(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let error = text.lines().find(|l| l.starts_with("Error: ")).map(|l| format!("{l}\n")).unwrap_or_default();
    let all: Vec<&str> = text.lines().take_while(|l| !l.starts_with("Stack backtrace:")).collect();
    let start = all.len().saturating_sub(lines);
    format!("{error}---- last {} lines of {} ----\n{}", all.len() - start, path.display(), all[start..].join("\n"))
}

fn command_for(options: &NodeOptions, stderr: File) -> Result<Command> {
    let bins = binaries()?;
    let mut cmd = match options.wrapper.split_first() {
        Some((program, args)) => {
            let mut cmd = Command::new(program);
            cmd.args(args).arg(&bins.kvnode);
            cmd
        }
        None => Command::new(&bins.kvnode),
    };
    let any_port = SocketAddr::from(([127, 0, 0, 1], 0));
    cmd.arg("serve").arg("--data-dir").arg(&options.data_dir);
    cmd.arg("--grpc-addr").arg(options.grpc_addr.unwrap_or(any_port).to_string());
    cmd.arg("--http-addr").arg(options.http_addr.unwrap_or(any_port).to_string());
    if let Some(toml) = &options.config_toml {
        let path = options.data_dir.join("kvnode-e2e.toml");
        std::fs::write(&path, toml).with_context(|| format!("write {}", path.display()))?;
        cmd.arg("--config").arg(path);
    }
    if let Some(sync) = options.sync {
        cmd.args(["--sync", sync.as_str()]);
    }
    cmd.args(&options.extra_args);
    cmd.envs(options.env.iter().map(|(k, v)| (k, v)));
    if std::env::var_os("RUST_LOG").is_none() {
        cmd.env("RUST_LOG", "info");
    }
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(stderr);
    Ok(cmd)
}

fn spawn_and_wait_ready(options: &NodeOptions, starts: u32) -> Result<(Child, ReadyLine, PathBuf)> {
    std::fs::create_dir_all(&options.data_dir).with_context(|| format!("create {}", options.data_dir.display()))?;
    let stderr_path = options.data_dir.join(format!("kvnode-e2e-{starts}.stderr.log"));
    let stderr = File::create(&stderr_path).with_context(|| format!("create {}", stderr_path.display()))?;
    let mut cmd = command_for(options, stderr)?;
    let mut child = cmd.spawn().with_context(|| format!("spawn {cmd:?}"))?;
    let stdout = child.stdout.take().ok_or_else(|| anyhow!("kvnode stdout not piped"))?;
    // A thread owns stdout for the whole life of the process, so the pipe
    // never fills up and blocks the node.
    let (lines_tx, lines_rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = lines_tx.send(line);
        }
    });
    match wait_ready(&lines_rx) {
        Ok(ready) => Ok((child, ready, stderr_path)),
        Err(err) => {
            let _ = child.kill();
            let status = child.wait().map(|s| s.to_string()).unwrap_or_else(|e| e.to_string());
            Err(err.context(format!("kvnode {cmd:?} did not become ready ({status})\n{}", tail_of(&stderr_path, 60))))
        }
    }
}

fn wait_ready(lines: &mpsc::Receiver<String>) -> Result<ReadyLine> {
    let deadline = Instant::now() + START_TIMEOUT;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) => match ReadyLine::parse(&line) {
                Some(ready) => return Ok(ready),
                None if line.starts_with(READY_PREFIX) => bail!("malformed ready line: {line:?}"),
                None => seen.push(line),
            },
            Err(mpsc::RecvTimeoutError::Timeout) => {
                bail!("no {READY_PREFIX} line within {START_TIMEOUT:?}; stdout so far: {seen:?}")
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                bail!("kvnode closed stdout before {READY_PREFIX}; stdout: {seen:?}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_process_state() {
        let state = process_state(std::process::id());
        assert!(matches!(state, Some('R' | 'S')), "this test process is in state {state:?}");
        assert_eq!(process_state(u32::MAX), None);
    }

    #[test]
    fn parses_the_ready_line() {
        let line = "RINGKV_READY grpc=127.0.0.1:4000 http=127.0.0.1:4001 host_id=00ff";
        let ready = ReadyLine::parse(line);
        assert_eq!(
            ready,
            Some(ReadyLine {
                grpc: SocketAddr::from(([127, 0, 0, 1], 4000)),
                http: SocketAddr::from(([127, 0, 0, 1], 4001)),
                host_id: "00ff".into(),
                resp: None,
            })
        );
        let with_resp = ReadyLine::parse(&format!("{line} resp=127.0.0.1:4002")).expect("parses");
        assert_eq!(with_resp.resp, Some(SocketAddr::from(([127, 0, 0, 1], 4002))));
        assert_eq!(ReadyLine::parse("listening on 127.0.0.1:4000"), None);
        assert_eq!(ReadyLine::parse("RINGKV_READY grpc=127.0.0.1:4000"), None);
    }
}
