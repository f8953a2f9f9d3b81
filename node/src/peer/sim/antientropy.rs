//! [`SimConnector`]: anti-entropy over a [`SimNetwork`]. A node's real
//! `Repairer` reaches its peers' [`LocalReplica`]s (registered with
//! [`SimNetwork::serve_anti_entropy`]) through a [`SimAePeer`], whose every
//! call crosses the simulated network (delay, loss, partitions, crashes,
//! counted under [`Protocol::AntiEntropy`]) and is served on arrival by the
//! peer's replica side, as `GrpcPeer`'s calls are by its `AntiEntropy`
//! service. Errors stay typed (`AeError` from the replica, `AeError::Peer`
//! with the `TransportError` of a network fault).

use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;

use crate::antientropy::{
    AeError, AntiEntropyPeer, Hash, KeyedRecord, LocalReplica, PeerConnector, TreeRef, TreeSummary,
};
use crate::membership::Member;

use super::{Protocol, SimNetwork};

/// Default deadline of one anti-entropy call (virtual time; `GrpcPeer` allows 60 s on a real network).
const CALL_TIMEOUT: Duration = Duration::from_secs(1);

/// Connects a node's repairer to its peers over the simulated network.
#[derive(Debug, Clone)]
pub struct SimConnector {
    net: Arc<SimNetwork>,
    from: String,
    timeout: Duration,
}

impl SimConnector {
    /// The connector of node `from`, with a 1 s (virtual) deadline per call.
    pub fn new(net: Arc<SimNetwork>, from: &str) -> Self {
        Self { net, from: from.to_owned(), timeout: CALL_TIMEOUT }
    }

    /// The same connector with `timeout` as the deadline of each call.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

impl PeerConnector for SimConnector {
    fn connect(&self, member: &Member) -> Arc<dyn AntiEntropyPeer> {
        Arc::new(SimAePeer {
            net: Arc::clone(&self.net),
            from: self.from.clone(),
            to: member.host_id.clone(),
            timeout: self.timeout,
        })
    }
}

/// A peer's replica side, reached over the simulated network.
#[derive(Debug)]
struct SimAePeer {
    net: Arc<SimNetwork>,
    from: String,
    to: String,
    timeout: Duration,
}

impl SimAePeer {
    /// Carries `call` to the peer; it runs there on arrival.
    fn carry<T: Send + 'static>(
        &self,
        call: impl FnOnce(Arc<LocalReplica>) -> BoxFuture<'static, Result<T, AeError>> + Send + 'static,
    ) -> BoxFuture<'static, Result<T, AeError>> {
        let to = self.to.clone();
        let serve = move |net: &SimNetwork| net.service(&to, |s| s.anti_entropy.clone()).map(call);
        let carried = self.net.carry_as(Protocol::AntiEntropy, &self.from, &self.to, self.timeout, serve);
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
