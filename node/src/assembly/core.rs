//! [`NodeCore`]: every part of a node that does no I/O of its own, built
//! from the [`Config`], an already-open storage, a clock and the network
//! ports. `Node::start` builds one over fjall and gRPC; the simulations
//! build theirs over in-memory disks and the simulated network.
//!
//! Build order is an invariant: the storage is wrapped in the
//! [`TrackedStorage`] that keeps the Merkle trees current before anything
//! (coordinator, hints, anti-entropy) writes through it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use prometheus::Registry;
use tokio_util::sync::CancellationToken;

use crate::antientropy::{AntiEntropyNode, PeerConnector, TrackedStorage, TreeStore};
use crate::clock::Clock;
use crate::config::Config;
use crate::hints::{HandoffWorker, HintStore};
use crate::membership::{
    ClusterView, DetectorConfig, GossipHandle, GossipMetrics, GossipTransport, GossipWorker, Gossiper, Member,
};
use crate::replication::{
    ClusterSettings, Coordinator, CoordinatorParts, Keyspaces, Limits, NodeParts, ReplicationMetrics,
};
use crate::storage::{Storage, SyncPolicy};
use crate::topology::{StreamPeers, StreamProgress, StreamSettings, Topology, TopologySettings};
use crate::transport::Transport;
use crate::worker::{PurgeWorker, SyncWorker, WorkerRunner};

/// What the core needs from the network: gRPC clients in a node, the
/// simulated network in tests.
#[derive(Debug, Clone)]
pub struct NodePorts {
    /// Replica calls to peers (the coordinator and the hint handoff).
    pub transport: Arc<dyn Transport>,
    /// Anti-entropy sessions with peers (the repairer).
    pub connector: Arc<dyn PeerConnector>,
}

/// What a [`NodeCore`] is built from.
#[derive(Debug)]
pub struct CoreParts<'a> {
    /// The node's configuration (validated by the caller).
    pub config: &'a Config,
    /// The open storage; the core wraps it in a [`TrackedStorage`].
    pub storage: Arc<dyn Storage>,
    /// The clock every part reads.
    pub clock: Arc<dyn Clock>,
    /// The local member as it announces itself at start (its `node_id` is
    /// this incarnation's version-vector actor).
    pub local: Member,
    /// The network.
    pub ports: NodePorts,
    /// Replication settings (`ClusterSettings::from_config` in a node).
    pub settings: ClusterSettings,
    /// Where metrics are registered; `None` leaves them unregistered.
    pub registry: Option<&'a Registry>,
}

/// The non-IO parts of one node, wired together.
#[derive(Debug)]
pub struct NodeCore {
    /// Serves every client operation; also the replica handler.
    pub coordinator: Coordinator,
    /// The tracked storage everything writes through.
    pub storage: Arc<dyn Storage>,
    /// The Merkle trees the tracked storage keeps.
    pub trees: Arc<TreeStore>,
    /// Members, ring and liveness, seeded with the local member.
    pub view: Arc<ClusterView>,
    /// Replica calls to peers.
    pub transport: Arc<dyn Transport>,
    /// Hints for replicas that missed writes.
    pub hints: HintStore,
    /// The replication metrics.
    pub metrics: ReplicationMetrics,
    /// The anti-entropy replica side, history and repairer.
    pub antientropy: AntiEntropyNode,
    config: Config,
    registry: Option<Registry>,
    gossip: Option<GossipWorker>,
}

impl NodeCore {
    /// Wires storage, view, coordinator, hints and anti-entropy.
    pub fn build(parts: CoreParts<'_>) -> NodeCore {
        let CoreParts { config, storage, clock, local, ports, settings, registry } = parts;
        let trees = Arc::new(TreeStore::new(config.antientropy.depth));
        let storage: Arc<dyn Storage> = Arc::new(TrackedStorage::new(storage, Arc::clone(&trees)));
        let view = Arc::new(ClusterView::new(local.clone()));
        let metrics = registry.map_or_else(ReplicationMetrics::unregistered, ReplicationMetrics::registered);
        let hint_window = Duration::from_secs(config.hints.max_hint_window_seconds);
        let hints = HintStore::new(Arc::clone(&storage), Arc::clone(&clock), hint_window, metrics.clone());
        let node = NodeParts {
            storage: Arc::clone(&storage),
            view: Arc::clone(&view),
            transport: Arc::clone(&ports.transport),
            hints: hints.clone(),
        };
        let coordinator = Coordinator::clustered(CoordinatorParts {
            node_id: local.node_id,
            storage: Arc::clone(&storage),
            keyspaces: Keyspaces::from_config(config),
            clock: Arc::clone(&clock),
            limits: Limits::from(&config.server),
            view: Arc::clone(&view),
            transport: Arc::clone(&ports.transport),
            settings,
            metrics: metrics.clone(),
            hints,
        });
        let antientropy = AntiEntropyNode::new(
            &config.antientropy,
            Arc::clone(&trees),
            &node,
            &coordinator,
            clock,
            hint_window,
            ports.connector,
        );
        NodeCore {
            coordinator,
            storage,
            trees,
            view,
            transport: ports.transport,
            hints: node.hints,
            metrics,
            antientropy,
            config: config.clone(),
            registry: registry.cloned(),
            gossip: None,
        }
    }

