//! What the controller observed, in the planner's terms, and the pure
//! helpers that build it (node ↔ pod mapping, DOWN-since tracking).

use std::collections::BTreeMap;
use std::fmt;

use crate::crd::MemberStatus;

/// Lifecycle state of a node, as the cluster reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum NodeState {
    Joining,
    Normal,
    Leaving,
    Left,
    Replacing,
    Unknown,
}

impl NodeState {
    /// JOINING, LEAVING or REPLACING: a topology change is under way.
    pub fn in_transition(self) -> bool {
        matches!(self, Self::Joining | Self::Leaving | Self::Replacing)
    }
}

impl fmt::Display for NodeState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Joining => "JOINING",
            Self::Normal => "NORMAL",
            Self::Leaving => "LEAVING",
            Self::Left => "LEFT",
            Self::Replacing => "REPLACING",
            Self::Unknown => "UNKNOWN",
        })
    }
}

/// Liveness of a node, as the failure detector reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Liveness {
    Alive,
    Suspect,
    Down,
    Unknown,
}

impl fmt::Display for Liveness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Alive => "ALIVE",
            Self::Suspect => "SUSPECT",
            Self::Down => "DOWN",
            Self::Unknown => "UNKNOWN",
        })
    }
}

/// One node from the Admin API's `ClusterStatus`, mapped to its pod.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeObserved {
    /// Host id.
    pub host_id: String,
    /// The pod running it, when known.
    pub pod: Option<String>,
    /// Lifecycle state.
    pub state: NodeState,
    /// Liveness.
    pub liveness: Liveness,
    /// When it was first seen DOWN (unix ms), None while not DOWN.
    pub down_since_ms: Option<i64>,
    /// gRPC address it advertises (`IP:PORT`).
    pub grpc_addr: String,
    /// Share of the token space it replicates.
    pub ownership: f64,
    /// Bytes stored.
    pub load_bytes: u64,
    /// Unix ms of its last full anti-entropy pass.
    pub last_full_repair_ms: Option<i64>,
}

/// One node pod.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PodObserved {
    /// Pod name.
    pub name: String,
    /// StatefulSet ordinal.
    pub ordinal: i32,
    /// Ready condition true.
    pub ready: bool,
    /// `controller-revision-hash` label.
    pub revision: Option<String>,
    /// Pod IP.
    pub ip: Option<String>,
    /// Its local volume is gone: PVC lost or missing, PV missing, or the machine holding it deleted.
    pub volume_lost: bool,
}

/// A data PVC.
#[derive(Debug, Clone, PartialEq)]
pub struct PvcObserved {
    /// PVC name.
    pub name: String,
    /// Ordinal of the pod it belongs to.
    pub ordinal: i32,
}

/// One rack's StatefulSet and what it holds.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RackObserved {
    /// `spec.replicas` of the StatefulSet (0 when it does not exist).
    pub replicas: i32,
    /// `status.updateRevision`: pods on another revision are outdated.
    pub update_revision: Option<String>,
    /// The StatefulSet's `ringkv.io/applied-hash`: the hash of what the operator last applied.
    pub applied_hash: Option<String>,
    /// Its pods.
    pub pods: Vec<PodObserved>,
    /// Its data PVCs.
    pub pvcs: Vec<PvcObserved>,
}

/// Everything the planner looks at.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Observed {
    /// Cluster name (pods are `<cluster>-<rack>-<ordinal>`).
    pub cluster: String,
    /// Racks by name.
    pub racks: BTreeMap<String, RackObserved>,
    /// The nodes' view; None when no node answered the Admin API.
    pub nodes: Option<Vec<NodeObserved>>,
    /// Pods being replaced → host id they take over (the replace map).
    pub replacing: BTreeMap<String, String>,
    /// Now, unix ms.
    pub now_ms: i64,
    /// Each ready pod's own view of the membership (asked at the pod's address).
    pub views: Vec<super::MembershipView>,
    /// The phase the last status reported (an operation in progress keeps its phase).
    pub previous_phase: crate::crd::Phase,
}

impl Observed {
    /// Sum of the StatefulSets' replicas.
    pub fn total_replicas(&self) -> i32 {
        self.racks.values().map(|r| r.replicas).sum()
    }

    /// Pods no member runs, plus members (not LEFT) without a pod; 0 when the
    /// nodes' view is unknown.
    pub fn divergence(&self) -> usize {
        let Some(nodes) = &self.nodes else { return 0 };
        let pods = self.racks.values().flat_map(|r| r.pods.iter());
        let orphan_pods = pods.filter(|p| !nodes.iter().any(|n| n.pod.as_deref() == Some(p.name.as_str()))).count();
        let orphan_nodes = nodes.iter().filter(|n| n.pod.is_none() && n.state != NodeState::Left).count();
        orphan_pods + orphan_nodes
    }

    /// What is unhealthy, in words (for the Degraded condition): nodes that
    /// are not ALIVE or not NORMAL (LEFT ones are gone, not unhealthy), pods
    /// whose volume is gone, pods that are not ready.
    pub fn health_problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        for n in self.nodes.iter().flatten().filter(|n| n.state != NodeState::Left) {
            let at = n.pod.as_deref().map_or_else(|| " (no pod)".to_string(), |p| format!(" (pod {p})"));
            if n.liveness != Liveness::Alive {
                out.push(format!("node {}{at} is {}", n.host_id, n.liveness));
            } else if n.state != NodeState::Normal {
                out.push(format!("node {}{at} is {}", n.host_id, n.state));
            }
        }
        for p in self.racks.values().flat_map(|r| r.pods.iter()) {
            if p.volume_lost {
                out.push(format!("pod {} lost its volume", p.name));
            } else if !p.ready {
                out.push(format!("pod {} is not ready", p.name));
            }
        }
        out
    }

    /// The pod named `name`.
    pub fn pod(&self, name: &str) -> Option<&PodObserved> {
        self.racks.values().flat_map(|r| r.pods.iter()).find(|p| p.name == name)
    }
}

/// Maps nodes to pods: by pod IP (the node advertises the pod IP it binds),
/// else by the mapping the last status recorded, unless that pod now runs
/// another node. Also carries `down_since_ms` over from the last status.
pub fn map_nodes(nodes: &mut [NodeObserved], pods: &[PodObserved], previous: &[MemberStatus], now_ms: i64) {
    let host_of = |addr: &str| addr.rsplit_once(':').map(|(h, _)| h.trim_matches(['[', ']']).to_string());
    for n in nodes.iter_mut() {
        let ip = host_of(&n.grpc_addr);
        n.pod = pods.iter().find(|p| p.ip.is_some() && p.ip == ip).map(|p| p.name.clone());
    }
    let claimed: Vec<String> = nodes.iter().filter_map(|n| n.pod.clone()).collect();
    for n in nodes.iter_mut().filter(|n| n.pod.is_none()) {
        let prev = previous.iter().find(|m| m.host_id == n.host_id).and_then(|m| m.pod.clone());
        n.pod = prev.filter(|p| !claimed.contains(p) && pods.iter().any(|x| &x.name == p));
    }
    for n in nodes.iter_mut() {
        n.down_since_ms = match n.liveness {
            Liveness::Down => {
                Some(previous.iter().find(|m| m.host_id == n.host_id).and_then(|m| m.down_since_ms).unwrap_or(now_ms))
            }
            _ => None,
        };
    }
}
