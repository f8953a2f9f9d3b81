//! Latency measurement: per-task [`Recorder`]s, merged once at the end.
//!
//! Each client task owns a `Recorder` (one HdrHistogram in microseconds per
//! [`OpKind`], plus error and not-found counters), so the hot path takes no
//! lock and shares no cache line. The runner merges them into a
//! [`Summary`] after the tasks end.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

use super::workload::OpKind;

/// How many error messages a run keeps as examples.
const ERROR_SAMPLES: usize = 5;
/// Significant figures of the histograms (0.1 % resolution).
const SIGFIG: u8 = 3;

/// The measurements of one task (or, after merging, of the run).
#[derive(Debug, Clone)]
pub struct Recorder {
    hists: Vec<Histogram<u64>>,
    errors: [u64; OpKind::ALL.len()],
    not_found: [u64; OpKind::ALL.len()],
    error_samples: Vec<String>,
}

impl Default for Recorder {
    fn default() -> Self {
        Self::new()
    }
}

impl Recorder {
    /// Empty histograms (auto-resizing, 3 significant figures).
    pub fn new() -> Self {
        let hists = OpKind::ALL
            .iter()
            .map(|_| {
                let mut h = Histogram::<u64>::new(SIGFIG).unwrap_or_else(|_| unreachable_sigfig());
                h.auto(true);
                h
            })
            .collect();
        Self { hists, errors: [0; OpKind::ALL.len()], not_found: [0; OpKind::ALL.len()], error_samples: Vec::new() }
    }

    /// Records a successful operation that took `elapsed`.
    pub fn ok(&mut self, kind: OpKind, elapsed: Duration) {
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX).max(1);
        let hist = &mut self.hists[kind.index()];
        // `record` grows an auto-resizing histogram; `saturating_record` would clamp instead.
        if hist.record(micros).is_err() {
            hist.saturating_record(micros);
        }
    }

    /// Records a read that found no record (a success, counted apart).
    pub fn not_found(&mut self, kind: OpKind, elapsed: Duration) {
        self.not_found[kind.index()] += 1;
        self.ok(kind, elapsed);
    }

    /// Records a failed operation (not in the latency histogram).
    pub fn error(&mut self, kind: OpKind, message: impl FnOnce() -> String) {
        self.errors[kind.index()] += 1;
        if self.error_samples.len() < ERROR_SAMPLES {
            self.error_samples.push(format!("{kind}: {}", message()));
        }
    }

    /// Adds `other`'s measurements to these.
    pub fn merge(&mut self, other: &Recorder) {
        for (mine, theirs) in self.hists.iter_mut().zip(&other.hists) {
            // Both auto-resize with the same precision: adding cannot fail.
            let _ = mine.add(theirs);
        }
        for i in 0..OpKind::ALL.len() {
            self.errors[i] += other.errors[i];
            self.not_found[i] += other.not_found[i];
        }
        let room = ERROR_SAMPLES.saturating_sub(self.error_samples.len());
        self.error_samples.extend(other.error_samples.iter().take(room).cloned());
    }

    /// Successful operations recorded, all kinds.
    pub fn total_ok(&self) -> u64 {
        self.hists.iter().map(Histogram::len).sum()
    }

    /// Failed operations, all kinds.
    pub fn total_errors(&self) -> u64 {
        self.errors.iter().sum()
    }

    /// Per-kind statistics over a measured window of `elapsed`, for the
    /// kinds that ran (or failed) at least once.
    pub fn summarize(&self, elapsed: Duration) -> Summary {
        let secs = elapsed.as_secs_f64().max(1e-9);
        let ops = OpKind::ALL
            .iter()
            .filter_map(|&kind| {
                let i = kind.index();
                let h = &self.hists[i];
                (h.len() + self.errors[i] > 0)
                    .then(|| OpStats::from_histogram(kind, h, self.errors[i], self.not_found[i], secs))
            })
            .collect();
        Summary {
            elapsed_s: elapsed.as_secs_f64(),
            operations: self.total_ok(),
            errors: self.total_errors(),
            throughput_ops_s: self.total_ok() as f64 / secs,
            ops,
            error_samples: self.error_samples.clone(),
        }
    }
}

/// `Histogram::new(3)` only fails for sigfig > 5.
fn unreachable_sigfig() -> Histogram<u64> {
    panic!("HdrHistogram rejected {SIGFIG} significant figures")
}

