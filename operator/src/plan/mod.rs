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
//! 5. A node whose local volume is gone is replaced (PVC and pod deleted, the
//!    new pod starts with `--replace <host-id>`), one at a time. Downtime
//!    alone is no proof: only with `replacement.onDownTime` is a node DOWN
//!    past `afterSeconds` replaced, and never while another node is not
//!    NORMAL and ALIVE or a range would lack a quorum.
//! 6. A pod whose template is outdated is restarted, one at a time, only if
//!    every range keeps a quorum while it is down.
//! 7. No scale, decommission, replacement or restart starts unless every
//!    ready node, asked at its own address, reports the same membership and
//!    sees the others ALIVE ([`disagreement`]).
//! 8. The phase of a create, scale-up or upgrade is kept while the only
//!    unhealthy pods are the ones it started; Degraded is for the rest.

mod agreement;
mod observed;

pub use agreement::*;
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
    /// Ask the node `host_id` (running in `pod`) to decommission itself.
    Decommission {
        /// The pod.
        pod: String,
        /// The node.
        host_id: String,
        /// The node's own gRPC endpoint (a node decommissions only itself).
        endpoint: String,
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
    /// A node is DOWN past `replacement.onDownTime.afterSeconds`, but replacing it now is unsafe.
    ReplacementRefused {
        /// The pod of the DOWN node.
        pod: String,
        /// Why it is due and why it is refused.
        why: String,
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
    /// It has been DOWN longer than `replacement.onDownTime.afterSeconds` (opt-in).
    DownTooLong {
        /// Seconds it has been DOWN.
        down_for_s: i64,
        /// The configured `afterSeconds`.
        after_s: i32,
    },
}

impl std::fmt::Display for ReplaceReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::VolumeLost => f.write_str("its volume is gone: PVC lost or deleted, or its PV or machine deleted"),
            Self::DownTooLong { down_for_s, after_s } => write!(
                f,
                "DOWN for {down_for_s} s > replacement.onDownTime.afterSeconds {after_s}; every other node is \
                 NORMAL and ALIVE"
            ),
        }
    }
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
            _ => growing_phase(obs),
        };
        return wait(format!("node {} ({}) is {}", n.host_id, n.pod.as_deref().unwrap_or("no pod"), n.state), phase);
    }
    if let Some(d) = remove_left_node(obs, nodes) {
        return d;
    }
    if let Some(d) = delete_orphan_pvc(spec, obs) {
        return d;
    }
    let topology_step =
        replacement(spec, obs, nodes).or_else(|| scale(spec, obs, nodes)).or_else(|| rolling_restart(spec, obs, nodes));
    if let Some(d) = topology_step {
        return when_agreed(d, obs, nodes);
    }
    let unhealthy = unhealthy_pods(obs, nodes);
    if let Some(p) = unhealthy.first() {
        if let Some(d) = still_starting(obs, nodes) {
            return d;
        }
        return wait(format!("pod {p} is not ready or its node is not NORMAL and ALIVE"), Phase::Degraded);
    }
    decide(Step::Idle, Phase::Running)
}

/// The phase of adding nodes: Creating while the cluster is being created, else ScalingUp.
fn growing_phase(obs: &Observed) -> Phase {
    if obs.previous_phase == Phase::Creating { Phase::Creating } else { Phase::ScalingUp }
}

/// `d` when it changes nothing or every asked node agrees on the membership; else a wait naming who disagrees.
fn when_agreed(d: Decision, obs: &Observed, nodes: &[NodeObserved]) -> Decision {
    let what = match &d.step {
        Step::ScaleRack { rack, replicas } => format!("setting rack {rack} to {replicas} pod(s)"),
        Step::Decommission { pod, .. } => format!("decommissioning pod {pod}"),
        Step::ReplaceNode { pod, .. } => format!("replacing pod {pod}"),
        Step::RestartPod { pod } => format!("restarting pod {pod}"),
        _ => return d,
    };
    // The node being replaced is DOWN by definition: its own view and its liveness do not count.
    let except = match &d.step {
        Step::ReplaceNode { pod, .. } => Some(pod.as_str()),
        _ => None,
    };
    match disagreement(obs, nodes, except) {
        Some(why) => wait(format!("{what} waits until the nodes agree on the membership: {why}"), d.phase),
        None => d,
    }
}

