//! Tests of the [`WorkerRunner`] loop with small scripted workers (virtual
//! time: every wait below is bounded and advances only when the runtime idles).

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use prometheus::Registry;
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::*;

/// Busy `busy` times, then Idle; waits for `wake` between Idle calls.
struct Counting {
    busy: u32,
    calls: Arc<AtomicU32>,
    wake: Arc<Notify>,
    first_wait: bool,
}

impl Worker for Counting {
    type Error = std::convert::Infallible;

    fn name(&self) -> &'static str {
        "counting"
    }

    async fn work(&mut self, _stop: &CancellationToken) -> Result<WorkerState, Self::Error> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        Ok(if n <= self.busy { WorkerState::Busy } else { WorkerState::Idle })
    }

    async fn wait_for_work(&mut self) {
        if std::mem::take(&mut self.first_wait) {
            return;
        }
        self.wake.notified().await;
    }
}

/// Fails `failures` times, then Done; each wait is one second.
struct Failing {
    failures: u32,
    calls: u32,
}

impl Worker for Failing {
    type Error = String;

    fn name(&self) -> &'static str {
        "failing"
    }

    async fn work(&mut self, _stop: &CancellationToken) -> Result<WorkerState, String> {
        self.calls += 1;
        if self.calls <= self.failures { Err(format!("failure {}", self.calls)) } else { Ok(WorkerState::Done) }
    }

    async fn wait_for_work(&mut self) {
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Its work never ends and ignores `stop`.
struct Stubborn;

impl Worker for Stubborn {
    type Error = String;

    fn name(&self) -> &'static str {
        "stubborn"
    }

    async fn work(&mut self, _stop: &CancellationToken) -> Result<WorkerState, String> {
        std::future::pending::<()>().await;
        Ok(WorkerState::Idle)
    }

    async fn wait_for_work(&mut self) {}
}

/// Panics in its first `work`.
struct Panicking;

impl Worker for Panicking {
    type Error = String;

    fn name(&self) -> &'static str {
        "panicking"
    }

    async fn work(&mut self, _stop: &CancellationToken) -> Result<WorkerState, String> {
        panic!("scripted panic");
    }

    async fn wait_for_work(&mut self) {}
}

