//! [`Gossiper`]: the sans-IO gossip core (Cassandra's `Gossiper` plus a
//! direct failure detector), driven by [`Gossiper::on_tick`],
//! [`Gossiper::probes`], [`Gossiper::on_syn`], [`Gossiper::on_ack`],
//! [`Gossiper::on_ack2`], [`Gossiper::on_ping`] and [`Gossiper::on_pong`].
//!
//! Every tick (the gossip interval, 1 s) the local heartbeat version grows,
//! a SYN goes to one random live peer, sometimes to an unreachable (DOWN)
//! one (probability unreachable / (live + 1)) and sometimes to a seed
//! (always when no peer is live, else with probability seeds / known,
//! unless the live peer just chosen was a seed and there are at least as
//! many live peers as seeds), plus one to every DOWN peer whose advertised
//! name resolves to an address other than its gossiped one
//! ([`Gossiper::set_resolved`]), then every peer's phi is re-evaluated.
//!
//! Liveness comes from direct contact, as in ScyllaDB's direct failure
//! detector, not from heartbeats relayed by gossip: every tick the shell also
//! pings every known peer that has not left ([`Gossiper::probes`]), and every
//! message straight from a peer (its ping, its answer to ours, its SYN or
//! ACK) is reported to the [`PhiAccrualDetector`] as an arrival. A relayed
//! heartbeat reaches the last of n nodes only after about log2(n) rounds, so
//! with it a dead node went on "arriving" for seconds after it died and
//! detection slowed with the cluster's size (15.6 s at 50 nodes); direct
//! arrivals stop the moment it dies, so detection takes the detector's
//! threshold alone at any size, and a node that cannot reach a peer itself
//! (the one that would have to send it writes) is the one that marks it DOWN.
//! Gossip still starts the clock for a peer it brings news of (first heard
//! of, or restarted with a new generation), so a dead node learned of
//! second-hand is convicted too.
//!
//! A probe to a peer not heard directly for two intervals asks for a new
//! connection ([`Probe::reconnect`]): a pooled connection that lost packets
//! during a network cut is stuck in TCP's retransmission backoff for
//! seconds after the heal, while a new one gets through at once.
//! Removals, saved membership and name lookups are in `durable`.
//!
//! Invariants: the local endpoint is changed only through
//! [`Gossiper::update_local`] and the tick, never by what peers say about it;
//! liveness is ALIVE below `threshold / 2`, SUSPECT up to the threshold and
//! DOWN above it; a DOWN peer's interval history is dropped when it is heard
//! again (the silence says nothing about its usual interval), as is that of
//! a peer that restarted; no peer is ever removed. Pure: no I/O, no clock,
//! randomness only from the `rng` passed in; what changed is queued as
//! [`GossipEvent`]s for the shell.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::Duration;

use rand::Rng;

use super::digest::{self, GossipAck, GossipAck2, GossipPing, GossipSyn};
use super::endpoint::{AppValue, EndpointState, VersionedValue};
use super::phi::{DetectorConfig, PhiAccrualDetector};
use super::{Liveness, Member, MemberStatus};

mod durable;

/// A SYN to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// Where (a peer's or seed's gRPC address).
    pub to: SocketAddr,
    /// Why: which of Cassandra's rules chose it.
    pub reason: TargetReason,
    /// The message.
    pub syn: GossipSyn,
}

/// A direct liveness probe to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    /// The peer's gRPC address.
    pub to: SocketAddr,
    /// The message.
    pub ping: GossipPing,
    /// Open a new connection for it (drop the pooled one): the peer has not
    /// answered for two intervals, and a connection that lost packets
    /// during a cut waits out TCP's retransmission backoff (seconds, and
    /// doubling) before it carries anything again, long after the heal.
    pub reconnect: bool,
}

/// Why a peer was chosen for a round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetReason {
    /// A random live peer.
    Live,
    /// A random unreachable (DOWN) peer.
    Unreachable,
    /// A random seed.
    Seed,
    /// A DOWN peer at the address its DNS name resolves to now (it may have
    /// restarted elsewhere); the round brings its new state.
    Resolved,
}

