//! Planner scenarios of issue 11: membership agreement before topology steps
//! (D3), honest phases while pods start (D7), and the replacement policy
//! (D11).

use super::*;

/// Every pod's own view is `nodes` (the cluster agrees).
fn agreeing_views(w: &World) -> Vec<MembershipView> {
    w.obs
        .racks
        .values()
        .flat_map(|r| r.pods.iter())
        .map(|p| MembershipView { pod: p.name.clone(), nodes: w.obs.nodes.clone() })
        .collect()
}

fn upgrade_pending(w: &mut World) {
    for r in w.obs.racks.values_mut() {
        r.update_revision = Some("rev-2".into());
    }
}

fn waits_with(d: &Decision, text: &str) -> bool {
    matches!(&d.step, Step::Wait { reason } if reason.contains(text))
}

/// D3: pod 0 came back alone and {0,1} and {2,3} each claimed the whole ring;
/// the operator trusted one view and restarted on.
#[test]
fn a_rolling_restart_waits_while_two_pods_see_different_rings() {
    let kvc = spec(4, &["default"]);
    let mut w = World::healthy(&["default"], &[4]);
    upgrade_pending(&mut w);
    let full = w.obs.nodes.clone().expect("nodes");
    let split: Vec<NodeObserved> = full[..2].to_vec();
    w.obs.views = agreeing_views(&w);
    w.obs.views[0].nodes = Some(split.clone());
    w.obs.views[1].nodes = Some(split);
    let d = plan(&kvc.spec, &w.obs);
    assert_eq!(d.phase, Phase::Upgrading);
    let want = "pod kv-default-0 sees {host-kv-default-0, host-kv-default-1} but pod kv-default-2 sees \
                {host-kv-default-0, host-kv-default-1, host-kv-default-2, host-kv-default-3}";
    assert!(waits_with(&d, "restarting pod kv-default-0 waits until the nodes agree") && waits_with(&d, want), "{d:?}");

    // Same members, another state.
    w.obs.views = agreeing_views(&w);
    w.obs.views[3].nodes.as_mut().expect("view")[1].state = NodeState::Leaving;
    let d = plan(&kvc.spec, &w.obs);
    assert!(
        waits_with(&d, "node host-kv-default-1 is NORMAL for pod kv-default-0 but LEAVING for pod kv-default-3"),
        "{d:?}"
    );
    // Same members and states, but one does not see another ALIVE.
    w.obs.views = agreeing_views(&w);
    w.obs.views[2].nodes.as_mut().expect("view")[3].liveness = Liveness::Down;
    let d = plan(&kvc.spec, &w.obs);
    assert!(waits_with(&d, "pod kv-default-2 sees DOWN node host-kv-default-3 (pod kv-default-3)"), "{d:?}");
    // A ready pod that cannot be asked is no agreement.
    w.obs.views = agreeing_views(&w);
    w.obs.views[1].nodes = None;
    assert!(waits_with(&plan(&kvc.spec, &w.obs), "pod kv-default-1 cannot be asked"));
    // Once they agree, the restart proceeds.
    w.obs.views = agreeing_views(&w);
    assert_eq!(plan(&kvc.spec, &w.obs).step, Step::RestartPod { pod: "kv-default-0".into() });
}

#[test]
fn scaling_and_replacement_wait_for_agreement_too() {
    let mut w = World::healthy(&["default"], &[4]);
    w.obs.views = agreeing_views(&w);
    w.obs.views[3].nodes.as_mut().expect("view").pop();
    let down = plan(&spec(3, &["default"]).spec, &w.obs);
    assert!(waits_with(&down, "decommissioning pod kv-default-3 waits"), "{down:?}");
    assert_eq!(down.phase, Phase::ScalingDown);
    let up = plan(&spec(5, &["default"]).spec, &w.obs);
    assert!(waits_with(&up, "setting rack default to 5 pod(s) waits"), "{up:?}");
    w.obs.views = agreeing_views(&w);
    assert!(matches!(plan(&spec(3, &["default"]).spec, &w.obs).step, Step::Decommission { .. }));
}