/// While a create, scale-up or upgrade is in progress (the last status said
/// so) and the only unhealthy pod is the one it started (one at a time: the
/// top pod of a growing rack whose node is not DOWN, or a pod restarted on
/// the new template, or a pod not created yet), that phase is kept: a pod
/// that is starting is not a degraded cluster.
fn still_starting(obs: &Observed, nodes: &[NodeObserved]) -> Option<Decision> {
    let phase = obs.previous_phase;
    if !matches!(phase, Phase::Creating | Phase::ScalingUp | Phase::Upgrading) {
        return None;
    }
    let node_of = |p: &PodObserved| nodes.iter().find(|n| n.pod.as_deref() == Some(p.name.as_str()));
    let coming_up = |p: &PodObserved| {
        node_of(p)
            .is_none_or(|n| matches!(n.state, NodeState::Joining | NodeState::Normal) && n.liveness != Liveness::Down)
    };
    let started = |r: &RackObserved, p: &PodObserved| match phase {
        Phase::Upgrading => r.update_revision.is_some() && p.revision == r.update_revision,
        // A new cluster's first RF nodes start together: none is ready before RF are NORMAL.
        Phase::Creating => coming_up(p),
        _ => p.ordinal == r.replicas - 1 && coming_up(p),
    };
    let mut starting = Vec::new();
    for r in obs.racks.values() {
        for p in r.pods.iter().filter(|p| !pod_healthy(p, nodes)) {
            if p.volume_lost || !started(r, p) {
                return None;
            }
            starting.push(format!("pod {}", p.name));
        }
        let missing = r.replicas - i32::try_from(r.pods.len()).unwrap_or(0);
        starting.extend((missing > 0).then(|| format!("{missing} pod(s) not created yet")));
    }
    match starting.as_slice() {
        [one] => Some(wait(format!("{one} is starting ({phase:?} in progress)"), phase)),
        [_, ..] if phase == Phase::Creating => {
            Some(wait(format!("{} are starting (Creating in progress)", starting.join(", ")), phase))
        }
        _ => None,
    }
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
    let node_of = |pod: &str| nodes.iter().find(|n| n.pod.as_deref() == Some(pod));
    let pods = || obs.racks.values().flat_map(|r| r.pods.iter());
    // Proof that the volume is gone: always replaced.
    if let Some(pod) = pods().find(|p| p.volume_lost) {
        let old_host_id = node_of(&pod.name).map(|n| n.host_id.clone());
        return Some(replace(&pod.name, old_host_id, ReplaceReason::VolumeLost));
    }
    // Downtime alone: only when asked for, and only when it is safe.
    let after_s = spec.replacement.on_down_time.as_ref()?.after_seconds;
    let (pod, node, down_for_s) = pods().find_map(|p| {
        let n = node_of(&p.name).filter(|n| n.liveness == Liveness::Down)?;
        let down_for_s = (obs.now_ms - n.down_since_ms?) / 1000;
        (down_for_s >= i64::from(after_s)).then_some((p, n, down_for_s))
    })?;
    let due = format!(
        "node {} in pod {} DOWN for {down_for_s} s > replacement.onDownTime.afterSeconds {after_s}",
        node.host_id, pod.name
    );
    if let Some(refusal) = down_time_refusal(spec, obs, nodes, node) {
        let step = Step::ReplacementRefused { pod: pod.name.clone(), why: format!("{due}, but refused: {refusal}") };
        return Some(decide(step, Phase::Degraded));
    }
    Some(replace(&pod.name, Some(node.host_id.clone()), ReplaceReason::DownTooLong { down_for_s, after_s }))
}

fn replace(pod: &str, old_host_id: Option<String>, reason: ReplaceReason) -> Decision {
    let step = Step::ReplaceNode { pod: pod.into(), pvc: crate::resources::pvc_name(pod), old_host_id, reason };
    decide(step, Phase::Replacing)
}

