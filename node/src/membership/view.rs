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
    /// Where the node is in its lifecycle.
    pub status: MemberStatus,
}

/// A node's lifecycle state (Cassandra's gossip STATUS).
///
/// Transitions: `Joining -> Normal`, `Replacing -> Normal`,
/// `Normal -> Leaving -> Left`; a dead node removed by an operator becomes
/// `Left` through `removenode`. Only the failure detector's verdict
/// ([`Liveness`]) changes without the node itself saying so. The order
/// (declaration order) only breaks ties in gossip merges.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum MemberStatus {
    /// Owns tokens it is still streaming in; receives writes, serves no reads.
    Joining,
    /// Serves its ranges.
    #[default]
    Normal,
    /// Streaming its ranges away (decommission).
    Leaving,
    /// Gone from the ring; kept only so peers learn it left.
    Left,
    /// Takes over the tokens of the dead node with this host id.
    Replacing {
        /// Host id of the node being replaced.
        old_host_id: String,
    },
}

impl MemberStatus {
    /// The name used in logs, status tables and the wire.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Joining => "JOINING",
            Self::Normal => "NORMAL",
            Self::Leaving => "LEAVING",
            Self::Left => "LEFT",
            Self::Replacing { .. } => "REPLACING",
        }
    }
}

/// Whether a peer answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Liveness {
    /// Answers.
    Alive,
    /// The failure detector doubts it (phi above half the threshold); still used.
    Suspect,
    /// Convicted by the failure detector; skipped by coordinators.
    Down,
}

#[derive(Debug)]
struct State {
    members: BTreeMap<String, Arc<Member>>,
    liveness: BTreeMap<String, Liveness>,
    ring: Arc<Ring>,
    /// The ring once the transitions under way finish, when it differs from `ring`.
    pending_ring: Option<Arc<Ring>>,
}

/// The cluster as this node sees it. Cheap to share (`Arc`).
#[derive(Debug)]
pub struct ClusterView {
    local: String,
    state: RwLock<State>,
    changes: watch::Sender<u64>,
}

/// Whether `m` owns its tokens for reads now: NORMAL, LEAVING (until its
/// ranges have moved) and REPLACING (it keeps the dead node's tokens; reads
/// skip it until it has streamed, see [`Member::serves_reads`]).
pub fn in_read_ring(m: &Member) -> bool {
    !m.tokens.is_empty()
        && matches!(m.status, MemberStatus::Normal | MemberStatus::Leaving | MemberStatus::Replacing { .. })
}

/// Whether `m` owns its tokens once the transitions under way finish:
/// everything in the read ring except LEAVING, plus JOINING.
pub fn in_write_ring(m: &Member) -> bool {
    !m.tokens.is_empty()
        && matches!(m.status, MemberStatus::Normal | MemberStatus::Joining | MemberStatus::Replacing { .. })
}

fn ring_of(members: &BTreeMap<String, Arc<Member>>, keep: fn(&Member) -> bool) -> Arc<Ring> {
    let mut builder = Ring::builder();
    for m in members.values().filter(|m| keep(m)) {
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

/// The read ring (current owners) and, while members join or leave, the
/// write ring (owners after the transition), whose extra owners get writes too.
fn build_rings(members: &BTreeMap<String, Arc<Member>>) -> (Arc<Ring>, Option<Arc<Ring>>) {
    let read = ring_of(members, in_read_ring);
    let moving = members.values().any(|m| in_read_ring(m) != in_write_ring(m));
    let write = moving.then(|| ring_of(members, in_write_ring));
    (read, write)
}

impl Member {
    /// Whether reads may use this member's copy: not while it is still
    /// streaming its ranges in (JOINING, REPLACING) or gone (LEFT).
    pub fn serves_reads(&self) -> bool {
        matches!(self.status, MemberStatus::Normal | MemberStatus::Leaving)
    }
}

impl ClusterView {
    /// A view holding only the local member.
    pub fn new(local: Member) -> Self {
        let host = local.host_id.clone();
        let mut members = BTreeMap::new();
        members.insert(host.clone(), Arc::new(local));
        let (ring, pending_ring) = build_rings(&members);
        let (changes, _) = watch::channel(0);
        let state = State { members, liveness: BTreeMap::new(), ring, pending_ring };
        Self { local: host, state: RwLock::new(state), changes }
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
        let placement_changed = old.is_none_or(|o| {
            o.tokens != member.tokens || o.zone != member.zone || o.rack != member.rack || o.status != member.status
        });
        s.members.insert(member.host_id.clone(), Arc::new(member));
        if placement_changed {
            (s.ring, s.pending_ring) = build_rings(&s.members);
        }
        drop(s);
        self.bump();
        true
    }

    /// Changes the local node's lifecycle status (gossip spreads it).
    /// Returns true when it changed.
    pub fn set_local_status(&self, status: MemberStatus) -> bool {
        let mut local = Member::clone(&self.local());
        if local.status == status {
            return false;
        }
        tracing::info!(from = local.status.as_str(), to = status.as_str(), "local status changed");
        local.status = status;
        self.upsert(local)
    }

    /// Replaces the local node's tokens (join, replace); rebuilds the ring.
    pub fn set_local_tokens(&self, tokens: Vec<Token>) -> bool {
        let mut local = Member::clone(&self.local());
        local.tokens = tokens;
        self.upsert(local)
    }

    /// Marks a peer alive or down (the local node is always alive).
    pub fn set_liveness(&self, host_id: &str, liveness: Liveness) {
        if host_id == self.local {
            return;
        }
        let mut s = self.write();
        let was = s.liveness.insert(host_id.to_owned(), liveness);
        drop(s);
        if was != Some(liveness) {
            tracing::info!(host_id, ?liveness, "peer liveness changed");
            self.bump();
        }
    }

    /// Whether `host_id` answers (unknown peers are presumed alive until proven down).
    pub fn liveness(&self, host_id: &str) -> Liveness {
        self.read().liveness.get(host_id).copied().unwrap_or(Liveness::Alive)
    }

    /// True when `host_id` is not convicted (alive or merely suspected).
    pub fn is_alive(&self, host_id: &str) -> bool {
        self.liveness(host_id) != Liveness::Down
    }

    /// The current ring.
    pub fn ring(&self) -> Arc<Ring> {
        Arc::clone(&self.read().ring)
    }

    /// The ring after the joins, leaves and replacements under way, when one is
    /// under way: its extra owners receive writes but serve no reads.
    pub fn pending_ring(&self) -> Option<Arc<Ring>> {
        self.read().pending_ring.clone()
    }

    /// A member by host id (shared, so the request path copies no token lists).
    pub fn member(&self, host_id: &str) -> Option<Arc<Member>> {
        self.read().members.get(host_id).cloned()
    }

    /// Every member, by host id.
    pub fn members(&self) -> Vec<Arc<Member>> {
        self.read().members.values().cloned().collect()
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
