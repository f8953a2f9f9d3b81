//! The JSON report of one kvbench run, and the machine it ran on.
//!
//! One document per run: what was measured (target, workload, parameters),
//! where (machine), and the results of the load and run phases. Later
//! parts (suite, plots, docs/benchmarks.md) read these documents back, so
//! the field names are a stable format: add fields, do not rename them.

use serde::{Deserialize, Serialize};

use super::runner::{RunConfig, Stop};
use super::stats::Summary;
use super::target::TargetInfo;
use super::workload::Workload;

/// Version of the report format.
pub const FORMAT_VERSION: u32 = 1;

/// The machine a run was measured on.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Machine {
    /// Logical CPUs available to the process (`nproc`).
    pub nproc: usize,
    /// First `model name` of /proc/cpuinfo, when readable.
    pub cpu_model: Option<String>,
    /// `MemTotal` of /proc/meminfo in KiB, when readable.
    pub mem_total_kib: Option<u64>,
    /// `std::env::consts::OS`.
    pub os: String,
}

impl Machine {
    /// Describes this machine (reads /proc; missing files give `None`).
    pub fn detect() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        Self {
            nproc: std::thread::available_parallelism().map_or(1, usize::from),
            cpu_model: field(&cpuinfo, "model name").map(str::to_owned),
            mem_total_kib: field(&meminfo, "MemTotal")
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse().ok()),
            os: std::env::consts::OS.to_owned(),
        }
    }
}

/// The value of the first `name : value` line of a /proc file.
fn field<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    text.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        (key.trim() == name).then(|| value.trim())
    })
}

/// The parameters of a run, as given on the command line.
#[derive(Debug, Clone, Serialize)]
pub struct Params {
    /// Records loaded (and the key space).
    pub records: u64,
    /// Bytes per value.
    pub value_size: usize,
    /// `--operations`, when the run stopped on a count.
    pub operations: Option<u64>,
    /// `--duration` in seconds, when the run stopped on time.
    pub duration_s: Option<f64>,
    /// Client tasks.
    pub concurrency: usize,
    /// `--warmup` as given (`5s`, `1000`, `0`).
    pub warmup: String,
    /// Whether the load phase ran.
    pub load: bool,
    /// RNG seed.
    pub seed: u64,
    /// `--rate`: total operations per second when paced (absent: as fast as possible).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate: Option<f64>,
}

impl Params {
    /// The parameters of `config`; `warmup` as the user wrote it.
    pub fn of(config: &RunConfig, warmup: String, load: bool) -> Self {
        let (operations, duration_s) = match config.stop {
            Stop::Operations(n) => (Some(n), None),
            Stop::Duration(d) => (None, Some(d.as_secs_f64())),
        };
        Self {
            records: config.records,
            value_size: config.value_size,
            operations,
            duration_s,
            concurrency: config.concurrency,
            warmup,
            load,
            seed: config.seed,
            rate: config.rate,
        }
    }
}

/// One kvbench run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// [`FORMAT_VERSION`].
    pub format_version: u32,
    /// The kvbench that produced it.
    pub kvbench_version: &'static str,
    /// Seconds since the Unix epoch at the start of the run.
    pub started_at_unix_s: u64,
    /// The store.
    pub target: TargetInfo,
    /// The workload.
    pub workload: Workload,
    /// Parameters.
    pub params: Params,
    /// The load phase, when it ran.
    pub load: Option<Summary>,
    /// The measured run (absent for `kvbench load`).
    pub run: Option<Summary>,
    /// Where it ran.
    pub machine: Machine,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_fields_are_found() {
        let text = "processor\t: 0\nmodel name\t: AMD EPYC\nflags\t: x\n";
        assert_eq!(field(text, "model name"), Some("AMD EPYC"));
        assert_eq!(field(text, "missing"), None);
        assert!(Machine::detect().nproc >= 1);
    }
}
