//! Reconcile tests against a mocked API server (kube's tower-test pattern).
//! The fake server keeps objects by path, answers GET/LIST/PATCH/POST/DELETE,
//! and records every request with its parsed body; tests assert on bodies.

mod fake;
mod runtime;
mod topology;

use std::collections::BTreeMap;
use std::sync::Arc;

use kube::Client;
use kube::runtime::events::{Recorder, Reporter};
use serde_json::{Value, json};

use self::fake::{FakeAdmin, FakeApi, FakeScraper, Recorded, serve};
use super::*;
use crate::autoscale::scrape::NodeSample;
use crate::crd::{AutoscalerStatus, CounterSample, KVClusterStatus, PvcRetention, Recommendation};
use crate::plan::{Liveness as L, NodeObserved, NodeState as S};

const NOW_MS: i64 = 1_800_000_000_000;
const KVC_PATH: &str = "/apis/ringkv.io/v1alpha1/namespaces/db/kvclusters/kv";

fn context(client: Client, admin: Arc<FakeAdmin>, sample: NodeSample) -> Arc<Context> {
    Arc::new(Context {
        client: client.clone(),
        admin,
        scraper: Arc::new(FakeScraper(sample)),
        clock: Arc::new(|| NOW_MS),
        token: Arc::new(|| "fixed-token".into()),
        recorder: Some(Recorder::new(
            client,
            Reporter { controller: "kv-operator".into(), instance: Some("test".into()) },
        )),
        metrics: crate::telemetry::Metrics::new().expect("metrics"),
        admin_endpoint_override: None,
    })
}

fn store_cluster(api: &FakeApi, kvc: &KVCluster) {
    api.put(KVC_PATH, serde_json::to_value(kvc).expect("kvc json"));
}

/// A healthy cluster of `n` pods in rack `default`: StatefulSet, pods, PVCs, nodes.
fn store_healthy(api: &FakeApi, n: i32) -> Vec<NodeObserved> {
    let labels = json!({"app.kubernetes.io/name": "ringkv", "app.kubernetes.io/instance": "kv", "app.kubernetes.io/component": "node", "ringkv.io/rack": "default", "controller-revision-hash": "rev-1"});
    api.put(
        "/apis/apps/v1/namespaces/db/statefulsets/kv-default",
        json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "kv-default", "namespace": "db"},
               "spec": {"replicas": n, "selector": {}, "serviceName": "kv-peers", "template": {}}, "status": {"replicas": n, "updateRevision": "rev-1"}}),
    );
    let mut nodes = Vec::new();
    for i in 0..n {
        let pod = format!("kv-default-{i}");
        api.put(
            &format!("/api/v1/namespaces/db/pods/{pod}"),
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": pod, "namespace": "db", "labels": labels},
                   "spec": {"containers": []}, "status": {"podIP": format!("10.0.0.{i}"), "conditions": [{"type": "Ready", "status": "True"}]}}),
        );
        api.put(
            &format!("/api/v1/namespaces/db/persistentvolumeclaims/data-{pod}"),
            json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": format!("data-{pod}"), "namespace": "db", "labels": labels},
                   "spec": {}, "status": {"phase": "Pending"}}),
        );
        nodes.push(NodeObserved {
            host_id: format!("host-{i}"),
            pod: None,
            state: S::Normal,
            liveness: L::Alive,
            down_since_ms: None,
            grpc_addr: format!("10.0.0.{i}:7100"),
            ownership: 1.0,
            load_bytes: 1000,
            last_full_repair_ms: Some(NOW_MS - 3_600_000 + i64::from(i)),
        });
    }
    nodes
}

/// `kvc` stored with `pods` healthy pods, and a context whose Admin API reports their nodes.
fn healthy_cluster(kvc: &KVCluster, pods: i32) -> (Arc<FakeApi>, Arc<Context>) {
    let api = Arc::new(FakeApi::default());
    store_cluster(&api, kvc);
    let nodes = store_healthy(&api, pods);
    let admin = Arc::new(FakeAdmin { nodes: Some(nodes), ..FakeAdmin::default() });
    let ctx = context(serve(api.clone()), admin, NodeSample::default());
    (api, ctx)
}

fn applied<'a>(reqs: &'a [Recorded], path: &str) -> Option<&'a Value> {
    reqs.iter()
        .rev()
        .find(|r| r.method == "PATCH" && r.path == path && r.content_type.contains("apply-patch"))
        .map(|r| &r.body)
}

fn status_patch(api: &FakeApi) -> Value {
    let patches = api.find("PATCH", &format!("{KVC_PATH}/status"));
    patches.last().map(|r| r.body["status"].clone()).expect("a status patch")
}

