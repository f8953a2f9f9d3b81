//! The operator's own `/metrics` and `/healthz` (HTTP, axum), and the
//! metrics the reconciler records.

use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use prometheus::{Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder};

/// The operator's metrics (one registry, no globals).
#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Registry,
    reconciles: IntCounterVec,
    duration: HistogramVec,
    nodes: IntGaugeVec,
    divergence: IntGaugeVec,
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new_custom(Some("ringkv_operator".into()), None)?;
        let reconciles = IntCounterVec::new(Opts::new("reconciles_total", "Reconciles by outcome"), &["outcome"])?;
        let duration =
            HistogramVec::new(HistogramOpts::new("reconcile_duration_seconds", "Reconcile latency"), &["outcome"])?;
        let nodes = IntGaugeVec::new(
            Opts::new("cluster_nodes", "Nodes per cluster: desired and ready"),
            &["namespace", "cluster", "kind"],
        )?;
        registry.register(Box::new(reconciles.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        let divergence = IntGaugeVec::new(
            Opts::new("membership_divergence", "Pods without a cluster member plus members (not LEFT) without a pod"),
            &["namespace", "cluster"],
        )?;
        registry.register(Box::new(nodes.clone()))?;
        registry.register(Box::new(divergence.clone()))?;
        Ok(Self { registry, reconciles, duration, nodes, divergence })
    }

    /// Records one reconcile.
    pub fn observe_reconcile(&self, elapsed: Duration, ok: bool) {
        let outcome = if ok { "ok" } else { "error" };
        self.reconciles.with_label_values(&[outcome]).inc();
        self.duration.with_label_values(&[outcome]).observe(elapsed.as_secs_f64());
    }

    /// Records a cluster's ready and desired nodes.
    pub fn set_nodes(&self, namespace: &str, cluster: &str, ready: i32, desired: i32) {
        self.nodes.with_label_values(&[namespace, cluster, "ready"]).set(i64::from(ready));
        self.nodes.with_label_values(&[namespace, cluster, "desired"]).set(i64::from(desired));
    }

    /// Records how far the cluster's membership and the pods disagree.
    pub fn set_divergence(&self, namespace: &str, cluster: &str, count: usize) {
        self.divergence.with_label_values(&[namespace, cluster]).set(i64::try_from(count).unwrap_or(i64::MAX));
    }

    /// Removes every series of a cluster (it was deleted: its gauges would
    /// otherwise be exported, frozen, until the operator restarts).
    pub fn forget_cluster(&self, namespace: &str, cluster: &str) {
        for kind in ["ready", "desired"] {
            let _ = self.nodes.remove_label_values(&[namespace, cluster, kind]);
        }
        let _ = self.divergence.remove_label_values(&[namespace, cluster]);
    }

    /// The Prometheus text of every metric.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        // Encoding well-formed metrics into a Vec cannot fail.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}

async fn metrics(State(m): State<Metrics>) -> String {
    m.render()
}

async fn healthz() -> (StatusCode, &'static str) {
    (StatusCode::OK, "ok")
}

/// The HTTP router: `/metrics` and `/healthz`.
pub fn router(m: Metrics) -> Router {
    Router::new().route("/metrics", get(metrics)).route("/healthz", get(healthz)).with_state(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_recorded_reconciles_and_nodes() -> Result<(), prometheus::Error> {
        let m = Metrics::new()?;
        m.observe_reconcile(Duration::from_millis(5), true);
        m.observe_reconcile(Duration::from_millis(5), false);
        m.set_nodes("db", "kv", 2, 3);
        let text = m.render();
        assert!(text.contains("ringkv_operator_reconciles_total{outcome=\"ok\"} 1"), "{text}");
        assert!(text.contains("ringkv_operator_reconciles_total{outcome=\"error\"} 1"), "{text}");
        assert!(
            text.contains("ringkv_operator_cluster_nodes{cluster=\"kv\",kind=\"ready\",namespace=\"db\"} 2"),
            "{text}"
        );
        Ok(())
    }

    #[test]
    fn a_forgotten_cluster_exports_no_series() -> Result<(), prometheus::Error> {
        let m = Metrics::new()?;
        m.set_nodes("db", "kv", 3, 3);
        m.set_divergence("db", "kv", 0);
        m.set_nodes("db", "other", 1, 1);
        m.forget_cluster("db", "kv");
        let text = m.render();
        assert!(!text.contains("cluster=\"kv\""), "{text}");
        assert!(text.contains("cluster=\"other\""), "{text}");
        Ok(())
    }
}
