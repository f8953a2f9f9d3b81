//! Membership that outlives a node's memory, on the [`Gossiper`]:
//! - removals written on a dead node's behalf ([`Gossiper::advertise_removal`],
//!   Cassandra's `advertiseRemoving`/`advertiseTokenRemoved`): the dead
//!   node's state gets a newer generation carrying LEAVING, then LEFT, so
//!   that it replaces the old state everywhere through ordinary gossip,
//!   reaching nodes that were down or not yet born;
//! - what a node saves of its peers and restores at start
//!   ([`Gossiper::saved_states`], [`Gossiper::restore`]): a restart knows the
//!   whole ring (never claims a peer's ranges) and every LEFT host id (never
//!   brings one back); restored peers are DOWN until they answer;
//! - the DNS names of peers that stopped answering, to look up again
//!   ([`Gossiper::names_to_resolve`], [`Gossiper::set_resolved`]).
//!
//! Invariants: nothing here changes the local endpoint; every change goes
//! through [`EndpointState`]'s lattice merge, so saved, restored and
//! gossiped copies combine in any order to the same state. Pure.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use super::super::endpoint::{AppStateKey, AppValue, EndpointState, HeartbeatState, LEFT_RANK, VersionedValue};
use super::{GossipEvent, Gossiper, Liveness, MemberStatus};

/// The application states a node keeps of its peers across restarts (what
/// places them in the ring and finds them); load and schema come afresh.
const SAVED_KEYS: [AppStateKey; 5] =
    [AppStateKey::Status, AppStateKey::Tokens, AppStateKey::Placement, AppStateKey::Addresses, AppStateKey::HostName];

/// Whether `state` carries a status a node never restarts into (LEAVING or
/// LEFT): a new generation with it was written on a removed node's behalf,
/// or tells of a node gone, and is no sign of life.
pub(super) fn no_sign_of_life(state: &EndpointState) -> bool {
    matches!(state.get(AppStateKey::Status), Some(AppValue::Status(MemberStatus::Leaving | MemberStatus::Left)))
}

impl Gossiper {
    /// Writes `status` (LEAVING or LEFT) into the dead peer `host_id`'s
    /// state on its behalf, at a generation above the one known (and a
    /// version above every version in it), so that gossip carries it
    /// everywhere and it outranks every copy of the old state. Returns false
    /// (and changes nothing) for the local node, an unknown peer, another
    /// status, or a peer that already has it or has left.
    pub fn advertise_removal(&mut self, host_id: &str, status: MemberStatus) -> bool {
        if host_id == self.local || !matches!(status, MemberStatus::Leaving | MemberStatus::Left) {
            return false;
        }
        let Some(state) = self.endpoints.get_mut(host_id) else { return false };
        let value = AppValue::Status(status);
        if state.is_left() || state.get(AppStateKey::Status) == Some(&value) {
            return false;
        }
        let version = state.max_version() + 1;
        let generation = state.generation().saturating_add(1).min(LEFT_RANK - 1);
        state.heartbeat = HeartbeatState { generation, version };
        state.app_states.insert(AppStateKey::Status, VersionedValue { version, value });
        if let Some(member) = state.to_member(host_id) {
            self.events.push(GossipEvent::MemberChanged { member, restarted: false });
        }
        true
    }

    /// What this node keeps of its peers across a restart: every peer with
    /// addresses, with [`SAVED_KEYS`] only.
    pub fn saved_states(&self) -> BTreeMap<String, EndpointState> {
        self.endpoints
            .iter()
            .filter(|(h, s)| **h != self.local && s.get(AppStateKey::Addresses).is_some())
            .map(|(h, s)| {
                let app_states: BTreeMap<_, _> =
                    s.app_states.iter().filter(|(k, _)| SAVED_KEYS.contains(k)).map(|(k, v)| (*k, v.clone())).collect();
                let version = app_states.values().map(|v: &VersionedValue| v.version).max().unwrap_or(0);
                let heartbeat = HeartbeatState { generation: s.generation(), version };
                (h.clone(), EndpointState { heartbeat, app_states })
            })
            .collect()
    }

    /// Merges states saved before a restart. A peer known only from them is
    /// DOWN until it answers (it may be gone; a LEFT one is never probed).
    pub fn restore(&mut self, saved: BTreeMap<String, EndpointState>) {
        for (host, state) in saved {
            if host == self.local {
                continue;
            }
            let changed = match self.endpoints.get_mut(&host) {
                Some(mine) => mine.merge(&state).app_changed,
                None => {
                    self.endpoints.insert(host.clone(), state);
                    true
                }
            };
            let Some(member) = self.endpoints.get(&host).and_then(|s| s.to_member(&host)) else { continue };
            if changed {
                self.events.push(GossipEvent::MemberChanged { member, restarted: false });
            }
            if !self.liveness.contains_key(&host) {
                self.liveness.insert(host.clone(), Liveness::Down);
                self.events.push(GossipEvent::LivenessChanged {
                    host_id: host,
                    from: None,
                    to: Liveness::Down,
                    phi: 0.0,
                });
            }
        }
    }

    /// `(host id, DNS name)` of every peer that has not answered for two
    /// intervals and advertised a name (LEFT ones aside): where it may be now.
    pub fn names_to_resolve(&self) -> Vec<(String, String)> {
        self.endpoints
            .iter()
            .filter(|(h, s)| **h != self.local && !s.is_left())
            .filter(|(h, _)| self.stale.contains(*h) || self.liveness(h) == Liveness::Down)
            .filter_map(|(h, s)| s.host_name().map(|name| (h.clone(), name.to_owned())))
            .collect()
    }

    /// Records where `host_id`'s name resolves now: when it differs from its
    /// gossiped address, every tick sends a SYN there too
    /// ([`super::TargetReason::Resolved`]) until the peer is heard. Returns
    /// true when that address is new.
    pub fn set_resolved(&mut self, host_id: &str, addr: Option<SocketAddr>) -> bool {
        let gossiped = self.endpoints.get(host_id).and_then(|s| s.to_member(host_id)).map(|m| m.grpc_addr);
        match addr {
            Some(addr) if Some(addr) != gossiped && addr != self.local_addr => {
                self.resolved.insert(host_id.to_owned(), addr) != Some(addr)
            }
            _ => {
                self.resolved.remove(host_id);
                false
            }
        }
    }
}
