//! The reconcile loop: level-triggered and idempotent. Each reconcile
//! applies the static objects, observes, asks the planner for ONE step, runs
//! it, maybe lets the autoscaler move `spec.nodes` (through the scale
//! subresource), and writes the status. A finalizer lets the operator apply
//! `pvcRetention` when the cluster is deleted.
//!
//! May call: the Kubernetes API (through [`kube::Client`]), the RingKV Admin
//! API (through [`NodeAdmin`]) and the nodes' `/metrics` (through
//! [`MetricsScraper`]). All decisions are in `plan` and `autoscale`.

mod apply;
mod observe;
mod status;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Service};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event as KubeEvent, EventType, Recorder, Reporter};
use kube::runtime::finalizer::{Event as Finalizer, finalizer};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{Controller, watcher};
use kube::{Api, Client, Resource, ResourceExt};

pub use apply::MANAGER;
pub use observe::volume_lost;
pub use status::describe;

use crate::admin::NodeAdmin;
use crate::autoscale::scrape::MetricsScraper;
use crate::autoscale::{self, Sample, Targets};
use crate::crd::{KVCluster, Phase};
use crate::error::{Error, KubeContext};
use crate::plan::{self, Step};
use crate::resources;
use crate::telemetry::Metrics;

/// The operator's finalizer on every KVCluster.
pub const FINALIZER: &str = "ringkv.io/cleanup";

/// Everything a reconcile needs.
#[derive(Clone)]
pub struct Context {
    /// Kubernetes client.
    pub client: Client,
    /// The cluster's Admin API.
    pub admin: Arc<dyn NodeAdmin>,
    /// The nodes' metrics.
    pub scraper: Arc<dyn MetricsScraper>,
    /// Now, unix ms (a function so tests control time).
    pub clock: Arc<dyn Fn() -> i64 + Send + Sync>,
    /// Makes the auth token (random in production).
    pub token: Arc<dyn Fn() -> String + Send + Sync>,
    /// Event recorder; None disables events.
    pub recorder: Option<Recorder>,
    /// Operator metrics.
    pub metrics: Metrics,
    /// Override of the Admin API endpoint (tests, or an operator outside the cluster).
    pub admin_endpoint_override: Option<String>,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context").field("admin", &self.admin).field("scraper", &self.scraper).finish_non_exhaustive()
    }
}

impl Context {
    /// The Admin API endpoint of `kvc` (its client Service).
    pub fn admin_endpoint(&self, kvc: &KVCluster) -> String {
        self.admin_endpoint_override.clone().unwrap_or_else(|| resources::admin_endpoint(kvc))
    }
}

impl Context {
    /// The production context: gRPC Admin API, HTTP scraping, the system
    /// clock, random tokens, events reported as `reporter`.
    pub fn production(client: Client, reporter: Reporter, metrics: Metrics, admin_endpoint: Option<String>) -> Self {
        Self {
            client: client.clone(),
            admin: Arc::new(crate::admin::GrpcNodeAdmin),
            scraper: Arc::new(crate::autoscale::scrape::HttpScraper::new()),
            clock: Arc::new(system_clock_ms),
            token: Arc::new(random_token),
            recorder: Some(Recorder::new(client, reporter)),
            metrics,
            admin_endpoint_override: admin_endpoint,
        }
    }
}

/// Now, unix ms, from the system clock.
pub fn system_clock_ms() -> i64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    i64::try_from(now.as_millis()).unwrap_or(i64::MAX)
}

