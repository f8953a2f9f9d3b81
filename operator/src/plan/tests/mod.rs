//! Planner scenarios. A tiny world model applies each step the way the
//! controller and the cluster would, so the tests follow a whole operation
//! step by step and check the safety rules at every step.

use super::*;
use crate::crd::{KVCluster, PvcRetention};
use crate::resources::pvc_name;

mod safety;

const REV: &str = "rev-1";

/// A cluster of pods, each running a healthy node unless changed.
#[derive(Debug, Clone)]
struct World {
    obs: Observed,
}

fn host(pod: &str) -> String {
    format!("host-{pod}")
}

/// The decommission of the node in `pod` (`kv-<rack>-<n>`), sent to the pod's own IP.
fn decommission(pod: &str) -> Step {
    let (rack, ordinal) = pod.trim_start_matches("kv-").rsplit_once('-').expect("kv-<rack>-<n>");
    let endpoint = format!("http://10.0.{}.{ordinal}:7100", rack.len());
    Step::Decommission { pod: pod.into(), host_id: host(pod), endpoint }
}

impl World {
    /// `counts[i]` healthy pods in rack `racks[i]`.
    fn healthy(racks: &[&str], counts: &[i32]) -> World {
        let mut w = World {
            obs: Observed { cluster: "kv".into(), nodes: Some(vec![]), now_ms: 1_000_000, ..Observed::default() },
        };
        for (rack, n) in racks.iter().zip(counts) {
            w.obs
                .racks
                .insert((*rack).into(), RackObserved { update_revision: Some(REV.into()), ..RackObserved::default() });
            for _ in 0..*n {
                w.add_pod(rack, NodeState::Normal, true);
            }
        }
        w
    }

    fn add_pod(&mut self, rack: &str, state: NodeState, ready: bool) -> String {
        let r = self.obs.racks.entry(rack.into()).or_default();
        let ordinal = r.replicas;
        r.replicas += 1;
        let name = format!("kv-{rack}-{ordinal}");
        let ip = format!("10.0.{}.{ordinal}", rack.len());
        r.pods.push(PodObserved {
            name: name.clone(),
            ordinal,
            ready,
            revision: Some(REV.into()),
            ip: Some(ip.clone()),
            volume_lost: false,
        });
        r.pvcs.push(PvcObserved { name: pvc_name(&name), ordinal });
        self.nodes().push(NodeObserved {
            host_id: host(&name),
            pod: Some(name.clone()),
            state,
            liveness: Liveness::Alive,
            down_since_ms: None,
            grpc_addr: format!("{ip}:7100"),
            ownership: 0.5,
            load_bytes: 0,
            last_full_repair_ms: None,
        });
        name
    }

    fn nodes(&mut self) -> &mut Vec<NodeObserved> {
        self.obs.nodes.get_or_insert_with(Vec::new)
    }

    fn node(&mut self, pod: &str) -> &mut NodeObserved {
        self.nodes().iter_mut().find(|n| n.pod.as_deref() == Some(pod)).unwrap_or_else(|| panic!("no node for {pod}"))
    }

    fn pod(&mut self, name: &str) -> &mut PodObserved {
        self.obs
            .racks
            .values_mut()
            .flat_map(|r| r.pods.iter_mut())
            .find(|p| p.name == name)
            .unwrap_or_else(|| panic!("no pod {name}"))
    }

    fn count_in(&self, state: NodeState) -> usize {
        self.obs.nodes.iter().flatten().filter(|n| n.state == state).count()
    }

