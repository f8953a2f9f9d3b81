//! [`ReplicationMetrics`]: outcomes per consistency level, quorum failures,
//! read repairs, forwarded writes.

use std::time::Duration;

use prometheus::{HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGaugeVec, Opts, Registry};

use crate::error::KvError;
use crate::metrics::must;

/// Replication metrics (registered in the node's registry, or unregistered in tests).
#[derive(Debug, Clone)]
pub struct ReplicationMetrics {
    requests: IntCounterVec,
    latency: HistogramVec,
    /// Requests that failed for want of replicas, by access (read/write).
    pub quorum_failures: IntCounterVec,
    /// Replicas repaired by reads.
    pub read_repairs: IntCounter,
    /// Writes forwarded to a replica because this node is not one.
    pub forwarded: IntCounter,
    /// Hints stored here, by target host.
    pub hints_stored: IntCounterVec,
    /// Hints delivered to their target, by target host.
    pub hints_replayed: IntCounterVec,
    /// Hints dropped after `max_hint_window`, by target host.
    pub hints_expired: IntCounterVec,
    /// Hints waiting here, by target host.
    pub hints_pending: IntGaugeVec,
}

fn counter_vec(name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    must(IntCounterVec::new(Opts::new(name, help), labels))
}

fn counter(name: &str, help: &str) -> IntCounter {
    must(IntCounter::new(name, help))
}

impl ReplicationMetrics {
    /// Metrics registered nowhere (tests, simulation).
    pub fn unregistered() -> Self {
        let latency = must(HistogramVec::new(
            HistogramOpts::new("replicated_request_duration_seconds", "Replicated request latency by access and level")
                .buckets(vec![0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0]),
            &["access", "level"],
        ));
        Self {
            requests: counter_vec(
                "replicated_requests_total",
                "Replicated requests by access, consistency level and outcome",
                &["access", "level", "outcome"],
            ),
            latency,
            quorum_failures: counter_vec(
                "quorum_failures_total",
                "Requests that did not reach their quorum",
                &["access"],
            ),
            read_repairs: counter("read_repairs_total", "Replicas repaired by reads"),
            forwarded: counter("forwarded_writes_total", "Writes forwarded to a replica of the key"),
            hints_stored: counter_vec(
                "hints_stored_total",
                "Hints stored for a replica that missed a write",
                &["target"],
            ),
            hints_replayed: counter_vec("hints_replayed_total", "Hints delivered to their replica", &["target"]),
            hints_expired: counter_vec("hints_expired_total", "Hints dropped after max_hint_window", &["target"]),
            hints_pending: must(IntGaugeVec::new(
                Opts::new("hints_pending", "Hints waiting for their replica"),
                &["target"],
            )),
        }
    }

    /// Metrics registered in `registry`.
    pub fn registered(registry: &Registry) -> Self {
        let m = Self::unregistered();
        let collectors: [Box<dyn prometheus::core::Collector>; 9] = [
            Box::new(m.hints_stored.clone()),
            Box::new(m.hints_replayed.clone()),
            Box::new(m.hints_expired.clone()),
            Box::new(m.hints_pending.clone()),
            Box::new(m.requests.clone()),
            Box::new(m.latency.clone()),
            Box::new(m.quorum_failures.clone()),
            Box::new(m.read_repairs.clone()),
            Box::new(m.forwarded.clone()),
        ];
        for c in collectors {
            if let Err(e) = registry.register(c) {
                tracing::error!(error = %e, "cannot register a replication metric");
            }
        }
        m
    }

    /// Records one replicated request.
    pub fn observe(&self, access: &str, level: &str, error: Option<&KvError>, elapsed: Duration) {
        let outcome = error.map_or("ok", |e| crate::server::status::classify(e).code);
        self.requests.with_label_values(&[access, level, outcome]).inc();
        self.latency.with_label_values(&[access, level]).observe(elapsed.as_secs_f64());
    }
}
