//! [`SimTransport`]: the [`Transport`] over a [`SimNetwork`], for deterministic
//! simulation of a whole cluster in one process.
//!
//! Every node registers its [`ReplicaHandler`] with the shared network; a call
//! looks the target up by [`Peer::host_id`] and goes through the same fault
//! pipeline: a request delay, then at arrival a check for crashed hosts,
//! partitions and random loss, then the handler (run as its own task, as a
//! server would, so it finishes even when the caller gives up), then a reply
//! delay and the same checks for the way back. All randomness comes from one
//! seeded RNG behind a std `Mutex`, and delays are `tokio::time::sleep`, so a
//! test on a current-thread runtime with the clock paused (`start_paused`)
//! replays the same run for the same seed.
//!
//! Failures look like the gRPC transport's: a crashed or cut-off peer is
//! `Unreachable` after the delay; a lost request or reply is a `Timeout` at the
//! per-call deadline (`replica_timeout`), as a lost packet is; handler errors
//! are mapped through the same status codes the gRPC server would send.
//!
//! Invariants: a crash keeps the node's handler (and so its storage: what it
//! acknowledged was durable) but makes it unreachable both ways until
//! [`SimNetwork::restart`]; every fault taken increments a counter in
//! [`SimStats`], so tests can prove their faults fired.
//!
//! This module may call `transport` (the port it implements), `membership`,
//! `version`, `error`, `server::status` and `peer::call` (to map handler
//! errors exactly as the gRPC server and client do). Other simulated
//! protocols (anti-entropy, streaming in the tests) carry their calls over
//! the same network with [`SimNetwork::carry`].

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use futures::FutureExt;
use futures::future::BoxFuture;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::time::Instant;

use crate::error::KvError;
use crate::membership::Member;
use crate::transport::{
    CoordinateCall, CoordinateReply, HintedWrite, PageItem, PageQuery, Peer, ReplicaHandler, ReplicaWrite, Transport,
    TransportError,
};
use crate::version::Record;

/// Counters of what the simulated network did to messages. A request and its
/// reply are each one message.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SimStats {
    /// Calls started.
    pub sent: u64,
    /// Requests handed to the target's handler.
    pub delivered: u64,
    /// Requests or replies lost at random (the caller waits for its deadline).
    pub dropped: u64,
    /// Requests or replies refused because a partition separates the two hosts.
    pub refused_by_partition: u64,
    /// Requests or replies refused because one of the hosts is crashed (or unknown).
    pub refused_by_crash: u64,
    /// Calls whose handler did not answer before the per-call deadline.
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

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

struct Node {
    handler: Arc<dyn ReplicaHandler>,
}