    /// Does what the controller (and Kubernetes) does for `step`; new or
    /// restarted nodes come up JOINING and not ready.
    fn apply(&mut self, step: &Step) {
        match step {
            Step::ScaleRack { rack, replicas } => {
                let now = self.obs.racks.get(rack).map_or(0, |r| r.replicas);
                if *replicas > now {
                    self.add_pod(rack, NodeState::Joining, false);
                } else {
                    let r = self.obs.racks.get_mut(rack).expect("rack");
                    r.replicas = *replicas;
                    let gone: Vec<String> =
                        r.pods.iter().filter(|p| p.ordinal >= *replicas).map(|p| p.name.clone()).collect();
                    r.pods.retain(|p| p.ordinal < *replicas);
                    self.nodes().retain(|n| !gone.contains(n.pod.as_ref().expect("pod")));
                }
            }
            Step::Decommission { pod, .. } => self.node(pod).state = NodeState::Leaving,
            Step::DeletePvc { pvc } => self.obs.racks.values_mut().for_each(|r| r.pvcs.retain(|c| &c.name != pvc)),
            Step::ReplaceNode { pod, old_host_id, .. } => {
                if let Some(old) = old_host_id {
                    self.obs.replacing.insert(pod.clone(), old.clone());
                }
                let p = self.pod(pod);
                p.volume_lost = false;
                p.ready = false;
                let n = self.node(pod);
                n.pod = None; // the old node lost its pod
                let new = NodeObserved {
                    host_id: format!("new-{pod}"),
                    pod: Some(pod.clone()),
                    state: NodeState::Replacing,
                    liveness: Liveness::Alive,
                    down_since_ms: None,
                    ..n.clone()
                };
                self.nodes().push(new);
            }
            Step::FinishReplace { pod } => {
                self.obs.replacing.remove(pod);
            }
            Step::RestartPod { pod } => {
                let p = self.pod(pod);
                p.revision = Some("rev-2".into());
                p.ready = false;
            }
            _ => {}
        }
    }

    /// The cluster finishes whatever was in progress.
    fn settle(&mut self) {
        for n in self.nodes().iter_mut() {
            n.state = match n.state {
                NodeState::Joining | NodeState::Replacing => NodeState::Normal,
                NodeState::Leaving => NodeState::Left,
                s => s,
            };
        }
        let live: Vec<String> =
            self.nodes().iter().filter(|n| n.state == NodeState::Normal).filter_map(|n| n.pod.clone()).collect();
        for r in self.obs.racks.values_mut() {
            for p in &mut r.pods {
                if live.contains(&p.name) {
                    p.ready = true;
                }
            }
        }
    }

    fn replicas(&self) -> Vec<i32> {
        self.obs.racks.values().map(|r| r.replicas).collect()
    }
}

fn spec(nodes: i32, racks: &[&str]) -> KVCluster {
    KVCluster::test().nodes(nodes).rf(3).racks(racks).build()
}

/// Runs planner steps until Idle (at most `limit`), settling the cluster
/// after each Wait; returns the steps taken.
fn drive(kvc: &KVCluster, w: &mut World, limit: usize) -> Vec<Step> {
    let mut steps = Vec::new();
    for _ in 0..limit {
        let d = plan(&kvc.spec, &w.obs);
        match &d.step {
            Step::Idle => return steps,
            Step::Wait { .. } => w.settle(),
            s => w.apply(s),
        }
        // Safety at every point: never two topology changes at once.
        let busy = w.obs.nodes.iter().flatten().filter(|n| n.state.in_transition()).count();
        assert!(busy <= 1, "two nodes in transition after {:?}", d.step);
        steps.push(d.step);
    }
    panic!("not idle after {limit} steps: {steps:?}");
}

#[test]
fn fresh_cluster_creates_the_first_pod_then_waits_for_it() {
    let kvc = spec(3, &["default"]);
    let mut w = World { obs: Observed { cluster: "kv".into(), ..Observed::default() } };
    let d = plan(&kvc.spec, &w.obs);
    assert_eq!(d.step, Step::ScaleRack { rack: "default".into(), replicas: 1 });
    assert_eq!(d.phase, Phase::Creating);
    // The pod exists but no node answers yet: wait, never a second pod.
    w.obs.racks.insert("default".into(), RackObserved { replicas: 1, ..RackObserved::default() });
    w.obs
        .racks
        .get_mut("default")
        .expect("rack")
        .pods
        .push(PodObserved { name: "kv-default-0".into(), ..PodObserved::default() });
    assert!(matches!(plan(&kvc.spec, &w.obs).step, Step::Wait { .. }));
}

