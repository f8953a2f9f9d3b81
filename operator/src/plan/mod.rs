//! The planner: given the spec and what was observed (StatefulSets, pods,
//! PVCs, the nodes' own view from the Admin API), the ONE next step.
//!
//! Pure (sans-IO): no clock (the time is an input), no API calls. The
//! controller runs the step, and the next reconcile observes its effect;
//! nothing here assumes a step finished.
//!
//! Safety rules, in the order they are checked:
//! 1. An invalid spec gets a condition and no action.
//! 2. While any node is JOINING, LEAVING or REPLACING, no other topology step
//!    starts. In particular a StatefulSet is never shrunk while a node is
//!    leaving (scylla-operator #3539 lost data that way); a LEFT node's pod
//!    is removed only once it is LEFT and no other node is leaving.
//! 3. Scale-up adds one pod at a time and waits for it to be NORMAL and ready;
//!    it never starts a pod on a PVC retained from a decommissioned node.
//! 4. Scale-down decommissions the top pod of the fullest rack through the
//!    Admin API, waits for LEFT, shrinks its StatefulSet, then applies
//!    `pvcRetention`.
//! 5. A node whose local volume is gone, or that stays DOWN past
//!    `replacement.downTimeoutSeconds`, is replaced (PVC and pod deleted, the
//!    new pod starts with `--replace <host-id>`), one at a time.
//! 6. A pod whose template is outdated is restarted, one at a time, only if
//!    every range keeps a quorum while it is down.

mod observed;

pub use observed::*;

use crate::crd::{KVClusterSpec, Phase, PvcRetention, SpecProblem};

/// The one thing to do next.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Step {
    /// Refuse the spec: set the Invalid condition, touch nothing.
    Refuse {
        /// What is wrong.
        problems: Vec<SpecProblem>,
    },
    /// Set the StatefulSet of `rack` to `replicas` (one more or one less than now).
    ScaleRack {
        /// The rack.
        rack: String,
        /// New replica count.
        replicas: i32,
    },
    /// Ask the cluster to decommission `host_id` (running in `pod`).
    Decommission {
        /// The pod.
        pod: String,
        /// The node.
        host_id: String,
    },
    /// Delete the PVC of a removed node (`pvcRetention: Delete`).
    DeletePvc {
        /// The PVC.
        pvc: String,
    },
    /// Replace the node of `pod`: record `old_host_id` in the replace map, delete PVC and pod.
    ReplaceNode {
        /// The pod.
        pod: String,
        /// Its data PVC.
        pvc: String,
        /// The node it replaces; None when the pod never joined (it restarts empty).
        old_host_id: Option<String>,
        /// Why.
        reason: ReplaceReason,
    },
    /// The replacement in `pod` is NORMAL: drop its replace-map entry.
    FinishReplace {
        /// The pod.
        pod: String,
    },
    /// Delete `pod` so that it restarts with the current template.
    RestartPod {
        /// The pod.
        pod: String,
    },
    /// Nothing may be done now.
    Wait {
        /// Why, for the status and the events.
        reason: String,
    },
    /// The cluster is as specified.
    Idle,
}

/// Why a node is replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplaceReason {
    /// Its PVC is lost or unbound, or the machine holding its local volume is gone.
    VolumeLost,
    /// It has been DOWN longer than the deadline.
    DownTooLong,
}

/// A step and the phase it puts the cluster in.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// What to do.
    pub step: Step,
    /// The phase to report.
    pub phase: Phase,
}

fn decide(step: Step, phase: Phase) -> Decision {
    Decision { step, phase }
}

fn wait(reason: impl Into<String>, phase: Phase) -> Decision {
    decide(Step::Wait { reason: reason.into() }, phase)
}

/// Pods per rack for `total` nodes: spread evenly, earlier racks take the remainder.
pub fn rack_targets(total: i32, racks: usize) -> Vec<i32> {
    let r = i32::try_from(racks.max(1)).unwrap_or(i32::MAX);
    (0..r).map(|i| total / r + i32::from(i < total % r)).collect()
}

/// Whether every range keeps a quorum (RF/2+1 live replicas) when one more node
/// goes down while `unhealthy_others` other nodes are not serving. Without
/// looking at tokens, the worst case is that they all share a range.
pub fn restart_keeps_quorum(rf: i32, unhealthy_others: usize) -> bool {
    let down = i32::try_from(unhealthy_others).unwrap_or(i32::MAX).saturating_add(1).min(rf);
    // Quorum is rf / 2 + 1 live replicas.
    rf - down > rf / 2
}

