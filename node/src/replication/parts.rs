//! What a [`Coordinator`](super::Coordinator) is built from: input limits,
//! replication settings, and the node's shared parts ([`NodeParts`]) that the
//! node's assembly hands to each component at construction.

use std::sync::Arc;
use std::time::Duration;

use crate::clock::Clock;
use crate::config::{Config, ServerConfig};
use crate::hints::HintStore;
use crate::membership::{ClusterView, Member};
use crate::storage::Storage;
use crate::transport::{Transport, UnconnectedTransport};
use crate::version::NodeId;

use super::{Keyspaces, ReplicationMetrics};

/// Limits on client input, from `[server]`.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest key in bytes.
    pub max_key_bytes: usize,
    /// Largest value in bytes.
    pub max_value_bytes: usize,
    /// Largest TTL in seconds.
    pub max_ttl_seconds: u64,
    /// Largest batch.
    pub max_batch_keys: usize,
    /// Request deadline.
    pub request_timeout: Duration,
}

impl From<&ServerConfig> for Limits {
    fn from(s: &ServerConfig) -> Self {
        Self {
            max_key_bytes: s.max_key_bytes,
            max_value_bytes: s.max_value_bytes,
            max_ttl_seconds: s.max_ttl_seconds,
            max_batch_keys: s.max_batch_keys,
            request_timeout: Duration::from_millis(s.request_timeout_ms),
        }
    }
}

/// How the coordinator replicates, from `[replication]` and `[hints]`.
#[derive(Debug, Clone, Copy)]
pub struct ClusterSettings {
    /// Deadline of one call to a replica.
    pub replica_timeout: Duration,
    /// Whether acknowledgements of stand-ins (hints) count toward W.
    pub sloppy: bool,
    /// Run storage calls on the calling task instead of the blocking pool
    /// (deterministic simulation with the in-memory engine only).
    pub inline_storage: bool,
    /// Run single-key storage calls on the calling task (`storage.inline_point_ops`).
    pub inline_point_ops: bool,
}

impl ClusterSettings {
    /// Settings from the node configuration.
    pub fn from_config(config: &Config) -> Self {
        Self {
            replica_timeout: Duration::from_millis(config.replication.replica_timeout_ms),
            sloppy: config.replication.sloppy,
            inline_storage: false,
            inline_point_ops: config.storage.inline_point_ops,
        }
    }
}

impl Default for ClusterSettings {
    fn default() -> Self {
        Self { replica_timeout: Duration::from_secs(2), sloppy: false, inline_storage: false, inline_point_ops: false }
    }
}

/// The parts of a node that the coordinator shares with the rest of the
/// node (front ends, topology, anti-entropy, the handoff worker). The node's
/// assembly builds them once and hands each component what it needs at
/// construction; the coordinator hands none of them out. Cheap to clone.
#[derive(Debug, Clone)]
pub struct NodeParts {
    /// Local storage.
    pub storage: Arc<dyn Storage>,
    /// Members, ring, liveness.
    pub view: Arc<ClusterView>,
    /// Calls to peers.
    pub transport: Arc<dyn Transport>,
    /// Hints kept here for replicas that missed writes.
    pub hints: HintStore,
}

impl NodeParts {
    /// The parts of a cluster of one (this node, `node_id`, holds every key):
    /// a view of itself, no peers, hints kept for three hours.
    pub fn solo(node_id: NodeId, storage: Arc<dyn Storage>, clock: Arc<dyn Clock>) -> Self {
        let local = Member {
            host_id: format!("{node_id:016x}"),
            node_id,
            grpc_addr: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
            http_addr: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
            zone: String::new(),
            rack: String::new(),
            tokens: vec![0],
            generation: 1,
            status: crate::membership::MemberStatus::Normal,
        };
        let window = Duration::from_secs(3 * 3600);
        let hints = HintStore::new(Arc::clone(&storage), clock, window, ReplicationMetrics::unregistered());
        Self { storage, view: Arc::new(ClusterView::new(local)), transport: Arc::new(UnconnectedTransport), hints }
    }
}

/// The parts a clustered coordinator is made of.
#[derive(Debug)]
pub struct CoordinatorParts {
    /// This node's compact id (dots).
    pub node_id: NodeId,
    /// Local storage.
    pub storage: Arc<dyn Storage>,
    /// Keyspaces.
    pub keyspaces: Keyspaces,
    /// Wall clock.
    pub clock: Arc<dyn Clock>,
    /// Input limits.
    pub limits: Limits,
    /// Members, ring, liveness.
    pub view: Arc<ClusterView>,
    /// Calls to peers.
    pub transport: Arc<dyn Transport>,
    /// Replication settings.
    pub settings: ClusterSettings,
    /// Metrics.
    pub metrics: ReplicationMetrics,
    /// Hints kept here for replicas that missed writes (built by the
    /// node's assembly, which also hands it to the handoff worker).
    pub hints: HintStore,
}
