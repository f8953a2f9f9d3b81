//! [`GossipMetrics`]: `ringkv_gossip_*` and `ringkv_failure_detector_phi{peer}`.

use prometheus::{GaugeVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};

use super::Liveness;
use crate::metrics::must;

/// Gossip and failure-detector metrics, registered in the node's registry.
#[derive(Debug, Clone)]
pub struct GossipMetrics {
    rounds: IntCounter,
    messages: IntCounterVec,
    liveness_changes: IntCounterVec,
    peers: IntGaugeVec,
    heartbeat: IntGauge,
    phi: GaugeVec,
    liveness: IntGaugeVec,
}

impl GossipMetrics {
    /// Creates the metrics and registers them in `registry` (a registry
    /// that already holds them is left as is, e.g. in tests).
    pub fn registered(registry: &Registry) -> Self {
        let m = Self {
            rounds: must(IntCounter::new("gossip_rounds_total", "Gossip ticks (rounds started)")),
            messages: must(IntCounterVec::new(
                Opts::new("gossip_messages_total", "Gossip messages by kind (syn, ack2), direction and outcome"),
                &["kind", "direction", "outcome"],
            )),
            liveness_changes: must(IntCounterVec::new(
                Opts::new("gossip_liveness_changes_total", "Failure detector verdict changes, by new verdict"),
                &["to"],
            )),
            peers: must(IntGaugeVec::new(
                Opts::new("gossip_peers", "Known peers by liveness (alive, suspect, down)"),
                &["liveness"],
            )),
            heartbeat: must(IntGauge::new("gossip_heartbeat_version", "This node's gossip version counter")),
            phi: must(GaugeVec::new(
                Opts::new("failure_detector_phi", "phi-accrual suspicion of each peer (convicted above the threshold)"),
                &["peer"],
            )),
            liveness: must(IntGaugeVec::new(
                Opts::new("gossip_peer_liveness", "Verdict per peer: 0 alive, 1 suspect, 2 down"),
                &["peer"],
            )),
        };
        for c in [
            Box::new(m.rounds.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(m.messages.clone()),
            Box::new(m.liveness_changes.clone()),
            Box::new(m.peers.clone()),
            Box::new(m.heartbeat.clone()),
            Box::new(m.phi.clone()),
            Box::new(m.liveness.clone()),
        ] {
            if let Err(e) = registry.register(c) {
                tracing::debug!(error = %e, "gossip metric not registered");
            }
        }
        m
    }

    /// One tick.
    pub fn round(&self, heartbeat_version: u64) {
        self.rounds.inc();
        self.heartbeat.set(i64::try_from(heartbeat_version).unwrap_or(i64::MAX));
    }

    /// One message sent or received.
    pub fn message(&self, kind: &str, direction: &str, ok: bool) {
        self.messages.with_label_values(&[kind, direction, if ok { "ok" } else { "error" }]).inc();
    }

    /// A verdict changed.
    pub fn liveness_changed(&self, to: Liveness) {
        self.liveness_changes.with_label_values(&[liveness_name(to)]).inc();
    }

    /// phi and verdict of every peer, and the counts per verdict.
    pub fn peers(&self, peers: &[(String, f64, Liveness)]) {
        let mut counts = [0i64; 3];
        for (host, phi, liveness) in peers {
            // Prometheus accepts +Inf, but a finite cap keeps graphs readable.
            self.phi.with_label_values(&[host.as_str()]).set(phi.min(1e6));
            let code = match liveness {
                Liveness::Alive => 0,
                Liveness::Suspect => 1,
                Liveness::Down => 2,
            };
            counts[code as usize] += 1;
            self.liveness.with_label_values(&[host.as_str()]).set(code);
        }
        for (i, name) in ["alive", "suspect", "down"].into_iter().enumerate() {
            self.peers.with_label_values(&[name]).set(counts[i]);
        }
    }
}

/// `alive`, `suspect` or `down`.
pub fn liveness_name(liveness: Liveness) -> &'static str {
    match liveness {
        Liveness::Alive => "alive",
        Liveness::Suspect => "suspect",
        Liveness::Down => "down",
    }
}