/// Something the shell must apply to the cluster view.
#[derive(Debug, Clone, PartialEq)]
pub enum GossipEvent {
    /// A member was learned of or its state changed (new generation, status, tokens, ...).
    MemberChanged {
        /// The member as now known.
        member: Member,
        /// The member restarted (a newer generation replaced the old state).
        restarted: bool,
    },
    /// The failure detector changed its verdict about a peer.
    LivenessChanged {
        /// The peer.
        host_id: String,
        /// Previous verdict (`None` when first heard of).
        from: Option<Liveness>,
        /// New verdict.
        to: Liveness,
        /// phi at the change.
        phi: f64,
    },
    /// Peers hold this node as LEFT (it was removed with `removenode` while
    /// it was down): its host id no longer belongs to the cluster.
    RemovedByPeers,
}

/// The gossip core of one node; see the module docs.
#[derive(Debug)]
pub struct Gossiper {
    local: String,
    local_addr: SocketAddr,
    seeds: Vec<SocketAddr>,
    endpoints: BTreeMap<String, EndpointState>,
    version: u64,
    detector: PhiAccrualDetector,
    liveness: BTreeMap<String, Liveness>,
    events: Vec<GossipEvent>,
    /// Peers silent for two intervals at the last tick: their probes reconnect.
    stale: BTreeSet<String>,
    /// Where DOWN peers' DNS names resolve now, when that differs from their gossiped address.
    resolved: BTreeMap<String, SocketAddr>,
    /// Peers said this node was removed ([`GossipEvent::RemovedByPeers`] queued once).
    removed_here: bool,
}

impl Gossiper {
    /// The core of the node `local` (its generation and application states
    /// come from it), contacting `seeds` (addresses; the local one is skipped).
    pub fn new(local: &Member, seeds: Vec<SocketAddr>, detector: DetectorConfig) -> Self {
        let mut me = Self {
            local: local.host_id.clone(),
            local_addr: local.grpc_addr,
            seeds: seeds.into_iter().filter(|s| *s != local.grpc_addr).collect(),
            endpoints: BTreeMap::new(),
            version: 0,
            detector: PhiAccrualDetector::new(detector),
            liveness: BTreeMap::new(),
            events: Vec::new(),
            stale: BTreeSet::new(),
            resolved: BTreeMap::new(),
            removed_here: false,
        };
        me.endpoints.insert(me.local.clone(), EndpointState::new(local.generation));
        me.update_local(AppValue::of_member(local));
        me
    }

    /// The local host id.
    pub fn local_host_id(&self) -> &str {
        &self.local
    }

    /// Seeds contacted (without the local address).
    pub fn seeds(&self) -> &[SocketAddr] {
        &self.seeds
    }

    /// Replaces the seed addresses (their names were resolved again).
    pub fn set_seeds(&mut self, seeds: Vec<SocketAddr>) {
        let local = self.local_addr;
        self.seeds = seeds.into_iter().filter(|s| *s != local).collect();
    }

    /// Sets local application states; each one that differs gets a new
    /// version. Returns true when any changed.
    pub fn update_local(&mut self, values: impl IntoIterator<Item = AppValue>) -> bool {
        let mut changed = false;
        for value in values {
            let Some(me) = self.endpoints.get(&self.local) else { return changed };
            if me.get(value.key()) == Some(&value) {
                continue;
            }
            self.version += 1;
            let version = self.version;
            if let Some(me) = self.endpoints.get_mut(&self.local) {
                me.app_states.insert(value.key(), VersionedValue { version, value });
                changed = true;
            }
        }
        changed
    }

    /// Publishes what the view says about the local member (status, tokens,
    /// placement, addresses). Returns true when anything changed.
    pub fn sync_local_member(&mut self, member: &Member) -> bool {
        self.update_local(AppValue::of_member(member))
    }