#[test]
fn fresh_cluster_grows_to_three_one_normal_node_at_a_time() {
    let kvc = spec(3, &["a", "b", "c"]);
    let mut w = World::healthy(&["a", "b", "c"], &[1, 0, 0]);
    let steps = drive(&kvc, &mut w, 20);
    let scales: Vec<&Step> = steps.iter().filter(|s| matches!(s, Step::ScaleRack { .. })).collect();
    assert_eq!(
        scales,
        [&Step::ScaleRack { rack: "b".into(), replicas: 1 }, &Step::ScaleRack { rack: "c".into(), replicas: 1 }]
    );
    assert_eq!(w.replicas(), [1, 1, 1]);
}

#[test]
fn scale_up_3_to_5_adds_one_pod_and_waits_for_normal() {
    let kvc = spec(5, &["a", "b", "c"]);
    let mut w = World::healthy(&["a", "b", "c"], &[1, 1, 1]);
    let d = plan(&kvc.spec, &w.obs);
    assert_eq!(d.step, Step::ScaleRack { rack: "a".into(), replicas: 2 });
    assert_eq!(d.phase, Phase::ScalingUp);
    w.apply(&d.step);
    // The new node is JOINING: the next step waits, even though 1 more node is wanted.
    let d = plan(&kvc.spec, &w.obs);
    assert!(matches!(&d.step, Step::Wait { reason } if reason.contains("JOINING")), "{d:?}");
    // NORMAL but its pod not ready yet: still wait.
    w.node("kv-a-1").state = NodeState::Normal;
    assert!(matches!(plan(&kvc.spec, &w.obs).step, Step::Wait { .. }));
    w.pod("kv-a-1").ready = true;
    assert_eq!(plan(&kvc.spec, &w.obs).step, Step::ScaleRack { rack: "b".into(), replicas: 2 });
    drive(&kvc, &mut w, 10);
    assert_eq!(w.replicas(), [2, 2, 1]);
}

#[test]
fn scale_down_5_to_3_decommissions_then_shrinks_then_deletes_pvcs() {
    let kvc = KVCluster::test().nodes(3).rf(3).racks(&["a", "b", "c"]).pvc_retention(PvcRetention::Delete).build();
    let mut w = World::healthy(&["a", "b", "c"], &[2, 2, 1]);
    let d = plan(&kvc.spec, &w.obs);
    assert_eq!(d.step, decommission("kv-a-1"));
    assert_eq!(d.phase, Phase::ScalingDown);
    w.apply(&d.step);
    // LEAVING: never shrink yet.
    assert!(matches!(plan(&kvc.spec, &w.obs).step, Step::Wait { .. }));
    w.settle(); // LEFT
    assert_eq!(plan(&kvc.spec, &w.obs).step, Step::ScaleRack { rack: "a".into(), replicas: 1 });
    w.apply(&Step::ScaleRack { rack: "a".into(), replicas: 1 });
    assert_eq!(plan(&kvc.spec, &w.obs).step, Step::DeletePvc { pvc: "data-kv-a-1".into() });
    let steps = drive(&kvc, &mut w, 20);
    assert_eq!(w.replicas(), [1, 1, 1]);
    assert!(steps.contains(&decommission("kv-b-1")));
    assert!(steps.contains(&Step::DeletePvc { pvc: "data-kv-b-1".into() }));
    // Every shrink came after its node was decommissioned.
    let pos = |s: &Step| steps.iter().position(|x| x == s).expect("step");
    assert!(pos(&decommission("kv-b-1")) < pos(&Step::ScaleRack { rack: "b".into(), replicas: 1 }));
}