/// A random 32-byte token, hex.
pub fn random_token() -> String {
    use rand::RngCore;
    let mut b = [0u8; 32];
    rand::rng().fill_bytes(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Reconciles one KVCluster (the entry point the controller runtime calls).
pub async fn reconcile(kvc: Arc<KVCluster>, ctx: Arc<Context>) -> Result<Action, Error> {
    let ns = kvc.metadata.namespace.clone().ok_or(Error::Metadata { field: "metadata.namespace" })?;
    let api: Api<KVCluster> = Api::namespaced(ctx.client.clone(), &ns);
    let started = std::time::Instant::now();
    let result = finalizer(&api, FINALIZER, kvc, |event| async {
        match event {
            Finalizer::Apply(kvc) => apply_cluster(&kvc, &ctx).await,
            Finalizer::Cleanup(kvc) => {
                apply::cleanup(&kvc, &ctx).await?;
                publish(
                    &ctx,
                    &kvc,
                    EventType::Normal,
                    "Deleted",
                    "cleanup",
                    "cluster deleted; PVCs handled per pvcRetention".into(),
                )
                .await;
                Ok(Action::await_change())
            }
        }
    })
    .await
    .map_err(|e| match e {
        kube::runtime::finalizer::Error::ApplyFailed(e) | kube::runtime::finalizer::Error::CleanupFailed(e) => e,
        other => Error::Finalizer { name: FINALIZER, message: other.to_string() },
    });
    ctx.metrics.observe_reconcile(started.elapsed(), result.is_ok());
    result
}

/// Requeue policy after an error: retry soon, with the error in the log.
pub fn error_policy(kvc: Arc<KVCluster>, error: &Error, _ctx: Arc<Context>) -> Action {
    tracing::warn!(cluster = %kvc.name_any(), error = %error, "reconcile failed; retrying in 15 s");
    Action::requeue(Duration::from_secs(15))
}

async fn publish(ctx: &Context, kvc: &KVCluster, type_: EventType, reason: &str, action: &str, note: String) {
    let Some(recorder) = &ctx.recorder else { return };
    let ev = KubeEvent { type_, reason: reason.into(), note: Some(note), action: action.into(), secondary: None };
    if let Err(e) = recorder.publish(&ev, &kvc.object_ref(&())).await {
        tracing::debug!(error = %e, "cannot publish event");
    }
}

async fn apply_cluster(kvc: &KVCluster, ctx: &Context) -> Result<Action, Error> {
    let name = kvc.metadata.name.clone().ok_or(Error::Metadata { field: "metadata.name" })?;
    let ns = resources::namespace(kvc);
    let now_ms = (ctx.clock)();
    let now = Timestamp::from_millisecond(now_ms).unwrap_or(Timestamp::UNIX_EPOCH);
    let api: Api<KVCluster> = Api::namespaced(ctx.client.clone(), &ns);

    let problems = kvc.spec.problems();
    let (obs, decision) = if problems.is_empty() {
        let hash = apply::apply_static(kvc, ctx).await?;
        let obs = observe::observe(kvc, ctx, now_ms).await?;
        let decision = plan::plan(&kvc.spec, &obs);
        apply::apply_statefulsets(kvc, ctx, &obs, &decision.step, hash).await?;
        apply::run_step(kvc, ctx, &obs, &decision.step).await?;
        (obs, decision)
    } else {
        // Invalid: no object is touched, only the status says why.
        let obs = plan::Observed { now_ms, ..plan::Observed::default() };
        (obs.clone(), plan::plan(&kvc.spec, &obs))
    };
    let text = describe(&decision.step);
    match &decision.step {
        Step::Refuse { .. } => publish(ctx, kvc, EventType::Warning, "InvalidSpec", "validate", text.clone()).await,
        Step::ReplacementRefused { .. } => {
            publish(ctx, kvc, EventType::Warning, "ReplacementRefused", "replace", text.clone()).await;
        }
        Step::Wait { .. } | Step::Idle => {}
        _ => publish(ctx, kvc, EventType::Normal, "TopologyStep", "reconcile", text.clone()).await,
    }
    tracing::info!(cluster = %name, namespace = %ns, phase = ?decision.phase, step = %text, "reconciled");

    let autoscaler = if decision.step == Step::Idle { autoscale_step(kvc, ctx, &obs, &api).await? } else { None };
    let status = status::build(kvc, &obs, &decision, autoscaler, now);
    ctx.metrics.set_nodes(&ns, &name, status.ready_nodes, kvc.spec.nodes);
    ctx.metrics.set_divergence(&ns, &name, obs.divergence());
    api.patch_status(&name, &PatchParams::default(), &Patch::Merge(serde_json::json!({ "status": status })))
        .await
        .ctx("patch status of", format!("kvcluster {ns}/{name}"))?;
    Ok(match decision.phase {
        Phase::Running => Action::requeue(Duration::from_secs(60)),
        Phase::Invalid => Action::await_change(),
        _ => Action::requeue(Duration::from_secs(10)),
    })
}

/// Scrapes the pods, updates the autoscaler's memory and, when it says so,
/// moves `spec.nodes` by one through the scale subresource.
async fn autoscale_step(
    kvc: &KVCluster,
    ctx: &Context,
    obs: &plan::Observed,
    api: &Api<KVCluster>,
) -> Result<Option<crate::crd::AutoscalerStatus>, Error> {
    let Some(spec) = &kvc.spec.autoscaling else { return Ok(None) };
    let mut sample = Sample { at_ms: obs.now_ms, requests_total: 0.0, disk_bytes: 0.0, pods: 0 };
    for ip in obs.racks.values().flat_map(|r| &r.pods).filter_map(|p| p.ip.as_deref()) {
        if let Some(s) = ctx.scraper.scrape(ip).await {
            sample.requests_total += s.requests_total;
            sample.disk_bytes += s.disk_bytes;
            sample.pods += 1;
        }
    }
    let mut memory = kvc.status.as_ref().and_then(|s| s.autoscaler.clone()).unwrap_or_default();
    let volume_bytes = resources::parse_quantity_bytes(&kvc.spec.storage.size).unwrap_or(0);
    let targets = Targets { spec, rf: kvc.spec.replication_factor, volume_bytes };
    if let Some(nodes) = autoscale::decide(targets, &mut memory, kvc.spec.nodes, sample) {
        let name = kvc.name_any();
        api.patch_scale(
            &name,
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({ "spec": { "replicas": nodes } })),
        )
        .await
        .ctx("patch scale of", format!("kvcluster {name}"))?;
        publish(ctx, kvc, EventType::Normal, "Autoscaled", "autoscale", format!("nodes {} -> {nodes}", kvc.spec.nodes))
            .await;
    }
    Ok(Some(memory))
}

/// Runs the controller until `shutdown` resolves.
pub async fn run(ctx: Arc<Context>, shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static) {
    let client = ctx.client.clone();
    let kvcs = Api::<KVCluster>::all(client.clone());
    let owned = watcher::Config::default().labels("app.kubernetes.io/managed-by=kv-operator");
    Controller::new(kvcs, watcher::Config::default())
        .owns(Api::<StatefulSet>::all(client.clone()), owned.clone())
        .owns(Api::<Service>::all(client.clone()), owned.clone())
        .owns(Api::<ConfigMap>::all(client.clone()), owned.clone())
        .watches(Api::<Pod>::all(client), owned, |pod: Pod| {
            // Pods belong to a StatefulSet, not to the KVCluster: map them by label.
            let ns = pod.namespace();
            pod.labels()
                .get(resources::INSTANCE_LABEL)
                .map(|name| ObjectRef::new(name).within(ns.as_deref().unwrap_or_default()))
        })
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, ctx)
        .for_each(|res| async move {
            match res {
                Ok((obj, _)) => tracing::debug!(cluster = %obj.name, "reconciled"),
                Err(e) => tracing::debug!(error = %e, "reconcile error"),
            }
        })
        .await;
}