fn condition(status: &Value, type_: &str) -> Value {
    status["conditions"].as_array().into_iter().flatten().find(|c| c["type"] == type_).cloned().unwrap_or(Value::Null)
}

#[tokio::test]
async fn creation_applies_owned_objects_and_the_first_statefulset() -> Result<(), Box<dyn std::error::Error>> {
    let api = Arc::new(FakeApi::default());
    let kvc = KVCluster::test().nodes(3).finalized().build();
    store_cluster(&api, &kvc);
    let admin = Arc::new(FakeAdmin::default());
    let ctx = context(serve(api.clone()), admin.clone(), NodeSample::default());

    reconcile(Arc::new(kvc.clone()), ctx.clone()).await?;
    let reqs = api.requests();
    let cm = applied(&reqs, "/api/v1/namespaces/db/configmaps/kv-config").ok_or("configmap not applied")?;
    let config: ringkv_node::config::Config = toml::from_str(cm["data"]["node.toml"].as_str().ok_or("no node.toml")?)?;
    assert_eq!(config.replication.replication_factor, 3);
    let peers = applied(&reqs, "/api/v1/namespaces/db/services/kv-peers").ok_or("peers service")?;
    assert_eq!(peers["spec"]["clusterIP"], "None");
    assert!(applied(&reqs, "/api/v1/namespaces/db/services/kv-client").is_some());
    let pdb = applied(&reqs, "/apis/policy/v1/namespaces/db/poddisruptionbudgets/kv").ok_or("pdb")?;
    assert_eq!(pdb["spec"]["maxUnavailable"], 1);
    assert!(api.find("POST", "/api/v1/namespaces/db/secrets").is_empty(), "no auth, no token Secret");
    let sts = applied(&reqs, "/apis/apps/v1/namespaces/db/statefulsets/kv-default").ok_or("statefulset")?;
    assert_eq!(sts["spec"]["replicas"], 1, "a fresh cluster starts with one pod");
    assert_eq!(sts["metadata"]["ownerReferences"][0]["kind"], "KVCluster");
    let status = status_patch(&api);
    assert_eq!(status["phase"], "Creating");
    assert_eq!(condition(&status, "Progressing")["status"], "True");
    assert_eq!(
        status["selector"],
        "app.kubernetes.io/component=node,app.kubernetes.io/instance=kv,app.kubernetes.io/name=ringkv"
    );
    let events = api.find("POST", "/apis/events.k8s.io/v1/namespaces/db/events");
    assert!(events.iter().any(|e| e.body["reason"] == "ScalingRack"), "{events:?}");

    // Level-triggered and idempotent: the same reconcile again changes nothing new.
    reconcile(Arc::new(kvc), ctx).await?;
    let reqs = api.requests();
    let sts = applied(&reqs, "/apis/apps/v1/namespaces/db/statefulsets/kv-default").ok_or("statefulset")?;
    assert_eq!(sts["spec"]["replicas"], 1, "no second pod before the first is NORMAL");
    assert!(admin.decommissioned.lock().expect("lock").is_empty());
    Ok(())
}

#[tokio::test]
async fn the_finalizer_is_added_before_anything_else() -> Result<(), Box<dyn std::error::Error>> {
    let api = Arc::new(FakeApi::default());
    let kvc = KVCluster::test().build();
    store_cluster(&api, &kvc);
    let ctx = context(serve(api.clone()), Arc::new(FakeAdmin::default()), NodeSample::default());
    reconcile(Arc::new(kvc), ctx).await?;
    let reqs = api.requests();
    assert_eq!(reqs.len(), 1, "{reqs:?}");
    assert!(reqs[0].content_type.contains("json-patch"));
    assert!(reqs[0].body.to_string().contains(FINALIZER), "{}", reqs[0].body);
    Ok(())
}

#[tokio::test]
async fn status_patch_reports_members_ready_nodes_and_last_repair() -> Result<(), Box<dyn std::error::Error>> {
    let api = Arc::new(FakeApi::default());
    let kvc = KVCluster::test().nodes(3).finalized().build();
    store_cluster(&api, &kvc);
    let nodes = store_healthy(&api, 3);
    let admin = Arc::new(FakeAdmin { nodes: Some(nodes), ..FakeAdmin::default() });
    let ctx = context(serve(api.clone()), admin, NodeSample::default());
    let action = reconcile(Arc::new(kvc), ctx).await?;
    assert_eq!(action, Action::requeue(Duration::from_secs(60)));
    let status = status_patch(&api);
    assert_eq!(status["phase"], "Running");
    assert_eq!((status["nodes"].as_i64(), status["readyNodes"].as_i64()), (Some(3), Some(3)));
    assert_eq!(condition(&status, "Ready")["status"], "True");
    assert_eq!(condition(&status, "Degraded")["status"], "False");
    assert_eq!(status["observedGeneration"], 1);
    let members = status["members"].as_array().ok_or("members")?;
    assert_eq!(members.len(), 3);
    assert_eq!(members[1]["pod"], "kv-default-1", "mapped by pod IP");
    assert_eq!(members[1]["state"], "NORMAL");
    assert_eq!(members[1]["liveness"], "ALIVE");
    let oldest = k8s_openapi::jiff::Timestamp::from_millisecond(NOW_MS - 3_600_000)?.to_string();
    assert_eq!(status["lastRepair"], oldest.as_str());
    Ok(())
}