    /// One gossip round at `now`: heartbeat, the SYNs to send, then the
    /// failure detector's verdicts.
    pub fn on_tick<R: Rng + ?Sized>(&mut self, now: Duration, rng: &mut R) -> Vec<Outgoing> {
        self.version += 1;
        let version = self.version;
        if let Some(me) = self.endpoints.get_mut(&self.local) {
            me.heartbeat.version = version;
        }
        let syn = GossipSyn { from: self.local.clone(), digests: digest::digests_of(&self.endpoints) };
        let mut targets: Vec<(SocketAddr, TargetReason)> = Vec::new();
        let (live, unreachable) = self.peer_addresses();
        let mut gossiped_to_seed = false;
        if let Some(to) = pick(&live, rng) {
            gossiped_to_seed = self.seeds.contains(&to);
            targets.push((to, TargetReason::Live));
        }
        if !unreachable.is_empty() && rng.random::<f64>() < unreachable.len() as f64 / (live.len() as f64 + 1.0) {
            targets.extend(pick(&unreachable, rng).map(|to| (to, TargetReason::Unreachable)));
        }
        if !gossiped_to_seed || live.len() < self.seeds.len() {
            let known = (live.len() + unreachable.len()) as f64;
            if live.is_empty() || rng.random::<f64>() < self.seeds.len() as f64 / known {
                targets.extend(pick(&self.seeds, rng).map(|to| (to, TargetReason::Seed)));
            }
        }
        targets.extend(self.resolved.values().map(|to| (*to, TargetReason::Resolved)));
        let mut sent = Vec::with_capacity(targets.len());
        for (to, reason) in targets {
            if !sent.iter().any(|o: &Outgoing| o.to == to) {
                sent.push(Outgoing { to, reason, syn: syn.clone() });
            }
        }
        let peers: Vec<String> = self.liveness.keys().cloned().collect();
        for peer in peers {
            self.evaluate(&peer, now);
        }
        self.mark_stale(now);
        sent
    }

    /// Notes the peers not heard directly for two intervals (or never):
    /// their next probes open new connections.
    fn mark_stale(&mut self, now: Duration) {
        let patience = self.detector.config().first_heartbeat_estimate * 2;
        let detector = &self.detector;
        self.stale = self
            .endpoints
            .keys()
            .filter(|h| **h != self.local)
            .filter(|h| {
                detector.window(h).and_then(|w| w.last_arrival()).is_none_or(|last| now.saturating_sub(last) > patience)
            })
            .cloned()
            .collect();
    }

    /// Addresses of live (not DOWN) and unreachable (DOWN) peers.
    fn peer_addresses(&self) -> (Vec<SocketAddr>, Vec<SocketAddr>) {
        let (mut live, mut unreachable) = (Vec::new(), Vec::new());
        for (host, state) in self.endpoints.iter().filter(|(h, _)| **h != self.local) {
            let Some(addr) = state.to_member(host).map(|m| m.grpc_addr) else { continue };
            if addr == self.local_addr {
                continue;
            }
            match self.liveness(host) {
                Liveness::Down => unreachable.push(addr),
                _ => live.push(addr),
            }
        }
        (live, unreachable)
    }

    /// The probes of this tick: one to every known peer that has not left
    /// (DOWN ones included, so that a peer that comes back is heard within
    /// an interval).
    pub fn probes(&self) -> Vec<Probe> {
        let ping = GossipPing { from: self.local.clone() };
        self.endpoints
            .iter()
            .filter(|(h, _)| **h != self.local)
            .filter_map(|(host, state)| state.to_member(host))
            .filter(|m| m.status != MemberStatus::Left && m.grpc_addr != self.local_addr)
            .map(|m| Probe { to: m.grpc_addr, ping: ping.clone(), reconnect: self.stale.contains(&m.host_id) })
            .collect()
    }

    /// Receives a peer's probe: it proves the peer alive; the answer is our own.
    pub fn on_ping(&mut self, now: Duration, ping: &GossipPing) -> GossipPing {
        self.heard_directly(now, &ping.from);
        GossipPing { from: self.local.clone() }
    }

    /// Receives the answer to one of our probes.
    pub fn on_pong(&mut self, now: Duration, pong: &GossipPing) {
        self.heard_directly(now, &pong.from);
    }

    /// Receives a SYN: applies nothing, answers with what the sender lacks
    /// and what this node wants.
    pub fn on_syn(&mut self, now: Duration, syn: &GossipSyn) -> GossipAck {
        self.heard_directly(now, &syn.from);
        let examined = digest::examine(&syn.digests, &self.endpoints);
        // Never ask a peer about ourselves: only we change our state.
        let requests = examined.requests.into_iter().filter(|d| d.host_id != self.local).collect();
        GossipAck { from: self.local.clone(), requests, states: examined.states }
    }

    /// Receives the ACK to our SYN: applies its states and answers the requests.
    pub fn on_ack(&mut self, now: Duration, ack: &GossipAck) -> GossipAck2 {
        self.heard_directly(now, &ack.from);
        self.apply(now, &ack.states);
        GossipAck2 { from: self.local.clone(), states: digest::answer_requests(&ack.requests, &self.endpoints) }
    }

