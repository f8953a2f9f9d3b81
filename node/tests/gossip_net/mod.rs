//! A simulated network for the sans-IO gossip core ([`Gossiper`]): many
//! nodes in one process, virtual time in milliseconds, seeded randomness.
//!
//! Each node ticks every `interval` at its own random phase, starting its
//! gossip round and probing every peer it knows. A SYN, its ACK, the ACK2,
//! a probe and its answer each travel with `delay + uniform(0..=jitter)` and are lost
//! with probability `loss`, or when sender and receiver are in different
//! partition groups, or when the receiver is down at delivery. Every drop is
//! counted by cause, so a test can assert that its faults really fired.
//! Liveness verdicts are recorded as they happen (from the cores' events).
//!
//! Messages travel on connections, as over the pooled gRPC channels: one
//! per (initiator, responder), answers on the initiator's. A connection
//! that lost a message to a partition behaves as TCP does after a cut: the
//! lost segment is retransmitted 200 ms after the loss, then after 400,
//! 800 ms... (doubling), and nothing else passes before it; after the heal
//! the first retransmission carries everything queued. A probe with
//! `reconnect` replaces the connection with a new one, which pays one
//! round trip to open.
//!
//! Names: node i advertises `node-i:7000` ([`name`]); the seeds are given
//! by name; every `resolve_every` ticks each node looks its seeds' names and
//! its silent peers' names up in the simulation's name table, which follows
//! restarts (a restarted node is on a new address), as the node's gossip
//! worker does with DNS.
//!
//! This network is separate from `ringkv_node::peer::SimNetwork` on purpose:
//! it drives the pure core message by message and models TCP retransmission
//! and reconnects, which the shared network (a lost message is simply lost)
//! does not. The production shell over the shared network is proven in
//! `gossip_shell_sim.rs`.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::net::SocketAddr;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use ringkv_node::membership::{
    AppValue, DetectorConfig, GossipAck, GossipAck2, GossipEvent, GossipPing, GossipSyn, Gossiper, Liveness, Member,
    MemberStatus,
};

/// Network behaviour.
#[derive(Debug, Clone, Copy)]
pub struct NetConfig {
    /// Fixed one-way delay, ms.
    pub delay_ms: u64,
    /// Extra uniform delay in `0..=jitter_ms`.
    pub jitter_ms: u64,
    /// Probability that one message is lost.
    pub loss: f64,
}

impl Default for NetConfig {
    fn default() -> Self {
        Self { delay_ms: 2, jitter_ms: 10, loss: 0.0 }
    }
}

#[derive(Debug)]
enum Msg {
    Syn { from: usize, syn: GossipSyn },
    Ack { from: usize, ack: GossipAck },
    Ack2 { ack2: GossipAck2 },
    Ping { from: usize, ping: GossipPing },
    Pong { pong: GossipPing },
    Tick,
}

/// A liveness verdict one node reached about another.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// Virtual time, ms.
    pub at: u64,
    /// Who judged.
    pub observer: usize,
    /// Who was judged.
    pub target: usize,
    /// The verdict.
    pub to: Liveness,
    /// Whether the target was really running at that moment.
    pub target_up: bool,
}

/// Messages dropped, by cause.
#[derive(Debug, Clone, Copy, Default)]
pub struct Drops {
    /// Lost at random.
    pub loss: u64,
    /// Cut by a partition.
    pub partition: u64,
    /// Sent to a node that was down.
    pub down: u64,
    /// Delivered.
    pub delivered: u64,
}

struct SimNode {
    core: Gossiper,
    member: Member,
    up: bool,
    ticks: u64,
}

/// One connection's state (see the module docs).
#[derive(Debug, Clone, Copy, Default)]
struct Link {
    /// When a message on it was first lost to a partition (unacknowledged since).
    stalled_since: Option<u64>,
    /// Nothing is delivered on it before this time.
    blocked_until: u64,
    /// Opened but no message sent yet: the first pays the handshake.
    opening: bool,
}

/// TCP's first retransmission timeout (Linux's minimum), ms.
const FIRST_RTO_MS: u64 = 200;

