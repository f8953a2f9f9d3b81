//! The load and run phases: `concurrency` client tasks against one [`Target`].
//!
//! Tasks share only atomics: the next record number to insert, the number
//! of operations claimed (for `--operations` and op-count warm-up) and a
//! done counter for the progress bar. Each task measures into its own
//! [`Recorder`]; they are merged after the tasks end. An operation is
//! measured when it *starts* after the warm-up; the measured window runs
//! from the end of the warm-up to the end of the last task.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use indicatif::{ProgressBar, ProgressStyle};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::keys::{Distribution, KeyChooser, key_name};
use super::stats::{Recorder, Summary};
use super::target::Target;
use super::workload::{OpKind, Workload};

/// When the run phase stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// After this many measured operations.
    Operations(u64),
    /// After this long (measured, i.e. after the warm-up).
    Duration(Duration),
}

/// What is discarded at the start of the run phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Warmup {
    /// Nothing.
    #[default]
    None,
    /// Operations that start within this long.
    Time(Duration),
    /// The first this many operations.
    Operations(u64),
}

/// Parameters of a benchmark.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// The operation mix and key distribution.
    pub workload: Workload,
    /// Records loaded before the run (and the key space of reads).
    pub records: u64,
    /// Bytes per value.
    pub value_size: usize,
    /// When the run stops.
    pub stop: Stop,
    /// Client tasks.
    pub concurrency: usize,
    /// What is discarded at the start.
    pub warmup: Warmup,
    /// Seed of every task's RNG (task `i` uses `seed + i`).
    pub seed: u64,
    /// Show progress bars (on stderr, only when it is a terminal).
    pub progress: bool,
    /// Total operations per second across all tasks (`None`: as fast as possible).
    /// Paced operations are measured from their scheduled start, so a stalled
    /// server shows in the latencies instead of silently lowering the load
    /// (no coordinated omission).
    pub rate: Option<f64>,
}

/// Values are slices of one random printable buffer: no allocation per op.
#[derive(Debug, Clone)]
struct Values {
    pool: Bytes,
    size: usize,
}

impl Values {
    fn new(size: usize, seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed ^ 0x5eed);
        let pool: Vec<u8> = (0..size * 2 + 4096).map(|_| rng.random_range(b'!'..=b'~')).collect();
        Self { pool: Bytes::from(pool), size }
    }

    fn pick<R: Rng>(&self, rng: &mut R) -> Bytes {
        let start = rng.random_range(0..=self.pool.len() - self.size);
        self.pool.slice(start..start + self.size)
    }
}

