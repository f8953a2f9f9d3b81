//! What the operator tells the user besides `status`: events, one per
//! distinct step or failure, and the `ReconcileFailed` condition.
//!
//! Invariants: kube-runtime's [`Recorder`](kube::runtime::events::Recorder)
//! aggregates events by (type, reason, action, regarding), not by note, so
//! every event's action carries a hash of its note: different steps (or the
//! same kind of step with a different note) are separate events, an identical
//! repeated one is aggregated into a series. A failure writes the status at
//! most once (not again while the same failure repeats).
//!
//! May call: the Kubernetes API (events, the KVCluster's status).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams};
use kube::runtime::events::{Event as KubeEvent, EventType};
use kube::{Api, Resource};

use super::Context;
use crate::crd::KVCluster;
use crate::error::Error;
use crate::plan::Step;
use crate::resources;

/// Type of the condition a failed reconcile sets (removed by the next success).
pub const RECONCILE_FAILED: &str = "ReconcileFailed";
/// Longest note or condition message written (events allow 1 kB).
const MAX_NOTE: usize = 1000;

/// The event reason of a step (`None`: the step is not reported).
pub fn step_reason(step: &Step) -> Option<&'static str> {
    Some(match step {
        Step::Refuse { .. } => "InvalidSpec",
        Step::ScaleRack { .. } => "ScalingRack",
        Step::Decommission { .. } => "Decommissioning",
        Step::DeletePvc { .. } => "DeletingPvc",
        Step::ReplaceNode { .. } => "ReplacingNode",
        Step::FinishReplace { .. } => "ReplacementFinished",
        Step::RestartPod { .. } => "RestartingPod",
        Step::ReplacementRefused { .. } => "ReplacementRefused",
        Step::Wait { .. } | Step::Idle => return None,
    })
}

fn truncate(mut text: String) -> String {
    if text.len() > MAX_NOTE {
        let mut cut = MAX_NOTE - 3;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push_str("...");
    }
    text
}

/// The event action: `reason` plus a hash of the note, so the recorder's
/// aggregation key differs whenever the note does.
pub fn event_action(reason: &str, note: &str) -> String {
    format!("{reason}-{:016x}", resources::stable_hash(note.as_bytes()))
}

/// Publishes one event on `kvc` (a failure to publish is only logged).
pub async fn publish(ctx: &Context, kvc: &KVCluster, type_: EventType, reason: &str, key: &str, note: String) {
    let Some(recorder) = &ctx.recorder else { return };
    let note = truncate(note);
    let action = event_action(reason, key);
    let ev = KubeEvent { type_, reason: reason.into(), note: Some(note), action, secondary: None };
    if let Err(e) = recorder.publish(&ev, &kvc.object_ref(&())).await {
        tracing::debug!(error = %e, reason, "cannot publish event");
    }
}

/// What tells two events of one reason apart: the note, except for a refused
/// replacement, whose note counts the seconds the node has been DOWN and
/// would otherwise make a new event every reconcile; it aggregates per pod.
pub fn event_key<'a>(step: &'a Step, note: &'a str) -> &'a str {
    match step {
        Step::ReplacementRefused { pod, .. } => pod,
        _ => note,
    }
}

/// `status.lastStep` after `error`.
pub fn failed_step_text(error: &Error) -> String {
    match error {
        Error::Step { .. } => truncate(error.to_string()),
        other => truncate(format!("reconcile failed: {other}")),
    }
}

/// The conditions after `error`: the previous ones with `ReconcileFailed`
/// True; None when that exact failure is already reported.
pub fn failed_conditions(kvc: &KVCluster, error: &Error, now: Timestamp) -> Option<Vec<Condition>> {
    let prev = kvc.status.as_ref().map(|s| s.conditions.clone()).unwrap_or_default();
    let message = truncate(error.to_string());
    let old = prev.iter().find(|c| c.type_ == RECONCILE_FAILED && c.status == "True");
    if old.is_some_and(|c| c.message == message && c.reason == error.reason()) {
        return None;
    }
    let since = old.map_or(Time(now), |c| c.last_transition_time.clone());
    let mut out: Vec<Condition> = prev.into_iter().filter(|c| c.type_ != RECONCILE_FAILED).collect();
    out.push(Condition {
        type_: RECONCILE_FAILED.into(),
        status: "True".into(),
        reason: error.reason().into(),
        message,
        observed_generation: kvc.metadata.generation,
        last_transition_time: since,
    });
    Some(out)
}

/// Makes a failed reconcile visible: a Warning event (aggregated while the
/// same failure repeats) and, once per distinct failure, the status.
pub async fn failure(kvc: &KVCluster, ctx: &Context, error: &Error) {
    publish(ctx, kvc, EventType::Warning, error.reason(), &error.to_string(), error.to_string()).await;
    let (Some(ns), Some(name)) = (kvc.metadata.namespace.as_deref(), kvc.metadata.name.as_deref()) else { return };
    let now = Timestamp::from_millisecond((ctx.clock)()).unwrap_or(Timestamp::UNIX_EPOCH);
    let Some(conditions) = failed_conditions(kvc, error, now) else { return };
    // The phase is the failed step's (an upgrade that cannot restart a pod is
    // Upgrading, not the Running of the last good status).
    let mut status = serde_json::json!({ "conditions": conditions, "lastStep": failed_step_text(error) });
    if let Some(phase) = error.phase() {
        status["phase"] = serde_json::json!(phase);
    }
    let patch = serde_json::json!({ "status": status });
    let api: Api<KVCluster> = Api::namespaced(ctx.client.clone(), ns);
    if let Err(e) = api.patch_status(name, &PatchParams::default(), &Patch::Merge(patch)).await {
        tracing::warn!(cluster = %name, namespace = %ns, error = %e, "cannot report the failed reconcile in the status");
    }
}