/// D7: the last pod of a scale-up is starting: ScalingUp, not Degraded.
#[test]
fn the_phase_of_a_scale_up_is_kept_while_its_last_pod_starts() {
    let kvc = spec(4, &["a", "b", "c"]);
    let mut w = World::healthy(&["a", "b", "c"], &[1, 1, 1]);
    let d = plan(&kvc.spec, &w.obs);
    assert_eq!((d.phase, &d.step), (Phase::ScalingUp, &Step::ScaleRack { rack: "a".into(), replicas: 2 }));
    w.apply(&d.step);
    w.obs.previous_phase = d.phase;
    w.node("kv-a-1").state = NodeState::Normal; // NORMAL, pod not ready yet
    let d = plan(&kvc.spec, &w.obs);
    assert_eq!(d.phase, Phase::ScalingUp, "{d:?}");
    assert!(waits_with(&d, "pod kv-a-1 is starting"), "{d:?}");
    // Another pod is unhealthy too (its node DOWN): Degraded.
    w.node("kv-b-0").liveness = Liveness::Down;
    assert_eq!(plan(&kvc.spec, &w.obs).phase, Phase::Degraded);
    w.node("kv-b-0").liveness = Liveness::Alive;
    // The new node DOWN is no pod starting: Degraded.
    w.node("kv-a-1").liveness = Liveness::Down;
    assert_eq!(plan(&kvc.spec, &w.obs).phase, Phase::Degraded);
    w.node("kv-a-1").liveness = Liveness::Alive;
    // The same pod starting with no operation in progress: Degraded.
    w.obs.previous_phase = Phase::Running;
    assert_eq!(plan(&kvc.spec, &w.obs).phase, Phase::Degraded);
    w.pod("kv-a-1").ready = true;
    assert_eq!(plan(&kvc.spec, &w.obs), Decision { step: Step::Idle, phase: Phase::Running });
}

#[test]
fn creation_and_upgrade_keep_their_phase_while_their_last_pod_starts() {
    let kvc = spec(3, &["a", "b", "c"]);
    let mut w = World::healthy(&["a", "b", "c"], &[1, 1, 0]);
    w.obs.previous_phase = Phase::Creating;
    let d = plan(&kvc.spec, &w.obs);
    assert_eq!((d.phase, &d.step), (Phase::Creating, &Step::ScaleRack { rack: "c".into(), replicas: 1 }));
    w.apply(&d.step);
    let d = plan(&kvc.spec, &w.obs);
    assert_eq!(d.phase, Phase::Creating, "JOINING during creation: {d:?}");
    w.node("kv-c-0").state = NodeState::Normal;
    assert_eq!(plan(&kvc.spec, &w.obs).phase, Phase::Creating);
    w.settle();

    upgrade_pending(&mut w);
    for pod in ["kv-a-0", "kv-b-0"] {
        w.apply(&Step::RestartPod { pod: pod.into() });
        w.settle();
    }
    let d = plan(&kvc.spec, &w.obs);
    assert_eq!(d.step, Step::RestartPod { pod: "kv-c-0".into() });
    w.apply(&d.step);
    w.obs.previous_phase = d.phase;
    w.node("kv-c-0").liveness = Liveness::Down; // restarting
    let d = plan(&kvc.spec, &w.obs);
    assert_eq!(d.phase, Phase::Upgrading, "{d:?}");
    assert!(waits_with(&d, "pod kv-c-0 is starting"), "{d:?}");
}

/// D7: a LEFT node (a finished scale-down) is gone, not unhealthy; the rest is named.
#[test]
fn health_problems_skip_left_nodes_and_name_the_rest() {
    let mut w = World::healthy(&["a"], &[3]);
    let mut left = w.node("kv-a-2").clone();
    left.host_id = "gone".into();
    left.pod = None;
    left.state = NodeState::Left;
    left.liveness = Liveness::Down;
    w.nodes().push(left);
    assert!(w.obs.health_problems().is_empty(), "{:?}", w.obs.health_problems());
    w.node("kv-a-1").liveness = Liveness::Down;
    w.pod("kv-a-1").ready = false;
    w.pod("kv-a-2").volume_lost = true;
    assert_eq!(
        w.obs.health_problems(),
        ["node host-kv-a-1 (pod kv-a-1) is DOWN", "pod kv-a-1 is not ready", "pod kv-a-2 lost its volume"]
    );
}

fn down_for(w: &mut World, pod: &str, seconds: i64) {
    let now = w.obs.now_ms;
    w.pod(pod).ready = false;
    let n = w.node(pod);
    n.liveness = Liveness::Down;
    n.down_since_ms = Some(now - seconds * 1000);
}

