//! [`Node`]: the lifecycle of one storage node process, on top of the
//! [`NodeCore`]: real fjall storage, the gRPC peer layer, the listeners and
//! the servers.
//!
//! Start: open storage (journal recovery), load or create the persistent
//! host id, build the coordinator, bind both listeners, start workers, then
//! mark ready. Stop (SIGTERM/SIGINT or the token): not ready, refuse writes,
//! stop accepting and let in-flight requests finish (bounded by
//! `server.shutdown_grace_ms`), stop the workers and background jobs (the
//! same bound; what outlives it is aborted), drain the group committer and
//! fsync. Nothing acknowledged is lost by a graceful stop. Every task
//! started here is owned: the servers' handles by the [`Node`], the
//! workers and jobs by its [`WorkerRunner`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::clock::SystemClock;
use crate::config::{Config, ConfigError};
use crate::membership::{GossipTransport, Member};
use crate::peer::{GrpcConnector, GrpcGossipTransport, GrpcStreamPeers, GrpcTransport};
use crate::replication::{ClusterSettings, Coordinator};
use crate::server::metrics::NodeMetrics;
use crate::server::{NodeIdentity, Readiness};
use crate::storage::{FjallStorage, Storage, StorageError};
use crate::topology::identity::{self, Identity};
use crate::worker::{WorkerRunner, WorkerStatus};

use super::core::{CoreParts, NodeCore, NodePorts};
use super::entry;
use super::servers::{self, Listeners, ServeParts, Servers};

/// Why a node could not start or stopped badly.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodeError {
    /// The configuration was refused.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Storage could not be opened or read.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A listener could not be bound.
    #[error(
        "cannot listen on {addr} ({flag}): {source}; is another process using the port? choose another with {flag}"
    )]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The flag that sets this listener's address (`--grpc-addr`, `--http-addr` or `--resp-addr`).
        flag: &'static str,
        /// The OS error.
        source: std::io::Error,
    },
    /// Seeds are configured but not one of them resolves.
    #[error(
        "cannot resolve any seed of {seed:?}: {reason}; use HOST:PORT of other nodes' gRPC addresses, or wait until \
         their names resolve"
    )]
    Seed {
        /// The seed as given.
        seed: String,
        /// Why.
        reason: String,
    },
    /// A topology precondition failed at start (replace, join).
    #[error(transparent)]
    Topology(#[from] crate::topology::TopologyError),
    /// gRPC reflection could not be built from the descriptors.
    #[error("cannot build gRPC reflection service: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    /// A server task failed.
    #[error("{server} server failed: {message}")]
    Serve {
        /// Which server.
        server: &'static str,
        /// What it reported.
        message: String,
    },
}

/// A running node.
#[derive(Debug)]
pub struct Node {
    identity: NodeIdentity,
    coordinator: Coordinator,
    storage: Arc<FjallStorage>,
    /// This incarnation's version-vector actor (recorded at a clean stop).
    actor: crate::version::NodeId,
    readiness: Readiness,
    shutdown: CancellationToken,
    workers: WorkerRunner,
    servers: Servers,
    grace: Duration,
}

impl Node {
    /// Starts a node; it runs until `shutdown` is cancelled, then [`Node::stopped`] finishes the stop.
    pub async fn start(config: Config, shutdown: CancellationToken) -> Result<Node, NodeError> {
        config.validate()?;
        let metrics = NodeMetrics::new();
        let storage = open_storage(&config, &metrics).await?;
        let dyn_storage: Arc<dyn Storage> = storage.clone();
        let seeds = entry::resolve_seeds(&config.membership.seeds).await?;
        let start = entry::prepare(&config, &dyn_storage, &seeds).await?;
        let id = load_identity(&config, &dyn_storage).await?;
        let listeners = Listeners::bind(&config.server).await?;
        let identity = listeners.identity(&id.host_id, &config)?;
        let local = start.local_member(&config, &identity, &id);
        let mut core = grpc_core(&config, dyn_storage, local, &metrics);
        let topology = core.topology(Arc::new(GrpcStreamPeers::new(Duration::from_secs(30))), shutdown.clone());
        let gossip = core.gossip(gossip_transport(&config), seeds.clone());
        topology.set_gossip(gossip.clone());
        let readiness = Readiness::default();
        let gate = topology.clone();
        readiness.set_gate(move || gate.ready());
        let mut workers = WorkerRunner::new(&shutdown).with_metrics(metrics.registry());
        core.spawn_workers(&mut workers);
        let parts = ServeParts {
            core: &core,
            topology: &topology,
            gossip,
            jobs: workers.jobs(),
            metrics: &metrics,
            config: &config,
            identity: &identity,
            readiness: &readiness,
        };
        let servers = servers::serve(listeners, parts, &shutdown)?;
        readiness.set(true);
        entry::spawn(start, topology, id.tokens.clone(), seeds, &config, workers.jobs());
        tracing::info!(
            host_id = %identity.host_id,
            grpc = %identity.grpc_addr,
            http = %identity.http_addr,
            resp = ?identity.resp_addr,
            data_dir = %identity.data_dir,
            sync = %config.storage.sync,
            workers = ?workers.names(),
            "node ready"
        );
        let grace = Duration::from_millis(config.server.shutdown_grace_ms);
        let coordinator = core.coordinator;
        Ok(Node { identity, coordinator, storage, actor: id.node_id, readiness, shutdown, workers, servers, grace })
    }

