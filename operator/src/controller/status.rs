//! The status the operator reports: phase, conditions (Ready, Progressing,
//! Degraded, Invalid), per-node state, ownership and last repair. Pure.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;

use crate::crd::{AutoscalerStatus, KVCluster, KVClusterStatus, MemberStatus, Phase};
use crate::plan::{Decision, Liveness, NodeState, Observed, Step};
use crate::resources;

fn condition(
    prev: &[Condition],
    type_: &str,
    ok: bool,
    reason: &str,
    message: String,
    generation: Option<i64>,
    now: Timestamp,
) -> Condition {
    let status = if ok { "True" } else { "False" };
    // The transition time moves only when the status flips.
    let since = prev
        .iter()
        .find(|c| c.type_ == type_ && c.status == status)
        .map(|c| c.last_transition_time.clone())
        .unwrap_or(Time(now));
    Condition {
        type_: type_.into(),
        status: status.into(),
        reason: reason.into(),
        message,
        observed_generation: generation,
        last_transition_time: since,
    }
}

/// Text of a step for `status.lastStep` and events.
pub fn describe(step: &Step) -> String {
    match step {
        Step::Refuse { problems } => {
            let list: Vec<String> = problems.iter().map(|p| format!("spec.{} {}", p.field, p.message)).collect();
            format!("spec refused: {}", list.join("; "))
        }
        Step::ScaleRack { rack, replicas } => format!("set rack {rack} to {replicas} pod(s)"),
        Step::Decommission { pod, host_id, endpoint } => {
            format!("decommission node {host_id} in pod {pod} (asked at {endpoint})")
        }
        Step::DeletePvc { pvc } => format!("delete PVC {pvc} of a removed node (pvcRetention: Delete)"),
        Step::ReplaceNode { pod, old_host_id, reason, .. } => {
            format!("replace node {} in pod {pod}: {reason}", old_host_id.as_deref().unwrap_or("(never joined)"))
        }
        Step::ReplacementRefused { why, .. } => format!("replacement waits: {why}"),
        Step::FinishReplace { pod } => format!("replacement in pod {pod} finished"),
        Step::RestartPod { pod } => format!("restart pod {pod} on the new template"),
        Step::Wait { reason } => format!("waiting: {reason}"),
        Step::Idle => "cluster matches the spec".into(),
    }
}

fn members(obs: &Observed) -> Vec<MemberStatus> {
    obs.nodes
        .iter()
        .flatten()
        .map(|n| MemberStatus {
            pod: n.pod.clone(),
            host_id: n.host_id.clone(),
            state: n.state.to_string(),
            liveness: n.liveness.to_string(),
            ownership: n.ownership,
            load_bytes: n.load_bytes,
            down_since_ms: n.down_since_ms,
        })
        .collect()
}

/// Nodes that are NORMAL, alive, and whose pod is ready.
fn ready_nodes(obs: &Observed) -> i32 {
    let ready = obs
        .nodes
        .iter()
        .flatten()
        .filter(|n| n.state == NodeState::Normal && n.liveness == Liveness::Alive)
        .filter(|n| n.pod.as_deref().and_then(|p| obs.pod(p)).is_some_and(|p| p.ready))
        .count();
    i32::try_from(ready).unwrap_or(i32::MAX)
}

/// Ready, Progressing, Degraded, and Invalid when the spec is refused.
fn conditions(kvc: &KVCluster, obs: &Observed, decision: &Decision, ready: i32, now: Timestamp) -> Vec<Condition> {
    let prev = kvc.status.as_ref().map(|s| s.conditions.as_slice()).unwrap_or_default();
    let generation = kvc.metadata.generation;
    let text = describe(&decision.step);
    let invalid = matches!(decision.step, Step::Refuse { .. });
    let idle = decision.step == Step::Idle;
    // A LEFT node (a finished scale-down) is reported DOWN: it is gone, not unhealthy.
    let degraded = decision.phase == Phase::Degraded
        || obs.nodes.iter().flatten().any(|n| n.liveness == Liveness::Down && n.state != NodeState::Left)
        || obs.racks.values().flat_map(|r| &r.pods).any(|p| p.volume_lost);
    let problems = obs.health_problems();
    let degraded_message = match (degraded, problems.is_empty()) {
        (false, _) => "every node is alive".to_string(),
        (true, false) => problems.join("; "),
        (true, true) => text.clone(),
    };
    let all_ready = ready >= kvc.spec.nodes && ready > 0;
    let cond = |type_, ok, reason, message| condition(prev, type_, ok, reason, message, generation, now);
    let mut out = vec![
        cond(
            "Ready",
            !invalid && all_ready,
            if all_ready { "AllNodesReady" } else { "NodesNotReady" },
            format!("{ready}/{} nodes NORMAL, alive and ready", kvc.spec.nodes),
        ),
        cond("Progressing", !invalid && !idle, if idle { "Idle" } else { "Step" }, text.clone()),
        cond("Degraded", degraded, if degraded { "NodesUnhealthy" } else { "Healthy" }, degraded_message),
    ];
    if invalid {
        out.push(cond("Invalid", true, "SpecRefused", text));
    }
    out
}

/// The new status after `decision` on `obs`.
pub fn build(
    kvc: &KVCluster,
    obs: &Observed,
    decision: &Decision,
    autoscaler: Option<AutoscalerStatus>,
    now: Timestamp,
) -> KVClusterStatus {
    let prev = kvc.status.clone().unwrap_or_default();
    let ready = ready_nodes(obs);
    let pods = i32::try_from(obs.racks.values().map(|r| r.pods.len()).sum::<usize>()).unwrap_or(i32::MAX);
    KVClusterStatus {
        phase: decision.phase,
        nodes: pods,
        ready_nodes: ready,
        selector: resources::selector_string(kvc),
        observed_generation: kvc.metadata.generation,
        conditions: conditions(kvc, obs, decision, ready, now),
        members: if obs.nodes.is_some() { members(obs) } else { prev.members },
        last_repair: last_repair(obs).or(prev.last_repair),
        last_step: Some(describe(&decision.step)),
        autoscaler: autoscaler.or(prev.autoscaler),
    }
}

/// The oldest "last full repair" over all nodes, when every live node reported one.
fn last_repair(obs: &Observed) -> Option<String> {
    let nodes: Vec<_> = obs.nodes.iter().flatten().filter(|n| n.state == NodeState::Normal).collect();
    if nodes.is_empty() {
        return None;
    }
    let oldest = nodes.iter().map(|n| n.last_full_repair_ms).collect::<Option<Vec<i64>>>()?.into_iter().min()?;
    Timestamp::from_millisecond(oldest).ok().map(|t| t.to_string())
}