/// D11: downtime is no proof that the data is gone.
#[test]
fn downtime_alone_never_replaces_a_node_by_default() {
    let kvc = spec(3, &["a", "b", "c"]);
    assert_eq!(kvc.spec.replacement.on_down_time, None);
    let mut w = World::healthy(&["a", "b", "c"], &[1, 1, 1]);
    down_for(&mut w, "kv-c-0", 10 * 24 * 3600);
    let d = plan(&kvc.spec, &w.obs);
    assert!(matches!(d.step, Step::Wait { .. }), "{d:?}");
    assert_eq!(d.phase, Phase::Degraded);
    // The deprecated field does not opt in.
    let mut old = kvc.clone();
    old.spec.replacement.down_timeout_seconds = Some(900);
    assert!(matches!(plan(&old.spec, &w.obs).step, Step::Wait { .. }));
}

#[test]
fn downtime_replacement_is_refused_while_another_node_is_down_or_a_quorum_is_at_risk() {
    let kvc = KVCluster::test().nodes(3).rf(3).racks(&["a", "b", "c"]).replace_after_down(900).build();
    let mut w = World::healthy(&["a", "b", "c"], &[1, 1, 1]);
    down_for(&mut w, "kv-c-0", 950);
    down_for(&mut w, "kv-b-0", 30);
    let d = plan(&kvc.spec, &w.obs);
    let Step::ReplacementRefused { pod, why } = &d.step else { panic!("expected a refusal, got {d:?}") };
    assert_eq!(pod, "kv-c-0");
    assert_eq!(
        why,
        "node host-kv-c-0 in pod kv-c-0 DOWN for 950 s > replacement.onDownTime.afterSeconds 900, \
         but refused: node host-kv-b-0 (pod kv-b-0) is also DOWN"
    );
    assert_eq!(d.phase, Phase::Degraded);
    // kv-b-0 is back: replaced, and the step says why.
    w.node("kv-b-0").liveness = Liveness::Alive;
    w.node("kv-b-0").down_since_ms = None;
    w.pod("kv-b-0").ready = true;
    let d = plan(&kvc.spec, &w.obs);
    let Step::ReplaceNode { reason, .. } = d.step else { panic!("expected a replacement, got {d:?}") };
    assert_eq!(
        reason.to_string(),
        "DOWN for 950 s > replacement.onDownTime.afterSeconds 900; every other node is NORMAL and ALIVE"
    );
    // With RF 1 (or 2) no range keeps a quorum while a replica is rebuilt.
    let rf1 = KVCluster::test().nodes(3).rf(1).racks(&["a", "b", "c"]).replace_after_down(900).build();
    let d = plan(&rf1.spec, &w.obs);
    assert!(
        matches!(&d.step, Step::ReplacementRefused { why, .. } if why.contains("replicationFactor 1 a range would lack a quorum")),
        "{d:?}"
    );
}

/// A new cluster of RF 3: no node is ready before three are NORMAL (a lone
/// node cannot serve QUORUM), so each next pod is added once the last node is
/// NORMAL and ALIVE, ready or not, and the phase stays Creating throughout
/// (k8s-local: main waited for a ready pod forever; then Degraded flickered).
#[test]
fn a_new_cluster_adds_its_first_rf_nodes_before_any_is_ready() {
    let kvc = spec(3, &["a"]);
    let mut w = World::healthy(&["a"], &[0]);
    w.obs.previous_phase = Phase::Creating;
    for n in 1..=3 {
        let d = plan(&kvc.spec, &w.obs);
        assert_eq!((d.phase, &d.step), (Phase::Creating, &Step::ScaleRack { rack: "a".into(), replicas: n }), "{d:?}");
        w.apply(&d.step);
        let d = plan(&kvc.spec, &w.obs);
        assert_eq!(d.phase, Phase::Creating, "pod {n} JOINING: {d:?}");
        let pod = format!("kv-a-{}", n - 1);
        w.node(&pod).state = NodeState::Normal; // NORMAL, still not ready
        assert!(!w.pod(&pod).ready);
    }
    let d = plan(&kvc.spec, &w.obs);
    assert_eq!(d.phase, Phase::Creating, "three NORMAL nodes, none ready yet: {d:?}");
    assert!(waits_with(&d, "are starting"), "{d:?}");
}
