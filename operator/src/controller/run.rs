//! The controller runtime around [`reconcile`](super::reconcile): which
//! watches trigger a reconcile, and a shutdown that ends in bounded time.
//!
//! Invariants: a KVCluster change triggers a reconcile only when it matters
//! ([`trigger_hash`]: generation, spec, deletion, finalizers), so the
//! operator's own status writes do not; owned objects trigger through their
//! owner reference, node pods through the labels they carry
//! ([`pod_watch_selector`]); after the shutdown signal, in-flight reconciles
//! get [`SHUTDOWN_GRACE`] and are then dropped (cancelled), even when they
//! are stuck in calls to an unreachable API server.
//!
//! May call: the Kubernetes API (watches, through kube-runtime).

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Service};
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::{Controller, WatchStreamExt, watcher};
use kube::{Api, ResourceExt};

use super::{Context, error_policy, reconcile};
use crate::crd::KVCluster;
use crate::resources;

/// Time in-flight reconciles get after the shutdown signal.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// Selects the objects the operator applies (they carry `managed-by`).
pub const OWNED_SELECTOR: &str = "app.kubernetes.io/managed-by=kv-operator";

/// Selects the node pods of every cluster: the cluster selector labels
/// without the instance (the pod template carries exactly those, plus the
/// instance and the rack; it must not change, or every pod would roll).
pub fn pod_watch_selector() -> String {
    resources::node_pod_labels().iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",")
}

/// The part of a KVCluster whose change needs a reconcile: generation (the
/// spec), the spec itself (for servers that do not bump the generation),
/// deletion and finalizers. Status, `resourceVersion` and `managedFields`
/// are left out: the operator's own status writes do not trigger it again.
pub fn trigger_hash(kvc: &KVCluster) -> Option<u64> {
    let mut h = DefaultHasher::new();
    kvc.metadata.uid.hash(&mut h);
    kvc.metadata.generation.hash(&mut h);
    serde_json::to_string(&kvc.spec).unwrap_or_default().hash(&mut h);
    kvc.metadata.deletion_timestamp.as_ref().map(|t| t.0.as_millisecond()).hash(&mut h);
    kvc.metadata.finalizers.hash(&mut h);
    Some(h.finish())
}

/// Runs the controller until `shutdown` resolves, then for at most
/// [`SHUTDOWN_GRACE`] more.
pub async fn run(ctx: Arc<Context>, shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static) {
    run_with_grace(ctx, shutdown, SHUTDOWN_GRACE).await;
}

/// [`run`] with a chosen grace.
pub async fn run_with_grace(
    ctx: Arc<Context>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
    grace: Duration,
) {
    let shutdown = shutdown.shared();
    let client = ctx.client.clone();
    let (reader, writer) = reflector::store();
    let kvcs = watcher(Api::<KVCluster>::all(client.clone()), watcher::Config::default())
        .default_backoff()
        .reflect(writer)
        .applied_objects()
        .predicate_filter(trigger_hash, Default::default());
    let owned = watcher::Config::default().labels(OWNED_SELECTOR);
    let pods = watcher::Config::default().labels(&pod_watch_selector());
    let controller = Controller::for_stream(kvcs, reader)
        .owns(Api::<StatefulSet>::all(client.clone()), owned.clone())
        .owns(Api::<Service>::all(client.clone()), owned.clone())
        .owns(Api::<ConfigMap>::all(client.clone()), owned)
        .watches(Api::<Pod>::all(client), pods, |pod: Pod| {
            // Pods belong to a StatefulSet, not to the KVCluster: map them by label.
            let ns = pod.namespace();
            pod.labels()
                .get(resources::INSTANCE_LABEL)
                .map(|name| ObjectRef::new(name).within(ns.as_deref().unwrap_or_default()))
        })
        .graceful_shutdown_on(shutdown.clone())
        .run(reconcile, error_policy, ctx)
        .for_each(|res| async move {
            match res {
                Ok((obj, _)) => tracing::debug!(cluster = %obj.name, "reconciled"),
                Err(e) => tracing::debug!(error = %e, "reconcile error"),
            }
        });
    tokio::select! {
        () = controller => tracing::info!("controller stopped"),
        () = async { shutdown.await; tokio::time::sleep(grace).await } => {
            tracing::warn!(grace_s = grace.as_secs(), "reconciles or watches still running after the grace; dropping them");
        }
    }
}