struct State {
    rng: StdRng,
    nodes: BTreeMap<String, Node>,
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

/// A seeded, shared, in-process network between simulated nodes: handlers by
/// host, crashed hosts, partitions, random loss and delay, and counters.
pub struct SimNetwork {
    state: Mutex<State>,
    counters: Counters,
}

impl fmt::Debug for SimNetwork {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.lock();
        f.debug_struct("SimNetwork")
            .field("hosts", &s.nodes.keys().collect::<Vec<_>>())
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
    /// A network whose randomness comes from `seed`: no loss, no delay, a 2 s per-call deadline.
    pub fn new(seed: u64) -> Self {
        let state = State {
            rng: StdRng::seed_from_u64(seed),
            nodes: BTreeMap::new(),
            crashed: BTreeSet::new(),
            cuts: BTreeSet::new(),
            drop_probability: 0.0,
            delay: (Duration::ZERO, Duration::ZERO),
            replica_timeout: Duration::from_secs(2),
        };
        Self { state: Mutex::new(state), counters: Counters::default() }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking test thread must not hide the network from the others.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Makes `member` reachable at its host id.
    pub fn register(&self, member: &Member, handler: Arc<dyn ReplicaHandler>) {
        self.lock().nodes.insert(member.host_id.clone(), Node { handler });
    }

    /// Loses each request and each reply with probability `p` (clamped to 0..=1).
    pub fn set_drop_probability(&self, p: f64) {
        self.lock().drop_probability = p.clamp(0.0, 1.0);
    }

    /// Delays each request and each reply by a uniform duration in `min..=max`.
    pub fn set_delay(&self, min: Duration, max: Duration) {
        self.lock().delay = (min, max.max(min));
    }

    /// The deadline of one call, after which a lost message surfaces as `Timeout`.
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

    /// A snapshot of the counters.
    pub fn stats(&self) -> SimStats {
        let c = &self.counters;
        SimStats {
            sent: c.sent.load(Ordering::Relaxed),
            delivered: c.delivered.load(Ordering::Relaxed),
            dropped: c.dropped.load(Ordering::Relaxed),
            refused_by_partition: c.refused_by_partition.load(Ordering::Relaxed),
            refused_by_crash: c.refused_by_crash.load(Ordering::Relaxed),
            timed_out: c.timed_out.load(Ordering::Relaxed),
        }
    }

    /// A random delay from the configured range, and the per-call deadline.
    fn draw_delay(&self) -> Duration {
        let mut s = self.lock();
        let (min, max) = s.delay;
        if max > min { s.rng.random_range(min..=max) } else { min }
    }

    fn replica_timeout(&self) -> Duration {
        self.lock().replica_timeout
    }

    /// Decides whether a message from `from` to `to` arrives, counting the fault if not.
    fn fate(&self, from: &str, to: &str) -> Fate {
        let mut s = self.lock();
        let unreachable = |reason: &str| TransportError::Unreachable { peer: to.to_owned(), reason: reason.to_owned() };
        if s.crashed.contains(to) || s.crashed.contains(from) || !s.nodes.contains_key(to) {
            bump(&self.counters.refused_by_crash);
            return Fate::Refused(unreachable("connection refused (host crashed)"));
        }
        if s.cuts.contains(&pair(from, to)) {
            bump(&self.counters.refused_by_partition);
            return Fate::Refused(unreachable("no route to host (partitioned)"));
        }
        let p = s.drop_probability;
        if p > 0.0 && s.rng.random_bool(p) {
            bump(&self.counters.dropped);
            return Fate::Dropped;
        }
        Fate::Arrives
    }

    fn handler(&self, host: &str) -> Option<Arc<dyn ReplicaHandler>> {
        self.lock().nodes.get(host).map(|n| Arc::clone(&n.handler))
    }

    /// One replica-service call from `from` to `to` through the fault pipeline.
    fn call<T, F>(self: &Arc<Self>, from: &str, to: String, op: F) -> BoxFuture<'static, Result<T, TransportError>>
    where
        T: Send + 'static,
        F: FnOnce(Arc<dyn ReplicaHandler>) -> BoxFuture<'static, Result<T, KvError>> + Send + 'static,
    {
        let net = Arc::clone(self);
        let from = from.to_owned();
        async move {
            let timeout = net.replica_timeout();
            let answer = net.deliver(&from, &to, timeout, |net| net.handler(&to).map(op)).await?;
            answer.map_err(|e| remote_error(&to, timeout, &e))
        }
        .boxed()
    }

    /// Carries one call of another service from `from` to `to` through the
    /// same fault pipeline, counters included, with its own deadline: `serve`
    /// runs when the request arrives, as its own task. A node serves such
    /// services (anti-entropy) on the same gRPC port as the replica service,
    /// so in a simulation they must cross the same partitions and losses.
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
        let net = Arc::clone(self);
        let (from, to) = (from.to_owned(), to.to_owned());
        async move { net.deliver(&from, &to, timeout, |_| Some(serve())).await }.boxed()
    }

