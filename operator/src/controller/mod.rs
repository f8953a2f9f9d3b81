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
pub mod report;
mod run;
mod status;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{EventType, Recorder, Reporter};
use kube::runtime::finalizer::{Event as Finalizer, finalizer};
use kube::{Api, Client, ResourceExt};

pub use apply::MANAGER;
pub use observe::volume_lost;
pub use run::{OWNED_SELECTOR, SHUTDOWN_GRACE, pod_watch_selector, run, run_with_grace, trigger_hash};
pub use status::describe;

use crate::admin::NodeAdmin;
use crate::autoscale::scrape::MetricsScraper;
use crate::autoscale::{self, Sample, Targets};
use crate::crd::{KVCluster, Phase};
use crate::error::{Error, KubeContext, object_id};
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
    let result = finalizer(&api, FINALIZER, kvc.clone(), |event| async {
        match event {
            Finalizer::Apply(kvc) => apply_cluster(&kvc, &ctx).await,
            Finalizer::Cleanup(kvc) => cleanup_cluster(&kvc, &ctx).await,
        }
    })
    .await
    .map_err(|e| match e {
        kube::runtime::finalizer::Error::ApplyFailed(e) | kube::runtime::finalizer::Error::CleanupFailed(e) => e,
        other => Error::Finalizer { name: FINALIZER, message: other.to_string() },
    });
    ctx.metrics.observe_reconcile(started.elapsed(), result.is_ok());
    if let Err(e) = &result {
        report::failure(&kvc, &ctx, e).await;
    }
    result
}

/// The finalizer's cleanup: volumes per `pvcRetention`, and the cluster's
/// metric series (a deleted cluster exports nothing).
async fn cleanup_cluster(kvc: &KVCluster, ctx: &Context) -> Result<Action, Error> {
    apply::cleanup(kvc, ctx).await?;
    ctx.metrics.forget_cluster(&resources::namespace(kvc), &resources::cluster_name(kvc));
    let note = "cluster deleted; PVCs handled per pvcRetention".to_string();
    report::publish(ctx, kvc, EventType::Normal, "Deleted", &note, note.clone()).await;
    Ok(Action::await_change())
}

/// Requeue policy after an error: retry soon, with the error in the log.
pub fn error_policy(kvc: Arc<KVCluster>, error: &Error, _ctx: Arc<Context>) -> Action {
    tracing::warn!(cluster = %kvc.name_any(), error = %error, "reconcile failed; retrying in 15 s");
    Action::requeue(Duration::from_secs(15))
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
        let failed = |e| Error::step(describe(&decision.step), decision.phase, e);
        let scaling = matches!(decision.step, Step::ScaleRack { .. });
        apply::apply_statefulsets(kvc, ctx, &obs, &decision.step, hash)
            .await
            .map_err(|e| if scaling { failed(e) } else { e })?;
        apply::run_step(kvc, ctx, &obs, &decision.step).await.map_err(failed)?;
        (obs, decision)
    } else {
        // Invalid: no object is touched, only the status says why.
        let obs = plan::Observed { now_ms, ..plan::Observed::default() };
        (obs.clone(), plan::plan(&kvc.spec, &obs))
    };
    let text = describe(&decision.step);
    if let Some(reason) = report::step_reason(&decision.step) {
        let type_ = match decision.step {
            Step::Refuse { .. } | Step::ReplacementRefused { .. } => EventType::Warning,
            _ => EventType::Normal,
        };
        report::publish(ctx, kvc, type_, reason, report::event_key(&decision.step, &text), text.clone()).await;
    }
    tracing::info!(cluster = %name, namespace = %ns, phase = ?decision.phase, step = %text, "reconciled");

    let autoscaler = if decision.step == Step::Idle { autoscale_step(kvc, ctx, &obs, &api).await? } else { None };
    let next_sample = autoscaler.as_ref().zip(kvc.spec.autoscaling.as_ref()).map(|(memory, spec)| {
        Duration::from_millis(u64::try_from(autoscale::next_sample_in_ms(spec, memory, now_ms)).unwrap_or(0))
    });
    let status = status::build(kvc, &obs, &decision, autoscaler, now);
    ctx.metrics.set_nodes(&ns, &name, status.ready_nodes, kvc.spec.nodes);
    ctx.metrics.set_divergence(&ns, &name, obs.divergence());
    // An unchanged status is not written again (the write would be a no-op anyway).
    if kvc.status.as_ref() != Some(&status) {
        api.patch_status(&name, &PatchParams::default(), &Patch::Merge(serde_json::json!({ "status": status })))
            .await
            .ctx("patch status of", object_id::<KVCluster>(&ns, &name))?;
    }
    Ok(match decision.phase {
        // The autoscaler samples on its own cadence: the requeue, not status writes.
        Phase::Running => Action::requeue(next_sample.unwrap_or(Duration::from_secs(60)).max(Duration::from_secs(1))),
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
    let mut memory = kvc.status.as_ref().and_then(|s| s.autoscaler.clone()).unwrap_or_default();
    if autoscale::next_sample_in_ms(spec, &memory, obs.now_ms) > 0 {
        return Ok(Some(memory)); // not due: a reconcile triggered by something else does not sample
    }
    let mut sample = Sample { at_ms: obs.now_ms, requests_total: 0.0, disk_bytes: 0.0, pods: 0 };
    for ip in obs.racks.values().flat_map(|r| &r.pods).filter_map(|p| p.ip.as_deref()) {
        if let Some(s) = ctx.scraper.scrape(ip).await {
            sample.requests_total += s.requests_total;
            sample.disk_bytes += s.disk_bytes;
            sample.pods += 1;
        }
    }
    let volume_bytes = resources::parse_quantity_bytes(&kvc.spec.storage.size).unwrap_or(0);
    let targets = Targets { spec, rf: kvc.spec.replication_factor, volume_bytes };
    if let Some(nodes) = autoscale::decide(targets, &mut memory, kvc.spec.nodes, sample) {
        let name = kvc.name_any();
        let text = format!("autoscale nodes {} -> {nodes}", kvc.spec.nodes);
        api.patch_scale(
            &name,
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({ "spec": { "replicas": nodes } })),
        )
        .await
        .ctx("patch scale of", object_id::<KVCluster>(&resources::namespace(kvc), &name))
        .map_err(|e| Error::step(text.clone(), Phase::Running, e))?;
        report::publish(ctx, kvc, EventType::Normal, "Autoscaled", &text, text.clone()).await;
    }
    Ok(Some(memory))
}