    /// Receives the ACK2 that closes a round: applies its states.
    pub fn on_ack2(&mut self, now: Duration, ack2: &GossipAck2) {
        self.apply(now, &ack2.states);
    }

    /// A message straight from `peer` proves it alive now: an arrival for
    /// the detector when `peer` is known (an unknown one is judged once
    /// gossip brings its state). A DOWN peer's history is dropped first.
    fn heard_directly(&mut self, now: Duration, peer: &str) {
        if peer == self.local || !self.endpoints.contains_key(peer) {
            return;
        }
        if self.liveness(peer) == Liveness::Down {
            self.detector.reset(peer);
        }
        self.resolved.remove(peer);
        self.stale.remove(peer);
        self.detector.report(peer, now);
        self.evaluate(peer, now);
    }

    /// Merges remote states (never about the local node).
    fn apply(&mut self, now: Duration, states: &BTreeMap<String, EndpointState>) {
        for (host, remote) in states {
            if *host == self.local {
                let mine = self.endpoints.get(host).is_some_and(EndpointState::is_left);
                if remote.is_left() && !mine && !self.removed_here {
                    self.removed_here = true;
                    self.events.push(GossipEvent::RemovedByPeers);
                }
                continue;
            }
            // Only news of a peer (first heard of, or restarted) starts its
            // clock; relayed heartbeats are not arrivals (see the module docs).
            let (news, restarted, changed) = match self.endpoints.get_mut(host) {
                None => {
                    self.endpoints.insert(host.clone(), remote.clone());
                    (true, false, true)
                }
                Some(mine) => {
                    let outcome = mine.merge(remote);
                    (outcome.new_generation, outcome.new_generation, outcome.app_changed)
                }
            };
            if changed && let Some(member) = self.endpoints.get(host).and_then(|s| s.to_member(host)) {
                self.events.push(GossipEvent::MemberChanged { member, restarted });
            }
            let news = news && !self.endpoints.get(host).is_some_and(durable::no_sign_of_life);
            if news {
                if restarted {
                    self.detector.reset(host);
                }
                self.detector.report(host, now);
                self.evaluate(host, now);
            }
        }
    }

    /// Re-judges `peer` at `now`, queuing an event when the verdict changes.
    fn evaluate(&mut self, peer: &str, now: Duration) {
        if self.detector.window(peer).is_none() {
            // Restored from disk and not heard since: it stays DOWN until it answers.
            return;
        }
        let phi = self.detector.phi(peer, now);
        let threshold = self.detector.config().convict_threshold;
        let to = if phi > threshold {
            Liveness::Down
        } else if phi > threshold / 2.0 {
            Liveness::Suspect
        } else {
            Liveness::Alive
        };
        let from = self.liveness.insert(peer.to_owned(), to);
        if from != Some(to) {
            self.events.push(GossipEvent::LivenessChanged { host_id: peer.to_owned(), from, to, phi });
        }
    }

    /// Takes the events queued since the last call, oldest first.
    pub fn take_events(&mut self) -> Vec<GossipEvent> {
        std::mem::take(&mut self.events)
    }

    /// What is known about `host_id`.
    pub fn endpoint(&self, host_id: &str) -> Option<&EndpointState> {
        self.endpoints.get(host_id)
    }

    /// Every endpoint state, the local one included.
    pub fn endpoints(&self) -> &BTreeMap<String, EndpointState> {
        &self.endpoints
    }

    /// The failure detector's verdict on `host_id` (the local node and
    /// peers never heard are ALIVE).
    pub fn liveness(&self, host_id: &str) -> Liveness {
        self.liveness.get(host_id).copied().unwrap_or(Liveness::Alive)
    }

    /// phi of `host_id` at `now`.
    pub fn phi(&self, host_id: &str, now: Duration) -> f64 {
        self.detector.phi(host_id, now)
    }

    /// The failure detector (windows per peer).
    pub fn detector(&self) -> &PhiAccrualDetector {
        &self.detector
    }
}

fn pick<R: Rng + ?Sized>(from: &[SocketAddr], rng: &mut R) -> Option<SocketAddr> {
    if from.is_empty() { None } else { Some(from[rng.random_range(0..from.len())]) }
}