    /// The node's [`Topology`] (join, decommission, replace, removenode),
    /// calling peers through `peers`; stops with `shutdown`.
    pub fn topology(&self, peers: Arc<dyn StreamPeers>, shutdown: CancellationToken) -> Topology {
        let settings = TopologySettings {
            stream: StreamSettings {
                throughput_mb_per_s: self.config.streaming.throughput_mb_per_s,
                page_records: self.config.streaming.page_records,
            },
            settle_timeout: Duration::from_millis(self.config.topology.settle_timeout_ms),
            vnodes: self.config.ring.vnodes,
        };
        let progress = StreamProgress::new(self.registry.as_ref());
        Topology::new(self.coordinator.clone(), self.parts(), peers, progress, settings, shutdown)
    }

    /// Gossip seeded with the local member and `seeds`, the membership saved
    /// before a restart restored; its worker (rounds through `transport`)
    /// starts with [`NodeCore::spawn_workers`]. Returns the handle the
    /// gossip service feeds.
    pub fn gossip(&mut self, transport: Arc<dyn GossipTransport>, seeds: Vec<SocketAddr>) -> GossipHandle {
        let membership = &self.config.membership;
        if let Some(ms) = membership.down_after_ms {
            tracing::warn!(
                down_after_ms = ms,
                "membership.down_after_ms is obsolete and ignored: the phi-accrual failure detector decides \
                 (membership.phi_convict_threshold); remove it from the config"
            );
        }
        let interval = Duration::from_millis(membership.gossip_interval_ms);
        let detector = DetectorConfig::for_interval(interval, membership.phi_convict_threshold);
        let mut core = Gossiper::new(&self.view.local(), seeds, detector);
        let name = membership.advertise_name.trim();
        if !name.is_empty() {
            core.update_local([crate::membership::AppValue::HostName(name.to_owned())]);
        }
        let metrics = self.registry.as_ref().map(GossipMetrics::registered);
        let gossip = GossipHandle::new(core, Arc::clone(&self.view), metrics);
        // The ring and the LEFT host ids known before the restart, before anything serves.
        match crate::membership::saved::load(self.storage.as_ref()) {
            Ok(saved) => gossip.restore(saved),
            Err(e) => tracing::warn!(error = %e, "cannot read the saved membership; relearning it from gossip"),
        }
        let schema = serde_json::to_string(&self.config.keyspaces).unwrap_or_default();
        let schema = format!("{:016x}", xxhash_rust::xxh3::xxh3_64(schema.as_bytes()));
        let resolve_every = Duration::from_millis(membership.resolve_interval_ms);
        let worker = GossipWorker::new(gossip.clone(), transport, Arc::clone(&self.storage), schema, interval)
            .with_names(membership.seeds.clone(), Arc::new(crate::membership::DnsResolver), resolve_every);
        self.gossip = Some(worker);
        gossip
    }

    /// The node's parts (storage, view, transport, hints) for the services
    /// that need them beside the coordinator.
    pub fn parts(&self) -> NodeParts {
        NodeParts {
            storage: Arc::clone(&self.storage),
            view: Arc::clone(&self.view),
            transport: Arc::clone(&self.transport),
            hints: self.hints.clone(),
        }
    }

    /// The worker that replays hints to replicas that are back.
    pub fn handoff(&self) -> HandoffWorker {
        HandoffWorker::new(
            self.hints.clone(),
            Arc::clone(&self.view),
            Arc::clone(&self.transport),
            Duration::from_millis(self.config.hints.replay_interval_ms),
            self.config.hints.replay_rate_per_second,
        )
    }

    /// Starts every background worker in `workers`: the periodic sync (under
    /// `sync = periodic`), the purge, the scheduled repair (when enabled),
    /// gossip (when [`NodeCore::gossip`] made it) and the hint handoff.
    pub fn spawn_workers(&mut self, workers: &mut WorkerRunner) {
        let storage = &self.config.storage;
        if storage.sync == SyncPolicy::Periodic {
            let interval = Duration::from_millis(storage.sync_interval_ms);
            workers.spawn(SyncWorker::new(Arc::clone(&self.storage), interval));
        }
        workers.spawn(PurgeWorker::new(
            self.coordinator.clone(),
            Duration::from_secs(storage.purge_interval_seconds.max(1)),
            Duration::from_secs(storage.gc_grace_seconds),
            self.antientropy.history.clone(),
        ));
        if let Some(worker) = self.antientropy.worker() {
            workers.spawn(worker);
        }
        if let Some(worker) = self.gossip.take() {
            workers.spawn(worker);
        }
        workers.spawn(self.handoff());
    }
}
