//! The node's listeners and the tasks serving the client-facing protocols
//! (`server`'s gRPC, HTTP and RESP services) and the cluster services on
//! them. Listeners are bound before anything serves, so a port in use fails
//! the start with the flag that sets it.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, ServerConfig};
use crate::membership::GossipHandle;
use crate::peer::ClusterServices;
use crate::replication::Coordinator;
use crate::server::admin::AdminService;
use crate::server::grpc::KvService;
use crate::server::http_api::{self, HttpState};
use crate::server::metrics::NodeMetrics;
use crate::server::resp::RespService;
use crate::server::{NodeIdentity, Readiness};
use crate::topology::Topology;
use crate::worker::Jobs;

use super::{NodeCore, NodeError};

/// The bound listeners.
#[derive(Debug)]
pub(super) struct Listeners {
    pub(super) grpc: TcpListener,
    pub(super) http: TcpListener,
    pub(super) resp: Option<TcpListener>,
}

/// Binds the listener that `flag` configures; a failure names that flag.
async fn bind(addr: SocketAddr, flag: &'static str) -> Result<TcpListener, NodeError> {
    TcpListener::bind(addr).await.map_err(|source| NodeError::Bind { addr, flag, source })
}

fn local(listener: &TcpListener, addr: SocketAddr, flag: &'static str) -> Result<SocketAddr, NodeError> {
    listener.local_addr().map_err(|source| NodeError::Bind { addr, flag, source })
}

impl Listeners {
    /// Binds gRPC, HTTP and (when configured) RESP.
    pub(super) async fn bind(server: &ServerConfig) -> Result<Listeners, NodeError> {
        let grpc = bind(server.grpc_addr, "--grpc-addr").await?;
        let http = bind(server.http_addr, "--http-addr").await?;
        let resp = match server.resp_addr {
            Some(addr) => Some(bind(addr, "--resp-addr").await?),
            None => None,
        };
        Ok(Listeners { grpc, http, resp })
    }

    /// Who this node is, with the addresses actually bound (port 0 resolved).
    pub(super) fn identity(&self, host_id: &str, config: &Config) -> Result<NodeIdentity, NodeError> {
        let server = &config.server;
        let resp = match (&self.resp, server.resp_addr) {
            (Some(l), Some(addr)) => Some(local(l, addr, "--resp-addr")?),
            _ => None,
        };
        Ok(NodeIdentity {
            host_id: host_id.to_owned(),
            grpc_addr: local(&self.grpc, server.grpc_addr, "--grpc-addr")?,
            http_addr: local(&self.http, server.http_addr, "--http-addr")?,
            resp_addr: resp,
            data_dir: config.storage.data_dir.display().to_string(),
        })
    }
}

/// What the servers are built from.
pub(super) struct ServeParts<'a> {
    pub(super) core: &'a NodeCore,
    pub(super) topology: &'a Topology,
    pub(super) gossip: GossipHandle,
    pub(super) jobs: &'a Jobs,
    pub(super) metrics: &'a NodeMetrics,
    pub(super) config: &'a Config,
    pub(super) identity: &'a NodeIdentity,
    pub(super) readiness: &'a Readiness,
}

/// The serving tasks.
#[derive(Debug)]
pub(super) struct Servers {
    pub(super) grpc: JoinHandle<Result<(), NodeError>>,
    pub(super) http: JoinHandle<Result<(), NodeError>>,
    pub(super) resp: Option<JoinHandle<()>>,
}

/// Starts every server on its listener; all stop with `shutdown`.
pub(super) fn serve(
    listeners: Listeners,
    parts: ServeParts<'_>,
    shutdown: &CancellationToken,
) -> Result<Servers, NodeError> {
    let ServeParts { core, topology, gossip, jobs, metrics, config, identity, readiness } = parts;
    let (coordinator, ae) = (&core.coordinator, &core.antientropy);
    let admin = AdminService::new(coordinator.clone(), core.parts(), identity.clone(), jobs.clone())
        .with_repairer(Arc::clone(&ae.repairer))
        .with_topology(topology.clone())
        .with_gossip(gossip.clone());
    let handler = crate::replication::handler(coordinator);
    let hooks = config.antientropy.test_hooks;
    // The services other nodes call (served on the client port for now).
    let cluster = ClusterServices::new(handler, Arc::clone(&ae.local), hooks, topology.clone(), gossip);
    let state = HttpState {
        coordinator: coordinator.clone(),
        storage: Arc::clone(&core.storage),
        metrics: metrics.clone(),
        identity: identity.clone(),
        readiness: readiness.clone(),
        admin: admin.clone(),
    };
    let grpc = spawn_grpc(listeners.grpc, coordinator, metrics, config, admin, cluster, shutdown.clone())?;
    let router = http_api::router(state, config.server.max_value_bytes);
    let http_shutdown = shutdown.clone();
    let http = tokio::spawn(async move {
        http_api::serve(listeners.http, router, http_shutdown)
            .await
            .map_err(|e| NodeError::Serve { server: "http", message: e.to_string() })
    });
    let resp = listeners.resp.map(|listener| {
        let resp = RespService::new(
            coordinator.clone(),
            metrics.clone(),
            config.server.max_key_bytes,
            config.server.max_value_bytes,
        );
        tokio::spawn(resp.serve(listener, shutdown.clone()))
    });
    Ok(Servers { grpc, http, resp })
}

fn spawn_grpc(
    listener: TcpListener,
    coordinator: &Coordinator,
    metrics: &NodeMetrics,
    config: &Config,
    admin: AdminService,
    cluster: ClusterServices,
    shutdown: CancellationToken,
) -> Result<JoinHandle<Result<(), NodeError>>, NodeError> {
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
