//! [`ClusterView`]: members, ring and liveness.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};

use tokio::sync::watch;

use crate::ring::{NodeInfo, Ring, Token};
use crate::version::NodeId;

/// One node of the cluster as others see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Persistent host id (hex), never an IP.
    pub host_id: String,
    /// Compact id used in version vectors.
    pub node_id: NodeId,
    /// gRPC address.
    pub grpc_addr: SocketAddr,
    /// HTTP address.
    pub http_addr: SocketAddr,
    /// Zone (datacenter for LOCAL_QUORUM/EACH_QUORUM); empty when not set.
    pub zone: String,
    /// Rack; empty when not set.
    pub rack: String,
    /// Ring tokens.
    pub tokens: Vec<Token>,
    /// Incremented on every restart.
    pub generation: u64,
}

/// Whether a peer answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Liveness {
    /// Answers.
    Alive,
    /// Has not answered for a while.
    Down,
}

#[derive(Debug)]
struct State {
    members: BTreeMap<String, Arc<Member>>,
    down: BTreeMap<String, bool>,
    ring: Arc<Ring>,
}

/// The cluster as this node sees it. Cheap to share (`Arc`).
#[derive(Debug)]
pub struct ClusterView {
    local: String,
    state: RwLock<State>,
    changes: watch::Sender<u64>,
}

fn build_ring(members: &BTreeMap<String, Arc<Member>>) -> Arc<Ring> {
    let mut builder = Ring::builder();
    for m in members.values().filter(|m| !m.tokens.is_empty()) {
        builder =
            builder.node(NodeInfo::new(m.host_id.clone(), m.zone.clone(), m.rack.clone()), m.tokens.iter().copied());
    }
    match builder.build() {
        Ok(ring) => Arc::new(ring),
        Err(e) => {
            // Two nodes claimed the same token: keep serving with the members whose tokens are unique.
            tracing::error!(error = %e, "cannot build the ring from member tokens; using the local node alone");
            Arc::new(Ring::empty())
        }
    }
}

impl ClusterView {
    /// A view holding only the local member.
    pub fn new(local: Member) -> Self {
        let host = local.host_id.clone();
        let mut members = BTreeMap::new();
        members.insert(host.clone(), Arc::new(local));
        let ring = build_ring(&members);
        let (changes, _) = watch::channel(0);
        Self { local: host, state: RwLock::new(State { members, down: BTreeMap::new(), ring }), changes }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }

    fn bump(&self) {
        self.changes.send_modify(|v| *v += 1);
    }

    /// The local node.
    pub fn local(&self) -> Arc<Member> {
        self.read().members.get(&self.local).cloned().unwrap_or_else(unreachable_local)
    }

    /// The local host id.
    pub fn local_host_id(&self) -> &str {
        &self.local
    }

    /// Adds or updates a member; rebuilds the ring when its placement changed.
    /// Returns true when anything changed.
    pub fn upsert(&self, member: Member) -> bool {
        let mut s = self.write();
        let old = s.members.get(&member.host_id);
        if old.is_some_and(|o| **o == member) {
            return false;
        }
        let placement_changed =
            old.is_none_or(|o| o.tokens != member.tokens || o.zone != member.zone || o.rack != member.rack);
        s.members.insert(member.host_id.clone(), Arc::new(member));
        if placement_changed {
            s.ring = build_ring(&s.members);
        }
        drop(s);
        self.bump();
        true
    }

    /// Marks a peer alive or down (the local node is always alive).
    pub fn set_liveness(&self, host_id: &str, liveness: Liveness) {
        if host_id == self.local {
            return;
        }
        let down = liveness == Liveness::Down;
        let mut s = self.write();
        let was = s.down.insert(host_id.to_owned(), down);
        drop(s);
        if was != Some(down) {
            tracing::info!(host_id, ?liveness, "peer liveness changed");
            self.bump();
        }
    }

    /// Whether `host_id` answers (unknown peers are presumed alive until proven down).
    pub fn liveness(&self, host_id: &str) -> Liveness {
        if self.read().down.get(host_id).copied().unwrap_or(false) { Liveness::Down } else { Liveness::Alive }
    }

    /// True when `host_id` is alive.
    pub fn is_alive(&self, host_id: &str) -> bool {
        self.liveness(host_id) == Liveness::Alive
    }

    /// The current ring.
    pub fn ring(&self) -> Arc<Ring> {
        Arc::clone(&self.read().ring)
    }

    /// A member by host id (shared, so the request path copies no token lists).
    pub fn member(&self, host_id: &str) -> Option<Arc<Member>> {
        self.read().members.get(host_id).cloned()
    }

    /// Every member, by host id.
    pub fn members(&self) -> Vec<Arc<Member>> {
        self.read().members.values().cloned().collect()
    }

    /// Owned copies of the local member and of every member, for the wire (Hello).
    pub fn snapshot(&self) -> (Member, Vec<Member>) {
        let s = self.read();
        let local = s.members.get(&self.local).cloned().unwrap_or_else(unreachable_local);
        (Member::clone(&local), s.members.values().map(|m| Member::clone(m)).collect())
    }

    /// Number of members.
    pub fn member_count(&self) -> usize {
        self.read().members.len()
    }

    /// Number of distinct non-empty zones.
    pub fn zone_count(&self) -> u32 {
        let s = self.read();
        let zones: std::collections::BTreeSet<&str> =
            s.members.values().map(|m| m.zone.as_str()).filter(|z| !z.is_empty()).collect();
        zones.len() as u32
    }

    /// A receiver that sees a new number after every membership or liveness change.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }
}

#[cold]
fn unreachable_local() -> Arc<Member> {
    // `new` inserts the local member and nothing removes it.
    panic!("the local member is missing from the cluster view")
}
