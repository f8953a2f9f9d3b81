//! [`SimNetwork`]: one seeded, in-process network that carries every
//! node-to-node protocol of a simulated cluster, and the port implementations
//! over it:
//! - [`SimTransport`]: replica calls (`transport::Transport`), served by the
//!   target's [`ReplicaHandler`] ([`replica`]);
//! - [`SimGossipTransport`]: gossip (`membership::GossipTransport`), served by
//!   the target's [`GossipHandle`], so the production `GossipWorker` runs on
//!   it ([`gossip`]);
//! - [`SimConnector`]: anti-entropy (`antientropy::PeerConnector` and
//!   `AntiEntropyPeer`), served by the target's [`LocalReplica`] ([`antientropy`]);
//! - [`SimStreamPeers`]: streaming (`topology::StreamPeers`), served by the
//!   target's real `StreamingService` over its [`Topology`] ([`streaming`]).
//!
//! A node registers what it serves under its host id ([`SimNetwork::register`],
//! [`SimNetwork::serve_gossip`], ...); address-based protocols (gossip,
//! streaming) find the host by the address it was registered with. Every
//! message of every protocol goes through the same fault pipeline: a request
//! delay, then at arrival a check for crashed hosts, partitions and random
//! loss, then the service (run as its own task, as a server would, so it
//! finishes even when the caller gives up), then a reply delay and the same
//! checks for the way back. All randomness comes from one seeded RNG behind a
//! std `Mutex`, and delays are `tokio::time::sleep`, so a test on a
//! current-thread runtime with the clock paused (`start_paused`) replays the
//! same run for the same seed.
//!
//! Failures look like the gRPC clients': a crashed or cut-off peer is
//! `Unreachable` after the delay; a lost request or reply is a `Timeout` at
//! the call's deadline, as a lost packet is. What is left out is the gRPC
//! framing, and TCP's retransmission (a lost message is lost; the sans-IO
//! gossip simulation in the tests models retransmission timing).
//!
//! Invariants: a crash keeps the node's services (and so its storage: what
//! it acknowledged was durable) but makes it unreachable both ways until
//! [`SimNetwork::restart`]; every fault taken increments a counter in
//! [`SimStats`], kept per [`Protocol`] and in total, so tests can prove that
//! their faults fired on the protocol they test.
//!
//! This module may call the ports it implements (`transport`, `membership`,
//! `antientropy`, `topology`), `version`, `error`, `server::status` and
//! `peer::call` (to classify handler errors exactly as the gRPC server and
//! client do) and `peer::streaming` (the streaming service and its
//! conversions).

mod antientropy;
mod gossip;
mod replica;
mod streaming;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::time::Instant;

use crate::antientropy::LocalReplica;
use crate::membership::{GossipHandle, Member};
use crate::topology::Topology;
use crate::transport::{ReplicaHandler, TransportError};

pub use antientropy::SimConnector;
pub use gossip::SimGossipTransport;
pub use replica::SimTransport;
pub use streaming::SimStreamPeers;

/// The protocols a [`SimNetwork`] carries, for per-protocol counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Protocol {
    /// Replica calls ([`SimTransport`]).
    Replica = 0,
    /// Gossip rounds and probes ([`SimGossipTransport`]).
    Gossip = 1,
    /// Anti-entropy exchanges ([`SimConnector`]).
    AntiEntropy = 2,
    /// Topology and streaming calls ([`SimStreamPeers`]).
    Streaming = 3,
    /// Anything a test carries itself with [`SimNetwork::carry`].
    Other = 4,
}

const PROTOCOLS: [Protocol; 5] =
    [Protocol::Replica, Protocol::Gossip, Protocol::AntiEntropy, Protocol::Streaming, Protocol::Other];

/// Counters of what the simulated network did to messages. A request and its
/// reply are each one message.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SimStats {
    /// Calls started.
    pub sent: u64,
    /// Requests handed to the target's service.
    pub delivered: u64,
    /// Requests or replies lost at random (the caller waits for its deadline).
    pub dropped: u64,
    /// Requests or replies refused because a partition separates the two hosts.
    pub refused_by_partition: u64,
    /// Requests or replies refused because one of the hosts is crashed (or unknown).
    pub refused_by_crash: u64,
    /// Calls whose service did not answer before the call's deadline.
    pub timed_out: u64,
}

