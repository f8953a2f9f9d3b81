//! Reconcile tests of issue 11 against the mocked API server: a rolling
//! restart waits until every pod's own membership view agrees (D3), honest
//! conditions and phase (D7), and the replacement policy (D11).

use super::*;

const STS_PATH: &str = "/apis/apps/v1/namespaces/db/statefulsets/kv-default";

fn edit(api: &FakeApi, path: &str, f: impl FnOnce(&mut Value)) {
    let mut obj = api.objects.lock().expect("lock")[path].clone();
    f(&mut obj);
    api.put(path, obj);
}

fn not_ready(api: &FakeApi, pod: &str) {
    edit(api, &format!("/api/v1/namespaces/db/pods/{pod}"), |p| {
        p["status"]["conditions"] = json!([{"type": "Ready", "status": "False"}]);
    });
}

fn deleted(api: &FakeApi, path: &str) -> bool {
    !api.find("DELETE", path).is_empty()
}

fn events(api: &FakeApi) -> Vec<Value> {
    api.find("POST", "/apis/events.k8s.io/v1/namespaces/db/events").into_iter().map(|r| r.body).collect()
}

fn last_step(api: &FakeApi) -> String {
    status_patch(api)["lastStep"].as_str().unwrap_or_default().to_owned()
}

/// D3: {0,1} and {2,3} each claimed the whole ring and the operator, trusting
/// one view, restarted on. Each pod is now asked at its own address.
#[tokio::test]
async fn a_rolling_restart_waits_while_two_pods_see_different_rings() -> Result<(), Box<dyn std::error::Error>> {
    let api = Arc::new(FakeApi::default());
    let kvc = KVCluster::test().nodes(4).finalized().build();
    store_cluster(&api, &kvc);
    let nodes = store_healthy(&api, 4);
    edit(&api, STS_PATH, |s| s["status"]["updateRevision"] = json!("rev-2"));
    let split: Vec<NodeObserved> = nodes[..2].to_vec();
    let views = BTreeMap::from([
        ("http://10.0.0.0:7100".to_string(), split.clone()),
        ("http://10.0.0.1:7100".to_string(), split),
    ]);
    let admin = Arc::new(FakeAdmin { nodes: Some(nodes.clone()), views, ..FakeAdmin::default() });
    reconcile(Arc::new(kvc.clone()), context(serve(api.clone()), admin, NodeSample::default())).await?;
    assert!(!deleted(&api, "/api/v1/namespaces/db/pods/kv-default-0"), "restarted while the views differ");
    let step = last_step(&api);
    assert!(
        step.contains(
            "pod kv-default-0 sees {host-0, host-1} but pod kv-default-2 sees {host-0, host-1, host-2, host-3}"
        ),
        "{step}"
    );
    assert_eq!(status_patch(&api)["phase"], "Upgrading");

    // A ready pod that cannot be asked is no agreement.
    let unreachable = vec!["http://10.0.0.1:7100".to_string()];
    let admin = Arc::new(FakeAdmin { nodes: Some(nodes.clone()), unreachable, ..FakeAdmin::default() });
    reconcile(Arc::new(kvc.clone()), context(serve(api.clone()), admin, NodeSample::default())).await?;
    assert!(!deleted(&api, "/api/v1/namespaces/db/pods/kv-default-0"), "restarted without asking every pod");
    assert!(last_step(&api).contains("pod kv-default-1 cannot be asked"), "{}", last_step(&api));

    // The views agree: the restart proceeds.
    let admin = Arc::new(FakeAdmin { nodes: Some(nodes), ..FakeAdmin::default() });
    reconcile(Arc::new(kvc), context(serve(api.clone()), admin, NodeSample::default())).await?;
    assert!(deleted(&api, "/api/v1/namespaces/db/pods/kv-default-0"), "{:?}", last_step(&api));
    Ok(())
}