/// The simulated cluster.
pub struct GossipSim {
    nodes: Vec<SimNode>,
    addrs: BTreeMap<SocketAddr, usize>,
    queue: BinaryHeap<Reverse<(u64, u64, usize)>>,
    pending: BTreeMap<u64, Msg>,
    seq: u64,
    now: u64,
    rng: StdRng,
    net: NetConfig,
    groups: Option<Vec<u8>>,
    interval: u64,
    detector: DetectorConfig,
    seeds: Vec<SocketAddr>,
    seed_count: usize,
    links: BTreeMap<(usize, usize), Link>,
    /// Ticks between two lookups of the names (0: never).
    pub resolve_every: u64,
    /// Every verdict change so far.
    pub verdicts: Vec<Verdict>,
    /// Nodes that learned they were removed ([`GossipEvent::RemovedByPeers`]).
    pub removed_notices: Vec<usize>,
    /// Drop counters.
    pub drops: Drops,
}

fn addr(i: usize, generation: u64) -> SocketAddr {
    SocketAddr::from(([10, 0, (i / 250) as u8, (i % 250) as u8 + 1], 7000 + generation as u16))
}

/// Host id of node `i`.
pub fn host(i: usize) -> String {
    format!("node-{i:03}")
}

/// The name node `i` advertises.
pub fn name(i: usize) -> String {
    format!("node-{i}:7000")
}

fn member(i: usize, generation: u64) -> Member {
    Member {
        host_id: host(i),
        node_id: i as u64 + 1,
        grpc_addr: addr(i, generation),
        http_addr: addr(i, generation + 100),
        zone: String::new(),
        rack: String::new(),
        tokens: vec![(i as u64 + 1) * 1_000_003, (i as u64 + 1) * 7_000_019],
        generation,
        status: MemberStatus::Normal,
    }
}

impl GossipSim {
    /// `n` nodes that know nothing but the first `seeds` nodes' addresses.
    pub fn new(n: usize, seeds: usize, seed: u64, net: NetConfig) -> Self {
        let seeds: Vec<SocketAddr> = (0..seeds.min(n)).map(|i| addr(i, 1)).collect();
        let mut sim = Self {
            nodes: Vec::with_capacity(n),
            addrs: BTreeMap::new(),
            queue: BinaryHeap::new(),
            pending: BTreeMap::new(),
            seq: 0,
            now: 0,
            rng: StdRng::seed_from_u64(seed),
            net,
            groups: None,
            interval: 1000,
            detector: DetectorConfig::default(),
            seed_count: seeds.len(),
            seeds,
            links: BTreeMap::new(),
            resolve_every: 5,
            verdicts: Vec::new(),
            removed_notices: Vec::new(),
            drops: Drops::default(),
        };
        for i in 0..n {
            let m = member(i, 1);
            sim.addrs.insert(m.grpc_addr, i);
            let core = sim.new_core(&m);
            sim.nodes.push(SimNode { core, member: m, up: true, ticks: 0 });
            let phase = sim.rng.random_range(0..sim.interval);
            sim.schedule(phase, i, Msg::Tick);
        }
        sim
    }

    fn new_core(&self, m: &Member) -> Gossiper {
        let mut core = Gossiper::new(m, self.seeds.clone(), self.detector);
        core.update_local([AppValue::HostName(name(m.node_id as usize - 1))]);
        core
    }

    /// Where `name` resolves now (the running address of its node).
    pub fn resolve(&self, wanted: &str) -> Option<SocketAddr> {
        let i = (0..self.nodes.len()).find(|&i| name(i) == wanted)?;
        self.nodes[i].up.then_some(self.nodes[i].member.grpc_addr)
    }

    /// What node `i`'s gossip worker does every `resolve_every` ticks: seeds
    /// and silent peers looked up by name.
    fn resolve_names(&mut self, i: usize) {
        let seeds: Vec<SocketAddr> = (0..self.seed_count).filter_map(|s| self.resolve(&name(s))).collect();
        let wanted = self.nodes[i].core.names_to_resolve();
        let found: Vec<(String, Option<SocketAddr>)> = wanted.into_iter().map(|(h, n)| (h, self.resolve(&n))).collect();
        let core = &mut self.nodes[i].core;
        core.set_seeds(seeds);
        for (host, addr) in found {
            core.set_resolved(&host, addr);
        }
    }

    /// Virtual time now, ms.
    pub fn now(&self) -> u64 {
        self.now
    }

    /// The core of node `i`.
    pub fn core(&self, i: usize) -> &Gossiper {
        &self.nodes[i].core
    }

    /// The core of node `i`, to change its local state.
    pub fn core_mut(&mut self, i: usize) -> &mut Gossiper {
        &mut self.nodes[i].core
    }

