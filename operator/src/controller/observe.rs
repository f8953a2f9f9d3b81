//! Observation: reads the StatefulSets, pods, PVCs, PVs, Nodes, the replace
//! map and the Admin API, and turns them into the planner's [`Observed`].
//! Reads only; the one pure decision here ([`volume_lost`]) is unit-tested.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Node, PersistentVolume, PersistentVolumeClaim, Pod};
use kube::api::ListParams;
use kube::{Api, ResourceExt};

use super::Context;
use crate::crd::KVCluster;
use crate::error::{Error, KubeContext};
use crate::plan::{MembershipView, Observed, PodObserved, PvcObserved, RackObserved, map_nodes};
use crate::resources::{self, RACK_LABEL, statefulset};

/// True when a pod's local volume is gone: its PVC is missing or `Lost`, its PV
/// is missing, or the PV is pinned (local volume node affinity) to a machine
/// that no longer exists.
pub fn volume_lost(
    pvc: Option<&PersistentVolumeClaim>,
    pv: Option<&PersistentVolume>,
    node_names: &BTreeSet<String>,
) -> bool {
    let Some(pvc) = pvc else { return true };
    if pvc.metadata.deletion_timestamp.is_some() {
        return true;
    }
    let phase = pvc.status.as_ref().and_then(|s| s.phase.as_deref());
    if phase == Some("Lost") {
        return true;
    }
    let bound_to = pvc.spec.as_ref().and_then(|s| s.volume_name.as_deref()).filter(|v| !v.is_empty());
    if bound_to.is_none() {
        return false; // still Pending: waiting for the provisioner is not a loss
    }
    let Some(pv) = pv else { return true };
    let pinned_hosts: Vec<&String> = pv
        .spec
        .as_ref()
        .and_then(|s| s.node_affinity.as_ref())
        .and_then(|a| a.required.as_ref())
        .map(|r| {
            r.node_selector_terms
                .iter()
                .flat_map(|t| t.match_expressions.iter().flatten())
                .filter(|e| e.key == "kubernetes.io/hostname" && e.operator == "In")
                .flat_map(|e| e.values.iter().flatten())
                .collect()
        })
        .unwrap_or_default();
    !pinned_hosts.is_empty() && pinned_hosts.iter().all(|h| !node_names.contains(*h))
}

fn ordinal_of(name: &str, prefix: &str) -> Option<i32> {
    name.strip_prefix(prefix)?.parse().ok()
}

fn is_ready(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_none()
        && pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// What was listed, for [`observe_rack`].
#[derive(Clone, Copy)]
struct Found<'a> {
    pods: &'a [Pod],
    pvcs: &'a [PersistentVolumeClaim],
    /// Names of existing machines, and the PV bound to each PVC.
    volumes: &'a (BTreeSet<String>, BTreeMap<String, PersistentVolume>),
}

/// One rack: its StatefulSet's replicas and revision, its pods and PVCs.
fn observe_rack(rack: &str, sts_name: &str, sts: Option<&StatefulSet>, found: Found<'_>) -> RackObserved {
    let prefix = format!("{sts_name}-");
    let mut obs = RackObserved {
        replicas: sts.and_then(|s| s.spec.as_ref()).and_then(|s| s.replicas).unwrap_or(0),
        update_revision: sts.and_then(|s| s.status.as_ref()).and_then(|s| s.update_revision.clone()),
        applied_hash: sts.and_then(|s| s.annotations().get(statefulset::APPLIED_HASH_ANNOTATION).cloned()),
        ..RackObserved::default()
    };
    for pod in found.pods.iter().filter(|p| p.labels().get(RACK_LABEL).map(String::as_str) == Some(rack)) {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let Some(ordinal) = ordinal_of(&name, &prefix) else { continue };
        let claim = resources::pvc_name(&name);
        let pvc = found.pvcs.iter().find(|c| c.metadata.name.as_deref() == Some(claim.as_str()));
        let pv = found.volumes.1.get(&claim);
        obs.pods.push(PodObserved {
            ready: is_ready(pod),
            revision: pod.labels().get("controller-revision-hash").cloned(),
            ip: pod.status.as_ref().and_then(|s| s.pod_ip.clone()),
            volume_lost: pod.metadata.deletion_timestamp.is_none() && volume_lost(pvc, pv, &found.volumes.0),
            name,
            ordinal,
        });
    }
    obs.pods.sort_by_key(|p| p.ordinal);
    for pvc in found.pvcs {
        let name = pvc.metadata.name.clone().unwrap_or_default();
        if let Some(ordinal) = name.strip_prefix("data-").and_then(|n| ordinal_of(n, &prefix)) {
            obs.pvcs.push(PvcObserved { name, ordinal });
        }
    }
    obs
}