/// D7: a clean scale-down leaves a LEFT node reported DOWN; that is not Degraded,
/// and Degraded names what is unhealthy.
#[tokio::test]
async fn a_left_node_is_not_degraded_and_degraded_names_the_unhealthy_node() -> Result<(), Box<dyn std::error::Error>> {
    let api = Arc::new(FakeApi::default());
    let kvc = KVCluster::test().nodes(3).finalized().build();
    store_cluster(&api, &kvc);
    let mut nodes = store_healthy(&api, 3);
    let mut left = nodes[2].clone();
    (left.host_id, left.grpc_addr, left.state, left.liveness) =
        ("host-3".into(), "10.0.0.3:7100".into(), S::Left, L::Down);
    nodes.push(left);
    let admin = Arc::new(FakeAdmin { nodes: Some(nodes.clone()), ..FakeAdmin::default() });
    reconcile(Arc::new(kvc.clone()), context(serve(api.clone()), admin, NodeSample::default())).await?;
    let status = status_patch(&api);
    assert_eq!(condition(&status, "Degraded")["status"], "False", "{status}");
    assert_eq!(status["phase"], "Running");

    nodes[1].liveness = L::Down;
    not_ready(&api, "kv-default-1");
    let admin = Arc::new(FakeAdmin { nodes: Some(nodes), ..FakeAdmin::default() });
    reconcile(Arc::new(kvc), context(serve(api.clone()), admin, NodeSample::default())).await?;
    let degraded = condition(&status_patch(&api), "Degraded");
    assert_eq!(degraded["status"], "True");
    let message = degraded["message"].as_str().unwrap_or_default();
    assert!(message.contains("node host-1 (pod kv-default-1) is DOWN"), "{message}");
    assert!(!message.contains("matches the spec"), "{message}");
    Ok(())
}

/// D7: the last pod of a scale-up is still starting: ScalingUp, not Degraded.
#[tokio::test]
async fn the_last_pod_of_a_scale_up_keeps_the_phase_while_it_starts() -> Result<(), Box<dyn std::error::Error>> {
    let api = Arc::new(FakeApi::default());
    let previous = KVClusterStatus { phase: crate::crd::Phase::ScalingUp, ..KVClusterStatus::default() };
    let kvc = KVCluster::test().nodes(4).finalized().status(previous).build();
    store_cluster(&api, &kvc);
    let nodes = store_healthy(&api, 4);
    not_ready(&api, "kv-default-3");
    let admin = Arc::new(FakeAdmin { nodes: Some(nodes), ..FakeAdmin::default() });
    reconcile(Arc::new(kvc), context(serve(api.clone()), admin, NodeSample::default())).await?;
    let status = status_patch(&api);
    assert_eq!(status["phase"], "ScalingUp", "{status}");
    assert!(last_step(&api).contains("pod kv-default-3 is starting"), "{}", last_step(&api));
    Ok(())
}

/// A cluster of 3 whose node 2 has been DOWN for 950 s (pod not ready).
fn store_with_node_2_down(api: &FakeApi, kvc: KVCluster) -> (KVCluster, Vec<NodeObserved>) {
    let mut nodes = store_healthy(api, 3);
    nodes[2].liveness = L::Down;
    not_ready(api, "kv-default-2");
    let members = vec![crate::crd::MemberStatus {
        pod: Some("kv-default-2".into()),
        host_id: "host-2".into(),
        down_since_ms: Some(NOW_MS - 950_000),
        ..Default::default()
    }];
    let mut kvc = kvc;
    kvc.status = Some(KVClusterStatus { members, ..KVClusterStatus::default() });
    store_cluster(api, &kvc);
    (kvc, nodes)
}

/// D11: by default a node is never replaced for being DOWN (its volume may come back).
#[tokio::test]
async fn a_node_down_for_950_s_is_not_replaced_by_default() -> Result<(), Box<dyn std::error::Error>> {
    let api = Arc::new(FakeApi::default());
    let (kvc, nodes) = store_with_node_2_down(&api, KVCluster::test().nodes(3).finalized().build());
    let admin = Arc::new(FakeAdmin { nodes: Some(nodes), ..FakeAdmin::default() });
    reconcile(Arc::new(kvc), context(serve(api.clone()), admin, NodeSample::default())).await?;
    assert!(!deleted(&api, "/api/v1/namespaces/db/persistentvolumeclaims/data-kv-default-2"), "{}", last_step(&api));
    assert!(!deleted(&api, "/api/v1/namespaces/db/pods/kv-default-2"));
    assert_eq!(status_patch(&api)["phase"], "Degraded");
    Ok(())
}