    /// Who this node is (bound addresses included).
    pub fn identity(&self) -> &NodeIdentity {
        &self.identity
    }

    /// The coordinator (for in-process tests).
    pub fn coordinator(&self) -> &Coordinator {
        &self.coordinator
    }

    /// The background workers and what each is doing.
    pub fn workers(&self) -> Vec<WorkerStatus> {
        self.workers.list()
    }

    /// This incarnation's version-vector actor (see `topology::identity`).
    pub fn actor(&self) -> crate::version::NodeId {
        self.actor
    }

    /// Waits for the shutdown token, then stops gracefully.
    pub async fn stopped(self) -> Result<(), NodeError> {
        self.shutdown.cancelled().await;
        tracing::info!("shutting down: draining requests");
        self.readiness.set(false);
        self.coordinator.drain();
        let mut result = Ok(());
        for (name, mut handle) in [("grpc", self.servers.grpc), ("http", self.servers.http)] {
            match tokio::time::timeout(self.grace, &mut handle).await {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(e))) => result = Err(e),
                Ok(Err(e)) => result = Err(NodeError::Serve { server: name, message: e.to_string() }),
                Err(_) => {
                    tracing::warn!(server = name, grace = ?self.grace, "in-flight requests did not finish in time");
                    handle.abort();
                }
            }
        }
        if let Some(mut resp) = self.servers.resp {
            match tokio::time::timeout(self.grace, &mut resp).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => result = Err(NodeError::Serve { server: "resp", message: e.to_string() }),
                Err(_) => {
                    tracing::warn!(server = "resp", grace = ?self.grace, "the RESP listener did not stop in time");
                    resp.abort();
                }
            }
        }
        let stopped = self.workers.stop(self.grace).await;
        tracing::info!(
            workers = ?stopped.workers.iter().map(|w| (w.name, w.errors)).collect::<Vec<_>>(),
            aborted = ?stopped.aborted,
            "background workers stopped"
        );
        let (storage, actor) = (Arc::clone(&self.storage), self.actor);
        // Writes are refused from here on; the marker follows the final fsync (see `topology::identity`).
        let marked = tokio::task::spawn_blocking(move || {
            storage.shutdown();
            identity::mark_clean_shutdown(storage.as_ref(), actor)
        })
        .await
        .map_err(|e| NodeError::Serve { server: "storage", message: e.to_string() })?;
        match marked {
            Ok(()) => tracing::info!("storage flushed and synced, clean shutdown recorded; bye"),
            Err(e) => tracing::warn!(
                error = %e,
                "final sync failed: no clean shutdown recorded, the next start takes a fresh version-vector actor"
            ),
        }
        result
    }
}

/// The core over the gRPC peer layer and the wall clock.
fn grpc_core(config: &Config, storage: Arc<dyn Storage>, local: Member, metrics: &NodeMetrics) -> NodeCore {
    let settings = ClusterSettings::from_config(config);
    NodeCore::build(CoreParts {
        config,
        storage,
        clock: Arc::new(SystemClock),
        local,
        ports: NodePorts {
            transport: Arc::new(GrpcTransport::new(settings.replica_timeout, Duration::from_millis(1000))),
            connector: Arc::new(GrpcConnector::new()),
        },
        settings,
        registry: Some(metrics.registry()),
    })
}

/// Opens the fjall storage (journal recovery) off the reactor, timing its fsyncs.
async fn open_storage(config: &Config, metrics: &NodeMetrics) -> Result<Arc<FjallStorage>, NodeError> {
    let storage_config = config.storage.clone();
    let fsync_metrics = metrics.clone();
    let storage = tokio::task::spawn_blocking(move || {
        FjallStorage::open(&storage_config)
            .map(|s| s.with_fsync_observer(move |d| fsync_metrics.observe_fsync("journal", d)))
    })
    .await
    .map_err(|e| NodeError::Serve { server: "storage", message: e.to_string() })??;
    Ok(Arc::new(storage))
}

/// Loads (or creates) the persistent identity and takes this incarnation's actor.
async fn load_identity(config: &Config, storage: &Arc<dyn Storage>) -> Result<Identity, NodeError> {
    let ring = config.ring.clone();
    let storage = Arc::clone(storage);
    let task = tokio::task::spawn_blocking(move || {
        identity::load_or_create(storage.as_ref(), ring.vnodes, &ring.zone, &ring.rack)
    });
    Ok(task.await.map_err(|e| NodeError::Serve { server: "storage", message: e.to_string() })??)
}

/// The gossip client: a round's calls may take two intervals (rounds run
/// concurrently, so a slow peer delays no tick).
fn gossip_transport(config: &Config) -> Arc<dyn GossipTransport> {
    let interval = Duration::from_millis(config.membership.gossip_interval_ms);
    let call_timeout = (interval * 2).max(Duration::from_secs(1));
    Arc::new(GrpcGossipTransport::new(call_timeout, Duration::from_secs(1)))
}