/// Why replacing the DOWN node `down` is unsafe now: another node is not
/// NORMAL and ALIVE, another pod is not ready, or a range would lack a quorum.
fn down_time_refusal(
    spec: &KVClusterSpec,
    obs: &Observed,
    nodes: &[NodeObserved],
    down: &NodeObserved,
) -> Option<String> {
    let others = nodes.iter().filter(|n| n.state != NodeState::Left && n.host_id != down.host_id);
    let at = |n: &NodeObserved| n.pod.as_deref().map_or_else(String::new, |p| format!(" (pod {p})"));
    for n in others {
        if n.liveness != Liveness::Alive {
            return Some(format!("node {}{} is also {}", n.host_id, at(n), n.liveness));
        }
        if n.state != NodeState::Normal {
            return Some(format!("node {}{} is {}, not NORMAL", n.host_id, at(n), n.state));
        }
    }
    let unhealthy: Vec<String> =
        unhealthy_pods(obs, nodes).into_iter().filter(|p| Some(p.as_str()) != down.pod.as_deref()).collect();
    if let Some(p) = unhealthy.first() {
        return Some(format!("pod {p} is not ready too"));
    }
    if !restart_keeps_quorum(spec.replication_factor, unhealthy.len()) {
        return Some(format!(
            "with replicationFactor {} a range would lack a quorum while it is rebuilt",
            spec.replication_factor
        ));
    }
    None
}

/// A pod is ready and its node NORMAL and ALIVE.
fn pod_healthy(p: &PodObserved, nodes: &[NodeObserved]) -> bool {
    p.ready && pod_started(p, nodes)
}

/// The pod's node is NORMAL and ALIVE (ready or not).
fn pod_started(p: &PodObserved, nodes: &[NodeObserved]) -> bool {
    nodes.iter().any(|n| {
        n.pod.as_deref() == Some(p.name.as_str()) && n.state == NodeState::Normal && n.liveness == Liveness::Alive
    })
}

/// Fewer nodes are NORMAL than the replication factor: no node can be ready
/// yet (a lone node of RF 3 cannot serve a QUORUM), so creation adds the
/// next pod once the last one's node is NORMAL and ALIVE, ready or not.
fn forming(spec: &KVClusterSpec, nodes: &[NodeObserved]) -> bool {
    let normal = nodes.iter().filter(|n| n.state == NodeState::Normal).count();
    i32::try_from(normal).unwrap_or(i32::MAX) < spec.replication_factor
}

/// Pods whose node is not NORMAL and ALIVE, and pods not created yet.
fn unstarted_pods(obs: &Observed, nodes: &[NodeObserved]) -> Vec<String> {
    let mut out: Vec<String> = obs
        .racks
        .values()
        .flat_map(|r| r.pods.iter())
        .filter(|p| !pod_started(p, nodes))
        .map(|p| p.name.clone())
        .collect();
    out.extend(missing_pods(obs));
    out
}

fn missing_pods(obs: &Observed) -> Vec<String> {
    obs.racks
        .iter()
        .filter_map(|(name, r)| {
            let missing = r.replicas - i32::try_from(r.pods.len()).unwrap_or(0);
            (missing > 0).then(|| format!("{name}: {missing} pod(s) not created yet"))
        })
        .collect()
}

/// Pods that are not ready, or whose node is not NORMAL and ALIVE (or unknown).
fn unhealthy_pods(obs: &Observed, nodes: &[NodeObserved]) -> Vec<String> {
    let mut out: Vec<String> = obs
        .racks
        .values()
        .flat_map(|r| r.pods.iter())
        .filter(|p| !pod_healthy(p, nodes))
        .map(|p| p.name.clone())
        .collect();
    // A pod the StatefulSet should have but has not created yet counts too.
    out.extend(missing_pods(obs));
    out
}

fn scale(spec: &KVClusterSpec, obs: &Observed, nodes: &[NodeObserved]) -> Option<Decision> {
    let targets = rack_targets(spec.nodes, spec.racks.len());
    let total = obs.total_replicas();
    if total == spec.nodes {
        return None;
    }
    let growing = total < spec.nodes;
    let phase = if growing { growing_phase(obs) } else { Phase::ScalingDown };
    let unhealthy =
        if growing && forming(spec, nodes) { unstarted_pods(obs, nodes) } else { unhealthy_pods(obs, nodes) };
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
    let endpoint = crate::resources::node_endpoint(obs.pod(&victim).and_then(|p| p.ip.as_deref()), &node.grpc_addr);
    Some(decide(Step::Decommission { pod: victim, host_id: node.host_id.clone(), endpoint }, phase))
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