#[test]
fn scale_down_with_retain_keeps_the_pvcs() {
    let kvc = spec(3, &["a", "b", "c"]);
    let mut w = World::healthy(&["a", "b", "c"], &[2, 1, 1]);
    let steps = drive(&kvc, &mut w, 20);
    assert!(!steps.iter().any(|s| matches!(s, Step::DeletePvc { .. })), "{steps:?}");
    assert_eq!(w.obs.racks["a"].pvcs.len(), 2);
}

#[test]
fn scale_up_never_reuses_a_pvc_retained_from_a_removed_node() {
    let kvc = spec(3, &["a", "b", "c"]);
    let mut w = World::healthy(&["a", "b", "c"], &[2, 1, 1]);
    drive(&kvc, &mut w, 20); // 4 -> 3 with Retain: data-kv-a-1 stays
    assert_eq!(w.obs.racks["a"].pvcs.len(), 2);
    let up = spec(4, &["a", "b", "c"]);
    let d = plan(&up.spec, &w.obs);
    assert!(matches!(&d.step, Step::Wait { reason } if reason.contains("data-kv-a-1")), "{d:?}");
    w.apply(&Step::DeletePvc { pvc: "data-kv-a-1".into() });
    assert_eq!(plan(&up.spec, &w.obs).step, Step::ScaleRack { rack: "a".into(), replicas: 2 });
}

#[test]
fn scale_down_requested_mid_decommission_waits() {
    // 5 → 4 started (kv-a-1 LEAVING); then the spec says 3.
    let kvc = spec(3, &["a", "b", "c"]);
    let mut w = World::healthy(&["a", "b", "c"], &[2, 2, 1]);
    w.node("kv-a-1").state = NodeState::Leaving;
    let d = plan(&kvc.spec, &w.obs);
    assert!(matches!(&d.step, Step::Wait { reason } if reason.contains("LEAVING")), "{d:?}");
    // Even with another node already LEFT, nothing shrinks while one is leaving (scylla-operator #3539).
    w.node("kv-b-1").state = NodeState::Left;
    let d = plan(&kvc.spec, &w.obs);
    assert!(matches!(d.step, Step::Wait { .. }), "{d:?}");
    // Once it has LEFT, it is shrunk; then the next node is decommissioned.
    w.node("kv-a-1").state = NodeState::Left;
    assert!(matches!(plan(&kvc.spec, &w.obs).step, Step::ScaleRack { replicas: 1, .. }));
}

#[test]
fn lost_local_pv_replaces_the_node_and_waits_for_streaming() {
    let kvc = spec(3, &["a", "b", "c"]);
    let mut w = World::healthy(&["a", "b", "c"], &[1, 1, 1]);
    w.pod("kv-b-0").volume_lost = true;
    w.pod("kv-b-0").ready = false;
    w.node("kv-b-0").liveness = Liveness::Down;
    let d = plan(&kvc.spec, &w.obs);
    assert_eq!(
        d.step,
        Step::ReplaceNode {
            pod: "kv-b-0".into(),
            pvc: "data-kv-b-0".into(),
            old_host_id: Some(host("kv-b-0")),
            reason: ReplaceReason::VolumeLost
        }
    );
    assert_eq!(d.phase, Phase::Replacing);
    w.apply(&d.step);
    // REPLACING (streaming from the survivors): wait, do nothing else.
    let d = plan(&kvc.spec, &w.obs);
    assert!(matches!(&d.step, Step::Wait { reason } if reason.contains("replacing")), "{d:?}");
    w.settle();
    assert_eq!(plan(&kvc.spec, &w.obs).step, Step::FinishReplace { pod: "kv-b-0".into() });
}