#[tokio::test]
async fn scale_down_decommissions_through_the_admin_api_and_keeps_the_statefulset()
-> Result<(), Box<dyn std::error::Error>> {
    let api = Arc::new(FakeApi::default());
    let kvc = KVCluster::test().nodes(3).finalized().build();
    store_cluster(&api, &kvc);
    let nodes = store_healthy(&api, 4);
    let admin = Arc::new(FakeAdmin { nodes: Some(nodes), ..FakeAdmin::default() });
    let ctx = context(serve(api.clone()), admin.clone(), NodeSample::default());
    reconcile(Arc::new(kvc), ctx).await?;
    // To the leaving node's own pod IP, not the client Service (a node decommissions only itself).
    let calls = admin.decommissioned.lock().expect("lock").clone();
    assert_eq!(calls, [("http://10.0.0.3:7100".to_string(), "host-3".to_string())]);
    let reqs = api.requests();
    let sts = applied(&reqs, "/apis/apps/v1/namespaces/db/statefulsets/kv-default").ok_or("statefulset")?;
    assert_eq!(sts["spec"]["replicas"], 4, "never shrunk before the node has LEFT");
    assert_eq!(status_patch(&api)["phase"], "ScalingDown");
    Ok(())
}

#[tokio::test]
async fn autoscaling_moves_spec_nodes_through_the_scale_subresource() -> Result<(), Box<dyn std::error::Error>> {
    let api = Arc::new(FakeApi::default());
    let memory = AutoscalerStatus {
        last_sample: Some(CounterSample { at_ms: NOW_MS - 30_000, requests_total: 0.0, pods: 3 }),
        recommendations: vec![
            Recommendation { at_ms: NOW_MS - 90_000, nodes: 6 },
            Recommendation { at_ms: NOW_MS - 60_000, nodes: 6 },
        ],
    };
    let kvc = KVCluster::test()
        .nodes(3)
        .autoscaling(3, 6, 100.0, 60)
        .finalized()
        .status(KVClusterStatus { autoscaler: Some(memory), ..KVClusterStatus::default() })
        .build();
    store_cluster(&api, &kvc);
    let nodes = store_healthy(&api, 3);
    let admin = Arc::new(FakeAdmin { nodes: Some(nodes), ..FakeAdmin::default() });
    // 10 000 requests per pod in 30 s: 1000 req/s against a target of 100 per node.
    let ctx = context(serve(api.clone()), admin, NodeSample { requests_total: 10_000.0, disk_bytes: 0.0 });
    reconcile(Arc::new(kvc), ctx).await?;
    let scale = api.find("PATCH", &format!("{KVC_PATH}/scale"));
    assert_eq!(scale.len(), 1, "{:?}", api.requests());
    assert_eq!(scale[0].body["spec"]["replicas"], 4, "one node at a time");
    let status = status_patch(&api);
    assert_eq!(status["autoscaler"]["lastSample"]["requestsTotal"], 30_000.0);
    Ok(())
}

#[tokio::test]
async fn deletion_with_pvc_policy_delete_removes_statefulsets_and_pvcs_then_the_finalizer()
-> Result<(), Box<dyn std::error::Error>> {
    for policy in [PvcRetention::Delete, PvcRetention::Retain] {
        let api = Arc::new(FakeApi::default());
        let kvc = KVCluster::test().pvc_retention(policy).deleting().build();
        store_cluster(&api, &kvc);
        store_healthy(&api, 3);
        let ctx = context(serve(api.clone()), Arc::new(FakeAdmin::default()), NodeSample::default());
        reconcile(Arc::new(kvc), ctx).await?;
        let pvc_deletes = api
            .requests()
            .iter()
            .filter(|r| r.method == "DELETE" && r.path.contains("/persistentvolumeclaims/"))
            .count();
        let sts_deletes = api.find("DELETE", "/apis/apps/v1/namespaces/db/statefulsets/kv-default").len();
        let finalizer_patch = api
            .requests()
            .into_iter()
            .rfind(|r| r.path == KVC_PATH && r.content_type.contains("json-patch"))
            .ok_or("finalizer not removed")?;
        assert!(finalizer_patch.body.to_string().contains("remove"), "{}", finalizer_patch.body);
        match policy {
            PvcRetention::Delete => assert_eq!((sts_deletes, pvc_deletes), (1, 3)),
            PvcRetention::Retain => assert_eq!((sts_deletes, pvc_deletes), (0, 0), "Retain keeps every volume"),
        }
    }
    Ok(())
}

