//! Streaming progress ([`StreamProgress`], shown by `kvctl status` and in
//! `ringkv_streaming_*` metrics) and the byte-rate [`Throttle`].

use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus::{IntCounter, IntGauge, Registry};

use crate::metrics::must;

/// A snapshot of the streaming under way (or last finished).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProgressSnapshot {
    /// `join`, `replace`, `pending` (removenode, decommission), or empty.
    pub operation: String,
    /// Ranges to stream.
    pub ranges_total: u32,
    /// Ranges streamed.
    pub ranges_done: u32,
    /// Records received so far.
    pub records: u64,
    /// Bytes received so far (encoded records).
    pub bytes: u64,
    /// True while streaming.
    pub active: bool,
    /// Why a fresh node waits for its turn to enter the ring; empty otherwise.
    pub waiting: String,
}

impl ProgressSnapshot {
    /// Fraction of ranges done, 0..1 (1 when there was nothing to stream).
    pub fn fraction(&self) -> f64 {
        if self.ranges_total == 0 { 1.0 } else { f64::from(self.ranges_done) / f64::from(self.ranges_total) }
    }
}

/// Streaming progress of this node, shared between the streams and status.
/// Metric names get the registry's `ringkv_` prefix (`ringkv_streaming_records_total`, ...).
#[derive(Debug, Clone)]
pub struct StreamProgress {
    state: Arc<Mutex<ProgressSnapshot>>,
    records: IntCounter,
    bytes: IntCounter,
    ranges_total: IntGauge,
    ranges_done: IntGauge,
    active: IntGauge,
    waiting: IntGauge,
}

fn metric<T: prometheus::core::Collector + Clone + 'static>(registry: Option<&Registry>, m: T) -> T {
    if let Some(r) = registry
        && let Err(e) = r.register(Box::new(m.clone()))
    {
        tracing::warn!(error = %e, "streaming metric not registered");
    }
    m
}

impl StreamProgress {
    /// Progress with metrics registered in `registry` (none in tests).
    pub fn new(registry: Option<&Registry>) -> Self {
        let counter = |name: &str, help: &str| metric(registry, must(IntCounter::new(name, help)));
        let gauge = |name: &str, help: &str| metric(registry, must(IntGauge::new(name, help)));
        Self {
            state: Arc::default(),
            records: counter("streaming_records_total", "Records streamed into this node"),
            bytes: counter("streaming_bytes_total", "Bytes of records streamed into this node"),
            ranges_total: gauge("streaming_ranges_total", "Ranges of the current stream"),
            ranges_done: gauge("streaming_ranges_done", "Ranges of the current stream already streamed"),
            active: gauge("streaming_active", "1 while this node streams ranges in"),
            waiting: gauge("topology_waiting", "1 while this fresh node waits for its turn to enter the ring"),
        }
    }

    fn update(&self, f: impl FnOnce(&mut ProgressSnapshot)) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut s);
        self.ranges_total.set(i64::from(s.ranges_total));
        self.ranges_done.set(i64::from(s.ranges_done));
        self.active.set(i64::from(s.active));
    }

    /// A new stream of `ranges` ranges begins.
    pub fn begin(&self, operation: &str, ranges: u32) {
        self.update(|s| {
            // Records and bytes stay cumulative (they are counters); ranges are per stream.
            *s = ProgressSnapshot {
                operation: operation.to_owned(),
                ranges_total: ranges,
                ranges_done: 0,
                active: true,
                ..s.clone()
            }
        });
    }

    /// A page of `records` records of `bytes` bytes arrived.
    pub fn add(&self, records: u64, bytes: u64) {
        self.records.inc_by(records);
        self.bytes.inc_by(bytes);
        self.update(|s| {
            s.records += records;
            s.bytes += bytes;
        });
    }

    /// One range is done.
    pub fn range_done(&self) {
        self.update(|s| s.ranges_done += 1);
    }

    /// The stream ended (done or failed).
    pub fn end(&self) {
        self.update(|s| s.active = false);
    }

    /// Records why this fresh node waits for its turn (`None`: it no longer waits).
    pub fn set_waiting(&self, why: Option<&str>) {
        self.waiting.set(i64::from(why.is_some()));
        self.update(|s| s.waiting = why.unwrap_or_default().to_owned());
    }

    /// The current state.
    pub fn snapshot(&self) -> ProgressSnapshot {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Keeps a stream at or under `bytes_per_second` on average.
#[derive(Debug)]
pub struct Throttle {
    bytes_per_second: f64,
    started: tokio::time::Instant,
    sent: u64,
}

impl Throttle {
    /// A throttle at `mb_per_s` MB/s (0 = unlimited).
    pub fn new(mb_per_s: u64) -> Self {
        Self { bytes_per_second: mb_per_s as f64 * 1e6, started: tokio::time::Instant::now(), sent: 0 }
    }

    /// How long to wait after `bytes` more bytes so the average stays under the rate.
    pub fn delay_after(&mut self, bytes: u64, elapsed: Duration) -> Duration {
        self.sent += bytes;
        if self.bytes_per_second <= 0.0 {
            return Duration::ZERO;
        }
        let due = Duration::from_secs_f64(self.sent as f64 / self.bytes_per_second);
        due.saturating_sub(elapsed)
    }

    /// Accounts for `bytes` and sleeps as long as the rate requires.
    pub async fn pace(&mut self, bytes: u64) {
        let delay = self.delay_after(bytes, self.started.elapsed());
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttle_delays_only_what_exceeds_the_rate() {
        let mut t = Throttle::new(1); // 1 MB/s
        assert_eq!(t.delay_after(500_000, Duration::ZERO), Duration::from_millis(500));
        assert_eq!(t.delay_after(500_000, Duration::from_millis(1500)), Duration::ZERO);
        assert_eq!(t.delay_after(1_000_000, Duration::from_secs(1)), Duration::from_secs(1));
        assert_eq!(Throttle::new(0).delay_after(u64::MAX / 2, Duration::ZERO), Duration::ZERO);
    }

    #[test]
    fn progress_counts_ranges_and_bytes() {
        let p = StreamProgress::new(None);
        p.begin("join", 4);
        p.add(10, 1000);
        p.range_done();
        let s = p.snapshot();
        assert_eq!((s.ranges_done, s.records, s.bytes, s.active), (1, 10, 1000, true));
        assert!((s.fraction() - 0.25).abs() < 1e-9);
        p.end();
        assert!(!p.snapshot().active);
        p.begin("pending", 2);
        let s = p.snapshot();
        assert_eq!((s.ranges_done, s.ranges_total, s.records, s.active), (0, 2, 10, true), "a new stream starts at 0");
    }
}