/// Statistics of one operation kind.
#[derive(Debug, Clone, Serialize)]
pub struct OpStats {
    /// `READ`, `UPDATE`, ...
    pub op: OpKind,
    /// Successful operations (including not-found reads).
    pub count: u64,
    /// Failed operations.
    pub errors: u64,
    /// Reads of records that did not exist.
    pub not_found: u64,
    /// Successful operations per second over the measured window.
    pub throughput_ops_s: f64,
    /// Mean latency, µs.
    pub mean_us: f64,
    /// Median latency, µs.
    pub p50_us: u64,
    /// 95th percentile, µs.
    pub p95_us: u64,
    /// 99th percentile, µs.
    pub p99_us: u64,
    /// 99.9th percentile, µs.
    pub p999_us: u64,
    /// Slowest, µs.
    pub max_us: u64,
    /// The latency distribution as `[quantile, latency µs]` points, spaced
    /// evenly in "nines" (0, 0.5, 0.75 ... 0.9999 and 1.0), for CDF plots.
    pub cdf: Vec<[f64; 2]>,
}

/// The quantiles of [`OpStats::cdf`]: 1 - 10^(-k/8) for k = 0..=32, then 1.
fn cdf_quantiles() -> impl Iterator<Item = f64> {
    (0..=32).map(|k| 1.0 - 10f64.powf(-f64::from(k) / 8.0)).chain(std::iter::once(1.0))
}

impl OpStats {
    fn from_histogram(op: OpKind, h: &Histogram<u64>, errors: u64, not_found: u64, secs: f64) -> Self {
        let empty = h.is_empty();
        let q = |quantile: f64| if empty { 0 } else { h.value_at_quantile(quantile) };
        Self {
            op,
            count: h.len(),
            errors,
            not_found,
            throughput_ops_s: h.len() as f64 / secs,
            mean_us: if empty { 0.0 } else { h.mean() },
            p50_us: q(0.50),
            p95_us: q(0.95),
            p99_us: q(0.99),
            p999_us: q(0.999),
            max_us: if empty { 0 } else { h.max() },
            cdf: if empty { Vec::new() } else { cdf_quantiles().map(|q| [q, h.value_at_quantile(q) as f64]).collect() },
        }
    }
}

/// The merged result of a phase (load or run).
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// Length of the measured window, seconds.
    pub elapsed_s: f64,
    /// Successful operations.
    pub operations: u64,
    /// Failed operations.
    pub errors: u64,
    /// `operations / elapsed_s`.
    pub throughput_ops_s: f64,
    /// Per operation kind.
    pub ops: Vec<OpStats>,
    /// The first few error messages.
    pub error_samples: Vec<String>,
}

impl Summary {
    /// A human-readable table (latencies in ms, three decimals).
    pub fn table(&self, title: &str) -> String {
        let ms = |us: u64| format!("{:.3}", us as f64 / 1000.0);
        let mut out = format!(
            "{title}: {} ops in {:.2} s = {:.0} ops/s, {} errors\n",
            self.operations, self.elapsed_s, self.throughput_ops_s, self.errors
        );
        out.push_str(&format!(
            "{:<18} {:>10} {:>7} {:>10} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}\n",
            "op", "count", "errors", "ops/s", "mean ms", "p50 ms", "p95 ms", "p99 ms", "p99.9 ms", "max ms"
        ));
        for s in &self.ops {
            out.push_str(&format!(
                "{:<18} {:>10} {:>7} {:>10.0} {:>9.3} {:>9} {:>9} {:>9} {:>9} {:>9}\n",
                s.op.name(),
                s.count,
                s.errors,
                s.throughput_ops_s,
                s.mean_us / 1000.0,
                ms(s.p50_us),
                ms(s.p95_us),
                ms(s.p99_us),
                ms(s.p999_us),
                ms(s.max_us)
            ));
        }
        for sample in &self.error_samples {
            out.push_str(&format!("  error: {sample}\n"));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_adds_counts_and_keeps_quantiles() {
        let mut a = Recorder::new();
        let mut b = Recorder::new();
        for i in 1..=100u64 {
            a.ok(OpKind::Read, Duration::from_micros(i));
            b.ok(OpKind::Read, Duration::from_micros(100 + i));
        }
        a.ok(OpKind::Scan, Duration::from_secs(3));
        b.not_found(OpKind::Read, Duration::from_micros(5));
        b.error(OpKind::Update, || "boom".to_owned());
        a.merge(&b);
        let s = a.summarize(Duration::from_secs(1));
        assert_eq!(s.operations, 202);
        let scan = s.ops.iter().find(|o| o.op == OpKind::Scan).expect("scan stats");
        assert!(scan.max_us >= 2_990_000, "large values are not clamped: {}", scan.max_us);
        assert_eq!(s.errors, 1);
        let read = s.ops.iter().find(|o| o.op == OpKind::Read).expect("read stats");
        assert_eq!(read.not_found, 1);
        assert!((99..=101).contains(&read.p50_us), "p50 {}", read.p50_us);
        assert_eq!(read.max_us, 200);
        assert!(s.ops.iter().any(|o| o.op == OpKind::Update && o.errors == 1 && o.count == 0));
        assert!(s.table("run").contains("READ"));
    }
}