#[tokio::test]
async fn an_invalid_spec_sets_a_condition_and_touches_nothing() -> Result<(), Box<dyn std::error::Error>> {
    let api = Arc::new(FakeApi::default());
    let kvc = KVCluster::test().nodes(2).rf(3).finalized().build();
    store_cluster(&api, &kvc);
    let ctx = context(serve(api.clone()), Arc::new(FakeAdmin::default()), NodeSample::default());
    let action = reconcile(Arc::new(kvc), ctx).await?;
    assert_eq!(action, Action::await_change());
    let writes: Vec<Recorded> = api
        .requests()
        .into_iter()
        .filter(|r| r.method != "GET" && !r.path.ends_with("/status") && !r.path.contains("/events"))
        .collect();
    assert!(writes.is_empty(), "{writes:?}");
    let status = status_patch(&api);
    assert_eq!(status["phase"], "Invalid");
    let invalid = condition(&status, "Invalid");
    assert_eq!(invalid["status"], "True");
    assert!(invalid["message"].as_str().unwrap_or("").contains("spec.nodes"), "{invalid}");
    Ok(())
}

/// kvnode has no TLS or auth yet: a cluster asking for them is refused, not
/// created without them.
#[tokio::test]
async fn enabling_auth_is_refused_until_kvnode_implements_it() -> Result<(), Box<dyn std::error::Error>> {
    let api = Arc::new(FakeApi::default());
    let kvc = KVCluster::test().nodes(3).auth().finalized().build();
    store_cluster(&api, &kvc);
    let ctx = context(serve(api.clone()), Arc::new(FakeAdmin::default()), NodeSample::default());
    assert_eq!(reconcile(Arc::new(kvc), ctx).await?, Action::await_change());
    assert!(api.find("POST", "/api/v1/namespaces/db/secrets").is_empty(), "no token Secret");
    assert!(applied(&api.requests(), "/apis/apps/v1/namespaces/db/statefulsets/kv-default").is_none());
    let status = status_patch(&api);
    assert_eq!(status["phase"], "Invalid");
    let message = condition(&status, "Invalid")["message"].as_str().unwrap_or("").to_owned();
    assert!(message.contains("auth.enabled") && message.contains("set it to false"), "{message}");
    Ok(())
}

#[tokio::test]
async fn replacement_writes_the_replace_map_before_deleting_pvc_and_pod() -> Result<(), Box<dyn std::error::Error>> {
    let api = Arc::new(FakeApi::default());
    let kvc = KVCluster::test().nodes(3).finalized().build();
    store_cluster(&api, &kvc);
    let mut nodes = store_healthy(&api, 3);
    nodes[1].liveness = L::Down;
    // Its local volume is gone: the PVC is Lost.
    let pvc_path = "/api/v1/namespaces/db/persistentvolumeclaims/data-kv-default-1";
    let mut pvc = api.objects.lock().expect("lock")[pvc_path].clone();
    pvc["status"]["phase"] = json!("Lost");
    api.put(pvc_path, pvc);
    let admin = Arc::new(FakeAdmin { nodes: Some(nodes), ..FakeAdmin::default() });
    let ctx = context(serve(api.clone()), admin, NodeSample::default());
    reconcile(Arc::new(kvc), ctx).await?;

    let reqs = api.requests();
    let at = |method: &str, path: &str| reqs.iter().position(|r| r.method == method && r.path == path);
    let map = at("PATCH", "/api/v1/namespaces/db/configmaps/kv-replace").ok_or("replace map not written")?;
    assert_eq!(reqs[map].body["data"]["kv-default-1"], "host-1");
    let pvc = at("DELETE", pvc_path).ok_or("PVC not deleted")?;
    let pod = at("DELETE", "/api/v1/namespaces/db/pods/kv-default-1").ok_or("pod not deleted")?;
    assert!(map < pvc && pvc < pod, "order: replace map, PVC, pod");
    assert_eq!(status_patch(&api)["phase"], "Replacing");
    Ok(())
}
