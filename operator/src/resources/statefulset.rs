//! One StatefulSet per rack (cass-operator's pattern) on local-SSD PVCs.
//!
//! Invariants: `podManagementPolicy: Parallel` and `updateStrategy: OnDelete`
//! because the operator, not the StatefulSet controller, decides which pod
//! starts, stops or restarts, one at a time; the PVC retention policy is
//! Retain because the operator applies `pvcRetention` itself, only after the
//! node has LEFT. A node listens on its pod IP (it advertises the address it
//! binds) and starts with `--replace <host-id>` when the replace map names
//! its pod.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{
    StatefulSet, StatefulSetPersistentVolumeClaimRetentionPolicy, StatefulSetSpec, StatefulSetUpdateStrategy,
};
use k8s_openapi::api::core::v1::{
    Affinity, Capabilities, ConfigMapVolumeSource, Container, ContainerPort, EnvVar, EnvVarSource, ExecAction,
    HTTPGetAction, Lifecycle, LifecycleHandler, NodeAffinity, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm,
    ObjectFieldSelector, PersistentVolumeClaim, PersistentVolumeClaimSpec, PodAffinityTerm, PodAntiAffinity,
    PodSecurityContext, PodSpec, PodTemplateSpec, Probe, SeccompProfile, SecretVolumeSource, SecurityContext,
    TopologySpreadConstraint, Volume, VolumeMount, VolumeResourceRequirements, WeightedPodAffinityTerm,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::*;
use crate::crd::RackSpec;

/// Annotation carrying the hash of `node.toml`: a config change rolls the pods.
pub const CONFIG_HASH_ANNOTATION: &str = "ringkv.io/config-hash";
/// Annotation on the StatefulSet: the hash of the object the operator last
/// applied (without this annotation). An apply is skipped when it matches:
/// a server-side apply that changes nothing still rewrites a StatefulSet on
/// some servers (v1.20 bumps managedFields' time, so resourceVersion, and the
/// owned-object watch then triggers another reconcile).
pub const APPLIED_HASH_ANNOTATION: &str = "ringkv.io/applied-hash";
/// Seconds a node gets between SIGTERM and SIGKILL (drain, flush, fsync).
pub const TERMINATION_GRACE_SECONDS: i64 = 120;
/// Where the replace map is mounted.
const REPLACE_DIR: &str = "/etc/ringkv/replace";

/// The node's start line. `--replace` is added when the replace map has an
/// entry for this pod (the operator writes it before recreating the pod).
/// The pod's command. `--advertise-name` is the pod's stable DNS name, which
/// travels in gossip: peers look it up again when the pod comes back on a
/// new IP.
fn start_script(kvc: &KVCluster) -> String {
    let name = super::pod_dns(kvc, "$POD_NAME");
    format!(
        "r={REPLACE_DIR}/\"$POD_NAME\"; set --; if [ -s \"$r\" ]; then set -- --replace \"$(cat \"$r\")\"; fi; \
         exec kvnode serve --config /etc/ringkv/node.toml --data-dir {DATA_DIR} \
         --grpc-addr \"$POD_IP:{GRPC_PORT}\" --http-addr \"$POD_IP:{HTTP_PORT}\" \
         --advertise-name \"{name}:{GRPC_PORT}\" \
         --zone \"$RINGKV_ZONE\" --rack \"$RINGKV_RACK\" \"$@\""
    )
}

fn field_env(name: &str, path: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector { field_path: path.into(), ..ObjectFieldSelector::default() }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    }
}

fn value_env(name: &str, value: &str) -> EnvVar {
    EnvVar { name: name.into(), value: Some(value.into()), ..EnvVar::default() }
}

fn http_probe(path: &str, period: i32, failures: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.into()),
            port: IntOrString::String("http".into()),
            ..HTTPGetAction::default()
        }),
        period_seconds: Some(period),
        failure_threshold: Some(failures),
        timeout_seconds: Some(3),
        ..Probe::default()
    }
}

fn mounts(kvc: &KVCluster) -> Vec<VolumeMount> {
    let mount = |name: &str, path: &str, read_only| VolumeMount {
        name: name.into(),
        mount_path: path.into(),
        read_only,
        ..VolumeMount::default()
    };
    let mut mounts = vec![
        mount("data", DATA_DIR, None),
        VolumeMount { sub_path: Some("node.toml".into()), ..mount("config", "/etc/ringkv/node.toml", Some(true)) },
        mount("replace", REPLACE_DIR, Some(true)),
    ];
    if kvc.spec.tls.as_ref().is_some_and(|t| t.enabled) {
        mounts.push(mount("tls", "/etc/ringkv/tls", Some(true)));
    }
    if kvc.spec.auth.as_ref().is_some_and(|a| a.enabled) {
        mounts.push(mount("auth", "/etc/ringkv/auth", Some(true)));
    }
    mounts
}

