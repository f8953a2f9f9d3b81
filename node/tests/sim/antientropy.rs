//! Anti-entropy over the [`SimNetwork`]: each node's real [`Repairer`]
//! reaches its peers' [`LocalReplica`]s through a [`SimAePeer`], whose every
//! call crosses the simulated network (delay, loss, partitions, crashes,
//! counters), as `GrpcPeer`'s calls cross the real one. Only the connector
//! differs from a node's wiring (`AntiEntropyNode` uses `GrpcConnector`).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use ringkv_node::antientropy::{
    AeError, AntiEntropyPeer, Hash, KeyedRecord, LocalReplica, PeerConnector, TreeRef, TreeSummary,
};
use ringkv_node::membership::Member;
use ringkv_node::peer::SimNetwork;
use ringkv_node::transport::TransportError;

/// Deadline of one anti-entropy call (virtual time; `GrpcPeer` allows 60 s on a real network).
const CALL_TIMEOUT: Duration = Duration::from_secs(1);

/// Every node's anti-entropy replica side, by host id.
#[derive(Debug, Default)]
pub struct AeDirectory {
    replicas: Mutex<BTreeMap<String, Arc<LocalReplica>>>,
}

impl AeDirectory {
    /// Serves `host`'s anti-entropy calls with `replica`.
    pub fn register(&self, host: &str, replica: Arc<LocalReplica>) {
        self.replicas.lock().unwrap_or_else(PoisonError::into_inner).insert(host.to_owned(), replica);
    }

    fn get(&self, host: &str) -> Option<Arc<LocalReplica>> {
        self.replicas.lock().unwrap_or_else(PoisonError::into_inner).get(host).cloned()
    }
}

/// Connects a node's repairer to its peers over the simulated network.
#[derive(Debug)]
pub struct SimConnector {
    net: Arc<SimNetwork>,
    from: String,
    directory: Arc<AeDirectory>,
}

impl SimConnector {
    /// The connector of node `from`.
    pub fn new(net: Arc<SimNetwork>, from: &str, directory: Arc<AeDirectory>) -> Self {
        Self { net, from: from.to_owned(), directory }
    }
}

impl PeerConnector for SimConnector {
    fn connect(&self, member: &Member) -> Arc<dyn AntiEntropyPeer> {
        Arc::new(SimAePeer {
            net: Arc::clone(&self.net),
            from: self.from.clone(),
            to: member.host_id.clone(),
            directory: Arc::clone(&self.directory),
        })
    }
}

/// A peer's replica side, reached over the simulated network.
#[derive(Debug)]
struct SimAePeer {
    net: Arc<SimNetwork>,
    from: String,
    to: String,
    directory: Arc<AeDirectory>,
}

impl SimAePeer {
    /// Carries `call` to the peer; it runs there on arrival.
    fn carry<T: Send + 'static>(
        &self,
        call: impl FnOnce(Arc<LocalReplica>) -> BoxFuture<'static, Result<T, AeError>> + Send + 'static,
    ) -> BoxFuture<'static, Result<T, AeError>> {
        let (directory, to) = (Arc::clone(&self.directory), self.to.clone());
        let serve = move || match directory.get(&to) {
            Some(replica) => call(replica),
            None => {
                let reason = "no anti-entropy service".into();
                futures::future::ready(Err(AeError::from(TransportError::Unreachable { peer: to, reason }))).boxed()
            }
        };
        let carried = self.net.carry(&self.from, &self.to, CALL_TIMEOUT, serve);
        async move { carried.await.map_err(AeError::from)? }.boxed()
    }
}

impl AntiEntropyPeer for SimAePeer {
    fn prepare_tree(&self, tree: &TreeRef, max_age: Duration) -> BoxFuture<'static, Result<TreeSummary, AeError>> {
        let tree = tree.clone();
        self.carry(move |r| r.prepare_tree(&tree, max_age))
    }

    fn tree_level(
        &self,
        tree: &TreeRef,
        level: u32,
        indices: Vec<u32>,
    ) -> BoxFuture<'static, Result<Vec<Hash>, AeError>> {
        let tree = tree.clone();
        self.carry(move |r| r.tree_level(&tree, level, indices))
    }

    fn bucket_records(
        &self,
        tree: &TreeRef,
        buckets: Vec<u32>,
    ) -> BoxFuture<'static, Result<Vec<KeyedRecord>, AeError>> {
        let tree = tree.clone();
        self.carry(move |r| r.bucket_records(&tree, buckets))
    }

    fn merge_records(&self, keyspace: &str, records: Vec<KeyedRecord>) -> BoxFuture<'static, Result<u32, AeError>> {
        let keyspace = keyspace.to_owned();
        self.carry(move |r| r.merge_records(&keyspace, records))
    }
}
