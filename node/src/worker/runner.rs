//! [`WorkerRunner`]: spawns every [`Worker`] with the loop they share,
//! records their state, and stops them (and the node's [`Jobs`]) with one
//! deadline. See the module docs of `worker` for the loop.

use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use futures::FutureExt;
use prometheus::{IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::metrics::must;

use super::{Jobs, Worker, WorkerState, backoff};

/// One worker as [`WorkerRunner::list`] shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerStatus {
    /// The worker's name.
    pub name: &'static str,
    /// What it is doing: waiting (Idle), working (Busy) or ended (Done:
    /// finished, stopped or panicked; `last_error` says which).
    pub state: WorkerState,
    /// `work` calls so far.
    pub iterations: u64,
    /// Failed `work` calls so far.
    pub errors: u64,
    /// Failed `work` calls since the last success.
    pub consecutive_errors: u32,
    /// The last failure (or panic), if any.
    pub last_error: Option<String>,
    /// When the last `work` call ended.
    pub last_run: Option<SystemTime>,
}

/// What [`WorkerRunner::stop`] saw.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StopReport {
    /// Every worker's final status.
    pub workers: Vec<WorkerStatus>,
    /// Workers and jobs still running at the deadline, which were aborted.
    pub aborted: Vec<&'static str>,
}

/// `ringkv_worker_state{worker}` and `ringkv_worker_errors_total{worker}`.
#[derive(Debug, Clone)]
struct WorkerMetrics {
    state: IntGaugeVec,
    errors: IntCounterVec,
}

impl WorkerMetrics {
    fn new() -> Self {
        Self {
            state: must(IntGaugeVec::new(
                Opts::new("worker_state", "Background worker state: 0 idle, 1 busy, 2 done (finished or stopped)"),
                &["worker"],
            )),
            errors: must(IntCounterVec::new(
                Opts::new("worker_errors_total", "Failed units of work (and panics) of a background worker"),
                &["worker"],
            )),
        }
    }

    fn register(&self, registry: &Registry) {
        for c in [Box::new(self.state.clone()) as Box<dyn prometheus::core::Collector>, Box::new(self.errors.clone())] {
            if let Err(e) = registry.register(c) {
                tracing::warn!(error = %e, "cannot register a worker metric");
            }
        }
    }
}

/// One worker's shared record: its status and its metric children.
#[derive(Debug)]
struct Tracker {
    status: Mutex<WorkerStatus>,
    state: IntGauge,
    errors: IntCounter,
}

impl Tracker {
    fn update(&self, f: impl FnOnce(&mut WorkerStatus)) {
        let mut status = self.status.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut status);
        self.state.set(status.state.gauge());
    }

    fn snapshot(&self) -> WorkerStatus {
        self.status.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Records the end of one `work` call.
    fn record(&self, outcome: Result<WorkerState, String>) {
        if outcome.is_err() {
            self.errors.inc();
        }
        self.update(|s| {
            s.iterations += 1;
            s.last_run = Some(SystemTime::now());
            match outcome {
                Ok(next) => {
                    s.state = next;
                    s.consecutive_errors = 0;
                }
                Err(e) => {
                    s.state = WorkerState::Idle;
                    s.errors += 1;
                    s.consecutive_errors = s.consecutive_errors.saturating_add(1);
                    s.last_error = Some(e);
                }
            }
        });
    }
}

/// A spawned worker.
#[derive(Debug)]
struct Running {
    name: &'static str,
    tracker: Arc<Tracker>,
    handle: JoinHandle<()>,
}

/// Runs workers and stops them together.
#[derive(Debug)]
pub struct WorkerRunner {
    stop: CancellationToken,
    running: Vec<Running>,
    jobs: Jobs,
    metrics: WorkerMetrics,
}

impl WorkerRunner {
    /// A runner whose workers stop when `parent` is cancelled or on
    /// [`WorkerRunner::stop`]; its metrics are registered nowhere.
    pub fn new(parent: &CancellationToken) -> Self {
        Self { stop: parent.child_token(), running: Vec::new(), jobs: Jobs::default(), metrics: WorkerMetrics::new() }
    }