fn pre_stop_drain() -> Lifecycle {
    // Drain (refuse writes, flush, fsync) before SIGTERM; SIGTERM drains too if this fails.
    let command = format!("kv-operator drain --endpoint \"$POD_IP:{GRPC_PORT}\" || true");
    Lifecycle {
        pre_stop: Some(LifecycleHandler {
            exec: Some(ExecAction { command: Some(vec!["/bin/sh".into(), "-c".into(), command]) }),
            ..LifecycleHandler::default()
        }),
        ..Lifecycle::default()
    }
}

fn container(kvc: &KVCluster, rack: &RackSpec) -> Container {
    Container {
        name: "kvnode".into(),
        image: Some(kvc.spec.image.clone()),
        command: Some(vec!["/bin/sh".into(), "-c".into(), start_script(kvc)]),
        env: Some(vec![
            field_env("POD_IP", "status.podIP"),
            field_env("POD_NAME", "metadata.name"),
            value_env("RINGKV_ZONE", rack.zone.as_deref().unwrap_or("")),
            value_env("RINGKV_RACK", &rack.name),
            value_env("RUST_LOG", "info"),
        ]),
        ports: Some(vec![
            ContainerPort { name: Some("grpc".into()), container_port: GRPC_PORT, ..ContainerPort::default() },
            ContainerPort { name: Some("http".into()), container_port: HTTP_PORT, ..ContainerPort::default() },
        ]),
        // Ready = joined and able to serve its ranges at the default consistency.
        readiness_probe: Some(http_probe("/readyz", 5, 3)),
        // Generous: a node streaming ranges is slow but alive.
        liveness_probe: Some(http_probe("/healthz", 10, 6)),
        lifecycle: Some(pre_stop_drain()),
        resources: kvc.spec.resources.clone(),
        volume_mounts: Some(mounts(kvc)),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            read_only_root_filesystem: Some(true),
            run_as_non_root: Some(true),
            capabilities: Some(Capabilities { drop: Some(vec!["ALL".into()]), ..Capabilities::default() }),
            ..SecurityContext::default()
        }),
        ..Container::default()
    }
}

fn volumes(kvc: &KVCluster) -> Vec<Volume> {
    let config_map = |name: String, optional| Volume {
        name: String::new(),
        config_map: Some(ConfigMapVolumeSource { name, optional, ..ConfigMapVolumeSource::default() }),
        ..Volume::default()
    };
    let secret = |name: &str, secret: String| Volume {
        name: name.into(),
        secret: Some(SecretVolumeSource { secret_name: Some(secret), ..SecretVolumeSource::default() }),
        ..Volume::default()
    };
    let mut v = vec![
        Volume { name: "config".into(), ..config_map(config_map_name(kvc), None) },
        Volume { name: "replace".into(), ..config_map(replace_map_name(kvc), Some(true)) },
    ];
    if let Some(name) = kvc.spec.tls.as_ref().filter(|t| t.enabled).and_then(|t| t.secret_name.clone()) {
        v.push(secret("tls", name));
    }
    if kvc.spec.auth.as_ref().is_some_and(|a| a.enabled) {
        v.push(secret("auth", auth_secret_name(kvc)));
    }
    v
}

fn affinity(kvc: &KVCluster, rack: &RackSpec) -> Affinity {
    let mut node_affinity = rack.node_affinity.clone().unwrap_or_default();
    if let Some(zone) = &rack.zone {
        // Pin the rack to its zone, in every term the user gave (terms are ORed).
        let pin = NodeSelectorRequirement {
            key: "topology.kubernetes.io/zone".into(),
            operator: "In".into(),
            values: Some(vec![zone.clone()]),
        };
        let required =
            node_affinity.required_during_scheduling_ignored_during_execution.get_or_insert_with(NodeSelector::default);
        if required.node_selector_terms.is_empty() {
            required.node_selector_terms.push(NodeSelectorTerm::default());
        }
        for term in &mut required.node_selector_terms {
            term.match_expressions.get_or_insert_with(Vec::new).push(pin.clone());
        }
    }
    Affinity {
        node_affinity: Some(node_affinity).filter(|a: &NodeAffinity| a != &NodeAffinity::default()),
        pod_anti_affinity: Some(PodAntiAffinity {
            // Two nodes of one cluster on one machine share its fate and its disks.
            preferred_during_scheduling_ignored_during_execution: Some(vec![WeightedPodAffinityTerm {
                weight: 100,
                pod_affinity_term: PodAffinityTerm {
                    label_selector: Some(LabelSelector {
                        match_labels: Some(selector_labels(kvc)),
                        ..LabelSelector::default()
                    }),
                    topology_key: "kubernetes.io/hostname".into(),
                    ..PodAffinityTerm::default()
                },
            }]),
            ..PodAntiAffinity::default()
        }),
        ..Affinity::default()
    }
}

