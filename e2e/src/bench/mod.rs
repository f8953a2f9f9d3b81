//! `kvbench`: a YCSB-style benchmark of RingKV and its peers.
//!
//! The core workloads A–F with uniform, zipfian and latest key choosers run
//! against any [`Target`]: RingKV over gRPC or HTTP, Redis, or etcd. Each client
//! task measures into its own HdrHistograms (merged at the end, so the hot
//! path takes no lock); the result is a human table and a JSON [`Report`].
//!
//! # Layout
//! - [`workload`]: the YCSB core workloads and their operation mix.
//! - [`keys`]: key names and the key choosers (scrambled zipfian, latest).
//! - [`target`]: the [`Target`] trait and [`TargetError`].
//! - [`targets`]: one implementation per store.
//! - [`etcdpb`]: etcd's v3 KV API, generated from the vendored protos (`e2e/proto/etcd/`).
//! - [`runner`]: the load and run phases (client tasks, warm-up, progress bars).
//! - [`stats`]: per-task recorders, merging, per-operation statistics, the table.
//! - [`report`]: the JSON report and the machine description.
//! - [`suite`]: the standard matrix against the peers (`kvbench suite`).
//! - [`plot`], [`markdown`]: PNG plots and the generated part of docs/benchmarks.md.

pub mod etcdpb;
pub mod keys;
pub mod markdown;
pub mod plot;
pub mod report;
pub mod runner;
pub mod stats;
pub mod suite;
pub mod target;
pub mod targets;
pub mod workload;

pub use report::{Machine, Report};
pub use runner::{RunConfig, Stop, Warmup};
pub use stats::Summary;
pub use target::{Target, TargetError, TargetInfo};
pub use workload::{OpKind, Workload};
