//! Locates the `kvnode` and `kvctl` binaries of this workspace.
//!
//! `cargo test -p ringkv-e2e` does not build other packages' binaries, so the
//! first test of each test process runs `cargo build --workspace --bins` (a no-op
//! when they are fresh, and the reason a fresh clone just works). Set
//! `RINGKV_E2E_NO_BUILD=1` to skip that and use whatever is in the target
//! dir. The target dir is `$CARGO_TARGET_DIR` when set, else
//! `<workspace>/target`; the profile is always `debug`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use anyhow::{Context as _, Result, bail};

/// Paths of the binaries under test.
#[derive(Debug, Clone)]
pub struct Binaries {
    /// The node server.
    pub kvnode: PathBuf,
    /// The command-line client.
    pub kvctl: PathBuf,
}

/// The workspace root (the parent of this crate's directory).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}

/// `$CARGO_TARGET_DIR` (relative paths are taken from the workspace root) or
/// `<workspace>/target`.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => workspace_root().join(dir),
        _ => workspace_root().join("target"),
    }
}

/// The binaries, built on first use (once per process).
pub fn binaries() -> Result<&'static Binaries> {
    static BINARIES: OnceLock<Result<Binaries, String>> = OnceLock::new();
    BINARIES
        .get_or_init(|| locate_or_build().map_err(|e| format!("{e:#}")))
        .as_ref()
        .map_err(|e| anyhow::anyhow!("{e}"))
}

fn locate_or_build() -> Result<Binaries> {
    let dir = target_dir().join("debug");
    let exe = |name: &str| dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    let bins = Binaries { kvnode: exe("kvnode"), kvctl: exe("kvctl") };
    let missing = !bins.kvnode.is_file() || !bins.kvctl.is_file();
    if missing || std::env::var_os("RINGKV_E2E_NO_BUILD").is_none() {
        build()?;
    }
    for path in [&bins.kvnode, &bins.kvctl] {
        if !path.is_file() {
            bail!("{} does not exist after `cargo build`", path.display());
        }
    }
    Ok(bins)
}

/// The same build `.ci/run` does before the tests: building every binary of
/// the workspace at once unifies dependency features the same way each time,
/// so the harness reuses those artifacts instead of compiling a second
/// variant of the dependency graph (which doubled CI's disk use).
const BUILD_ARGS: [&str; 3] = ["build", "--workspace", "--bins"];

fn build() -> Result<()> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(&cargo)
        .current_dir(workspace_root())
        .args(BUILD_ARGS)
        .status()
        .with_context(|| format!("cannot run {}", cargo.to_string_lossy()))?;
    if !status.success() {
        bail!("`cargo {}` failed: {status}", BUILD_ARGS.join(" "));
    }
    Ok(())
}
