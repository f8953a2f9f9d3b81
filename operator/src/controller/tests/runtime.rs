//! Issue 11 (the operator against a real API server): failures are visible,
//! events stay distinct, no reconcile storms, pods are watched, metrics of
//! deleted clusters go, errors name the kind, and shutdown is bounded.

use std::collections::BTreeMap;

use futures::StreamExt;
use kube::runtime::WatchStreamExt;

use super::*;

const STS_PATH: &str = "/apis/apps/v1/namespaces/db/statefulsets/kv-default";
const EVENTS_PATH: &str = "/apis/events.k8s.io/v1/namespaces/db/events";

/// The KVCluster as the fake API server now stores it (status included).
fn stored(api: &FakeApi) -> Arc<KVCluster> {
    let value = api.objects.lock().expect("lock")[KVC_PATH].clone();
    Arc::new(serde_json::from_value(value).expect("stored KVCluster"))
}

fn warning_events(api: &FakeApi) -> Vec<Recorded> {
    api.find("POST", EVENTS_PATH).into_iter().filter(|e| e.body["type"] == "Warning").collect()
}

fn event_patches(api: &FakeApi) -> Vec<Recorded> {
    api.requests().into_iter().filter(|r| r.method == "PATCH" && r.path.starts_with(EVENTS_PATH)).collect()
}

/// D2: a failed step is reported once (status condition + lastStep + a
/// Warning event), aggregated while it repeats, cleared by the next success.
#[tokio::test]
async fn a_failed_step_is_reported_once_and_cleared_by_the_next_success() -> Result<(), Box<dyn std::error::Error>> {
    let kvc = KVCluster::test().nodes(3).finalized().build();
    let (api, ctx) = healthy_cluster(&kvc, 1);
    api.fail("PATCH", STS_PATH, 403);

    let err = reconcile(Arc::new(kvc), ctx.clone()).await.err().ok_or("the refused apply must fail the reconcile")?;
    assert!(err.to_string().contains("apply StatefulSet db/kv-default"), "{err}");
    let patches = api.find("PATCH", &format!("{KVC_PATH}/status"));
    assert_eq!(patches.len(), 1, "one status write per failure: {patches:?}");
    let status = &patches[0].body["status"];
    let failed = condition(status, "ReconcileFailed");
    assert_eq!(failed["status"], "True", "{status}");
    assert_eq!(failed["reason"], "StepFailed");
    let message = failed["message"].as_str().unwrap_or_default();
    assert!(message.contains("set rack default to 2 pod(s)") && message.contains("fake: PATCH refused"), "{message}");
    let last_step = status["lastStep"].as_str().unwrap_or_default();
    assert!(last_step.starts_with("step \"set rack default to 2 pod(s)\" failed"), "{last_step}");
    assert_eq!(status["phase"], "ScalingUp", "the failed step's phase, not the last good one: {status}");
    let warnings = warning_events(&api);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert_eq!(warnings[0].body["reason"], "StepFailed");
    assert!(warnings[0].body["note"].as_str().unwrap_or_default().contains("apply StatefulSet db/kv-default"));

    // The same failure again: no second status write, the event is aggregated (a series PATCH).
    let before = event_patches(&api).len();
    assert!(reconcile(stored(&api), ctx.clone()).await.is_err());
    assert_eq!(api.find("PATCH", &format!("{KVC_PATH}/status")).len(), 1, "no status write for a repeat");
    assert_eq!(warning_events(&api).len(), 1, "no new event for a repeat");
    assert_eq!(event_patches(&api).len(), before + 1, "the repeat is counted in the series");

    // The API server accepts again: the condition is gone, lastStep says what was done.
    api.failures.lock().expect("lock").clear();
    reconcile(stored(&api), ctx).await?;
    let status = status_patch(&api);
    assert_eq!(condition(&status, "ReconcileFailed"), Value::Null, "{status}");
    assert_eq!(status["lastStep"], "set rack default to 2 pod(s)");
    Ok(())
}

