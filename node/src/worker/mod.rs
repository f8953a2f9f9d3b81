//! Background workers: the [`Worker`] trait every background loop of the
//! node implements, the [`WorkerRunner`] that runs, lists and stops them,
//! and [`Jobs`], the one-shot tasks the node starts (entering the ring,
//! decommission, removenode, a requested repair).
//!
//! A worker does one unit of work per [`Worker::work`] call and says what
//! comes next ([`WorkerState`]): `Busy` (call again at once), `Idle` (wait
//! for [`Worker::wait_for_work`]: a timer or a notification) or `Done`. The
//! runner owns the loop (Garage's shape): it starts by waiting, calls `work`
//! while Busy, stops on Done or when the stop token is cancelled, logs and
//! counts a failed `work` and backs off after repeated failures, and records
//! each worker's state for [`WorkerRunner::list`] and the
//! `ringkv_worker_*` metrics.
//!
//! Invariants: the runner never interrupts a `work` call (a worker whose
//! work may take long, like anti-entropy, selects on `stop` itself) except
//! by aborting it when the stop deadline has passed; every task the runner
//! or [`Jobs`] spawns is awaited or aborted in [`WorkerRunner::stop`], and a
//! panic is caught, logged and recorded, never lost.
//!
//! Each worker lives beside what it works on (`antientropy::RepairWorker`,
//! `hints::HandoffWorker`, `membership::GossipWorker`); the two that belong
//! to no other module live here (`purge`, `sync`). This module may call
//! `metrics` and `storage` / `replication` (for those two workers).

mod jobs;
mod purge;
mod runner;
mod sync;
#[cfg(test)]
mod tests;

pub use jobs::{JobError, Jobs};
pub use purge::PurgeWorker;
pub use runner::{StopReport, WorkerRunner, WorkerStatus};
pub use sync::{SyncError, SyncWorker};

use std::future::Future;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// What a worker asks the runner to do after a [`Worker::work`] call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum WorkerState {
    /// More work is ready: call `work` again at once.
    Busy,
    /// Nothing to do now: wait for [`Worker::wait_for_work`].
    Idle,
    /// Finished for good: the runner ends the worker.
    Done,
}

impl WorkerState {
    /// The lower-case name used in logs and listings.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Busy => "busy",
            Self::Idle => "idle",
            Self::Done => "done",
        }
    }

    /// The value of `ringkv_worker_state`: 0 idle, 1 busy, 2 done.
    fn gauge(self) -> i64 {
        match self {
            Self::Idle => 0,
            Self::Busy => 1,
            Self::Done => 2,
        }
    }
}

/// A background loop, run by a [`WorkerRunner`].
pub trait Worker: Send + 'static {
    /// Why one unit of work failed (logged, counted and shown in listings).
    type Error: std::fmt::Display + Send;

    /// Name shown in logs, listings and the `worker` metric label.
    fn name(&self) -> &'static str;

    /// Does one unit of work and says what comes next. `stop` is cancelled
    /// when the node stops; long work should end early on it.
    fn work(&mut self, stop: &CancellationToken) -> impl Future<Output = Result<WorkerState, Self::Error>> + Send;

    /// Waits until there may be work (a timer tick, a notification). The
    /// runner calls it first, before any `work`, and after every Idle.
    fn wait_for_work(&mut self) -> impl Future<Output = ()> + Send;
}

/// The least time the runner waits after `consecutive` failed `work` calls
/// in a row, on top of [`Worker::wait_for_work`]: none after a single failure
/// (the worker retries when it has work, as before the runner existed),
/// then 1 s, 2 s, 4 s, ... up to one minute.
pub fn backoff(consecutive: u32) -> Duration {
    match consecutive {
        0 | 1 => Duration::ZERO,
        n => Duration::from_secs(1 << (n - 2).min(6)).min(MAX_BACKOFF),
    }
}

/// The longest [`backoff`].
const MAX_BACKOFF: Duration = Duration::from_secs(60);
