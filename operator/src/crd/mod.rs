//! The `KVCluster` custom resource (`ringkv.io/v1alpha1`): spec, status and
//! the checks the API server cannot make.
//!
//! Invariants: the schema carries CEL rules for what the API server can check
//! (RF ≥ 1, nodes ≥ RF, minNodes ≤ maxNodes, ...); [`KVClusterSpec::problems`]
//! repeats them in Rust, because a cluster without the CRD's CEL support (or
//! an object written before a rule existed) must still get a clear status
//! condition instead of a half-built cluster. This module does no I/O.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{NodeAffinity, ResourceRequirements, Toleration};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

/// Desired state of a RingKV cluster.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[kube(
    group = "ringkv.io",
    version = "v1alpha1",
    kind = "KVCluster",
    plural = "kvclusters",
    singular = "kvcluster",
    shortname = "kvc",
    namespaced,
    status = "KVClusterStatus",
    derive = "PartialEq",
    doc = "A RingKV cluster: storage nodes in one StatefulSet per rack, managed by kv-operator",
    scale(
        spec_replicas_path = ".spec.nodes",
        status_replicas_path = ".status.nodes",
        label_selector_path = ".status.selector"
    ),
    printcolumn = r#"{"name":"Nodes","type":"integer","jsonPath":".spec.nodes","description":"Desired nodes"}"#,
    printcolumn = r#"{"name":"Ready","type":"integer","jsonPath":".status.readyNodes","description":"Nodes ready"}"#,
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase","description":"What the operator is doing"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[x_kube(validation = Rule::new("self.nodes >= self.replicationFactor").message("nodes must be at least replicationFactor"))]
#[x_kube(validation = Rule::new("!has(self.autoscaling) || self.autoscaling.minNodes <= self.autoscaling.maxNodes").message("autoscaling.minNodes must not exceed autoscaling.maxNodes"))]
#[x_kube(validation = Rule::new("!has(self.autoscaling) || self.autoscaling.minNodes >= self.replicationFactor").message("autoscaling.minNodes must be at least replicationFactor"))]
#[x_kube(validation = Rule::new("!has(self.tls) || !self.tls.enabled || has(self.tls.secretName)").message("tls.enabled needs tls.secretName (a kubernetes.io/tls Secret, e.g. from cert-manager)"))]
#[serde(rename_all = "camelCase")]
pub struct KVClusterSpec {
    /// Number of storage nodes (the scale subresource's replicas).
    #[x_kube(validation = Rule::new("self >= 1").message("nodes must be at least 1"))]
    pub nodes: i32,
    /// Racks (failure domains); one StatefulSet each. Nodes are spread evenly.
    #[serde(default = "default_racks")]
    #[x_kube(validation = Rule::new("size(self) >= 1").message("at least one rack is needed"))]
    #[x_kube(validation = Rule::new("self.all(r, self.exists_one(o, o.name == r.name))").message("rack names must be unique"))]
    pub racks: Vec<RackSpec>,
    /// Replicas per key (N).
    #[serde(default = "default_rf")]
    #[x_kube(validation = Rule::new("self >= 1").message("replicationFactor must be at least 1"))]
    pub replication_factor: i32,
    /// Tokens each node takes on the ring.
    #[serde(default = "default_vnodes")]
    #[x_kube(validation = Rule::new("self >= 1 && self <= 4096").message("vnodes must be within 1..4096"))]
    pub vnodes: i32,
    /// Default consistency levels.
    #[serde(default)]
    pub consistency: ConsistencySpec,
    /// How the default keyspace resolves concurrent writes.
    #[serde(default)]
    pub conflict_mode: ConflictModeSpec,
    /// Per-node persistent volume (local SSD).
    #[serde(default)]
    pub storage: StorageSpec,
    /// CPU and memory of each node container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// Container image holding `kvnode`.
    #[serde(default = "default_image")]
    pub image: String,
    /// Operator-driven autoscaling; absent means the node count only follows `nodes`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoscaling: Option<AutoscalingSpec>,
    /// TLS for clients and between nodes. Not served by kvnode yet: the
    /// operator refuses `enabled: true` (condition Invalid).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsSpec>,
    /// Bearer-token authentication. Not checked by kvnode yet: the operator
    /// refuses `enabled: true` (condition Invalid).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<AuthSpec>,
    /// What happens to a node's PVC when the node is removed by scale-down or the cluster is deleted.
    #[serde(default)]
    pub pvc_retention: PvcRetention,
    /// Automatic replacement of dead nodes: when a node's volume is gone; after downtime only with onDownTime.
    #[serde(default)]
    pub replacement: ReplacementSpec,
}

