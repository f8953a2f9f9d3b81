//! Writes: server-side apply of the owned objects, and running one planned
//! step. Every write here is idempotent: a step run twice (the reconcile
//! retried) has the effect of running it once; a 404 on delete is success.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Pod, Secret, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::Context;
use crate::crd::KVCluster;
use crate::error::{Error, KubeContext, object_id};
use crate::plan::{Observed, Step};
use crate::resources::statefulset::APPLIED_HASH_ANNOTATION;
use crate::resources::{self, configmap, pdb, secret, service, statefulset};

/// Field manager of every server-side apply.
pub const MANAGER: &str = "kv-operator";

async fn ssa<K>(api: &Api<K>, obj: &K) -> Result<(), Error>
where
    K: kube::Resource<DynamicType = ()> + Clone + DeserializeOwned + Serialize + std::fmt::Debug,
{
    let name = obj.meta().name.clone().unwrap_or_default();
    let ns = obj.meta().namespace.clone().unwrap_or_default();
    api.patch(&name, &PatchParams::apply(MANAGER).force(), &Patch::Apply(obj))
        .await
        .ctx("apply", object_id::<K>(&ns, &name))?;
    Ok(())
}

async fn delete<K>(api: &Api<K>, ns: &str, name: &str) -> Result<(), Error>
where
    K: kube::Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug,
{
    match api.delete(name, &DeleteParams::default()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(source) => Err(Error::Kube { action: "delete", object: object_id::<K>(ns, name), source }),
    }
}

/// Applies the objects that do not depend on the topology: ConfigMap,
/// Services, PDB, auth Secret. Returns the hash of `node.toml`.
pub async fn apply_static(kvc: &KVCluster, ctx: &Context) -> Result<u64, Error> {
    let ns = resources::namespace(kvc);
    let client = &ctx.client;
    let cm = configmap::build(kvc)?;
    let hash = resources::stable_hash(
        cm.data.as_ref().and_then(|d| d.get(configmap::CONFIG_KEY)).map(String::as_bytes).unwrap_or_default(),
    );
    ssa(&Api::<ConfigMap>::namespaced(client.clone(), &ns), &cm).await?;
    let svc_api = Api::<Service>::namespaced(client.clone(), &ns);
    ssa(&svc_api, &service::build_peers(kvc)).await?;
    ssa(&svc_api, &service::build_client(kvc)).await?;
    ssa(&Api::<PodDisruptionBudget>::namespaced(client.clone(), &ns), &pdb::build(kvc)).await?;
    let secrets = Api::<Secret>::namespaced(client.clone(), &ns);
    let name = resources::auth_secret_name(kvc);
    // The token is made once: never overwrite an existing Secret.
    if let Some(s) = secret::build_auth(kvc, &(ctx.token)())
        && secrets.get_opt(&name).await.ctx("get", object_id::<Secret>(&ns, &name))?.is_none()
    {
        secrets.create(&PostParams::default(), &s).await.ctx("create", object_id::<Secret>(&ns, &name))?;
    }
    Ok(hash)
}

/// Applies every rack's StatefulSet with its current replicas, or the
/// planned ones for a `ScaleRack` step (templates stay current; with
/// `OnDelete` a template change restarts nothing by itself).
pub async fn apply_statefulsets(
    kvc: &KVCluster,
    ctx: &Context,
    obs: &Observed,
    step: &Step,
    hash: u64,
) -> Result<(), Error> {
    let api = Api::<StatefulSet>::namespaced(ctx.client.clone(), &resources::namespace(kvc));
    for rack in &kvc.spec.racks {
        let mut replicas = obs.racks.get(&rack.name).map_or(0, |r| r.replicas);
        if let Step::ScaleRack { rack: r, replicas: n } = step
            && *r == rack.name
        {
            replicas = *n;
        }
        let mut sts = statefulset::build(kvc, rack, replicas, hash);
        let digest = format!("{:016x}", resources::stable_hash(&serde_json::to_vec(&sts).unwrap_or_default()));
        let live = obs.racks.get(&rack.name);
        if live.is_some_and(|r| r.applied_hash.as_deref() == Some(digest.as_str()) && r.replicas == replicas) {
            continue; // exactly this was applied last time, and the replicas still match
        }
        sts.metadata.annotations.get_or_insert_with(Default::default).insert(APPLIED_HASH_ANNOTATION.into(), digest);
        ssa(&api, &sts).await?;
    }
    Ok(())
}

/// Runs the step (apart from `ScaleRack`, done by [`apply_statefulsets`]).
pub async fn run_step(kvc: &KVCluster, ctx: &Context, obs: &Observed, step: &Step) -> Result<(), Error> {
    let ns = resources::namespace(kvc);
    let pods = Api::<Pod>::namespaced(ctx.client.clone(), &ns);
    let pvcs = Api::<PersistentVolumeClaim>::namespaced(ctx.client.clone(), &ns);
    let cms = Api::<ConfigMap>::namespaced(ctx.client.clone(), &ns);
    match step {
        // To the leaving node itself: a node refuses to decommission another host.
        Step::Decommission { host_id, endpoint, .. } => ctx.admin.decommission(endpoint, host_id).await?,
        Step::DeletePvc { pvc } => delete(&pvcs, &ns, pvc).await?,
        Step::ReplaceNode { pod, pvc, old_host_id, .. } => {
            // Order matters: the replace map first, so the recreated pod starts with --replace.
            if let Some(old) = old_host_id {
                let mut map: BTreeMap<String, String> = obs.replacing.clone();
                map.insert(pod.clone(), old.clone());
                ssa(&cms, &configmap::build_replace_map(kvc, &map)).await?;
            }
            delete(&pvcs, &ns, pvc).await?;
            delete(&pods, &ns, pod).await?;
        }
        Step::FinishReplace { pod } => {
            let mut map = obs.replacing.clone();
            map.remove(pod);
            ssa(&cms, &configmap::build_replace_map(kvc, &map)).await?;
        }
        Step::RestartPod { pod } => delete(&pods, &ns, pod).await?,
        _ => {}
    }
    Ok(())
}

/// Finalizer cleanup: with `pvcRetention: Delete`, delete the StatefulSets
/// (so no pod holds a volume) and then every data PVC of the cluster. Other
/// objects are owned by the KVCluster and collected by Kubernetes.
pub async fn cleanup(kvc: &KVCluster, ctx: &Context) -> Result<(), Error> {
    if kvc.spec.pvc_retention != crate::crd::PvcRetention::Delete {
        return Ok(());
    }
    let ns = resources::namespace(kvc);
    let sts = Api::<StatefulSet>::namespaced(ctx.client.clone(), &ns);
    for rack in &kvc.spec.racks {
        delete(&sts, &ns, &resources::statefulset_name(kvc, &rack.name)).await?;
    }
    let pvcs = Api::<PersistentVolumeClaim>::namespaced(ctx.client.clone(), &ns);
    let selector = resources::selector_string(kvc);
    let lp = kube::api::ListParams::default().labels(&selector);
    for pvc in pvcs.list(&lp).await.ctx("list", format!("PersistentVolumeClaims {ns} {selector}"))?.items {
        if let Some(name) = pvc.metadata.name {
            delete(&pvcs, &ns, &name).await?;
        }
    }
    Ok(())
}