/// D6: two different steps in two reconciles are two events, each with its note.
#[tokio::test]
async fn different_steps_are_separate_events_with_their_own_notes() -> Result<(), Box<dyn std::error::Error>> {
    let kvc = KVCluster::test().nodes(3).finalized().build();
    let (api, ctx) = healthy_cluster(&kvc, 1);
    reconcile(Arc::new(kvc), ctx.clone()).await?;
    let nodes = store_healthy(&api, 2);
    let ctx = Arc::new(Context {
        admin: Arc::new(FakeAdmin { nodes: Some(nodes), ..FakeAdmin::default() }),
        ..(*ctx).clone()
    });
    reconcile(stored(&api), ctx).await?;
    let notes: Vec<String> =
        api.find("POST", EVENTS_PATH).iter().map(|e| e.body["note"].as_str().unwrap_or_default().to_owned()).collect();
    assert_eq!(notes, ["set rack default to 2 pod(s)", "set rack default to 3 pod(s)"], "{:?}", event_patches(&api));
    Ok(())
}

/// D4: nothing changed, nothing new is sent: identical apply bodies for every
/// object, and no status write when the status is already what it would be.
#[tokio::test]
async fn an_unchanged_spec_applies_identical_bytes_and_writes_no_status() -> Result<(), Box<dyn std::error::Error>> {
    let kvc = KVCluster::test().nodes(3).finalized().build();
    let (api, ctx) = healthy_cluster(&kvc, 3);
    let applies = |reqs: &[Recorded]| -> BTreeMap<String, Vec<u8>> {
        reqs.iter()
            .filter(|r| r.content_type.contains("apply-patch"))
            .map(|r| (r.path.clone(), r.raw.clone()))
            .collect()
    };
    reconcile(Arc::new(kvc), ctx.clone()).await?;
    let first = applies(&api.requests());
    let seen = api.requests().len();
    reconcile(stored(&api), ctx).await?;
    let second = applies(&api.requests()[seen..]);
    let paths: Vec<&str> = first.keys().map(String::as_str).collect();
    for object in [
        "configmaps/kv-config",
        "services/kv-peers",
        "services/kv-client",
        "poddisruptionbudgets/kv",
        "statefulsets/kv-default",
    ] {
        assert!(paths.iter().any(|p| p.ends_with(object)), "{object} not applied: {paths:?}");
    }
    // The StatefulSet is not applied again at all: its applied-hash matches.
    let sts = "/apis/apps/v1/namespaces/db/statefulsets/kv-default";
    assert!(!second.contains_key(sts), "the unchanged StatefulSet was applied again");
    let mut expected = first.clone();
    expected.remove(sts);
    assert_eq!(expected.keys().collect::<Vec<_>>(), second.keys().collect::<Vec<_>>());
    for (path, body) in &expected {
        assert!(
            second[path] == *body,
            "{path} differs:\n{}\n{}",
            String::from_utf8_lossy(body),
            String::from_utf8_lossy(&second[path])
        );
    }
    assert_eq!(api.find("PATCH", &format!("{KVC_PATH}/status")).len(), 1, "the unchanged status is not written again");
    Ok(())
}

