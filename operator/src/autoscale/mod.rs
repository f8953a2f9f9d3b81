//! The autoscaler: from the nodes' `/metrics`, the node count the
//! `autoscaling` targets ask for, stabilised over a window, one step at a time.
//!
//! Pure (sans-IO): samples and the time are inputs; the memory between
//! reconciles ([`AutoscalerStatus`]) lives in the KVCluster's status, so a
//! restarted operator carries on. The result is written to `spec.nodes`
//! through the scale subresource (the same door an HPA uses), and the planner
//! then performs it one pod at a time.
//!
//! Stabilisation: a recommendation is acted on only once the history covers
//! the whole window; scaling up goes to the *lowest* recommendation of the
//! window and scaling down to the *highest*, so a short spike or dip changes
//! nothing. The result stays within `[max(minNodes, RF), maxNodes]` and moves
//! by one node per decision.
//!
//! Cadence and memory bound: the reconciler samples at most once per
//! [`sample_interval_ms`] (it requeues for the next sample; a reconcile
//! triggered by anything else does not sample), and a run of equal
//! recommendations is kept as its first and last entry, which gives the
//! stabilisation exactly the same answer as keeping every sample. At most
//! [`MAX_RECOMMENDATIONS`] entries are kept whatever happens.

pub mod scrape;

use crate::crd::{AutoscalerStatus, AutoscalingSpec, CounterSample, Recommendation};

/// One scrape of every node pod, summed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// Unix ms.
    pub at_ms: i64,
    /// Sum of `ringkv_requests_total` (a counter).
    pub requests_total: f64,
    /// Sum of `ringkv_storage_disk_bytes`.
    pub disk_bytes: f64,
    /// Pods that answered.
    pub pods: i32,
}

/// Inputs that come from the spec.
#[derive(Debug, Clone, Copy)]
pub struct Targets<'a> {
    /// The autoscaling section.
    pub spec: &'a AutoscalingSpec,
    /// Replication factor (the floor).
    pub rf: i32,
    /// Bytes of each node's volume.
    pub volume_bytes: u64,
}

/// The node count the targets ask for right now, before stabilisation; None
/// when no target can be evaluated (first sample, a pod restarted, no target set).
pub fn raw_recommendation(t: Targets<'_>, previous: Option<CounterSample>, now: Sample) -> Option<i32> {
    let mut wants = Vec::new();
    if let (Some(target), Some(prev)) = (t.spec.target_ops_per_node, previous) {
        let dt = (now.at_ms - prev.at_ms) as f64 / 1000.0;
        let delta = now.requests_total - prev.requests_total;
        // A different pod set or a counter reset (restart) makes the delta meaningless.
        if dt > 0.0 && delta >= 0.0 && prev.pods == now.pods {
            wants.push((delta / dt / target).ceil());
        }
    }
    if let Some(util) = t.spec.target_disk_utilisation {
        let per_node = t.volume_bytes as f64 * util;
        if per_node > 0.0 {
            wants.push((now.disk_bytes / per_node).ceil());
        }
    }
    let want = wants.into_iter().fold(None, |acc: Option<f64>, w| Some(acc.map_or(w, |a| a.max(w))))?;
    Some(clamp(t, want.min(f64::from(i32::MAX)) as i32))
}

fn clamp(t: Targets<'_>, n: i32) -> i32 {
    let floor = t.spec.min_nodes.max(t.rf);
    n.max(floor).min(t.spec.max_nodes.max(floor))
}

/// Shortest time between two samples.
pub const MIN_SAMPLE_INTERVAL_MS: i64 = 15_000;
/// Hard cap on `status.autoscaler.recommendations` (the oldest go first).
pub const MAX_RECOMMENDATIONS: usize = 64;

/// Time between two samples: 15 s, or 1/32 of a longer window (so a window
/// holds at most ~33 samples).
pub fn sample_interval_ms(spec: &AutoscalingSpec) -> i64 {
    (i64::from(spec.stabilisation_window_seconds.max(0)) * 1000 / 32).max(MIN_SAMPLE_INTERVAL_MS)
}

/// Milliseconds until the next sample is due (0: sample now).
pub fn next_sample_in_ms(spec: &AutoscalingSpec, memory: &AutoscalerStatus, now_ms: i64) -> i64 {
    match memory.last_sample {
        // A sample "from the future" (clock moved back) must not stop sampling.
        Some(last) if last.at_ms <= now_ms => (last.at_ms + sample_interval_ms(spec) - now_ms).max(0),
        _ => 0,
    }
}

/// Appends `r`, extending a run of equal values instead of growing it: a run
/// is kept as its first and its last entry.
fn record(memory: &mut AutoscalerStatus, r: Recommendation) {
    let recs = &mut memory.recommendations;
    let n = recs.len();
    if n >= 2 && recs[n - 1].nodes == r.nodes && recs[n - 2].nodes == r.nodes {
        recs[n - 1].at_ms = r.at_ms;
    } else {
        recs.push(r);
    }
    let over = recs.len().saturating_sub(MAX_RECOMMENDATIONS);
    recs.drain(..over);
}

/// Records `now` and its recommendation in `memory`, and returns the new
/// `spec.nodes` when the stabilised recommendation differs from `current`
/// (one node closer to it).
pub fn decide(t: Targets<'_>, memory: &mut AutoscalerStatus, current: i32, now: Sample) -> Option<i32> {
    let raw = raw_recommendation(t, memory.last_sample, now);
    memory.last_sample = Some(CounterSample { at_ms: now.at_ms, requests_total: now.requests_total, pods: now.pods });
    let window_ms = i64::from(t.spec.stabilisation_window_seconds.max(0)) * 1000;
    let cutoff = now.at_ms - window_ms;
    if let Some(nodes) = raw {
        record(memory, Recommendation { at_ms: now.at_ms, nodes });
    }
    // Keep the window, plus the newest recommendation older than it (proof the window is covered).
    let older = memory.recommendations.iter().filter(|r| r.at_ms < cutoff).count();
    memory.recommendations.drain(..older.saturating_sub(1));
    let covered = memory.recommendations.first().is_some_and(|r| r.at_ms <= cutoff);
    if !covered {
        return None;
    }
    let in_window = memory.recommendations.iter().filter(|r| r.at_ms >= cutoff).map(|r| r.nodes);
    let (lo, hi) = in_window.fold((i32::MAX, i32::MIN), |(lo, hi), n| (lo.min(n), hi.max(n)));
    if lo == i32::MAX {
        return None;
    }
    let current_clamped = clamp(t, current);
    if current_clamped != current {
        return Some(current + (current_clamped - current).signum());
    }
    if lo > current {
        Some(current + 1)
    } else if hi < current {
        Some(current - 1)
    } else {
        None
    }
}

#[cfg(test)]
mod tests;
