//! [`ClusterServices`]: every gRPC service a node answers to other nodes
//! (`Replica`, `AntiEntropy` with its optional test hooks, `Streaming`,
//! `Gossip`), built in one place and added to a server in one call.
//!
//! Today they share the client port's server (`assembly` adds them next
//! to `Kv` and `Admin`); serving them on a listener of their own (a cluster
//! address, then mutual TLS) is `Server::builder()` plus [`ClusterServices::add_to`].
//!
//! This module may call `peer`'s services, `transport::ReplicaHandler`,
//! `antientropy::LocalReplica`, `topology::Topology` and `membership::GossipHandle` only.

use std::sync::Arc;

use ringkv_proto::cluster::v1::anti_entropy_server::AntiEntropyServer;
use ringkv_proto::cluster::v1::anti_entropy_test_hooks_server::AntiEntropyTestHooksServer;
use ringkv_proto::cluster::v1::gossip_server::GossipServer;
use ringkv_proto::cluster::v1::replica_server::ReplicaServer;
use ringkv_proto::cluster::v1::streaming_server::StreamingServer;
use tonic::transport::server::Router;

use crate::antientropy::LocalReplica;
use crate::membership::GossipHandle;
use crate::topology::Topology;
use crate::transport::ReplicaHandler;

use super::antientropy::{AntiEntropyService, TestHooksService};
use super::{GossipService, ReplicaService, StreamingService};

/// The cluster services of one node, ready to serve.
#[derive(Debug)]
pub struct ClusterServices {
    replica: ReplicaServer<ReplicaService>,
    anti_entropy: AntiEntropyServer<AntiEntropyService>,
    test_hooks: Option<AntiEntropyTestHooksServer<TestHooksService>>,
    streaming: StreamingServer<StreamingService>,
    gossip: GossipServer<GossipService>,
}

impl ClusterServices {
    /// The services over the node's parts; the anti-entropy test hooks
    /// (direct local reads and writes) only when `test_hooks` is set.
    pub fn new(
        replica: Arc<dyn ReplicaHandler>,
        anti_entropy: Arc<LocalReplica>,
        test_hooks: bool,
        topology: Topology,
        gossip: GossipHandle,
    ) -> Self {
        let hooks = test_hooks.then(|| super::test_hooks_server(Arc::clone(anti_entropy.storage())));
        Self {
            replica: super::replica_server(replica),
            anti_entropy: super::anti_entropy_server(anti_entropy),
            test_hooks: hooks,
            streaming: super::streaming_server(topology),
            gossip: GossipService::new(gossip).into_server(),
        }
    }

    /// Adds every cluster service to `router`.
    pub fn add_to(self, router: Router) -> Router {
        router
            .add_service(self.replica)
            .add_service(self.anti_entropy)
            .add_optional_service(self.test_hooks)
            .add_service(self.streaming)
            .add_service(self.gossip)
    }
}