fn volume_claim(kvc: &KVCluster) -> PersistentVolumeClaim {
    PersistentVolumeClaim {
        metadata: ObjectMeta { name: Some("data".into()), labels: Some(labels(kvc)), ..ObjectMeta::default() },
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteOnce".into()]),
            storage_class_name: kvc.spec.storage.storage_class_name.clone(),
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([("storage".to_string(), Quantity(kvc.spec.storage.size.clone()))])),
                ..VolumeResourceRequirements::default()
            }),
            ..PersistentVolumeClaimSpec::default()
        }),
        ..PersistentVolumeClaim::default()
    }
}

/// The StatefulSet of `rack` with `replicas` pods; `config_hash` is the hash of `node.toml`.
pub fn build(kvc: &KVCluster, rack: &RackSpec, replicas: i32, config_hash: u64) -> StatefulSet {
    let mut pod_labels = selector_labels(kvc);
    pod_labels.insert(RACK_LABEL.into(), rack.name.clone());
    let mut meta_labels = labels(kvc);
    meta_labels.insert(RACK_LABEL.into(), rack.name.clone());
    let mut meta = owned_meta(kvc, statefulset_name(kvc, &rack.name));
    meta.labels = Some(meta_labels);
    StatefulSet {
        metadata: meta,
        spec: Some(StatefulSetSpec {
            replicas: Some(replicas),
            service_name: Some(peers_service_name(kvc)),
            pod_management_policy: Some("Parallel".into()),
            update_strategy: Some(StatefulSetUpdateStrategy { type_: Some("OnDelete".into()), rolling_update: None }),
            persistent_volume_claim_retention_policy: Some(StatefulSetPersistentVolumeClaimRetentionPolicy {
                when_deleted: Some("Retain".into()),
                when_scaled: Some("Retain".into()),
            }),
            selector: LabelSelector { match_labels: Some(pod_labels.clone()), ..LabelSelector::default() },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(pod_labels.clone()),
                    annotations: Some(BTreeMap::from([
                        (CONFIG_HASH_ANNOTATION.to_string(), format!("{config_hash:016x}")),
                        ("prometheus.io/scrape".to_string(), "true".to_string()),
                        ("prometheus.io/port".to_string(), HTTP_PORT.to_string()),
                    ])),
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec {
                    containers: vec![container(kvc, rack)],
                    volumes: Some(volumes(kvc)),
                    affinity: Some(affinity(kvc, rack)),
                    tolerations: rack.tolerations.clone(),
                    topology_spread_constraints: Some(vec![TopologySpreadConstraint {
                        max_skew: 1,
                        topology_key: "kubernetes.io/hostname".into(),
                        when_unsatisfiable: "ScheduleAnyway".into(),
                        label_selector: Some(LabelSelector {
                            match_labels: Some(pod_labels),
                            ..LabelSelector::default()
                        }),
                        ..TopologySpreadConstraint::default()
                    }]),
                    termination_grace_period_seconds: Some(TERMINATION_GRACE_SECONDS),
                    security_context: Some(PodSecurityContext {
                        run_as_non_root: Some(true),
                        run_as_user: Some(10001),
                        run_as_group: Some(10001),
                        fs_group: Some(10001),
                        seccomp_profile: Some(SeccompProfile {
                            type_: "RuntimeDefault".into(),
                            ..SeccompProfile::default()
                        }),
                        ..PodSecurityContext::default()
                    }),
                    ..PodSpec::default()
                }),
            },
            volume_claim_templates: Some(vec![volume_claim(kvc)]),
            ..StatefulSetSpec::default()
        }),
        ..StatefulSet::default()
    }
}