fn default_racks() -> Vec<RackSpec> {
    vec![RackSpec { name: "default".into(), zone: None, node_affinity: None, tolerations: None }]
}
fn default_rf() -> i32 {
    3
}
fn default_vnodes() -> i32 {
    64
}
/// The image the chart publishes; clusters should pin their own.
pub fn default_image() -> String {
    "ghcr.io/ringkv/ringkv:0.1.0".into()
}

/// One rack: a failure domain with its own StatefulSet.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct RackSpec {
    /// Rack name (a DNS label: it is part of the StatefulSet name).
    #[x_kube(validation = Rule::new("self.matches('^[a-z0-9]([-a-z0-9]{0,14}[a-z0-9])?$')").message("rack names are DNS labels of at most 16 characters"))]
    pub name: String,
    /// Zone of this rack (`topology.kubernetes.io/zone`); pods are pinned to it when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
    /// Extra node affinity for this rack's pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_affinity: Option<NodeAffinity>,
    /// Tolerations for this rack's pods (e.g. dedicated local-SSD nodes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerations: Option<Vec<Toleration>>,
}

/// Default consistency levels of the cluster.
#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq, KubeSchema)]
pub struct ConsistencySpec {
    /// Default read consistency.
    #[serde(default)]
    pub read: ConsistencyLevelSpec,
    /// Default write consistency.
    #[serde(default)]
    pub write: ConsistencyLevelSpec,
}

/// A consistency level, by its Cassandra name.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, Default, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[allow(missing_docs)]
pub enum ConsistencyLevelSpec {
    One,
    Two,
    Three,
    #[default]
    Quorum,
    All,
    LocalQuorum,
    EachQuorum,
    Any,
}

/// How concurrent writes are resolved.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, Default, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ConflictModeSpec {
    /// Keep concurrent writes as siblings for the client to resolve.
    #[default]
    Siblings,
    /// Last write wins; concurrent writes can be lost.
    Lww,
}

/// The per-node volume.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct StorageSpec {
    /// StorageClass of the volume (a local-SSD class such as `local-nvme`); the default class when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class_name: Option<String>,
    /// Size of each node's volume, as a Kubernetes quantity (`100Gi`).
    #[serde(default = "default_size")]
    pub size: String,
}

fn default_size() -> String {
    "10Gi".into()
}

impl Default for StorageSpec {
    fn default() -> Self {
        Self { storage_class_name: None, size: default_size() }
    }
}

/// Targets of the operator's autoscaler.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct AutoscalingSpec {
    /// Fewest nodes (never below replicationFactor).
    pub min_nodes: i32,
    /// Most nodes.
    pub max_nodes: i32,
    /// Client requests per second one node should serve; absent means not a target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self > 0.0").message("targetOpsPerNode must be positive"))]
    pub target_ops_per_node: Option<f64>,
    /// Fraction of each node's volume that should be used, in (0, 1]; absent means not a target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self > 0.0 && self <= 1.0").message("targetDiskUtilisation must be in (0, 1]"))]
    pub target_disk_utilisation: Option<f64>,
    /// A recommendation must hold for this long before it is acted on, in seconds.
    #[serde(default = "default_window")]
    pub stabilisation_window_seconds: i32,
}

fn default_window() -> i32 {
    300
}

/// TLS settings.
#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct TlsSpec {
    /// Whether TLS is on.
    #[serde(default)]
    pub enabled: bool,
    /// A `kubernetes.io/tls` Secret (`tls.crt`, `tls.key`, `ca.crt`), e.g. issued by cert-manager.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_name: Option<String>,
}