    /// The fault pipeline: request delay and fate, `serve` on arrival (`None`:
    /// nothing serves there) with the deadline `timeout`, reply delay and fate.
    async fn deliver<T: Send + 'static>(
        &self,
        from: &str,
        to: &str,
        timeout: Duration,
        serve: impl FnOnce(&Self) -> Option<BoxFuture<'static, T>>,
    ) -> Result<T, TransportError> {
        bump(&self.counters.sent);
        let deadline = Instant::now() + timeout;
        let peer = || to.to_owned();
        tokio::time::sleep(self.draw_delay()).await;
        match self.fate(from, to) {
            Fate::Arrives => {}
            Fate::Dropped => return lost(deadline, peer(), timeout).await,
            Fate::Refused(e) => return Err(e),
        }
        let Some(served) = serve(self) else {
            return Err(TransportError::Unreachable { peer: peer(), reason: "unknown host".into() });
        };
        bump(&self.counters.delivered);
        // The handler runs as its own task, as on a server: it finishes even if the caller gives up.
        let served = tokio::spawn(served);
        let answer = match tokio::time::timeout_at(deadline, served).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(join)) => {
                let reason = format!("handler task failed: {join}");
                let (peer, code, rkv_code) = (peer(), crate::error::RemoteStatus::Internal, None);
                return Err(TransportError::Remote { peer, code, rkv_code, message: reason });
            }
            Err(_) => {
                bump(&self.counters.timed_out);
                return Err(TransportError::Timeout { peer: peer(), timeout });
            }
        };
        tokio::time::sleep(self.draw_delay()).await;
        match self.fate(to, from) {
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

/// Maps a handler error to what the gRPC transport would report for the status
/// the gRPC server sends for it, so the coordinator sees the same errors.
fn remote_error(peer: &str, timeout: Duration, err: &KvError) -> TransportError {
    super::call::from_status(peer.to_owned(), timeout, &crate::server::status::to_status(err))
}

/// One node's [`Transport`] over a [`SimNetwork`]. Cheap to clone.
#[derive(Debug, Clone)]
pub struct SimTransport {
    network: Arc<SimNetwork>,
    from: String,
}

impl SimTransport {
    /// The transport of the node `from_host` on `network`.
    pub fn new(network: Arc<SimNetwork>, from_host: impl Into<String>) -> Self {
        Self { network, from: from_host.into() }
    }

    /// The network this transport sends on.
    pub fn network(&self) -> &Arc<SimNetwork> {
        &self.network
    }
}

impl Transport for SimTransport {
    fn read(
        &self,
        to: &Peer,
        keyspace: &str,
        key: &Bytes,
    ) -> BoxFuture<'static, Result<Option<Record>, TransportError>> {
        let (keyspace, key) = (keyspace.to_owned(), key.clone());
        self.network.call(&self.from, to.host_id.clone(), move |h| h.handle_read(keyspace, key))
    }

    fn write(&self, to: &Peer, write: ReplicaWrite) -> BoxFuture<'static, Result<(), TransportError>> {
        self.network.call(&self.from, to.host_id.clone(), move |h| h.handle_write(write))
    }

    fn page(&self, to: &Peer, query: PageQuery) -> BoxFuture<'static, Result<Vec<PageItem>, TransportError>> {
        self.network.call(&self.from, to.host_id.clone(), move |h| h.handle_page(query))
    }

    fn deliver_hints(
        &self,
        to: &Peer,
        _from_host_id: &str,
        hints: Vec<HintedWrite>,
    ) -> BoxFuture<'static, Result<u32, TransportError>> {
        self.network.call(&self.from, to.host_id.clone(), move |h| h.handle_hints(hints))
    }

    fn coordinate(
        &self,
        to: &Peer,
        call: CoordinateCall,
    ) -> BoxFuture<'static, Result<CoordinateReply, TransportError>> {
        self.network.call(&self.from, to.host_id.clone(), move |h| h.handle_coordinate(call))
    }
}

#[cfg(test)]
mod tests {
    use std::future::ready;
    use std::net::SocketAddr;

    use super::*;

    #[derive(Debug)]
    struct Echo;