    /// Registers the `ringkv_worker_*` metrics in `registry`.
    pub fn with_metrics(self, registry: &Registry) -> Self {
        self.metrics.register(registry);
        self
    }

    /// The node's one-shot tasks, stopped with the workers.
    pub fn jobs(&self) -> &Jobs {
        &self.jobs
    }

    /// Starts `worker` on the current runtime.
    pub fn spawn<W: Worker>(&mut self, worker: W) {
        let name = worker.name();
        let tracker = Arc::new(Tracker {
            status: Mutex::new(WorkerStatus {
                name,
                state: WorkerState::Idle,
                iterations: 0,
                errors: 0,
                consecutive_errors: 0,
                last_error: None,
                last_run: None,
            }),
            state: self.metrics.state.with_label_values(&[name]),
            errors: self.metrics.errors.with_label_values(&[name]),
        });
        tracker.state.set(WorkerState::Idle.gauge());
        tracing::debug!(worker = name, "starting worker");
        let handle = tokio::spawn(supervise(worker, self.stop.clone(), Arc::clone(&tracker)));
        self.running.push(Running { name, tracker, handle });
    }

    /// Names of the workers started.
    pub fn names(&self) -> Vec<&'static str> {
        self.running.iter().map(|r| r.name).collect()
    }

    /// Every worker's status, in the order they were started.
    pub fn list(&self) -> Vec<WorkerStatus> {
        self.running.iter().map(|r| r.tracker.snapshot()).collect()
    }

    /// Cancels every worker, closes [`Jobs`], and waits for all of them
    /// until `deadline` has passed; what is still running then is aborted
    /// and named in the report.
    pub async fn stop(self, deadline: Duration) -> StopReport {
        let until = Instant::now() + deadline;
        self.stop.cancel();
        let mut report = StopReport::default();
        for mut running in self.running {
            if tokio::time::timeout_at(until, &mut running.handle).await.is_err() {
                running.handle.abort();
                tracing::warn!(worker = running.name, ?deadline, "worker did not stop before the deadline; aborted");
                running.tracker.update(|s| s.state = WorkerState::Done);
                report.aborted.push(running.name);
            }
            report.workers.push(running.tracker.snapshot());
        }
        report.aborted.extend(self.jobs.close(until).await);
        report
    }
}

/// Runs `worker`'s loop, catching a panic so that it is logged and recorded.
async fn supervise<W: Worker>(worker: W, stop: CancellationToken, tracker: Arc<Tracker>) {
    let name = worker.name();
    let result = AssertUnwindSafe(drive(worker, &stop, &tracker)).catch_unwind().await;
    if let Err(panic) = result {
        let message = panic_message(panic.as_ref());
        tracing::error!(worker = name, panic = %message, "worker panicked; it stays stopped until the node restarts");
        tracker.errors.inc();
        tracker.update(|s| {
            s.errors += 1;
            s.last_error = Some(format!("panicked: {message}"));
        });
    }
    tracker.update(|s| s.state = WorkerState::Done);
}

/// The loop every worker shares (see the module docs).
async fn drive<W: Worker>(mut worker: W, stop: &CancellationToken, tracker: &Tracker) {
    let name = worker.name();
    let mut next = WorkerState::Idle;
    let mut consecutive = 0;
    loop {
        match next {
            WorkerState::Done => return,
            _ if stop.is_cancelled() => return,
            WorkerState::Busy => tokio::task::yield_now().await,
            WorkerState::Idle => {
                let pause = backoff(consecutive);
                let wait = async {
                    tokio::join!(tokio::time::sleep(pause), worker.wait_for_work());
                };
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = wait => {}
                }
            }
        }
        tracker.update(|s| s.state = WorkerState::Busy);
        match worker.work(stop).await {
            Ok(state) => {
                consecutive = 0;
                next = state;
                tracker.record(Ok(state));
            }
            Err(e) => {
                consecutive += 1;
                next = WorkerState::Idle;
                tracing::warn!(
                    worker = name,
                    error = %e,
                    consecutive_errors = consecutive,
                    backoff = ?backoff(consecutive),
                    "background work failed; retrying when there is work again"
                );
                tracker.record(Err(e.to_string()));
            }
        }
    }
}

/// The text of a panic payload (`panic!` with a literal or a formatted message).
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".to_owned())
}