/// Authentication settings.
#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuthSpec {
    /// Whether clients must present a bearer token.
    #[serde(default)]
    pub enabled: bool,
    /// Secret with key `token`; when absent the operator creates `<cluster>-auth` with a random token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_name: Option<String>,
}

/// Fate of a removed node's PVC.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, Default, PartialEq, Eq, schemars::JsonSchema)]
pub enum PvcRetention {
    /// Delete the PVC once the node has left (its data lives on other replicas).
    Delete,
    /// Keep the PVC (and its volume) for the administrator.
    #[default]
    Retain,
}

/// Replacement of dead nodes. A node is replaced automatically only on proof
/// that its volume is gone (PVC lost, PV or machine deleted); downtime alone
/// is no proof (a node down for a kernel upgrade or a zone outage comes back
/// with its data), so replacing a node that is merely DOWN is opt-in.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReplacementSpec {
    /// Whether the operator replaces dead nodes by itself.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Opt-in: also replace a node that has been DOWN this long; absent means never by downtime alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_down_time: Option<DownTimeReplacement>,
    /// Deprecated and ignored (it used to replace a node DOWN this long by
    /// default); set onDownTime.afterSeconds to opt in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub down_timeout_seconds: Option<i32>,
}

/// Replacement of a node that stays DOWN: refused while any other node is not
/// NORMAL and ALIVE, or while a range would lack a quorum.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct DownTimeReplacement {
    /// A node DOWN for this long is replaced (its PVC deleted, a new node streams its ranges), in seconds.
    #[x_kube(validation = Rule::new("self >= 60").message("onDownTime.afterSeconds must be at least 60"))]
    pub after_seconds: i32,
}

fn yes() -> bool {
    true
}

impl Default for ReplacementSpec {
    fn default() -> Self {
        Self { enabled: true, on_down_time: None, down_timeout_seconds: None }
    }
}

/// What the operator observed and is doing.
#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KVClusterStatus {
    /// Summary of what the operator is doing.
    #[serde(default)]
    pub phase: Phase,
    /// Node pods that exist (the scale subresource's status replicas).
    #[serde(default)]
    pub nodes: i32,
    /// Nodes that are NORMAL, alive and ready.
    #[serde(default)]
    pub ready_nodes: i32,
    /// Label selector of the node pods (for the scale subresource and HPA).
    #[serde(default)]
    pub selector: String,
    /// The generation of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Ready, Progressing, Degraded (and Invalid when the spec is refused).
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// Every node the cluster reports, mapped to its pod.
    #[serde(default)]
    pub members: Vec<MemberStatus>,
    /// Oldest "last full repair" over all nodes (RFC 3339), when every node reported one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_repair: Option<String>,
    /// The step the operator took last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_step: Option<String>,
    /// Memory of the autoscaler (samples and recommendations within the window).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoscaler: Option<AutoscalerStatus>,
}

/// Phase of the cluster.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, Default, PartialEq, Eq, schemars::JsonSchema)]
#[allow(missing_docs)]
pub enum Phase {
    #[default]
    Pending,
    Creating,
    Running,
    ScalingUp,
    ScalingDown,
    Replacing,
    Upgrading,
    Degraded,
    Invalid,
    Deleting,
}

/// One node as the cluster reports it.
#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MemberStatus {
    /// The pod running it, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
    /// Host id (stable identity on disk).
    pub host_id: String,
    /// JOINING, NORMAL, LEAVING, LEFT or REPLACING.
    pub state: String,
    /// ALIVE, SUSPECT or DOWN.
    pub liveness: String,
    /// Share of the token space it replicates (0..1).
    #[serde(default)]
    pub ownership: f64,
    /// Bytes stored.
    #[serde(default)]
    pub load_bytes: u64,
    /// When the operator first saw it DOWN (unix ms); cleared when it is alive again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub down_since_ms: Option<i64>,
}

/// The autoscaler's memory between reconciles.
#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AutoscalerStatus {
    /// Last scrape: unix ms and the request counter summed over every pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sample: Option<CounterSample>,
    /// Recommendations within the stabilisation window, oldest first.
    #[serde(default)]
    pub recommendations: Vec<Recommendation>,
}