/// Reads everything the planner needs.
pub async fn observe(kvc: &KVCluster, ctx: &Context, now_ms: i64) -> Result<Observed, Error> {
    let ns = resources::namespace(kvc);
    let cluster = resources::cluster_name(kvc);
    let selector = resources::selector_string(kvc);
    let lp = ListParams::default().labels(&selector);
    let sts_api: Api<StatefulSet> = Api::namespaced(ctx.client.clone(), &ns);
    let pod_api: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
    let pvc_api: Api<PersistentVolumeClaim> = Api::namespaced(ctx.client.clone(), &ns);
    let cm_api: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &ns);
    let statefulsets = sts_api.list(&lp).await.ctx("list", format!("statefulsets {selector}"))?.items;
    let pods = pod_api.list(&lp).await.ctx("list", format!("pods {selector}"))?.items;
    let pvcs = pvc_api.list(&lp).await.ctx("list", format!("persistentvolumeclaims {selector}"))?.items;
    let replacing = cm_api
        .get_opt(&resources::replace_map_name(kvc))
        .await
        .ctx("get", resources::replace_map_name(kvc))?
        .and_then(|cm| cm.data)
        .unwrap_or_default();
    let volumes = pv_hosts_alive(ctx, &pvcs).await?;

    let mut racks = BTreeMap::new();
    for rack in &kvc.spec.racks {
        let sts_name = resources::statefulset_name(kvc, &rack.name);
        let sts = statefulsets.iter().find(|s| s.metadata.name.as_deref() == Some(sts_name.as_str()));
        let found = Found { pods: &pods, pvcs: &pvcs, volumes: &volumes };
        racks.insert(rack.name.clone(), observe_rack(&rack.name, &sts_name, sts, found));
    }

    let all_pods: Vec<PodObserved> = racks.values().flat_map(|r| r.pods.iter().cloned()).collect();
    // Every running pod is asked for its own view, ready or not: while the
    // ring has fewer NORMAL nodes than RF no node is ready (a lone node of RF 3
    // cannot serve QUORUM), and the first pod's view is what lets the next start.
    let views = membership_views(ctx, &all_pods).await;
    let answer = if all_pods.iter().any(|p| p.ready) {
        match ctx.admin.cluster_status(&ctx.admin_endpoint(kvc)).await {
            Ok(nodes) => Some(nodes),
            Err(e) => {
                tracing::warn!(cluster = %cluster, error = %e, "cluster status unavailable");
                None
            }
        }
    } else {
        views.iter().find_map(|v| v.nodes.clone())
    };
    let nodes = answer.map(|mut nodes| {
        let previous = kvc.status.as_ref().map(|s| s.members.as_slice()).unwrap_or_default();
        map_nodes(&mut nodes, &all_pods, previous, now_ms);
        nodes
    });
    let previous_phase = kvc.status.as_ref().map(|s| s.phase).unwrap_or_default();
    Ok(Observed { cluster, racks, nodes, replacing, now_ms, views, previous_phase })
}

/// Every running pod's own view of the membership, asked at the pod's own
/// address (not through the client Service, which picks one node).
async fn membership_views(ctx: &Context, pods: &[PodObserved]) -> Vec<MembershipView> {
    let asks = pods.iter().filter_map(|p| Some((p.name.clone(), p.ip.clone()?))).map(|(pod, ip)| async move {
        let endpoint = resources::node_endpoint(Some(&ip), "");
        let nodes = match ctx.admin.cluster_status(&endpoint).await {
            Ok(nodes) => Some(nodes),
            Err(e) => {
                tracing::warn!(%pod, error = %e, "cannot ask a pod for its view of the membership");
                None
            }
        };
        MembershipView { pod, nodes }
    });
    futures::future::join_all(asks).await
}

/// Names of existing Kubernetes Nodes, and the PV bound to each PVC.
async fn pv_hosts_alive(
    ctx: &Context,
    pvcs: &[PersistentVolumeClaim],
) -> Result<(BTreeSet<String>, BTreeMap<String, PersistentVolume>), Error> {
    let bound: Vec<(String, String)> = pvcs
        .iter()
        .filter_map(|c| {
            Some((c.metadata.name.clone()?, c.spec.as_ref()?.volume_name.clone().filter(|v| !v.is_empty())?))
        })
        .collect();
    if bound.is_empty() {
        return Ok(Default::default());
    }
    let pv_api: Api<PersistentVolume> = Api::all(ctx.client.clone());
    let node_api: Api<Node> = Api::all(ctx.client.clone());
    let names = node_api
        .list_metadata(&ListParams::default())
        .await
        .ctx("list", "nodes")?
        .items
        .into_iter()
        .filter_map(|n| n.metadata.name)
        .collect();
    let mut pvs = BTreeMap::new();
    for (claim, volume) in bound {
        if let Some(pv) = pv_api.get_opt(&volume).await.ctx("get", format!("persistentvolume {volume}"))? {
            pvs.insert(claim, pv);
        }
    }
    Ok((names, pvs))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn pvc(phase: &str, volume: Option<&str>) -> PersistentVolumeClaim {
        serde_json::from_value(
            json!({"metadata": {"name": "data-kv-a-0"}, "spec": {"volumeName": volume}, "status": {"phase": phase}}),
        )
        .expect("pvc")
    }

    fn local_pv(host: &str) -> PersistentVolume {
        serde_json::from_value(
            json!({"metadata": {"name": "pv-1"}, "spec": {"nodeAffinity": {"required": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In", "values": [host]}]}]}}}}),
        )
        .expect("pv")
    }

    #[test]
    fn a_local_volume_is_lost_only_when_it_or_its_machine_is_gone() {
        let machines: BTreeSet<String> = ["worker-1".to_string()].into();
        assert!(volume_lost(None, None, &machines), "PVC missing");
        assert!(volume_lost(Some(&pvc("Lost", Some("pv-1"))), None, &machines), "PVC Lost");
        assert!(!volume_lost(Some(&pvc("Pending", None)), None, &machines), "waiting for the provisioner");
        assert!(volume_lost(Some(&pvc("Bound", Some("pv-1"))), None, &machines), "PV deleted");
        assert!(
            volume_lost(Some(&pvc("Bound", Some("pv-1"))), Some(&local_pv("worker-9")), &machines),
            "machine deleted"
        );
        assert!(!volume_lost(Some(&pvc("Bound", Some("pv-1"))), Some(&local_pv("worker-1")), &machines));
        let network: PersistentVolume =
            serde_json::from_value(json!({"metadata": {"name": "pv-1"}, "spec": {}})).expect("pv");
        assert!(!volume_lost(Some(&pvc("Bound", Some("pv-1"))), Some(&network), &machines), "not pinned to a machine");
    }
}