/// The next step for `spec` given `obs`.
pub fn plan(spec: &KVClusterSpec, obs: &Observed) -> Decision {
    let problems = spec.problems();
    if !problems.is_empty() {
        return decide(Step::Refuse { problems }, Phase::Invalid);
    }
    let Some(nodes) = &obs.nodes else {
        return plan_without_status(spec, obs);
    };
    if let Some(d) = finish_or_await_replacement(obs, nodes) {
        return d;
    }
    if let Some(n) = nodes.iter().find(|n| n.state.in_transition()) {
        let phase = match n.state {
            NodeState::Leaving => Phase::ScalingDown,
            NodeState::Replacing => Phase::Replacing,
            _ => Phase::ScalingUp,
        };
        return wait(format!("node {} ({}) is {}", n.host_id, n.pod.as_deref().unwrap_or("no pod"), n.state), phase);
    }
    if let Some(d) = remove_left_node(obs, nodes) {
        return d;
    }
    if let Some(d) = delete_orphan_pvc(spec, obs) {
        return d;
    }
    if let Some(d) = replacement(spec, obs, nodes) {
        return d;
    }
    if let Some(d) = scale(spec, obs, nodes) {
        return d;
    }
    if let Some(d) = rolling_restart(spec, obs, nodes) {
        return d;
    }
    let unhealthy = unhealthy_pods(obs, nodes);
    if let Some(p) = unhealthy.first() {
        return wait(format!("pod {p} is not ready or its node is not NORMAL and ALIVE"), Phase::Degraded);
    }
    decide(Step::Idle, Phase::Running)
}

/// Before any node answers the Admin API: create the first pod, or wait for it.
fn plan_without_status(spec: &KVClusterSpec, obs: &Observed) -> Decision {
    if obs.total_replicas() == 0 && spec.nodes > 0 {
        let first = &spec.racks[0].name;
        return decide(Step::ScaleRack { rack: first.clone(), replicas: 1 }, Phase::Creating);
    }
    wait("the cluster status is not available yet (no node answers the Admin API)", Phase::Creating)
}

fn finish_or_await_replacement(obs: &Observed, nodes: &[NodeObserved]) -> Option<Decision> {
    let (pod, old) = obs.replacing.iter().next()?;
    let done = nodes.iter().any(|n| {
        n.pod.as_deref() == Some(pod.as_str()) && n.state == NodeState::Normal && n.liveness == Liveness::Alive
    }) && obs.pod(pod).is_some_and(|p| p.ready);
    if done {
        return Some(decide(Step::FinishReplace { pod: pod.clone() }, Phase::Replacing));
    }
    // The new pod lost its volume again (e.g. recreated before the old PVC was gone): redo.
    if let Some(p) = obs.pod(pod).filter(|p| p.volume_lost) {
        return Some(decide(
            Step::ReplaceNode {
                pod: p.name.clone(),
                pvc: crate::resources::pvc_name(&p.name),
                old_host_id: Some(old.clone()),
                reason: ReplaceReason::VolumeLost,
            },
            Phase::Replacing,
        ));
    }
    Some(wait(format!("pod {pod} is replacing node {old} (streaming its ranges)"), Phase::Replacing))
}

fn remove_left_node(obs: &Observed, nodes: &[NodeObserved]) -> Option<Decision> {
    let left = nodes.iter().find(|n| n.state == NodeState::Left && n.pod.is_some())?;
    let pod = left.pod.as_deref()?;
    let (rack_name, rack) = obs.racks.iter().find(|(_, r)| r.pods.iter().any(|p| p.name == pod))?;
    let top = rack.replicas - 1;
    if rack.pods.iter().any(|p| p.name == pod && p.ordinal == top) {
        return Some(decide(Step::ScaleRack { rack: rack_name.clone(), replicas: top }, Phase::ScalingDown));
    }
    Some(wait(
        format!("node {} in pod {pod} has LEFT but is not its rack's last pod; remove it by hand", left.host_id),
        Phase::Degraded,
    ))
}

fn delete_orphan_pvc(spec: &KVClusterSpec, obs: &Observed) -> Option<Decision> {
    if spec.pvc_retention != PvcRetention::Delete {
        return None;
    }
    obs.racks.values().find_map(|rack| {
        let pvc = rack
            .pvcs
            .iter()
            .find(|c| c.ordinal >= rack.replicas && !rack.pods.iter().any(|p| p.ordinal == c.ordinal))?;
        Some(decide(Step::DeletePvc { pvc: pvc.name.clone() }, Phase::ScalingDown))
    })
}

