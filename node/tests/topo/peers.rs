//! The running nodes of a [`Topo`](super::Topo) and the gossip stand-in.
//!
//! Topology calls go through the network's own `SimStreamPeers` (in
//! `ringkv_node::peer`, counted as `Protocol::Streaming`); this module keeps
//! only the [`Directory`] of running nodes (their topologies and views) and
//! [`pump_membership`], which stands in for gossip (the shell-level gossip
//! simulation is `gossip_shell_sim.rs`): every interval each running node
//! sends its own member (status, tokens, generation, actor) to every other
//! node over the same network, and a receiver keeps only the newest copy
//! from each sender. Liveness stays under the test's control, as in
//! `SimCluster`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::FutureExt;
use ringkv_node::membership::{ClusterView, Member};
use ringkv_node::peer::SimNetwork;
use ringkv_node::topology::Topology;

/// Deadline of one membership message of the gossip stand-in (virtual time).
const CALL_TIMEOUT: Duration = Duration::from_secs(2);

/// Every running node's topology, by address.
#[derive(Debug, Default)]
pub struct Directory {
    nodes: Mutex<BTreeMap<SocketAddr, (String, Topology)>>,
}

impl Directory {
    /// `host` runs at `addr` with `topology`.
    pub fn register(&self, addr: SocketAddr, host: &str, topology: Topology) {
        self.nodes.lock().unwrap_or_else(PoisonError::into_inner).insert(addr, (host.to_owned(), topology));
    }

    /// Nothing serves `addr` any more (the process is gone).
    pub fn unregister(&self, addr: SocketAddr) {
        self.nodes.lock().unwrap_or_else(PoisonError::into_inner).remove(&addr);
    }

    /// Every running node's view.
    pub fn views(&self) -> Vec<(String, Arc<ClusterView>)> {
        let nodes = self.nodes.lock().unwrap_or_else(PoisonError::into_inner);
        nodes.values().map(|(h, t)| (h.clone(), Arc::clone(t.view()))).collect()
    }
}

/// Newest copy of each sender's member a receiver applied, by (receiver, sender).
#[derive(Debug, Default)]
pub struct Pumped {
    seq: AtomicU64,
    applied: Mutex<BTreeMap<(String, String), u64>>,
}

/// One round of the gossip stand-in: every running node sends its own member to every other.
pub fn pump_membership(net: &Arc<SimNetwork>, directory: &Directory, pumped: &Arc<Pumped>) {
    let views = directory.views();
    for (from, from_view) in &views {
        let member: Member = Member::clone(&from_view.local());
        for (to, to_view) in views.iter().filter(|(h, _)| h != from) {
            let seq = pumped.seq.fetch_add(1, Ordering::Relaxed);
            let (member, to_view, pumped, key) =
                (member.clone(), Arc::clone(to_view), Arc::clone(pumped), (to.clone(), from.clone()));
            let carried = net.carry(from, to, CALL_TIMEOUT, move || {
                async move {
                    let mut applied = pumped.applied.lock().unwrap_or_else(PoisonError::into_inner);
                    if applied.get(&key).is_none_or(|s| *s < seq) {
                        applied.insert(key, seq);
                        to_view.upsert(member);
                    }
                }
                .boxed()
            });
            tokio::spawn(carried);
        }
    }
}