/// D4: the KVCluster watch passes spec, deletion and finalizer changes, not
/// the operator's own status writes.
#[tokio::test]
async fn status_only_changes_do_not_trigger_a_reconcile() {
    let base = KVCluster::test().nodes(3).finalized().build();
    let mut status_only = base.clone();
    status_only.metadata.resource_version = Some("2".into());
    status_only.status = Some(KVClusterStatus {
        last_step: Some("cluster matches the spec".into()),
        autoscaler: Some(AutoscalerStatus {
            last_sample: Some(CounterSample { at_ms: NOW_MS, requests_total: 1.0, pods: 3 }),
            recommendations: vec![Recommendation { at_ms: NOW_MS, nodes: 3 }],
        }),
        ..KVClusterStatus::default()
    });
    let mut spec = status_only.clone();
    spec.spec.nodes = 4;
    spec.metadata.generation = Some(2);
    let deleting =
        KVCluster { status: spec.status.clone(), spec: spec.spec.clone(), ..KVCluster::test().deleting().build() };
    let mut deleting = deleting;
    deleting.metadata.generation = Some(2);
    let mut no_finalizer = deleting.clone();
    no_finalizer.metadata.finalizers = Some(vec![]);

    let h = |k: &KVCluster| trigger_hash(k).expect("always a hash");
    assert_eq!(h(&base), h(&status_only), "a status-only change must be filtered out");
    assert_ne!(h(&status_only), h(&spec), "a spec change passes");
    assert_ne!(h(&spec), h(&deleting), "deletion passes");
    assert_ne!(h(&deleting), h(&no_finalizer), "a finalizer change passes");

    // The same through the filter the controller uses.
    let events = [&base, &status_only, &spec, &spec, &deleting, &no_finalizer].map(|k| Ok(k.clone()));
    let passed: Vec<KVCluster> = futures::stream::iter(events)
        .predicate_filter(trigger_hash, Default::default())
        .filter_map(|r| async move { r.ok() })
        .collect()
        .await;
    let passed: Vec<_> = passed.iter().map(|k| (k.spec.nodes, k.metadata.deletion_timestamp.is_some())).collect();
    assert_eq!(passed, [(3, false), (4, false), (4, true), (4, true)]);
}

/// D5: the pod watch selects labels the node pods carry (the template is unchanged).
#[test]
fn the_pod_watch_selects_the_labels_node_pods_carry() {
    let kvc = KVCluster::test().racks(&["a", "b"]).build();
    let sts = crate::resources::statefulset::build(&kvc, &kvc.spec.racks[1], 3, 7);
    let template = sts.spec.and_then(|s| s.template.metadata).and_then(|m| m.labels).unwrap_or_default();
    let selector = pod_watch_selector();
    for term in selector.split(',') {
        let (key, value) = term.split_once('=').unwrap_or((term, ""));
        assert_eq!(template.get(key).map(String::as_str), Some(value), "{selector} vs pod labels {template:?}");
    }
    let keys: Vec<&str> = template.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        ["app.kubernetes.io/component", "app.kubernetes.io/instance", "app.kubernetes.io/name", "ringkv.io/rack"],
        "pod template labels must not change (that would roll every pod)"
    );
}

/// D9: deleting a cluster removes its gauges.
#[tokio::test]
async fn cleanup_removes_the_cluster_metrics() -> Result<(), Box<dyn std::error::Error>> {
    let kvc = KVCluster::test().nodes(3).finalized().build();
    let (api, ctx) = healthy_cluster(&kvc, 3);
    reconcile(Arc::new(kvc), ctx.clone()).await?;
    let text = ctx.metrics.render();
    assert!(text.contains("ringkv_operator_cluster_nodes{cluster=\"kv\""), "{text}");
    assert!(text.contains("ringkv_operator_membership_divergence{cluster=\"kv\""), "{text}");
    let deleting = KVCluster::test().deleting().build();
    store_cluster(&api, &deleting);
    reconcile(Arc::new(deleting), ctx.clone()).await?;
    let text = ctx.metrics.render();
    assert!(!text.contains("cluster=\"kv\""), "a deleted cluster's series remain:\n{text}");
    Ok(())
}