    impl ReplicaHandler for Echo {
        fn handle_read(&self, _: String, _: Bytes) -> BoxFuture<'static, Result<Option<Record>, KvError>> {
            ready(Ok(None)).boxed()
        }
        fn handle_write(&self, _: ReplicaWrite) -> BoxFuture<'static, Result<(), KvError>> {
            ready(Err(KvError::ShuttingDown)).boxed()
        }
        fn handle_hints(&self, hints: Vec<HintedWrite>) -> BoxFuture<'static, Result<u32, KvError>> {
            ready(Ok(hints.len() as u32)).boxed()
        }
        fn handle_coordinate(&self, _: CoordinateCall) -> BoxFuture<'static, Result<CoordinateReply, KvError>> {
            ready(Err(KvError::NotAnInteger)).boxed()
        }
        fn handle_page(&self, _: PageQuery) -> BoxFuture<'static, Result<Vec<PageItem>, KvError>> {
            ready(Ok(Vec::new())).boxed()
        }
    }

    fn member(host: &str, port: u16) -> Member {
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        Member {
            host_id: host.into(),
            node_id: u64::from(port),
            grpc_addr: addr,
            http_addr: addr,
            zone: String::new(),
            rack: String::new(),
            tokens: vec![u64::from(port)],
            generation: 1,
            status: crate::membership::MemberStatus::Normal,
        }
    }

    fn network(seed: u64) -> (Arc<SimNetwork>, SimTransport, Peer) {
        let net = Arc::new(SimNetwork::new(seed));
        let b = member("b", 2);
        net.register(&member("a", 1), Arc::new(Echo));
        net.register(&b, Arc::new(Echo));
        (Arc::clone(&net), SimTransport::new(net, "a"), Peer::from(&b))
    }

    // These run on real time (the library's tests do not need tokio's test-util), so durations stay tiny.
    #[tokio::test(flavor = "current_thread")]
    async fn faults_fail_calls_and_are_counted() {
        let (net, t, b) = network(1);
        assert_eq!(t.read(&b, "ks", &Bytes::new()).await, Ok(None));
        net.crash("b");
        assert!(matches!(t.read(&b, "ks", &Bytes::new()).await, Err(TransportError::Unreachable { .. })));
        net.restart("b");
        net.cut("b", "a");
        assert!(matches!(t.read(&b, "ks", &Bytes::new()).await, Err(TransportError::Unreachable { .. })));
        net.heal();
        net.set_drop_probability(1.0);
        net.set_replica_timeout(Duration::from_millis(20));
        let started = Instant::now();
        assert!(matches!(t.read(&b, "ks", &Bytes::new()).await, Err(TransportError::Timeout { .. })));
        assert!(started.elapsed() >= Duration::from_millis(20), "a lost message surfaces at the deadline");
        let s = net.stats();
        assert_eq!((s.sent, s.delivered, s.dropped), (4, 1, 1));
        assert_eq!((s.refused_by_crash, s.refused_by_partition), (1, 1));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn other_services_ride_the_same_faults() {
        let (net, _, _) = network(3);
        let timeout = Duration::from_millis(20);
        let answer = net.carry("a", "b", timeout, || std::future::ready(7u32).boxed()).await;
        assert_eq!(answer, Ok(7));
        net.cut("a", "b");
        let refused = net.carry("a", "b", timeout, || std::future::ready(7u32).boxed()).await;
        assert!(matches!(refused, Err(TransportError::Unreachable { .. })), "{refused:?}");
        net.heal();
        let unknown = net.carry("a", "nobody", timeout, || std::future::ready(7u32).boxed()).await;
        assert!(matches!(unknown, Err(TransportError::Unreachable { .. })), "{unknown:?}");
        let s = net.stats();
        assert_eq!((s.sent, s.delivered, s.refused_by_partition, s.refused_by_crash), (3, 1, 1, 1));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn handler_errors_map_like_grpc_and_calls_are_delayed() {
        let (net, t, b) = network(2);
        net.set_delay(Duration::from_millis(2), Duration::from_millis(4));
        let started = Instant::now();
        let call = CoordinateCall {
            keyspace: "ks".into(),
            key: Bytes::from_static(b"k"),
            mutation: crate::replication::Mutation::Delete { context: Bytes::new() },
            consistency: crate::replication::Consistency::default(),
        };
        assert!(matches!(t.coordinate(&b, call).await, Err(TransportError::Remote { .. })));
        assert!(started.elapsed() >= Duration::from_millis(4), "a request and its reply are each delayed");
        let w = ReplicaWrite { keyspace: "ks".into(), key: Bytes::new(), record: Record::default(), hint_for: None };
        assert!(
            matches!(t.write(&b, w).await, Err(TransportError::Unreachable { .. })),
            "shutting down is UNAVAILABLE"
        );
        assert_eq!(net.stats().delivered, 2);
    }
}