    /// The member node `i` announces now.
    pub fn member(&self, i: usize) -> &Member {
        &self.nodes[i].member
    }

    fn schedule(&mut self, after: u64, to: usize, msg: Msg) {
        self.seq += 1;
        self.pending.insert(self.seq, msg);
        self.queue.push(Reverse((self.now + after, self.seq, to)));
    }

    /// Sends `msg` from `from` to `to` on the connection `link` (initiator, responder).
    fn send(&mut self, link: (usize, usize), from: usize, to: usize, msg: Msg) {
        let now = self.now;
        let conn = self.links.entry(link).or_insert(Link { opening: true, ..Link::default() });
        if let Some(groups) = &self.groups
            && groups[from] != groups[to]
        {
            self.drops.partition += 1;
            conn.stalled_since.get_or_insert(now);
            return;
        }
        let mut at = now;
        if let Some(since) = conn.stalled_since.take() {
            // The retransmission after `now` carries the lost segment, and everything behind it.
            let (mut rto, mut next) = (FIRST_RTO_MS, since + FIRST_RTO_MS);
            while next < now {
                rto *= 2;
                next += rto;
            }
            conn.blocked_until = next;
        }
        at = at.max(conn.blocked_until);
        if std::mem::take(&mut conn.opening) {
            at += 2 * self.net.delay_ms;
        }
        if self.net.loss > 0.0 && self.rng.random::<f64>() < self.net.loss {
            self.drops.loss += 1;
            return;
        }
        let delay = self.net.delay_ms + self.rng.random_range(0..=self.net.jitter_ms);
        self.schedule(at - now + delay, to, msg);
    }

    /// Kills node `i` (SIGKILL: its state is gone, messages to it are dropped).
    pub fn crash(&mut self, i: usize) {
        self.nodes[i].up = false;
    }

    /// Restarts node `i` with a new generation, on a new address, with `tokens`.
    pub fn restart(&mut self, i: usize, tokens: Vec<u64>) {
        self.restart_with(i, tokens, false);
    }

    /// Restarts node `i` (new generation, new address); with `keep_saved`
    /// it restores the peer states it saved ([`Gossiper::saved_states`]), as
    /// a node restarting on its data directory does.
    pub fn restart_with(&mut self, i: usize, tokens: Vec<u64>, keep_saved: bool) {
        let saved = self.nodes[i].core.saved_states();
        let generation = self.nodes[i].member.generation + 1;
        let m = Member { tokens, ..member(i, generation) };
        // Nothing listens on the old address any more, and its connections are gone.
        self.addrs.retain(|_, node| *node != i);
        self.addrs.insert(m.grpc_addr, i);
        self.links.retain(|(a, b), _| *a != i && *b != i);
        let mut core = self.new_core(&m);
        // As `kvnode serve`: the seed names are resolved at start.
        core.set_seeds((0..self.seed_count).filter_map(|s| self.resolve(&name(s))).collect());
        if keep_saved {
            core.restore(saved);
        }
        self.nodes[i] = SimNode { core, member: m, up: true, ticks: 0 };
        self.record_events(i);
        let phase = self.rng.random_range(0..self.interval);
        self.schedule(phase, i, Msg::Tick);
    }

    /// Starts a brand-new node (index `nodes()`), knowing only the seeds; returns its index.
    pub fn add_node(&mut self) -> usize {
        let i = self.nodes.len();
        let m = member(i, 1);
        self.addrs.insert(m.grpc_addr, i);
        let core = self.new_core(&m);
        self.nodes.push(SimNode { core, member: m, up: true, ticks: 0 });
        if let Some(groups) = &mut self.groups {
            groups.push(0);
        }
        let phase = self.rng.random_range(0..self.interval);
        self.schedule(phase, i, Msg::Tick);
        i
    }

    /// Number of nodes (running or not).
    pub fn nodes(&self) -> usize {
        self.nodes.len()
    }

    /// Splits the nodes: `groups[i]` is node i's side; `None` heals.
    pub fn partition(&mut self, groups: Option<Vec<u8>>) {
        self.groups = groups;
    }

    /// Runs until virtual time `until` (ms).
    pub fn run_until(&mut self, until: u64) {
        while let Some(Reverse((at, seq, to))) = self.queue.peek().copied() {
            if at > until {
                break;
            }
            self.queue.pop();
            self.now = at;
            let Some(msg) = self.pending.remove(&seq) else { continue };
            self.deliver(to, msg);
        }
        self.now = until;
    }