fn progress_bar(progress: bool, len: Option<u64>, what: &str) -> ProgressBar {
    if !progress {
        return ProgressBar::hidden();
    }
    let (bar, template) = match len {
        Some(n) => (ProgressBar::new(n), "{msg} [{elapsed_precise}] {wide_bar} {pos}/{len} ({per_sec}, eta {eta})"),
        None => (ProgressBar::new_spinner(), "{msg} [{elapsed_precise}] {spinner} {pos} ops ({per_sec})"),
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar.set_message(what.to_owned());
    bar
}

/// Spawns a ticker that copies `done` into `bar` every 100 ms until the bar is finished.
fn tick(bar: ProgressBar, done: Arc<AtomicU64>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            bar.set_position(done.load(Ordering::Relaxed));
            if bar.is_finished() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
}

/// Joins the tasks and merges their recorders.
async fn join_all(handles: Vec<tokio::task::JoinHandle<Recorder>>) -> Recorder {
    let mut merged = Recorder::new();
    for handle in handles {
        match handle.await {
            Ok(recorder) => merged.merge(&recorder),
            // A panicking client task is reported as an error, not lost.
            Err(e) => merged.error(OpKind::Read, || format!("client task failed: {e}")),
        }
    }
    merged
}

/// Inserts records `0..records` with `concurrency` tasks. Returns the
/// merged INSERT measurements.
pub async fn load<T: Target>(target: Arc<T>, config: &RunConfig) -> Summary {
    let next = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicU64::new(0));
    let bar = progress_bar(config.progress, Some(config.records), "load");
    let ticker = tick(bar.clone(), done.clone());
    let values = Values::new(config.value_size, config.seed);
    let started = Instant::now();
    let handles = (0..config.concurrency.max(1))
        .map(|task| {
            let (target, next, done, values) = (target.clone(), next.clone(), done.clone(), values.clone());
            let records = config.records;
            let mut rng = StdRng::seed_from_u64(config.seed.wrapping_add(task as u64));
            tokio::spawn(async move {
                let mut rec = Recorder::new();
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= records {
                        return rec;
                    }
                    let begin = Instant::now();
                    match target.insert(&key_name(n), values.pick(&mut rng)).await {
                        Ok(()) => rec.ok(OpKind::Insert, begin.elapsed()),
                        Err(e) => rec.error(OpKind::Insert, || e.to_string()),
                    }
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    let merged = join_all(handles).await;
    bar.finish();
    let _ = ticker.await;
    merged.summarize(started.elapsed())
}

/// State shared by the tasks of a run.
#[derive(Debug)]
struct Shared {
    /// Next record number to insert (starts at `records`).
    next_insert: AtomicU64,
    /// Operations claimed so far (warm-up included).
    claimed: AtomicU64,
    /// Measured operations claimed so far.
    measured: AtomicU64,
    /// When measuring began.
    measure_from: OnceLock<Instant>,
    started: Instant,
}

impl Shared {
    /// Claims the next operation: `None` to stop, else whether it is measured.
    fn claim(&self, config: &RunConfig) -> Option<bool> {
        let index = self.claimed.fetch_add(1, Ordering::Relaxed);
        let now = Instant::now();
        let measured = match config.warmup {
            Warmup::None => true,
            Warmup::Time(d) => now.duration_since(self.started) >= d,
            Warmup::Operations(n) => index >= n,
        };
        if !measured {
            return Some(false);
        }
        let from = *self.measure_from.get_or_init(|| now);
        let stop = match config.stop {
            Stop::Operations(total) => self.measured.fetch_add(1, Ordering::Relaxed) >= total,
            Stop::Duration(d) => now.duration_since(from) >= d,
        };
        (!stop).then_some(true)
    }
}

/// Runs the workload until `config.stop`. Records `0..records` must exist.
pub async fn run<T: Target>(target: Arc<T>, config: &RunConfig) -> Summary {
    let shared = Arc::new(Shared {
        next_insert: AtomicU64::new(config.records),
        claimed: AtomicU64::new(0),
        measured: AtomicU64::new(0),
        measure_from: OnceLock::new(),
        started: Instant::now(),
    });
    let len = match config.stop {
        Stop::Operations(n) => Some(n),
        Stop::Duration(_) => None,
    };
    let bar = progress_bar(config.progress, len, &format!("workload {}", config.workload.name));
    let done = Arc::new(AtomicU64::new(0));
    let ticker = tick(bar.clone(), done.clone());
    let values = Values::new(config.value_size, config.seed);
    let handles = (0..config.concurrency.max(1))
        .map(|task| {
            let client = Client {
                target: target.clone(),
                shared: shared.clone(),
                done: done.clone(),
                values: values.clone(),
                config: config.clone(),
                chooser: KeyChooser::new(config.workload.distribution, config.records),
                rng: StdRng::seed_from_u64(config.seed.wrapping_add(1_000_003 * (task as u64 + 1))),
            };
            tokio::spawn(client.run(task))
        })
        .collect();
    let merged = join_all(handles).await;
    bar.finish();
    let _ = ticker.await;
    let from = shared.measure_from.get().copied().unwrap_or(shared.started);
    merged.summarize(from.elapsed())
}

/// One client task of the run phase.
struct Client<T> {
    target: Arc<T>,
    shared: Arc<Shared>,
    done: Arc<AtomicU64>,
    values: Values,
    config: RunConfig,
    chooser: KeyChooser,
    rng: StdRng,
}

/// The schedule of one paced client task: `rate / concurrency` operations per
/// second, task `i` offset by `i / rate` so the tasks interleave evenly.
fn pacer(config: &RunConfig, task: usize) -> Option<tokio::time::Interval> {
    let rate = config.rate.filter(|r| r.is_finite() && *r > 0.0)?;
    let tasks = config.concurrency.max(1);
    let period = Duration::from_secs_f64(tasks as f64 / rate);
    let start = tokio::time::Instant::now() + Duration::from_secs_f64(task as f64 / rate);
    let mut interval = tokio::time::interval_at(start, period);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    Some(interval)
}

impl<T: Target> Client<T> {
    async fn run(mut self, task: usize) -> Recorder {
        let mut rec = Recorder::new();
        let mut pacer = pacer(&self.config, task);
        while let Some(measured) = self.shared.claim(&self.config) {
            let kind = self.config.workload.choose(&mut self.rng);
            let begin = match pacer.as_mut() {
                Some(p) => p.tick().await.into_std(),
                None => Instant::now(),
            };
            let outcome = self.one(kind).await;
            let elapsed = begin.elapsed();
            if measured {
                match outcome {
                    Ok(true) => rec.ok(kind, elapsed),
                    Ok(false) => rec.not_found(kind, elapsed),
                    Err(message) => rec.error(kind, || message),
                }
            }
            self.done.fetch_add(1, Ordering::Relaxed);
        }
        rec
    }

    /// Performs one operation: `Ok(false)` for a read that found nothing.
    async fn one(&mut self, kind: OpKind) -> Result<bool, String> {
        let value = self.values.pick(&mut self.rng);
        let key = match kind {
            OpKind::Insert => key_name(self.shared.next_insert.fetch_add(1, Ordering::Relaxed)),
            _ => self.key(),
        };
        let target = &self.target;
        let result = match kind {
            OpKind::Insert => target.insert(&key, value).await.map(|()| true),
            OpKind::Read => target.read(&key).await,
            OpKind::Update => target.update(&key, value).await.map(|()| true),
            OpKind::ReadModifyWrite => target.read_modify_write(&key, value).await.map(|()| true),
            OpKind::Scan => {
                let count = self.rng.random_range(1..=self.config.workload.max_scan_length.max(1));
                self.target.scan(&key, count).await.map(|_| true)
            }
        };
        result.map_err(|e| e.to_string())
    }

    fn key(&mut self) -> String {
        // Records inserted during the run count as existing once allocated
        // (YCSB waits for the acknowledgement; a read that overtakes the
        // insert counts as not found, not as an error).
        let existing = match self.config.workload.distribution {
            Distribution::Zipfian => self.config.records,
            _ => self.shared.next_insert.load(Ordering::Relaxed),
        };
        key_name(self.chooser.next(&mut self.rng, existing))
    }
}