/// Waits (virtual time, bounded) until `runner`'s worker `name` satisfies `done`.
async fn wait_for(runner: &WorkerRunner, name: &str, done: impl Fn(&WorkerStatus) -> bool) -> WorkerStatus {
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let status = runner.list().into_iter().find(|s| s.name == name).expect("the worker is listed");
        if done(&status) {
            return status;
        }
        assert!(Instant::now() < deadline, "{name} never got there: {status:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The value of `name{worker="worker"}` as `/metrics` renders it.
fn metric(registry: &Registry, name: &str, worker: &str) -> Option<f64> {
    let mut text = Vec::new();
    prometheus::Encoder::encode(&prometheus::TextEncoder::new(), &registry.gather(), &mut text).ok()?;
    let series = format!("{name}{{worker=\"{worker}\"}} ");
    String::from_utf8_lossy(&text).lines().find_map(|l| l.strip_prefix(&series)?.parse().ok())
}

#[tokio::test(start_paused = true)]
async fn a_busy_worker_is_called_at_once_until_idle_then_waits_for_work() {
    let (calls, wake) = (Arc::new(AtomicU32::new(0)), Arc::new(Notify::new()));
    let stop = CancellationToken::new();
    let registry = Registry::new();
    let mut runner = WorkerRunner::new(&stop).with_metrics(&registry);
    runner.spawn(Counting { busy: 3, calls: Arc::clone(&calls), wake: Arc::clone(&wake), first_wait: true });

    let status = wait_for(&runner, "counting", |s| s.iterations == 4).await;
    assert_eq!((status.state, status.errors, status.last_error.as_deref()), (WorkerState::Idle, 0, None));
    assert!(status.last_run.is_some());
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(calls.load(Ordering::SeqCst), 4, "3 Busy calls, one Idle, then nothing until woken");
    assert_eq!(metric(&registry, "worker_state", "counting"), Some(0.0), "idle");

    wake.notify_one();
    wait_for(&runner, "counting", |s| s.iterations == 5).await;
    let report = runner.stop(Duration::from_secs(1)).await;
    assert!(report.aborted.is_empty(), "{report:?}");
    assert_eq!(report.workers[0].state, WorkerState::Done);
    assert_eq!(metric(&registry, "worker_state", "counting"), Some(2.0), "done");
}

#[tokio::test(start_paused = true)]
async fn errors_are_counted_and_kept_and_repeated_ones_back_off() {
    let stop = CancellationToken::new();
    let registry = Registry::new();
    let mut runner = WorkerRunner::new(&stop).with_metrics(&registry);
    let started = Instant::now();
    runner.spawn(Failing { failures: 4, calls: 0 });

    let status = wait_for(&runner, "failing", |s| s.state == WorkerState::Done).await;
    assert_eq!((status.iterations, status.errors), (5, 4));
    assert_eq!(status.consecutive_errors, 0, "the last call succeeded");
    assert_eq!(status.last_error.as_deref(), Some("failure 4"));
    assert_eq!(metric(&registry, "worker_errors_total", "failing"), Some(4.0));
    // Waits: 1 s before the first call, then after failures 1..4: 1 s, max(1 s, 1 s), max(1 s, 2 s), max(1 s, 4 s).
    let took = started.elapsed();
    assert!(took >= Duration::from_secs(9) && took < Duration::from_secs(10), "{took:?}");
    assert!(runner.stop(Duration::from_secs(1)).await.aborted.is_empty());
}

#[test]
fn backoff_starts_after_the_second_failure_and_is_capped() {
    let waits: Vec<u64> = (0..12).map(|n| backoff(n).as_secs()).collect();
    assert_eq!(waits, [0, 0, 1, 2, 4, 8, 16, 32, 60, 60, 60, 60]);
    assert_eq!(backoff(u32::MAX), Duration::from_secs(60));
}

#[tokio::test(start_paused = true)]
async fn stop_returns_at_the_deadline_and_names_the_worker_that_ignored_it() {
    let stop = CancellationToken::new();
    let mut runner = WorkerRunner::new(&stop);
    runner.spawn(Stubborn);
    runner.spawn(Failing { failures: 0, calls: 0 });
    wait_for(&runner, "stubborn", |s| s.state == WorkerState::Busy).await;
    let jobs = runner.jobs().clone();
    jobs.spawn("endless-job", std::future::pending()).expect("accepted before the stop");
    jobs.spawn("quick-job", async {}).expect("accepted before the stop");

    let asked = Instant::now();
    let report = runner.stop(Duration::from_secs(3)).await;
    assert_eq!(asked.elapsed(), Duration::from_secs(3), "stop waits exactly until the deadline");
    assert_eq!(report.aborted, ["stubborn", "endless-job"]);
    assert!(report.workers.iter().all(|w| w.state == WorkerState::Done), "{report:?}");
    let refused = jobs.spawn("late", async {});
    assert!(matches!(refused, Err(JobError::Stopping { job: "late" })), "{refused:?}");
}

#[tokio::test(start_paused = true)]
async fn a_panicking_worker_is_recorded_and_the_others_keep_running() {
    let (calls, wake) = (Arc::new(AtomicU32::new(0)), Arc::new(Notify::new()));
    let stop = CancellationToken::new();
    let mut runner = WorkerRunner::new(&stop);
    runner.spawn(Panicking);
    runner.spawn(Counting { busy: 0, calls: Arc::clone(&calls), wake: Arc::clone(&wake), first_wait: true });

    let status = wait_for(&runner, "panicking", |s| s.state == WorkerState::Done).await;
    assert_eq!(status.errors, 1);
    assert_eq!(status.last_error.as_deref(), Some("panicked: scripted panic"));
    wake.notify_one();
    wait_for(&runner, "counting", |s| s.iterations == 2).await;
    let report = runner.stop(Duration::from_secs(1)).await;
    assert!(report.aborted.is_empty(), "{report:?}");
}
