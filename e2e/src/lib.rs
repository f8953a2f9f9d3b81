//! End-to-end test harness of RingKV: real `kvnode` processes on real
//! sockets, driven by gRPC, HTTP and the `kvctl` binary.
//!
//! Fault injection (SIGKILL, SIGTERM, journal corruption) happens from the
//! outside, exactly as an operator or a crash would do it. Every helper waits
//! on a condition with a deadline; none sleeps and hopes.
//!
//! # Layout
//! - [`binaries`]: finds `kvnode` / `kvctl` in the workspace target dir and
//!   builds them once per test process.
//! - [`node`]: [`NodeProcess`], one running `kvnode` (start, kill -9, SIGTERM,
//!   SIGSTOP/SIGCONT, restart on the same data dir) and its [`NodeOptions`].
//! - [`wait`]: [`wait_until`], the only way tests wait.
//! - [`kvctl`]: runs the `kvctl` binary against a node.
//! - [`grpc`]: gRPC client helpers (connect, put, get, scan).
//! - [`journal`]: finds and damages fjall journal files for recovery tests.
//! - [`cluster`]: [`Cluster`], several nodes forming one cluster (start,
//!   wait until all see each other alive, kill, restart, status, metrics).
//! - [`netns`]: [`netns::NetLab`], nodes in network namespaces of their own
//!   and the nemesis that partitions them with nftables.
//! - [`history`]: records write attempts and checks what survived them
//!   (no lost, invented or stale value; identical copies).
//! - [`ports`]: [`ports::PortBlock`], fixed ports for nodes started all at
//!   once that seed each other.
//! - [`bench`]: the core of the `kvbench` binary (YCSB workloads, targets, measurement).

pub mod bench;
pub mod binaries;
pub mod cluster;
pub mod grpc;
pub mod history;
pub mod journal;
pub mod kvctl;
pub mod netns;
pub mod node;
pub mod ports;
pub mod wait;

pub use cluster::Cluster;
pub use kvctl::{KvctlOutput, kvctl, kvctl_with_env};
pub use node::{NodeOptions, NodeProcess, SyncMode};
pub use wait::wait_until;
