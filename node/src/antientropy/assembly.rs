//! [`AntiEntropyNode`]: the anti-entropy parts of one node, put together
//! from its configuration (used by `assembly::NodeCore`).

use std::sync::Arc;
use std::time::Duration;

use crate::clock::Clock;
use crate::config::AntiEntropyConfig;
use crate::replication::{Coordinator, NodeParts};

use super::{LocalReplica, PeerConnector, RepairWorker, Repairer, RepairerParts, SyncHistory, Throttle, TreeStore};

/// The anti-entropy parts of a node.
#[derive(Debug, Clone)]
pub struct AntiEntropyNode {
    /// This node's replica side (served over gRPC).
    pub local: Arc<LocalReplica>,
    /// "Last full sync" per range; the purge's repair history.
    pub history: Arc<SyncHistory>,
    /// Runs repairs (Admin `Repair`, the worker).
    pub repairer: Arc<Repairer>,
    /// The configuration.
    pub config: AntiEntropyConfig,
}

impl AntiEntropyNode {
    /// Assembles the parts, reaching peers through `connector`
    /// ([`GrpcConnector`](super::GrpcConnector) in a node, the simulated
    /// network in tests). `node.storage` must be the
    /// [`TrackedStorage`](super::TrackedStorage) feeding `trees`, and the
    /// coordinator must write through it; `node.view` gives the ring and liveness.
    pub fn new(
        config: &AntiEntropyConfig,
        trees: Arc<TreeStore>,
        node: &NodeParts,
        coordinator: &Coordinator,
        clock: Arc<dyn Clock>,
        hint_window: Duration,
        connector: Arc<dyn PeerConnector>,
    ) -> Self {
        let throttle = Throttle::mb_per_s(config.throughput_mb_per_s);
        let (storage, view) = (Arc::clone(&node.storage), &node.view);
        let local =
            Arc::new(LocalReplica::new(trees, Arc::clone(&storage), Arc::new(coordinator.clone()), clock, throttle));
        let history = Arc::new(SyncHistory::new(storage, Arc::clone(view), coordinator.clone(), hint_window));
        let repairer = Arc::new(Repairer::new(RepairerParts {
            local: Arc::clone(&local),
            coordinator: coordinator.clone(),
            view: Arc::clone(view),
            connector,
            history: Arc::clone(&history),
            tree_max_age: Duration::from_secs(config.tree_max_age_secs),
            exchange_throttle: throttle,
        }));
        Self { local, history, repairer, config: config.clone() }
    }

    /// The scheduled repair, when enabled.
    pub fn worker(&self) -> Option<RepairWorker> {
        self.config
            .enabled
            .then(|| RepairWorker::new(Arc::clone(&self.repairer), Duration::from_secs(self.config.interval_secs)))
    }
}
