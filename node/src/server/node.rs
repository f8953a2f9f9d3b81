//! [`Node`]: the lifecycle of one storage node process.
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

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::antientropy::{AntiEntropyNode, TrackedStorage, TreeStore};
use crate::clock::{Clock, SystemClock};
use crate::config::{Config, ConfigError};
use crate::hints::{HandoffWorker, HintStore};
use crate::membership::{ClusterView, DetectorConfig, GossipHandle, GossipMetrics, GossipWorker, Gossiper, Member};
use crate::peer::{ClusterServices, GrpcGossipTransport, GrpcTransport};
use crate::replication::{
    ClusterSettings, Coordinator, CoordinatorParts, Keyspaces, Limits, NodeParts, ReplicationMetrics,
};
use crate::storage::{FjallStorage, Storage, StorageError, SyncPolicy};
use crate::transport::Transport;
use crate::worker::{PurgeWorker, SyncWorker, WorkerRunner, WorkerStatus};

use super::admin::AdminService;
use super::grpc::KvService;
use super::http_api::{self, HttpState};
use super::metrics::NodeMetrics;
use super::resp::RespService;
use super::{NodeIdentity, Readiness};

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
    grpc: JoinHandle<Result<(), NodeError>>,
    http: JoinHandle<Result<(), NodeError>>,
    resp: Option<JoinHandle<()>>,
    grace: Duration,
}

/// Resolves seeds (`HOST:PORT`, DNS names allowed) to addresses.
///
/// A seed that does not resolve is skipped with a warning: in Kubernetes a
/// StatefulSet creates its pods one at a time, so when pod 0 starts, the
/// seeds pods 1 and 2 have no DNS name yet (Cassandra's seed provider skips
/// an unknown seed host the same way). Gossip looks every seed name up again
/// each `membership.resolve_interval_ms` and starts using it once it
/// resolves. Starting fails only when seeds are configured and not one of
/// them resolves, even when this node is one of them: a node that started
/// as if it had no seeds would form a ring of its own (a split cluster);
/// failing lets the supervisor restart it once names resolve.
async fn resolve_seeds(seeds: &[String]) -> Result<Vec<SocketAddr>, NodeError> {
    let mut out = Vec::new();
    let mut failures = Vec::new();
    for seed in seeds.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
        let reason = match tokio::net::lookup_host(seed).await {
            Ok(mut addrs) => match addrs.next() {
                Some(addr) => {
                    out.push(addr);
                    continue;
                }
                None => "no address".to_string(),
            },
            Err(e) => e.to_string(),
        };
        tracing::warn!(seed, %reason, "seed does not resolve now; skipped (gossip looks it up again)");
        failures.push(format!("{seed}: {reason}"));
    }
    if out.is_empty() && !failures.is_empty() {
        return Err(NodeError::Seed { seed: seeds.join(", "), reason: failures.join("; ") });
    }
    Ok(out)
}

/// Binds the listener that `flag` configures; a failure names that flag.
async fn bind(addr: SocketAddr, flag: &'static str) -> Result<TcpListener, NodeError> {
    TcpListener::bind(addr).await.map_err(|source| NodeError::Bind { addr, flag, source })
}