#[test]
fn node_down_past_the_deadline_is_replaced_not_before_when_opted_in() {
    let kvc = KVCluster::test().nodes(3).rf(3).racks(&["a", "b", "c"]).replace_after_down(900).build();
    let timeout_ms = 900_000;
    let mut w = World::healthy(&["a", "b", "c"], &[1, 1, 1]);
    let now = w.obs.now_ms;
    w.pod("kv-c-0").ready = false;
    let n = w.node("kv-c-0");
    n.liveness = Liveness::Down;
    n.down_since_ms = Some(now - timeout_ms + 1);
    let d = plan(&kvc.spec, &w.obs);
    assert!(matches!(d.step, Step::Wait { .. }), "{d:?}");
    assert_eq!(d.phase, Phase::Degraded);
    w.node("kv-c-0").down_since_ms = Some(now - timeout_ms);
    assert_eq!(
        plan(&kvc.spec, &w.obs).step,
        Step::ReplaceNode {
            pod: "kv-c-0".into(),
            pvc: "data-kv-c-0".into(),
            old_host_id: Some(host("kv-c-0")),
            reason: ReplaceReason::DownTooLong { down_for_s: 900, after_s: 900 }
        }
    );
    // Disabled replacement: never.
    let mut off = kvc.clone();
    off.spec.replacement.enabled = false;
    assert!(matches!(plan(&off.spec, &w.obs).step, Step::Wait { .. }));
}

#[test]
fn down_since_is_carried_over_and_cleared() {
    let mut w = World::healthy(&["a"], &[1]);
    let pods: Vec<PodObserved> = w.obs.racks["a"].pods.clone();
    let mut nodes = w.nodes().clone();
    nodes[0].pod = None;
    nodes[0].liveness = Liveness::Down;
    map_nodes(&mut nodes, &pods, &[], 5_000);
    assert_eq!(nodes[0].pod.as_deref(), Some("kv-a-0"), "mapped by pod IP");
    assert_eq!(nodes[0].down_since_ms, Some(5_000));
    let prev = vec![crate::crd::MemberStatus {
        pod: Some("kv-a-0".into()),
        host_id: nodes[0].host_id.clone(),
        down_since_ms: Some(5_000),
        ..Default::default()
    }];
    map_nodes(&mut nodes, &pods, &prev, 9_000);
    assert_eq!(nodes[0].down_since_ms, Some(5_000), "kept from the last status");
    nodes[0].liveness = Liveness::Alive;
    map_nodes(&mut nodes, &pods, &prev, 10_000);
    assert_eq!(nodes[0].down_since_ms, None);
    // A pod without an IP (dead) keeps the mapping the last status recorded.
    let mut no_ip = pods.clone();
    no_ip[0].ip = None;
    nodes[0].grpc_addr = "10.9.9.9:7100".into();
    map_nodes(&mut nodes, &no_ip, &prev, 10_000);
    assert_eq!(nodes[0].pod.as_deref(), Some("kv-a-0"));
}

#[test]
fn rolling_upgrade_restarts_one_pod_at_a_time() {
    let kvc = spec(3, &["a", "b", "c"]);
    let mut w = World::healthy(&["a", "b", "c"], &[1, 1, 1]);
    for r in w.obs.racks.values_mut() {
        r.update_revision = Some("rev-2".into());
    }
    let d = plan(&kvc.spec, &w.obs);
    assert_eq!(d.step, Step::RestartPod { pod: "kv-a-0".into() });
    assert_eq!(d.phase, Phase::Upgrading);
    w.apply(&d.step);
    // kv-a-0 is restarting (not ready): the next one waits.
    assert!(matches!(plan(&kvc.spec, &w.obs).step, Step::Wait { .. }));
    w.settle();
    assert_eq!(plan(&kvc.spec, &w.obs).step, Step::RestartPod { pod: "kv-b-0".into() });
    let steps = drive(&kvc, &mut w, 20);
    assert_eq!(steps.iter().filter(|s| matches!(s, Step::RestartPod { .. })).count(), 2);
}

