//! Runs the real `kvctl` binary against a node.

use std::process::Output;
use std::time::Duration;

use anyhow::{Context as _, Result};

use crate::binaries::binaries;

/// How long one `kvctl` invocation may take.
pub const KVCTL_TIMEOUT: Duration = Duration::from_secs(30);

/// The result of one `kvctl` run, with its output decoded as UTF-8 (lossily).
#[derive(Debug, Clone)]
pub struct KvctlOutput {
    /// The arguments after `--endpoint`, for messages.
    pub args: Vec<String>,
    /// Exit code; `None` when killed by a signal.
    pub code: Option<i32>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl KvctlOutput {
    fn from_output(args: Vec<String>, out: Output) -> Self {
        Self {
            args,
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// True when the exit code is 0.
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
}

impl std::fmt::Display for KvctlOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "kvctl {:?} exited {:?}\nstdout: {:?}\nstderr: {:?}", self.args, self.code, self.stdout, self.stderr)
    }
}

/// Runs `kvctl --endpoint ENDPOINT ARGS…` (endpoint as `HOST:PORT`).
pub async fn kvctl(endpoint: impl std::fmt::Display, args: &[&str]) -> Result<KvctlOutput> {
    kvctl_with_env(endpoint, args, &[]).await
}

/// Variables of the caller's environment that would change what kvctl does;
/// removed so that tests are hermetic (set them with [`kvctl_with_env`]).
const KVCTL_ENV: [&str; 5] = ["RINGKV_ENDPOINT", "RINGKV_TLS_CA", "RINGKV_TLS_CERT", "RINGKV_TLS_KEY", "RINGKV_TOKEN"];

/// [`kvctl`] with these environment variables set.
pub async fn kvctl_with_env(
    endpoint: impl std::fmt::Display,
    args: &[&str],
    env: &[(&str, &str)],
) -> Result<KvctlOutput> {
    let bins = binaries()?;
    let endpoint = endpoint.to_string();
    let mut cmd = tokio::process::Command::new(&bins.kvctl);
    cmd.arg("--endpoint").arg(&endpoint).args(args).kill_on_drop(true);
    for name in KVCTL_ENV {
        cmd.env_remove(name);
    }
    cmd.envs(env.iter().copied());
    let out = tokio::time::timeout(KVCTL_TIMEOUT, cmd.output())
        .await
        .with_context(|| format!("kvctl {args:?} did not finish within {KVCTL_TIMEOUT:?}"))?
        .with_context(|| format!("run kvctl {args:?}"))?;
    Ok(KvctlOutput::from_output(args.iter().map(|a| (*a).to_owned()).collect(), out))
}