/// A counter reading.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CounterSample {
    /// Unix ms.
    pub at_ms: i64,
    /// Sum of `ringkv_requests_total` over the pods.
    pub requests_total: f64,
    /// Pods scraped (a different set makes the rate meaningless).
    pub pods: i32,
}

/// One autoscaler recommendation.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Recommendation {
    /// Unix ms.
    pub at_ms: i64,
    /// Nodes recommended.
    pub nodes: i32,
}

/// A reason the spec is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecProblem {
    /// The field, as a JSON path below `spec`.
    pub field: &'static str,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl KVClusterSpec {
    /// Everything wrong with the spec (empty when it is valid). Mirrors the CEL rules.
    pub fn problems(&self) -> Vec<SpecProblem> {
        let mut out = Vec::new();
        let mut bad = |field, message: String| out.push(SpecProblem { field, message });
        if self.replication_factor < 1 {
            bad("replicationFactor", format!("is {}; set it to 1 or more", self.replication_factor));
        }
        if self.nodes < self.replication_factor {
            bad(
                "nodes",
                format!(
                    "is {} but replicationFactor is {}; set nodes ≥ replicationFactor",
                    self.nodes, self.replication_factor
                ),
            );
        }
        if self.racks.is_empty() {
            bad("racks", "is empty; name at least one rack".into());
        }
        let mut seen = BTreeMap::new();
        for r in &self.racks {
            if !valid_rack_name(&r.name) {
                bad("racks[].name", format!("{:?} is not a DNS label of at most 16 characters", r.name));
            }
            if seen.insert(r.name.as_str(), ()).is_some() {
                bad("racks[].name", format!("{:?} appears twice; rack names must be unique", r.name));
            }
        }
        if !(1..=4096).contains(&self.vnodes) {
            bad("vnodes", format!("is {}; use 1..4096", self.vnodes));
        }
        if crate::resources::parse_quantity_bytes(&self.storage.size).is_none() {
            bad("storage.size", format!("{:?} is not a quantity such as 100Gi", self.storage.size));
        }
        if let Some(a) = &self.autoscaling {
            if a.min_nodes > a.max_nodes {
                bad("autoscaling.minNodes", format!("{} exceeds maxNodes {}", a.min_nodes, a.max_nodes));
            }
            if a.min_nodes < self.replication_factor {
                bad(
                    "autoscaling.minNodes",
                    format!("{} is below replicationFactor {}", a.min_nodes, self.replication_factor),
                );
            }
            if a.target_ops_per_node.is_some_and(|t| t <= 0.0) {
                bad("autoscaling.targetOpsPerNode", "must be positive".into());
            }
            if a.target_disk_utilisation.is_some_and(|t| t <= 0.0 || t > 1.0) {
                bad("autoscaling.targetDiskUtilisation", "must be in (0, 1]".into());
            }
        }
        if let Some(d) = self.replacement.on_down_time.as_ref().filter(|d| d.after_seconds < 60) {
            bad("replacement.onDownTime.afterSeconds", format!("is {}; use 60 or more", d.after_seconds));
        }
        if self.tls.as_ref().is_some_and(|t| t.enabled && t.secret_name.is_none()) {
            bad("tls.secretName", "is needed when tls.enabled is true".into());
        }
        // Refused rather than ignored: a cluster without the TLS or auth it
        // was asked for must not look healthy.
        if self.tls.as_ref().is_some_and(|t| t.enabled) {
            bad("tls.enabled", "kvnode does not serve TLS yet; set it to false".into());
        }
        if self.auth.as_ref().is_some_and(|a| a.enabled) {
            bad("auth.enabled", "kvnode does not check tokens yet; set it to false".into());
        }
        out
    }
}

/// True for a DNS label of at most 16 characters (room for `<cluster>-<rack>-<ordinal>`).
pub fn valid_rack_name(name: &str) -> bool {
    let b = name.as_bytes();
    (1..=16).contains(&b.len())
        && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

#[cfg(any(test, feature = "testing"))]
mod fixture;
#[cfg(any(test, feature = "testing"))]
pub use fixture::KVClusterBuilder;

#[cfg(test)]
mod tests;