#[test]
fn rolling_upgrade_is_blocked_while_a_range_lacks_quorum() {
    let kvc = spec(3, &["a", "b", "c"]);
    let mut w = World::healthy(&["a", "b", "c"], &[1, 1, 1]);
    for r in w.obs.racks.values_mut() {
        r.update_revision = Some("rev-2".into());
    }
    // kv-b-0 is DOWN (not long enough to be replaced): restarting kv-a-0 would leave 1 of 3.
    w.node("kv-b-0").liveness = Liveness::Down;
    w.node("kv-b-0").down_since_ms = Some(w.obs.now_ms);
    w.pod("kv-b-0").ready = false;
    let d = plan(&kvc.spec, &w.obs);
    assert!(matches!(&d.step, Step::Wait { reason } if reason.contains("quorum")), "{d:?}");
    // With RF 5, one node down still leaves a quorum when another restarts.
    let mut rf5 = KVCluster::test().nodes(5).rf(5).racks(&["a", "b", "c"]).build();
    rf5.spec.nodes = 5;
    let mut w5 = World::healthy(&["a", "b", "c"], &[2, 2, 1]);
    for r in w5.obs.racks.values_mut() {
        r.update_revision = Some("rev-2".into());
    }
    w5.node("kv-c-0").liveness = Liveness::Down;
    w5.node("kv-c-0").down_since_ms = Some(w5.obs.now_ms);
    w5.pod("kv-c-0").ready = false;
    assert!(matches!(plan(&rf5.spec, &w5.obs).step, Step::RestartPod { .. }));
}

#[test]
fn quorum_arithmetic() {
    assert!(restart_keeps_quorum(3, 0));
    assert!(!restart_keeps_quorum(3, 1));
    assert!(!restart_keeps_quorum(1, 0));
    assert!(!restart_keeps_quorum(2, 0));
    assert!(restart_keeps_quorum(5, 1));
    assert!(!restart_keeps_quorum(5, 2));
}

#[test]
fn invalid_spec_gets_a_condition_and_no_action() {
    let kvc = KVCluster::test().nodes(2).rf(3).build();
    let w = World::healthy(&["default"], &[3]);
    let d = plan(&kvc.spec, &w.obs);
    assert_eq!(d.phase, Phase::Invalid);
    let Step::Refuse { problems } = d.step else { panic!("expected Refuse, got {d:?}") };
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].field, "nodes");
    assert!(problems[0].message.contains("replicationFactor"), "{problems:?}");
}

#[test]
fn healthy_cluster_is_idle_and_running() {
    let kvc = spec(3, &["a", "b", "c"]);
    let w = World::healthy(&["a", "b", "c"], &[1, 1, 1]);
    assert_eq!(plan(&kvc.spec, &w.obs), Decision { step: Step::Idle, phase: Phase::Running });
    assert_eq!(w.count_in(NodeState::Normal), 3);
}

#[test]
fn rack_targets_spread_evenly() {
    assert_eq!(rack_targets(5, 3), [2, 2, 1]);
    assert_eq!(rack_targets(3, 3), [1, 1, 1]);
    assert_eq!(rack_targets(4, 1), [4]);
}

#[test]
fn divergence_counts_pods_without_members_and_members_without_pods() {
    let mut w = World::healthy(&["a"], &[3]);
    assert_eq!(w.obs.divergence(), 0);
    w.node("kv-a-2").pod = None; // a member lost its pod, and the pod has no member
    assert_eq!(w.obs.divergence(), 2);
    w.nodes().iter_mut().find(|n| n.pod.is_none()).expect("orphan").state = NodeState::Left;
    assert_eq!(w.obs.divergence(), 1, "a LEFT member without a pod is expected");
    w.obs.nodes = None;
    assert_eq!(w.obs.divergence(), 0, "unknown when the nodes do not answer");
}