impl Node {
    /// Starts a node; it runs until `shutdown` is cancelled, then [`Node::stopped`] finishes the stop.
    pub async fn start(config: Config, shutdown: CancellationToken) -> Result<Node, NodeError> {
        config.validate()?;
        let metrics = NodeMetrics::new();
        let storage_config = config.storage.clone();
        let fsync_metrics = metrics.clone();
        let storage = tokio::task::spawn_blocking(move || {
            FjallStorage::open(&storage_config)
                .map(|s| s.with_fsync_observer(move |d| fsync_metrics.observe_fsync("journal", d)))
        })
        .await
        .map_err(|e| NodeError::Serve { server: "storage", message: e.to_string() })??;
        let storage = Arc::new(storage);
        // Every record write goes through the tracker, which keeps the Merkle trees current.
        let trees = Arc::new(TreeStore::new(config.antientropy.depth));
        let dyn_storage: Arc<dyn Storage> = Arc::new(TrackedStorage::new(storage.clone(), Arc::clone(&trees)));
        let seeds = resolve_seeds(&config.membership.seeds).await?;
        let start = super::lifecycle::prepare(&config, &dyn_storage, &seeds).await?;
        let ring_config = config.ring.clone();
        let id_storage = Arc::clone(&dyn_storage);
        let identity_task = tokio::task::spawn_blocking(move || {
            super::bootstrap::load_or_create(
                id_storage.as_ref(),
                ring_config.vnodes,
                &ring_config.zone,
                &ring_config.rack,
            )
        });
        let id = identity_task.await.map_err(|e| NodeError::Serve { server: "storage", message: e.to_string() })??;

        let grpc_listener = bind(config.server.grpc_addr, "--grpc-addr").await?;
        let http_listener = bind(config.server.http_addr, "--http-addr").await?;
        let resp_listener = match config.server.resp_addr {
            Some(addr) => Some((bind(addr, "--resp-addr").await?, addr)),
            None => None,
        };
        let local =
            |l: &TcpListener, addr, flag| l.local_addr().map_err(|source| NodeError::Bind { addr, flag, source });
        let identity = NodeIdentity {
            host_id: id.host_id.clone(),
            grpc_addr: local(&grpc_listener, config.server.grpc_addr, "--grpc-addr")?,
            http_addr: local(&http_listener, config.server.http_addr, "--http-addr")?,
            resp_addr: resp_listener.as_ref().map(|(l, addr)| local(l, *addr, "--resp-addr")).transpose()?,
            data_dir: config.storage.data_dir.display().to_string(),
        };
        let member = Member {
            host_id: id.host_id.clone(),
            node_id: id.node_id,
            grpc_addr: identity.grpc_addr,
            http_addr: identity.http_addr,
            zone: config.ring.zone.clone(),
            rack: config.ring.rack.clone(),
            tokens: start.initial_tokens(&id.tokens),
            generation: id.generation,
            status: start.initial_status(&id.host_id),
        };
        let view = Arc::new(ClusterView::new(member));
        let settings = ClusterSettings::from_config(&config);
        let transport: Arc<dyn Transport> =
            Arc::new(GrpcTransport::new(settings.replica_timeout, Duration::from_millis(1000)));
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let replication_metrics = ReplicationMetrics::registered(metrics.registry());
        let hint_window = Duration::from_secs(config.hints.max_hint_window_seconds);
        let hints =
            HintStore::new(Arc::clone(&dyn_storage), Arc::clone(&clock), hint_window, replication_metrics.clone());
        let node = NodeParts {
            storage: Arc::clone(&dyn_storage),
            view: Arc::clone(&view),
            transport: Arc::clone(&transport),
            hints,
        };
        let coordinator = Coordinator::clustered(CoordinatorParts {
            node_id: id.node_id,
            storage: Arc::clone(&dyn_storage),
            keyspaces: Keyspaces::from_config(&config),
            clock: Arc::clone(&clock),
            limits: Limits::from(&config.server),
            view: Arc::clone(&view),
            transport: Arc::clone(&transport),
            settings,
            metrics: replication_metrics,
            hints: node.hints.clone(),
        });
        let readiness = Readiness::default();
        let ae = AntiEntropyNode::new(
            &config.antientropy,
            trees,
            &node,
            &coordinator,
            clock,
            hint_window,
            Arc::new(crate::peer::GrpcConnector::new()),
        );
        let topology = super::lifecycle::topology(&config, &coordinator, &node, metrics.registry(), shutdown.clone());
        let gate = topology.clone();
        readiness.set_gate(move || gate.ready());

        let mut workers = WorkerRunner::new(&shutdown).with_metrics(metrics.registry());
        if config.storage.sync == SyncPolicy::Periodic {
            let interval = Duration::from_millis(config.storage.sync_interval_ms);
            workers.spawn(SyncWorker::new(Arc::clone(&dyn_storage), interval));
        }
        workers.spawn(PurgeWorker::new(
            coordinator.clone(),
            Duration::from_secs(config.storage.purge_interval_seconds.max(1)),
            Duration::from_secs(config.storage.gc_grace_seconds),
            ae.history.clone(),
        ));
        if let Some(worker) = ae.worker() {
            workers.spawn(worker);
        }
        let gossip = start_gossip(&config, &view, seeds.clone(), &dyn_storage, &metrics, &mut workers);
        topology.set_gossip(gossip.clone());
        workers.spawn(HandoffWorker::new(
            node.hints.clone(),
            Arc::clone(&view),
            Arc::clone(&transport),
            Duration::from_millis(config.hints.replay_interval_ms),
            config.hints.replay_rate_per_second,
        ));

        let admin = AdminService::new(coordinator.clone(), node.clone(), identity.clone(), workers.jobs().clone())
            .with_repairer(Arc::clone(&ae.repairer))
            .with_topology(topology.clone())
            .with_gossip(gossip.clone());
        let parts = GrpcParts {
            coordinator: &coordinator,
            metrics: &metrics,
            config: &config,
            admin: admin.clone(),
            cluster: ClusterServices::new(
                crate::replication::handler(&coordinator),
                Arc::clone(&ae.local),
                config.antientropy.test_hooks,
                topology.clone(),
                gossip.clone(),
            ),
        };
        let grpc = spawn_grpc(grpc_listener, parts, shutdown.clone())?;
        let state = HttpState {
            coordinator: coordinator.clone(),
            storage: Arc::clone(&dyn_storage),
            metrics: metrics.clone(),
            identity: identity.clone(),
            readiness: readiness.clone(),
            admin,
        };
        let router = http_api::router(state, config.server.max_value_bytes);
        let http_shutdown = shutdown.clone();
        let http = tokio::spawn(async move {
            http_api::serve(http_listener, router, http_shutdown)
                .await
                .map_err(|e| NodeError::Serve { server: "http", message: e.to_string() })
        });
        let resp = resp_listener.map(|(listener, _)| {
            let resp = RespService::new(
                coordinator.clone(),
                metrics.clone(),
                config.server.max_key_bytes,
                config.server.max_value_bytes,
            );
            tokio::spawn(resp.serve(listener, shutdown.clone()))
        });
        readiness.set(true);
        super::lifecycle::spawn(start, topology, id.tokens.clone(), seeds, &config, workers.jobs());
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
        let actor = id.node_id;
        Ok(Node { identity, coordinator, storage, actor, readiness, shutdown, workers, grpc, http, resp, grace })
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

    /// This incarnation's version-vector actor (see `bootstrap`).
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
        for (name, mut handle) in [("grpc", self.grpc), ("http", self.http)] {
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
        if let Some(mut resp) = self.resp {
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
        // Writes are refused from here on; the marker follows the final fsync (see `bootstrap`).
        let marked = tokio::task::spawn_blocking(move || {
            storage.shutdown();
            super::bootstrap::mark_clean_shutdown(storage.as_ref(), actor)
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

/// What the gRPC services are built from.
struct GrpcParts<'a> {
    coordinator: &'a Coordinator,
    metrics: &'a NodeMetrics,
    config: &'a Config,
    admin: AdminService,
    /// The services other nodes call (served on the client port for now).
    cluster: ClusterServices,
}

/// Starts gossip: the core seeded with the local member, its metrics, and
/// the worker that ticks it; returns the handle the gRPC service feeds.
fn start_gossip(
    config: &Config,
    view: &Arc<ClusterView>,
    seeds: Vec<SocketAddr>,
    storage: &Arc<dyn Storage>,
    metrics: &NodeMetrics,
    workers: &mut WorkerRunner,
) -> GossipHandle {
    let membership = &config.membership;
    if let Some(ms) = membership.down_after_ms {
        tracing::warn!(
            down_after_ms = ms,
            "membership.down_after_ms is obsolete and ignored: the phi-accrual failure detector decides \
             (membership.phi_convict_threshold); remove it from the config"
        );
    }
    let interval = Duration::from_millis(membership.gossip_interval_ms);
    let detector = DetectorConfig::for_interval(interval, membership.phi_convict_threshold);
    let mut core = Gossiper::new(&view.local(), seeds, detector);
    let name = membership.advertise_name.trim();
    if !name.is_empty() {
        core.update_local([crate::membership::AppValue::HostName(name.to_owned())]);
    }
    let gossip = GossipHandle::new(core, Arc::clone(view), Some(GossipMetrics::registered(metrics.registry())));
    // The ring and the LEFT host ids known before the restart, before anything serves.
    match crate::membership::saved::load(storage.as_ref()) {
        Ok(saved) => gossip.restore(saved),
        Err(e) => tracing::warn!(error = %e, "cannot read the saved membership; relearning it from gossip"),
    }
    // A round's calls may take two intervals: rounds run concurrently, so a slow peer delays no tick.
    let call_timeout = (interval * 2).max(Duration::from_secs(1));
    let transport = Arc::new(GrpcGossipTransport::new(call_timeout, Duration::from_secs(1)));
    let schema = serde_json::to_string(&config.keyspaces).unwrap_or_default();
    let schema = format!("{:016x}", xxhash_rust::xxh3::xxh3_64(schema.as_bytes()));
    let resolve_every = Duration::from_millis(membership.resolve_interval_ms);
    let worker = GossipWorker::new(gossip.clone(), transport, Arc::clone(storage), schema, interval).with_names(
        membership.seeds.clone(),
        Arc::new(crate::membership::DnsResolver),
        resolve_every,
    );
    workers.spawn(worker);
    gossip
}

fn spawn_grpc(
    listener: TcpListener,
    parts: GrpcParts<'_>,
    shutdown: CancellationToken,
) -> Result<JoinHandle<Result<(), NodeError>>, NodeError> {
    let GrpcParts { coordinator, metrics, config, admin, cluster } = parts;
    use ringkv_proto::v1::{admin_server::AdminServer, kv_server::KvServer};
    let max_message = (config.server.max_value_bytes * 2 + 64 * 1024).max(4 * 1024 * 1024);
    let kv = KvServer::new(KvService::new(coordinator.clone(), metrics.clone()))
        .max_decoding_message_size(max_message)
        .max_encoding_message_size(usize::MAX);
    let admin = AdminServer::new(admin);
    // Both reflection versions: grpcurl 1.8, Postman and other older
    // clients only speak v1alpha.
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(ringkv_proto::FILE_DESCRIPTOR_SET)
    };
    let (reflection_v1, reflection_v1alpha) = (reflection().build_v1()?, reflection().build_v1alpha()?);
    let (health_reporter, health) = tonic_health::server::health_reporter();
    Ok(tokio::spawn(async move {
        health_reporter.set_serving::<KvServer<KvService>>().await;
        // Without TCP_NODELAY small responses wait for the peer's delayed ACK (~40 ms).
        let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
        let router = tonic::transport::Server::builder()
            .add_service(health)
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha)
            .add_service(kv)
            .add_service(admin);
        cluster
            .add_to(router)
            .serve_with_incoming_shutdown(incoming, shutdown.cancelled_owned())
            .await
            .map_err(|e| NodeError::Serve { server: "grpc", message: e.to_string() })
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// D3 of issue 11: pods 1 and 2 have no DNS name yet when pod 0 starts.
    #[tokio::test]
    async fn seeds_that_do_not_resolve_yet_are_skipped_unless_none_resolves() {
        let seeds = |list: &[&str]| list.iter().map(|s| (*s).to_string()).collect::<Vec<_>>();
        let found = resolve_seeds(&seeds(&["127.0.0.1:7100", "seed-1.invalid:7100", " ", "seed-2.invalid:7100"]))
            .await
            .expect("one seed resolves");
        assert_eq!(found, [SocketAddr::from(([127, 0, 0, 1], 7100))]);
        let err = resolve_seeds(&seeds(&["seed-1.invalid:7100", "seed-2.invalid:7100"])).await.expect_err("none");
        let text = err.to_string();
        assert!(text.contains("seed-1.invalid:7100") && text.contains("seed-2.invalid:7100"), "{text}");
        assert!(resolve_seeds(&[]).await.expect("no seeds: a cluster of its own").is_empty());
    }
}