impl SimStats {
    /// What happened since `earlier` (a previous snapshot).
    pub fn since(&self, earlier: &SimStats) -> SimStats {
        SimStats {
            sent: self.sent - earlier.sent,
            delivered: self.delivered - earlier.delivered,
            dropped: self.dropped - earlier.dropped,
            refused_by_partition: self.refused_by_partition - earlier.refused_by_partition,
            refused_by_crash: self.refused_by_crash - earlier.refused_by_crash,
            timed_out: self.timed_out - earlier.timed_out,
        }
    }

    fn add(self, o: SimStats) -> SimStats {
        SimStats {
            sent: self.sent + o.sent,
            delivered: self.delivered + o.delivered,
            dropped: self.dropped + o.dropped,
            refused_by_partition: self.refused_by_partition + o.refused_by_partition,
            refused_by_crash: self.refused_by_crash + o.refused_by_crash,
            timed_out: self.timed_out + o.timed_out,
        }
    }
}

#[derive(Debug, Default)]
struct Counters {
    sent: AtomicU64,
    delivered: AtomicU64,
    dropped: AtomicU64,
    refused_by_partition: AtomicU64,
    refused_by_crash: AtomicU64,
    timed_out: AtomicU64,
}

impl Counters {
    fn snapshot(&self) -> SimStats {
        SimStats {
            sent: self.sent.load(Ordering::Relaxed),
            delivered: self.delivered.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            refused_by_partition: self.refused_by_partition.load(Ordering::Relaxed),
            refused_by_crash: self.refused_by_crash.load(Ordering::Relaxed),
            timed_out: self.timed_out.load(Ordering::Relaxed),
        }
    }
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// What one host serves.
#[derive(Default, Clone)]
struct Services {
    replica: Option<Arc<dyn ReplicaHandler>>,
    gossip: Option<GossipHandle>,
    anti_entropy: Option<Arc<LocalReplica>>,
    streaming: Option<Topology>,
}

struct State {
    rng: StdRng,
    hosts: BTreeMap<String, Services>,
    /// The host serving at each address (gossip and streaming address peers so).
    addrs: BTreeMap<SocketAddr, String>,
    crashed: BTreeSet<String>,
    /// Unordered pairs of hosts that cannot talk, stored as `(min, max)`.
    cuts: BTreeSet<(String, String)>,
    drop_probability: f64,
    delay: (Duration, Duration),
    replica_timeout: Duration,
}

/// The fate of one message, decided when it arrives.
enum Fate {
    Arrives,
    Dropped,
    Refused(TransportError),
}

/// A seeded, shared, in-process network between simulated nodes: services by
/// host, crashed hosts, partitions, random loss and delay, and counters.
pub struct SimNetwork {
    state: Mutex<State>,
    /// By `Protocol as usize`.
    counters: [Counters; PROTOCOLS.len()],
}

impl fmt::Debug for SimNetwork {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.lock();
        f.debug_struct("SimNetwork")
            .field("hosts", &s.hosts.keys().collect::<Vec<_>>())
            .field("crashed", &s.crashed)
            .field("cuts", &s.cuts)
            .field("drop_probability", &s.drop_probability)
            .field("delay", &s.delay)
            .field("stats", &self.stats())
            .finish()
    }
}

fn pair(a: &str, b: &str) -> (String, String) {
    if a <= b { (a.to_owned(), b.to_owned()) } else { (b.to_owned(), a.to_owned()) }
}