fn replacement(spec: &KVClusterSpec, obs: &Observed, nodes: &[NodeObserved]) -> Option<Decision> {
    if !spec.replacement.enabled {
        return None;
    }
    let deadline = i64::from(spec.replacement.down_timeout_seconds) * 1000;
    for pod in obs.racks.values().flat_map(|r| r.pods.iter()) {
        let node = nodes.iter().find(|n| n.pod.as_deref() == Some(pod.name.as_str()));
        let reason = if pod.volume_lost {
            ReplaceReason::VolumeLost
        } else if node.is_some_and(|n| {
            n.liveness == Liveness::Down && n.down_since_ms.is_some_and(|t| obs.now_ms - t >= deadline)
        }) {
            ReplaceReason::DownTooLong
        } else {
            continue;
        };
        let step = Step::ReplaceNode {
            pod: pod.name.clone(),
            pvc: crate::resources::pvc_name(&pod.name),
            old_host_id: node.map(|n| n.host_id.clone()),
            reason,
        };
        return Some(decide(step, Phase::Replacing));
    }
    None
}

/// Pods that are not ready, or whose node is not NORMAL and ALIVE (or unknown).
fn unhealthy_pods(obs: &Observed, nodes: &[NodeObserved]) -> Vec<String> {
    let healthy = |p: &PodObserved| {
        p.ready
            && nodes.iter().any(|n| {
                n.pod.as_deref() == Some(p.name.as_str())
                    && n.state == NodeState::Normal
                    && n.liveness == Liveness::Alive
            })
    };
    let mut out: Vec<String> =
        obs.racks.values().flat_map(|r| r.pods.iter()).filter(|p| !healthy(p)).map(|p| p.name.clone()).collect();
    // A pod the StatefulSet should have but has not created yet counts too.
    for (name, r) in &obs.racks {
        let missing = r.replicas - i32::try_from(r.pods.len()).unwrap_or(0);
        if missing > 0 {
            out.push(format!("{name}: {missing} pod(s) not created yet"));
        }
    }
    out
}

fn scale(spec: &KVClusterSpec, obs: &Observed, nodes: &[NodeObserved]) -> Option<Decision> {
    let targets = rack_targets(spec.nodes, spec.racks.len());
    let total = obs.total_replicas();
    if total == spec.nodes {
        return None;
    }
    let unhealthy = unhealthy_pods(obs, nodes);
    let growing = total < spec.nodes;
    let phase = if growing { Phase::ScalingUp } else { Phase::ScalingDown };
    if let Some(p) = unhealthy.first() {
        return Some(wait(format!("scaling waits: pod {p} is not ready or its node is not NORMAL and ALIVE"), phase));
    }
    let gap = |i: usize| {
        let now = obs.racks.get(&spec.racks[i].name).map_or(0, |r| r.replicas);
        if growing { targets[i] - now } else { now - targets[i] }
    };
    let i = (0..spec.racks.len()).max_by_key(|&i| (gap(i), std::cmp::Reverse(i)))?;
    let rack = &spec.racks[i].name;
    let now = obs.racks.get(rack).map_or(0, |r| r.replicas);
    if growing {
        // A PVC kept (pvcRetention: Retain) from a node that was decommissioned holds a LEFT
        // identity; a new pod must not start on it.
        let pvc = crate::resources::pvc_name(&crate::resources::pod_name_in(&obs.cluster, rack, now));
        if obs.racks.get(rack).is_some_and(|r| r.pvcs.iter().any(|c| c.name == pvc)) {
            return Some(wait(
                format!(
                    "scale-up waits: PVC {pvc} was kept from a removed node; delete it to let a new node use that slot"
                ),
                phase,
            ));
        }
        return Some(decide(Step::ScaleRack { rack: rack.clone(), replicas: now + 1 }, phase));
    }
    let victim = crate::resources::pod_name_in(obs.cluster.as_str(), rack, now - 1);
    let Some(node) = nodes.iter().find(|n| n.pod.as_deref() == Some(victim.as_str())) else {
        return Some(wait(format!("scale-down waits: no node is known for pod {victim}"), phase));
    };
    Some(decide(Step::Decommission { pod: victim, host_id: node.host_id.clone() }, phase))
}

fn rolling_restart(spec: &KVClusterSpec, obs: &Observed, nodes: &[NodeObserved]) -> Option<Decision> {
    let pod = obs.racks.values().find_map(|r| {
        let rev = r.update_revision.as_deref()?;
        r.pods.iter().find(|p| p.revision.as_deref() != Some(rev))
    })?;
    let unhealthy: Vec<String> = unhealthy_pods(obs, nodes).into_iter().filter(|p| *p != pod.name).collect();
    if !restart_keeps_quorum(spec.replication_factor, unhealthy.len()) {
        return Some(wait(
            format!(
                "rolling restart of {} waits: with RF {} a range would lose its quorum ({} other node(s) not serving)",
                pod.name,
                spec.replication_factor,
                unhealthy.len()
            ),
            Phase::Upgrading,
        ));
    }
    Some(decide(Step::RestartPod { pod: pod.name.clone() }, Phase::Upgrading))
}

#[cfg(test)]
mod tests;