/// D11: opted in, it is refused while another node is DOWN, and done (saying why) once it is not.
#[tokio::test]
async fn downtime_replacement_says_why_it_refused_and_why_it_acted() -> Result<(), Box<dyn std::error::Error>> {
    let api = Arc::new(FakeApi::default());
    let kvc = KVCluster::test().nodes(3).replace_after_down(900).finalized().build();
    let (kvc, mut nodes) = store_with_node_2_down(&api, kvc);
    nodes[1].liveness = L::Down;
    let admin = Arc::new(FakeAdmin { nodes: Some(nodes.clone()), ..FakeAdmin::default() });
    reconcile(Arc::new(kvc.clone()), context(serve(api.clone()), admin, NodeSample::default())).await?;
    assert!(!deleted(&api, "/api/v1/namespaces/db/persistentvolumeclaims/data-kv-default-2"));
    let why = "node host-2 in pod kv-default-2 DOWN for 950 s > replacement.onDownTime.afterSeconds 900, \
               but refused: node host-1 (pod kv-default-1) is also DOWN";
    assert!(last_step(&api).contains(why), "{}", last_step(&api));
    let refused = events(&api).into_iter().find(|e| e["reason"] == "ReplacementRefused").ok_or("no event")?;
    assert_eq!(refused["type"], "Warning");
    assert!(refused["note"].as_str().unwrap_or_default().contains(why), "{refused}");

    nodes[1].liveness = L::Alive;
    let admin = Arc::new(FakeAdmin { nodes: Some(nodes), ..FakeAdmin::default() });
    reconcile(Arc::new(kvc), context(serve(api.clone()), admin, NodeSample::default())).await?;
    assert!(deleted(&api, "/api/v1/namespaces/db/persistentvolumeclaims/data-kv-default-2"), "{}", last_step(&api));
    let acted = "replace node host-2 in pod kv-default-2: DOWN for 950 s > replacement.onDownTime.afterSeconds 900";
    assert!(last_step(&api).contains(acted), "{}", last_step(&api));
    let event = events(&api).into_iter().rfind(|e| e["reason"] == "ReplacingNode").ok_or("no step event")?;
    assert!(event["note"].as_str().unwrap_or_default().contains(acted), "{event}");
    Ok(())
}

/// Creation: a lone node of RF 3 is never ready (it cannot serve QUORUM), so
/// the operator, which used to ask only ready pods and wait for readiness,
/// never created the second pod (k8s-local: stuck at 0/3 "no node answers the
/// Admin API"). The first pod is asked at its own address, and while fewer
/// nodes are NORMAL than RF a NORMAL, ALIVE node counts as started.
#[tokio::test]
async fn creation_goes_on_while_the_first_nodes_cannot_be_ready() -> Result<(), Box<dyn std::error::Error>> {
    let api = Arc::new(FakeApi::default());
    let previous = KVClusterStatus { phase: crate::crd::Phase::Creating, ..KVClusterStatus::default() };
    let kvc = KVCluster::test().nodes(3).finalized().status(previous).build();
    store_cluster(&api, &kvc);
    let nodes = store_healthy(&api, 1);
    not_ready(&api, "kv-default-0");
    // Only the pod itself answers; the client Service has no ready pod behind it.
    let views = BTreeMap::from([("http://10.0.0.0:7100".to_string(), nodes)]);
    let admin = Arc::new(FakeAdmin { views, ..FakeAdmin::default() });
    reconcile(Arc::new(kvc), context(serve(api.clone()), admin, NodeSample::default())).await?;
    let sts = applied(&api.requests(), STS_PATH).ok_or("statefulset not applied")?.clone();
    assert_eq!(sts["spec"]["replicas"], 2, "{}", last_step(&api));
    assert_eq!(status_patch(&api)["phase"], "Creating");
    Ok(())
}