impl SimNetwork {
    /// A network whose randomness comes from `seed`: no loss, no delay, a 2 s replica-call deadline.
    pub fn new(seed: u64) -> Self {
        let state = State {
            rng: StdRng::seed_from_u64(seed),
            hosts: BTreeMap::new(),
            addrs: BTreeMap::new(),
            crashed: BTreeSet::new(),
            cuts: BTreeSet::new(),
            drop_probability: 0.0,
            delay: (Duration::ZERO, Duration::ZERO),
            replica_timeout: Duration::from_secs(2),
        };
        Self { state: Mutex::new(state), counters: Default::default() }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking test thread must not hide the network from the others.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Makes `member` reachable at its host id and address, serving replica calls with `handler`.
    pub fn register(&self, member: &Member, handler: Arc<dyn ReplicaHandler>) {
        let mut s = self.lock();
        s.hosts.entry(member.host_id.clone()).or_default().replica = Some(handler);
        s.addrs.insert(member.grpc_addr, member.host_id.clone());
    }

    /// `host`, at `addr`, answers gossip with `gossip` (its worker's handle).
    pub fn serve_gossip(&self, addr: SocketAddr, host: &str, gossip: GossipHandle) {
        let mut s = self.lock();
        s.hosts.entry(host.to_owned()).or_default().gossip = Some(gossip);
        s.addrs.insert(addr, host.to_owned());
    }

    /// `host` answers anti-entropy calls with its replica side `replica`.
    pub fn serve_anti_entropy(&self, host: &str, replica: Arc<LocalReplica>) {
        self.lock().hosts.entry(host.to_owned()).or_default().anti_entropy = Some(replica);
    }

    /// `host`, at `addr`, answers topology and streaming calls with `topology`.
    pub fn serve_streaming(&self, addr: SocketAddr, host: &str, topology: Topology) {
        let mut s = self.lock();
        s.hosts.entry(host.to_owned()).or_default().streaming = Some(topology);
        s.addrs.insert(addr, host.to_owned());
    }

    /// Nothing serves topology and streaming calls at `addr` any more (the process is gone).
    pub fn stop_streaming(&self, addr: SocketAddr) {
        let mut s = self.lock();
        if let Some(host) = s.addrs.remove(&addr)
            && let Some(services) = s.hosts.get_mut(&host)
        {
            services.streaming = None;
        }
    }

    /// The host registered at `addr`.
    pub fn host_at(&self, addr: SocketAddr) -> Option<String> {
        self.lock().addrs.get(&addr).cloned()
    }

    fn service<T>(&self, host: &str, pick: impl FnOnce(&Services) -> Option<T>) -> Option<T> {
        self.lock().hosts.get(host).and_then(pick)
    }

    /// Loses each request and each reply with probability `p` (clamped to 0..=1).
    pub fn set_drop_probability(&self, p: f64) {
        self.lock().drop_probability = p.clamp(0.0, 1.0);
    }

    /// Delays each request and each reply by a uniform duration in `min..=max`.
    pub fn set_delay(&self, min: Duration, max: Duration) {
        self.lock().delay = (min, max.max(min));
    }

    /// The deadline of one replica call, after which a lost message surfaces as `Timeout`.
    pub fn set_replica_timeout(&self, timeout: Duration) {
        self.lock().replica_timeout = timeout;
    }

    /// Crashes `host`: its storage stays, but nothing reaches it or leaves it.
    pub fn crash(&self, host: &str) {
        self.lock().crashed.insert(host.to_owned());
    }

    /// Makes a crashed `host` reachable again, with the storage it had.
    pub fn restart(&self, host: &str) {
        self.lock().crashed.remove(host);
    }

    /// True while `host` is crashed.
    pub fn is_crashed(&self, host: &str) -> bool {
        self.lock().crashed.contains(host)
    }

    /// Cuts the link between `a` and `b`, both ways.
    pub fn cut(&self, a: &str, b: &str) {
        if a != b {
            self.lock().cuts.insert(pair(a, b));
        }
    }

    /// Cuts every link between a host of `side_a` and a host of `side_b`.
    pub fn partition(&self, side_a: &[&str], side_b: &[&str]) {
        for a in side_a {
            for b in side_b {
                self.cut(a, b);
            }
        }
    }

    /// Restores every cut link (crashed hosts stay crashed).
    pub fn heal(&self) {
        self.lock().cuts.clear();
    }

    /// True when a partition separates `a` and `b`.
    pub fn is_cut(&self, a: &str, b: &str) -> bool {
        self.lock().cuts.contains(&pair(a, b))
    }

    /// A snapshot of the counters, every protocol together.
    pub fn stats(&self) -> SimStats {
        self.counters.iter().map(Counters::snapshot).fold(SimStats::default(), SimStats::add)
    }

    /// A snapshot of the counters of one protocol.
    pub fn stats_of(&self, protocol: Protocol) -> SimStats {
        self.counters(protocol).snapshot()
    }

    fn counters(&self, protocol: Protocol) -> &Counters {
        // One slot per variant: the discriminants are 0..PROTOCOLS.len().
        &self.counters[protocol as usize]
    }

    /// A random delay from the configured range.
    fn draw_delay(&self) -> Duration {
        let mut s = self.lock();
        let (min, max) = s.delay;
        if max > min { s.rng.random_range(min..=max) } else { min }
    }

    fn replica_timeout(&self) -> Duration {
        self.lock().replica_timeout
    }

    /// Decides whether a message from `from` to `to` arrives, counting the fault if not.
    fn fate(&self, protocol: Protocol, from: &str, to: &str) -> Fate {
        let counters = self.counters(protocol);
        let mut s = self.lock();
        let unreachable = |reason: &str| TransportError::Unreachable { peer: to.to_owned(), reason: reason.to_owned() };
        if s.crashed.contains(to) || s.crashed.contains(from) || !s.hosts.contains_key(to) {
            bump(&counters.refused_by_crash);
            return Fate::Refused(unreachable("connection refused (host crashed)"));
        }
        if s.cuts.contains(&pair(from, to)) {
            bump(&counters.refused_by_partition);
            return Fate::Refused(unreachable("no route to host (partitioned)"));
        }
        let p = s.drop_probability;
        if p > 0.0 && s.rng.random_bool(p) {
            bump(&counters.dropped);
            return Fate::Dropped;
        }
        Fate::Arrives
    }

    /// Carries one call of a service the network does not know from `from`
    /// to `to` through the same fault pipeline, counted under
    /// [`Protocol::Other`], with its own deadline: `serve` runs when the
    /// request arrives, as its own task.
    pub fn carry<T, F>(
        self: &Arc<Self>,
        from: &str,
        to: &str,
        timeout: Duration,
        serve: F,
    ) -> BoxFuture<'static, Result<T, TransportError>>
    where
        T: Send + 'static,
        F: FnOnce() -> BoxFuture<'static, T> + Send + 'static,
    {
        self.carry_as(Protocol::Other, from, to, timeout, move |_| Some(serve()))
    }

    /// [`SimNetwork::carry`] for `protocol`: `serve` gets the network on
    /// arrival and answers `None` when nothing serves the call there.
    fn carry_as<T, F>(
        self: &Arc<Self>,
        protocol: Protocol,
        from: &str,
        to: &str,
        timeout: Duration,
        serve: F,
    ) -> BoxFuture<'static, Result<T, TransportError>>
    where
        T: Send + 'static,
        F: FnOnce(&SimNetwork) -> Option<BoxFuture<'static, T>> + Send + 'static,
    {
        let net = Arc::clone(self);
        let (from, to) = (from.to_owned(), to.to_owned());
        async move { net.deliver(protocol, &from, &to, timeout, serve).await }.boxed()
    }

    /// The fault pipeline: request delay and fate, `serve` on arrival (`None`:
    /// nothing serves there) with the deadline `timeout`, reply delay and fate.
    async fn deliver<T: Send + 'static>(
        &self,
        protocol: Protocol,
        from: &str,
        to: &str,
        timeout: Duration,
        serve: impl FnOnce(&Self) -> Option<BoxFuture<'static, T>>,
    ) -> Result<T, TransportError> {
        let counters = self.counters(protocol);
        bump(&counters.sent);
        let deadline = Instant::now() + timeout;
        let peer = || to.to_owned();
        tokio::time::sleep(self.draw_delay()).await;
        match self.fate(protocol, from, to) {
            Fate::Arrives => {}
            Fate::Dropped => return lost(deadline, peer(), timeout).await,
            Fate::Refused(e) => return Err(e),
        }
        let Some(served) = serve(self) else {
            return Err(TransportError::Unreachable { peer: peer(), reason: "service not served there".into() });
        };
        bump(&counters.delivered);
        // The service runs as its own task, as on a server: it finishes even if the caller gives up.
        let served = tokio::spawn(served);
        let answer = match tokio::time::timeout_at(deadline, served).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(join)) => {
                let reason = format!("service task failed: {join}");
                let (peer, code, rkv_code) = (peer(), crate::error::RemoteStatus::Internal, None);
                return Err(TransportError::Remote { peer, code, rkv_code, message: reason });
            }
            Err(_) => {
                bump(&counters.timed_out);
                return Err(TransportError::Timeout { peer: peer(), timeout });
            }
        };
        tokio::time::sleep(self.draw_delay()).await;
        match self.fate(protocol, to, from) {
            Fate::Arrives => Ok(answer),
            // The request was served but the caller never hears back.
            Fate::Dropped | Fate::Refused(_) => lost(deadline, peer(), timeout).await,
        }
    }
}

/// A lost message is only noticed at the deadline, as with a real network.
async fn lost<T>(deadline: Instant, peer: String, timeout: Duration) -> Result<T, TransportError> {
    tokio::time::sleep_until(deadline).await;
    Err(TransportError::Timeout { peer, timeout })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_protocol_has_its_own_counters() {
        for (i, p) in PROTOCOLS.iter().enumerate() {
            assert_eq!(*p as usize, i, "{p:?} indexes its own counters");
        }
    }
}