    /// Runs for `ms` more milliseconds.
    pub fn run_for(&mut self, ms: u64) {
        let until = self.now + ms;
        self.run_until(until);
    }

    fn deliver(&mut self, to: usize, msg: Msg) {
        if !self.nodes[to].up {
            if !matches!(msg, Msg::Tick) {
                self.drops.down += 1;
            }
            return;
        }
        let now = Duration::from_millis(self.now);
        match msg {
            Msg::Tick => {
                self.nodes[to].ticks += 1;
                if self.resolve_every > 0 && self.nodes[to].ticks.is_multiple_of(self.resolve_every) {
                    self.resolve_names(to);
                }
                let out = self.nodes[to].core.on_tick(now, &mut self.rng);
                let probes = self.nodes[to].core.probes();
                // As the gossip worker: reconnects first, then the rounds and the probes.
                for p in probes.iter().filter(|p| p.reconnect) {
                    if let Some(&dest) = self.addrs.get(&p.to) {
                        self.links.remove(&(to, dest));
                    }
                }
                for o in out {
                    if let Some(&dest) = self.addrs.get(&o.to) {
                        self.send((to, dest), to, dest, Msg::Syn { from: to, syn: o.syn });
                    }
                }
                for p in probes {
                    if let Some(&dest) = self.addrs.get(&p.to) {
                        self.send((to, dest), to, dest, Msg::Ping { from: to, ping: p.ping });
                    }
                }
                self.schedule(self.interval, to, Msg::Tick);
            }
            Msg::Syn { from, syn } => {
                self.drops.delivered += 1;
                let ack = self.nodes[to].core.on_syn(now, &syn);
                self.send((from, to), to, from, Msg::Ack { from: to, ack });
            }
            Msg::Ack { from, ack } => {
                self.drops.delivered += 1;
                let ack2 = self.nodes[to].core.on_ack(now, &ack);
                self.send((to, from), to, from, Msg::Ack2 { ack2 });
            }
            Msg::Ack2 { ack2 } => {
                self.drops.delivered += 1;
                self.nodes[to].core.on_ack2(now, &ack2);
            }
            Msg::Ping { from, ping } => {
                self.drops.delivered += 1;
                let pong = self.nodes[to].core.on_ping(now, &ping);
                self.send((from, to), to, from, Msg::Pong { pong });
            }
            Msg::Pong { pong } => {
                self.drops.delivered += 1;
                self.nodes[to].core.on_pong(now, &pong);
            }
        }
        self.record_events(to);
    }

    fn record_events(&mut self, observer: usize) {
        for event in self.nodes[observer].core.take_events() {
            if event == GossipEvent::RemovedByPeers {
                self.removed_notices.push(observer);
            }
            if let GossipEvent::LivenessChanged { host_id, to, .. } = event {
                let Some(target) = host_id.strip_prefix("node-").and_then(|s| s.parse::<usize>().ok()) else {
                    continue;
                };
                let target_up = self.nodes[target].up;
                self.verdicts.push(Verdict { at: self.now, observer, target, to, target_up });
            }
        }
    }

    /// True when every running node knows every running node at its current
    /// generation with all of its application states (heartbeats aside).
    pub fn converged(&self) -> bool {
        let up: Vec<usize> = (0..self.nodes.len()).filter(|&i| self.nodes[i].up).collect();
        up.iter().all(|&i| {
            up.iter().all(|&j| {
                let Some(own) = self.nodes[j].core.endpoint(&host(j)) else { return false };
                self.nodes[i].core.endpoint(&host(j)).is_some_and(|seen| {
                    seen.generation() == own.generation() && seen.max_app_version() >= own.max_app_version()
                })
            })
        })
    }

    /// Runs whole intervals until [`GossipSim::converged`], at most `max_rounds`;
    /// returns the rounds it took.
    pub fn rounds_to_converge(&mut self, max_rounds: u64) -> Option<u64> {
        for round in 1..=max_rounds {
            self.run_for(self.interval);
            if self.converged() {
                return Some(round);
            }
        }
        None
    }

    /// Whether every running node's verdict on every other running node is `liveness`.
    pub fn all_see_all(&self, liveness: Liveness) -> bool {
        let up: Vec<usize> = (0..self.nodes.len()).filter(|&i| self.nodes[i].up).collect();
        up.iter().all(|&i| up.iter().filter(|&&j| j != i).all(|&j| self.nodes[i].core.liveness(&host(j)) == liveness))
    }
}