/// D10: a refused apply names the kind of object.
#[tokio::test]
async fn a_refused_apply_names_the_kind_of_object() -> Result<(), Box<dyn std::error::Error>> {
    let api = Arc::new(FakeApi::default());
    let kvc = KVCluster::test().nodes(3).finalized().build();
    store_cluster(&api, &kvc);
    api.fail("PATCH", "/apis/policy/v1/namespaces/db/poddisruptionbudgets/kv", 403);
    let ctx = context(serve(api.clone()), Arc::new(FakeAdmin::default()), NodeSample::default());
    let err = reconcile(Arc::new(kvc), ctx).await.err().ok_or("must fail")?;
    let text = err.to_string();
    assert!(text.contains("apply PodDisruptionBudget db/kv"), "{text}");
    assert_eq!(condition(&status_patch(&api), "ReconcileFailed")["reason"], "KubernetesApiFailed");
    Ok(())
}

/// A client of an API server that accepts connections and never answers.
async fn silent_api_server() -> Result<(Client, tokio::task::JoinHandle<()>), Box<dyn std::error::Error>> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let hold = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            open.push(socket); // keep it open, never answer
        }
    });
    let client = Client::try_from(kube::Config::new(url.parse()?))?;
    Ok((client, hold))
}

/// D8: after the signal the controller stops within the grace, even when the
/// API server hangs (or refuses connections).
#[tokio::test]
async fn shutdown_is_bounded_when_the_api_server_is_unreachable() -> Result<(), Box<dyn std::error::Error>> {
    let (silent, hold) = silent_api_server().await?;
    let refused = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        let url = format!("http://{}", listener.local_addr()?);
        drop(listener);
        Client::try_from(kube::Config::new(url.parse()?))?
    };
    for (what, client) in [("never answers", silent), ("refuses connections", refused)] {
        let ctx = context(client, Arc::new(FakeAdmin::default()), NodeSample::default());
        let started = std::time::Instant::now();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let run = tokio::spawn(run_with_grace(
            ctx,
            async move {
                let _ = rx.await;
            },
            Duration::from_millis(500),
        ));
        // Let the watches start (and hang) before the signal.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let _ = tx.send(());
        tokio::time::timeout(Duration::from_secs(5), run)
            .await
            .map_err(|_| format!("API server {what}: still running 5 s after the signal"))??;
        assert!(started.elapsed() < Duration::from_secs(5), "{what}: {:?}", started.elapsed());
    }
    hold.abort();
    Ok(())
}

/// D4: the autoscaler samples on its own cadence: a reconcile triggered
/// before the next sample is due does not sample (no new lastSample, no new
/// recommendation) and requeues for when it is due.
#[tokio::test]
async fn a_reconcile_before_the_next_sample_is_due_does_not_sample() -> Result<(), Box<dyn std::error::Error>> {
    let api = Arc::new(FakeApi::default());
    let memory = AutoscalerStatus {
        last_sample: Some(CounterSample { at_ms: NOW_MS - 5_000, requests_total: 0.0, pods: 3 }),
        recommendations: vec![Recommendation { at_ms: NOW_MS - 5_000, nodes: 3 }],
    };
    let kvc = KVCluster::test()
        .nodes(3)
        .autoscaling(3, 6, 100.0, 60)
        .finalized()
        .status(KVClusterStatus { autoscaler: Some(memory.clone()), ..KVClusterStatus::default() })
        .build();
    store_cluster(&api, &kvc);
    let nodes = store_healthy(&api, 3);
    let admin = Arc::new(FakeAdmin { nodes: Some(nodes), ..FakeAdmin::default() });
    let ctx = context(serve(api.clone()), admin, NodeSample { requests_total: 10_000.0, disk_bytes: 0.0 });
    let action = reconcile(Arc::new(kvc), ctx).await?;
    assert_eq!(action, Action::requeue(Duration::from_secs(10)), "requeued for the next sample (15 s after the last)");
    let status = status_patch(&api);
    assert_eq!(status["autoscaler"], serde_json::to_value(&memory)?, "not sampled: {}", status["autoscaler"]);
    assert!(api.find("PATCH", &format!("{KVC_PATH}/scale")).is_empty());
    Ok(())
}
