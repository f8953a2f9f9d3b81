//! [`NodeMetrics`]: the node's Prometheus metrics, rendered at `/metrics`.
//!
//! One registry per node (no globals), so several nodes can live in one
//! test process. Request metrics are recorded by the front ends; storage
//! sizes are read from the engine at scrape time.

use std::time::Duration;

use prometheus::{Encoder, Gauge, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry, TextEncoder};

use crate::metrics::must;
use crate::storage::Storage;

/// Latency buckets in seconds: 50 µs to 10 s.
const LATENCY_BUCKETS: &[f64] =
    &[0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

/// The node's metrics.
#[derive(Debug, Clone)]
pub struct NodeMetrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    fsync: HistogramVec,
    disk_bytes: IntGauge,
    journal_bytes: IntGauge,
    records: IntGauge,
}

impl NodeMetrics {
    /// Creates and registers every metric.
    pub fn new() -> Self {
        let registry = Registry::new_custom(Some("ringkv".into()), None).unwrap_or_default();
        let requests = must(IntCounterVec::new(
            Opts::new("requests_total", "Client requests by API, operation and outcome"),
            &["api", "op", "outcome"],
        ));
        let latency = must(HistogramVec::new(
            HistogramOpts::new("request_duration_seconds", "Client request latency by API and operation")
                .buckets(LATENCY_BUCKETS.to_vec()),
            &["api", "op"],
        ));
        let fsync = must(HistogramVec::new(
            HistogramOpts::new("storage_fsync_duration_seconds", "Latency of journal fsyncs")
                .buckets(LATENCY_BUCKETS.to_vec()),
            &["kind"],
        ));
        let disk_bytes = must(IntGauge::new("storage_disk_bytes", "Bytes on disk (SSTables and journal)"));
        let journal_bytes = must(IntGauge::new("storage_journal_bytes", "Bytes of journal not yet flushed"));
        let records = must(IntGauge::new("storage_records", "Approximate number of stored records"));
        let up_since = must(Gauge::new("start_time_seconds", "Unix time the node started"));
        for c in [
            Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(latency.clone()),
            Box::new(fsync.clone()),
            Box::new(disk_bytes.clone()),
            Box::new(journal_bytes.clone()),
            Box::new(records.clone()),
            Box::new(up_since.clone()),
        ] {
            must(registry.register(c));
        }
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        up_since.set(now.as_secs_f64());
        Self { registry, requests, latency, fsync, disk_bytes, journal_bytes, records }
    }

    /// Records one finished request.
    pub fn observe(&self, api: &str, op: &str, outcome: &str, elapsed: Duration) {
        self.requests.with_label_values(&[api, op, outcome]).inc();
        self.latency.with_label_values(&[api, op]).observe(elapsed.as_secs_f64());
    }

    /// Records one fsync of the journal (`kind`: group, periodic, explicit).
    pub fn observe_fsync(&self, kind: &str, elapsed: Duration) {
        self.fsync.with_label_values(&[kind]).observe(elapsed.as_secs_f64());
    }

    /// Renders every metric in the Prometheus text format, refreshing storage sizes first.
    pub fn render(&self, storage: &dyn Storage) -> String {
        let stats = storage.stats();
        self.disk_bytes.set(i64::try_from(stats.disk_bytes).unwrap_or(i64::MAX));
        self.journal_bytes.set(i64::try_from(stats.journal_bytes).unwrap_or(i64::MAX));
        self.records.set(i64::try_from(stats.approximate_records).unwrap_or(i64::MAX));
        let mut out = Vec::new();
        // Encoding into a Vec cannot fail for well-formed metrics.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }

    /// The registry, for components that register their own metrics.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }
}

impl Default for NodeMetrics {
    fn default() -> Self {
        Self::new()
    }
}

/// The outcome label of a result: `ok` or the error's stable code.
pub fn outcome<T>(result: &Result<T, crate::error::KvError>) -> &'static str {
    match result {
        Ok(_) => "ok",
        Err(e) => super::status::classify(e).code,
    }
}
