//! End-to-end against a real Kubernetes cluster (kind or any other).
//! `#[ignore]`d: it needs a cluster, so the default `cargo test` reports it
//! as ignored instead of passing having tested nothing. Run it with
//! `KUBECONFIG=~/.kube/config cargo test --workspace --test real_cluster -- --ignored`.
//!
//! It installs the CRD, creates a namespace and a 3-node KVCluster, runs the
//! operator's controller in this process, and waits (with deadlines) until
//! the owned objects exist and the status reports progress. With
//! `RINGKV_E2E_IMAGE` set to an image the cluster can pull, it also waits for
//! 3 ready nodes (minutes). The namespace is deleted at the end.

use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Service};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::events::Reporter;
use kube::{Api, Client, CustomResourceExt};
use ringkv_operator::controller::{self, Context};
use ringkv_operator::crd::KVCluster;
use ringkv_operator::telemetry::Metrics;

async fn wait_for<F, Fut>(what: &str, deadline: Duration, mut check: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while start.elapsed() < deadline {
        if check().await {
            println!("ok: {what} after {:?}", start.elapsed());
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    anyhow::bail!("timed out after {deadline:?} waiting for {what}")
}

#[tokio::test]
#[ignore = "needs a real cluster: KUBECONFIG=... cargo test --workspace --test real_cluster -- --ignored"]
async fn kvcluster_on_a_real_cluster() -> anyhow::Result<()> {
    if std::env::var_os("KUBECONFIG").is_none() {
        anyhow::bail!("KUBECONFIG is not set; this test needs a real cluster (e.g. `kind create cluster`)");
    }
    let client = Client::try_default().await?;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    crds.patch("kvclusters.ringkv.io", &PatchParams::apply("ringkv-e2e").force(), &Patch::Apply(KVCluster::crd()))
        .await?;
    wait_for("the CRD to be established", Duration::from_secs(30), || async {
        crds.get("kvclusters.ringkv.io")
            .await
            .ok()
            .and_then(|c| c.status)
            .and_then(|s| s.conditions)
            .is_some_and(|c| c.iter().any(|c| c.type_ == "Established" && c.status == "True"))
    })
    .await?;

    let ns_name = format!("ringkv-e2e-{}", std::process::id());
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ns = Namespace {
        metadata: kube::api::ObjectMeta { name: Some(ns_name.clone()), ..Default::default() },
        ..Default::default()
    };
    namespaces.create(&PostParams::default(), &ns).await?;
    let result = scenario(client.clone(), &ns_name).await;
    namespaces.delete(&ns_name, &DeleteParams::default()).await?;
    result
}

async fn scenario(client: Client, ns: &str) -> anyhow::Result<()> {
    let mut kvc: KVCluster = serde_saphyr::from_str(include_str!("../../crds/examples/kvcluster.yaml"))?;
    kvc.metadata.namespace = Some(ns.into());
    if let Ok(image) = std::env::var("RINGKV_E2E_IMAGE") {
        kvc.spec.image = image;
    }
    let api: Api<KVCluster> = Api::namespaced(client.clone(), ns);
    api.create(&PostParams::default(), &kvc).await?;

    let reporter = Reporter { controller: "kv-operator-e2e".into(), instance: None };
    let admin_endpoint = std::env::var("RINGKV_E2E_ADMIN_ENDPOINT").ok();
    let ctx = Arc::new(Context::production(client.clone(), reporter, Metrics::new()?, admin_endpoint));
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let controller = tokio::spawn(controller::run(ctx, async move {
        let _ = stop_rx.await;
    }));

    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    let svcs: Api<Service> = Api::namespaced(client.clone(), ns);
    let sts: Api<StatefulSet> = Api::namespaced(client.clone(), ns);
    let outcome = async {
        wait_for("ConfigMap demo-config", Duration::from_secs(60), || async {
            cms.get_opt("demo-config").await.ok().flatten().is_some()
        })
        .await?;
        wait_for("Services demo-peers and demo-client", Duration::from_secs(60), || async {
            svcs.get_opt("demo-peers").await.ok().flatten().is_some()
                && svcs.get_opt("demo-client").await.ok().flatten().is_some()
        })
        .await?;
        wait_for("StatefulSet demo-default with a first pod", Duration::from_secs(60), || async {
            sts.get_opt("demo-default").await.ok().flatten().and_then(|s| s.spec).and_then(|s| s.replicas).unwrap_or(0)
                >= 1
        })
        .await?;
        wait_for("a status with a phase and a selector", Duration::from_secs(60), || async {
            api.get_status("demo").await.ok().and_then(|k| k.status).is_some_and(|s| !s.selector.is_empty())
        })
        .await?;
        if std::env::var_os("RINGKV_E2E_IMAGE").is_some() {
            wait_for("3 ready nodes", Duration::from_secs(900), || async {
                api.get_status("demo").await.ok().and_then(|k| k.status).is_some_and(|s| s.ready_nodes == 3)
            })
            .await?;
        }
        anyhow::Ok(())
    }
    .await;
    let _ = stop_tx.send(());
    let _ = tokio::time::timeout(Duration::from_secs(10), controller).await;
    outcome
}
