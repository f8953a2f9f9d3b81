//! Pure builders of the Kubernetes objects a `KVCluster` owns:
//! `fn build(&KVCluster, ...) -> Object`, no I/O, no clock.
//!
//! Invariants: every object carries the cluster's labels and an owner
//! reference to the `KVCluster` (so deleting the cluster collects them),
//! names are derived here and only here, and the same input always gives
//! the same object (server-side apply then changes nothing).

pub mod configmap;
pub mod pdb;
pub mod secret;
pub mod service;
pub mod statefulset;

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::Resource;
use kube::api::ObjectMeta;

use crate::crd::KVCluster;

/// gRPC port of every node (client, admin and node-to-node APIs).
pub const GRPC_PORT: i32 = 7100;
/// HTTP port of every node (`/api/v1`, `/metrics`, `/healthz`, `/readyz`).
pub const HTTP_PORT: i32 = 7180;
/// Label carrying the rack of a node pod.
pub const RACK_LABEL: &str = "ringkv.io/rack";
/// Label naming the cluster an object belongs to.
pub const INSTANCE_LABEL: &str = "app.kubernetes.io/instance";
/// Where each node keeps its data (the PVC mount).
pub const DATA_DIR: &str = "/var/lib/ringkv";

/// The cluster's name.
pub fn cluster_name(kvc: &KVCluster) -> String {
    kvc.metadata.name.clone().unwrap_or_default()
}

/// The cluster's namespace.
pub fn namespace(kvc: &KVCluster) -> String {
    kvc.metadata.namespace.clone().unwrap_or_else(|| "default".into())
}

/// Name of the StatefulSet of `rack`.
pub fn statefulset_name(kvc: &KVCluster, rack: &str) -> String {
    format!("{}-{rack}", cluster_name(kvc))
}

/// Name of pod `ordinal` of `rack`.
pub fn pod_name(kvc: &KVCluster, rack: &str, ordinal: i32) -> String {
    format!("{}-{ordinal}", statefulset_name(kvc, rack))
}

/// Name of the data PVC of pod `pod` (StatefulSet naming: `<template>-<pod>`).
pub fn pvc_name(pod: &str) -> String {
    format!("data-{pod}")
}

/// Name of the headless Service giving every node a stable DNS name.
pub fn peers_service_name(kvc: &KVCluster) -> String {
    format!("{}-peers", cluster_name(kvc))
}

/// Name of the client Service.
pub fn client_service_name(kvc: &KVCluster) -> String {
    format!("{}-client", cluster_name(kvc))
}

/// Name of the ConfigMap holding `node.toml`.
pub fn config_map_name(kvc: &KVCluster) -> String {
    format!("{}-config", cluster_name(kvc))
}

/// Name of the ConfigMap mapping a pod being replaced to the host id it replaces.
pub fn replace_map_name(kvc: &KVCluster) -> String {
    format!("{}-replace", cluster_name(kvc))
}

/// Name of the Secret with the auth token the operator creates.
pub fn auth_secret_name(kvc: &KVCluster) -> String {
    kvc.spec.auth.as_ref().and_then(|a| a.secret_name.clone()).unwrap_or_else(|| format!("{}-auth", cluster_name(kvc)))
}

/// Stable DNS name of a node pod.
pub fn pod_dns(kvc: &KVCluster, pod: &str) -> String {
    format!("{pod}.{}.{}.svc.cluster.local", peers_service_name(kvc), namespace(kvc))
}

/// The gRPC endpoint any node answers on (the client Service), for the Admin API.
pub fn admin_endpoint(kvc: &KVCluster) -> String {
    format!("http://{}.{}.svc.cluster.local:{GRPC_PORT}", client_service_name(kvc), namespace(kvc))
}

/// The gRPC endpoint of one node itself, for the calls a node accepts only
/// about itself (a node refuses to decommission another host): its pod's IP
/// and [`GRPC_PORT`], else the address the node advertises. The one place
/// this endpoint is computed.
pub fn node_endpoint(pod_ip: Option<&str>, grpc_addr: &str) -> String {
    match pod_ip.filter(|ip| !ip.is_empty()) {
        Some(ip) if ip.contains(':') => format!("http://[{ip}]:{GRPC_PORT}"),
        Some(ip) => format!("http://{ip}:{GRPC_PORT}"),
        None => format!("http://{grpc_addr}"),
    }
}

/// Labels every node pod of every cluster carries (the operator's pod watch selects on them).
pub fn node_pod_labels() -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".to_string(), "ringkv".to_string()),
        ("app.kubernetes.io/component".to_string(), "node".to_string()),
    ])
}

/// Labels selecting every node pod of the cluster.
pub fn selector_labels(kvc: &KVCluster) -> BTreeMap<String, String> {
    let mut l = node_pod_labels();
    l.insert(INSTANCE_LABEL.to_string(), cluster_name(kvc));
    l
}

/// The selector as a string (`status.selector`, for the scale subresource).
pub fn selector_string(kvc: &KVCluster) -> String {
    selector_labels(kvc).iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",")
}

/// Labels of every object the cluster owns.
pub fn labels(kvc: &KVCluster) -> BTreeMap<String, String> {
    let mut l = selector_labels(kvc);
    l.insert("app.kubernetes.io/managed-by".into(), "kv-operator".into());
    l
}

/// Metadata of an owned object: name, namespace, labels, owner reference.
pub fn owned_meta(kvc: &KVCluster, name: String) -> ObjectMeta {
    ObjectMeta {
        name: Some(name),
        namespace: Some(namespace(kvc)),
        labels: Some(labels(kvc)),
        owner_references: owner_ref(kvc).map(|o| vec![o]),
        ..ObjectMeta::default()
    }
}

fn owner_ref(kvc: &KVCluster) -> Option<OwnerReference> {
    kvc.controller_owner_ref(&())
}

/// Bytes of a Kubernetes quantity (`10Gi`, `500M`, `1e9`, `1073741824`); None when malformed.
pub fn parse_quantity_bytes(q: &str) -> Option<u64> {
    let q = q.trim();
    let split = q.find(|c: char| c.is_ascii_alphabetic() && c != 'e').unwrap_or(q.len());
    let (num, suffix) = q.split_at(split);
    let num: f64 = num.parse().ok()?;
    let mult: f64 = match suffix {
        "" => 1.0,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "Ki" => 1024.0,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        _ => return None,
    };
    let bytes = num * mult;
    (bytes.is_finite() && bytes >= 1.0).then_some(bytes as u64)
}

/// FNV-1a, 64 bits: a hash that is stable across builds (for config-change annotations).
pub fn stable_hash(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
}

#[cfg(test)]
mod tests;

/// Name of pod `ordinal` of `rack` in cluster `cluster` (for the planner, which has no `KVCluster`).
pub fn pod_name_in(cluster: &str, rack: &str, ordinal: i32) -> String {
    format!("{cluster}-{rack}-{ordinal}")
}
