//! [`SimCluster`]: a whole RingKV cluster in one process over a
//! [`SimNetwork`], for deterministic simulation tests.
//!
//! Every node is a real `Coordinator` over `MemoryStorage` with its own
//! `ClusterView`; all views hold every member with the same tokens, so they
//! agree on the ring. Liveness is set by the test (the failure detector is
//! not under test): [`SimCluster::crash`] makes a node unreachable *and* marks
//! it down in every other view, [`SimCluster::restart`] undoes both. Storage
//! calls run inline and time is tokio's paused clock, so a seed replays the
//! same run.

use std::ops::RangeInclusive;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use ringkv_node::clock::Clock;
use ringkv_node::config::{Config, ServerConfig};
use ringkv_node::hints::HandoffWorker;
use ringkv_node::membership::{ClusterView, Liveness, Member, MemberStatus};
use ringkv_node::replication::{
    ClusterSettings, Consistency, ConsistencyLevel, Coordinator, CoordinatorParts, Keyspaces, Limits,
    ReplicationMetrics,
};
use ringkv_node::ring::{NodeInfo, Ring, token_of};
use ringkv_node::storage::MemoryStorage;
use ringkv_node::transport::{SimNetwork, SimTransport};
use ringkv_node::version::Record;

/// The keyspace every simulation uses.
pub const KS: &str = "default";

/// Virtual-time epoch of the simulated wall clocks (µs since the Unix epoch).
const EPOCH_MICROS: i64 = 1_700_000_000_000_000;

/// A wall clock that follows tokio's (paused, virtual) clock.
#[derive(Debug)]
struct VirtualClock {
    start: tokio::time::Instant,
}

impl Clock for VirtualClock {
    fn now_micros(&self) -> i64 {
        EPOCH_MICROS + self.start.elapsed().as_micros() as i64
    }
}

/// Shorthand for a consistency level.
pub fn at(level: ConsistencyLevel) -> Consistency {
    Consistency::level(level)
}

/// `s` as bytes.
pub fn b(s: &str) -> Bytes {
    Bytes::from(s.to_owned())
}

/// Fluent builder of a [`SimCluster`].
#[derive(Debug, Clone)]
pub struct SimClusterBuilder {
    seed: u64,
    nodes: usize,
    rf: u32,
    drop: f64,
    delay: RangeInclusive<Duration>,
    replica_timeout: Duration,
    request_timeout: Duration,
    sloppy: bool,
    zones: usize,
}

impl SimClusterBuilder {
    /// Number of nodes (default 5).
    pub fn nodes(mut self, n: usize) -> Self {
        self.nodes = n;
        self
    }

    /// Replication factor of the default keyspace (default 3).
    pub fn rf(mut self, rf: u32) -> Self {
        self.rf = rf;
        self
    }

    /// Probability of losing each request and each reply (default 0).
    pub fn drop(mut self, p: f64) -> Self {
        self.drop = p;
        self
    }

    /// Spreads the nodes round-robin over `n` zones `z0..` (default 0: no zones).
    pub fn zones(mut self, n: usize) -> Self {
        self.zones = n;
        self
    }

    /// Whether hints on stand-ins count toward W (default false).
    pub fn sloppy(mut self, on: bool) -> Self {
        self.sloppy = on;
        self
    }

    /// Delay of each request and each reply, in virtual ms (default 1..=5).
    pub fn delay_ms(mut self, range: RangeInclusive<u64>) -> Self {
        self.delay = Duration::from_millis(*range.start())..=Duration::from_millis(*range.end());
        self
    }

    /// Builds the cluster: every node registered, every view complete and alive.
    pub fn build(self) -> SimCluster {
        let net = Arc::new(SimNetwork::new(self.seed));
        net.set_drop_probability(self.drop);
        net.set_delay(*self.delay.start(), *self.delay.end());
        net.set_replica_timeout(self.replica_timeout);
        let hosts: Vec<String> = (0..self.nodes).map(|i| format!("node-{i}")).collect();
        let zone_of = |i: usize| if self.zones == 0 { String::new() } else { format!("z{}", i % self.zones) };
        let infos = hosts.iter().enumerate().map(|(i, h)| NodeInfo::new(h.as_str(), zone_of(i), ""));
        let ring = Ring::initial(infos, 16).expect("initial ring");
        let members: Vec<Member> = ring
            .node_tokens()
            .into_iter()
            .map(|(info, tokens)| {
                let i = hosts.iter().position(|h| h == info.host_id.as_str()).expect("known host");
                let addr = std::net::SocketAddr::from(([10, 0, 0, i as u8 + 1], 7000));
                let (zone, rack) = (zone_of(i), String::new());
                let host_id = info.host_id.as_str().to_owned();
                Member {
                    host_id,
                    node_id: i as u64 + 1,
                    grpc_addr: addr,
                    http_addr: addr,
                    zone,
                    rack,
                    tokens,
                    generation: 1,
                    status: MemberStatus::Normal,
                }
            })
            .collect();
        let mut config = Config::default();
        config.replication.replication_factor = self.rf;
        let server = ServerConfig { request_timeout_ms: self.request_timeout.as_millis() as u64, ..Default::default() };
        let clock: Arc<dyn Clock> = Arc::new(VirtualClock { start: tokio::time::Instant::now() });
        let nodes = hosts
            .iter()
            .map(|host| {
                let local = members.iter().find(|m| &m.host_id == host).expect("member").clone();
                let view = Arc::new(ClusterView::new(local.clone()));
                members.iter().for_each(|m| _ = view.upsert(m.clone()));
                let transport = Arc::new(SimTransport::new(Arc::clone(&net), host.clone()));
                let metrics = ReplicationMetrics::unregistered();
                let coordinator = Coordinator::clustered(CoordinatorParts {
                    node_id: local.node_id,
                    storage: Arc::new(MemoryStorage::new()),
                    keyspaces: Keyspaces::from_config(&config),
                    clock: Arc::clone(&clock),
                    limits: Limits::from(&server),
                    view: Arc::clone(&view),
                    transport: transport.clone(),
                    settings: ClusterSettings {
                        replica_timeout: self.replica_timeout,
                        sloppy: self.sloppy,
                        inline_storage: true,
                        inline_point_ops: true,
                    },
                    metrics: metrics.clone(),
                    max_hint_window: Duration::from_secs(3 * 3600),
                });
                net.register(&local, ringkv_node::replication::handler(&coordinator));
                let interval = Duration::from_secs(1);
                let handoff = HandoffWorker::new(coordinator.hints().clone(), view, transport, interval, 100_000);
                SimNode { host: host.clone(), coordinator, metrics, handoff }
            })
            .collect();
        let rng = Mutex::new(StdRng::seed_from_u64(self.seed ^ 0x5EED));
        SimCluster { net, nodes, rng, clock }
    }
}

/// One simulated node.
#[derive(Debug)]
pub struct SimNode {
    /// Its host id.
    pub host: String,
    /// Its coordinator (also its replica handler).
    pub coordinator: Coordinator,
    /// Its replication metrics.
    pub metrics: ReplicationMetrics,
    handoff: HandoffWorker,
}

/// A simulated cluster.
#[derive(Debug)]
pub struct SimCluster {
    /// The network between the nodes.
    pub net: Arc<SimNetwork>,
    /// The nodes, by index.
    pub nodes: Vec<SimNode>,
    rng: Mutex<StdRng>,
    clock: Arc<dyn Clock>,
}

impl SimCluster {
    /// A builder: 5 nodes, RF 3, no loss, 1..=5 ms delays, 200 ms replica and 2 s request deadlines.
    #[allow(clippy::new_ret_no_self)]
    pub fn new(seed: u64) -> SimClusterBuilder {
        SimClusterBuilder {
            seed,
            nodes: 5,
            rf: 3,
            drop: 0.0,
            delay: Duration::from_millis(1)..=Duration::from_millis(5),
            replica_timeout: Duration::from_millis(200),
            request_timeout: Duration::from_secs(2),
            sloppy: false,
            zones: 0,
        }
    }

    /// Node `i`'s coordinator.
    pub fn node(&self, i: usize) -> &Coordinator {
        &self.nodes[i].coordinator
    }

    /// Node `i`'s host id.
    pub fn host(&self, i: usize) -> &str {
        &self.nodes[i].host
    }

    /// A random node that is not crashed, from the cluster's seeded RNG.
    pub fn random_live_node(&self) -> usize {
        let live: Vec<usize> = (0..self.nodes.len()).filter(|i| !self.net.is_crashed(self.host(*i))).collect();
        live[self.rng.lock().expect("rng").random_range(0..live.len())]
    }

    /// The replicas of `key`, in preference order (every view agrees).
    pub fn replicas_of(&self, key: &[u8]) -> Vec<usize> {
        let ring = self.node(0).view().ring();
        let rf = self.node(0).keyspaces().get(KS).expect("keyspace").replication_factor as usize;
        let hosts = ring.preference_list(token_of(KS, key), rf).into_iter().filter_map(|idx| ring.node(idx));
        hosts.map(|n| self.index_of(n.host_id.as_str())).collect()
    }

    /// Node indexes that are not replicas of `key`.
    pub fn non_replicas_of(&self, key: &[u8]) -> Vec<usize> {
        let replicas = self.replicas_of(key);
        (0..self.nodes.len()).filter(|i| !replicas.contains(i)).collect()
    }

    /// The first `n` keys `prefix-<k>` that node `i` is a replica of.
    pub fn keys_replicated_by(&self, i: usize, prefix: &str, n: usize) -> Vec<Bytes> {
        (0..).map(|k| b(&format!("{prefix}-{k}"))).filter(|k| self.replicas_of(k).contains(&i)).take(n).collect()
    }

    fn index_of(&self, host: &str) -> usize {
        self.nodes.iter().position(|n| n.host == host).expect("known host")
    }

    /// Marks node `i` alive or down in every other node's view.
    pub fn mark(&self, i: usize, liveness: Liveness) {
        for n in &self.nodes {
            n.coordinator.view().set_liveness(self.host(i), liveness);
        }
    }

    /// Crashes node `i` (storage kept, unreachable) and marks it down everywhere.
    pub fn crash(&self, i: usize) {
        self.net.crash(self.host(i));
        self.mark(i, Liveness::Down);
    }

    /// Proves node `i` is really cut off, not merely marked down: a QUORUM read
    /// it coordinates (its own view still sees its peers alive) fails, and the
    /// network counts the refusal.
    pub async fn assert_crashed(&self, i: usize) {
        let before = self.net.stats().refused_by_crash;
        let key = self.keys_replicated_by(i, "probe", 1).remove(0);
        let read = self.node(i).get(KS, key, at(ConsistencyLevel::Quorum)).await;
        assert!(read.is_err(), "node {i} is crashed but coordinated a QUORUM read: {read:?}");
        assert!(self.net.stats().refused_by_crash > before, "no message from crashed node {i} was refused");
    }

    /// Restarts node `i` and marks it alive everywhere.
    pub fn restart(&self, i: usize) {
        self.net.restart(self.host(i));
        self.mark(i, Liveness::Alive);
    }

    /// Cuts every link between the nodes of `a` and those of `b` (liveness untouched).
    pub fn partition(&self, a: &[usize], b: &[usize]) {
        let hosts = |s: &[usize]| -> Vec<&str> { s.iter().map(|i| self.host(*i)).collect() };
        self.net.partition(&hosts(a), &hosts(b));
    }

    /// Restores every link.
    pub fn heal(&self) {
        self.net.heal();
    }

    /// One hint replay pass on every node that is not crashed; hints delivered.
    pub async fn replay_hints(&self) -> u64 {
        let mut delivered = 0;
        for n in self.nodes.iter().filter(|n| !self.net.is_crashed(&n.host)) {
            delivered += n.handoff.replay_once().await.delivered;
        }
        delivered
    }

    /// Hints waiting on every node, for every target.
    pub fn hints_pending(&self) -> u64 {
        let pending = |n: &SimNode| n.coordinator.hints().pending_by_target().expect("pending").values().sum::<u64>();
        self.nodes.iter().map(pending).sum()
    }

    /// Hints stored so far on every node for node `target`.
    pub fn hints_stored_for(&self, target: usize) -> u64 {
        self.nodes.iter().map(|n| n.metrics.hints_stored.with_label_values(&[self.host(target)]).get()).sum()
    }

    /// Hints replayed so far from every node to node `target`.
    pub fn hints_replayed_to(&self, target: usize) -> u64 {
        self.nodes.iter().map(|n| n.metrics.hints_replayed.with_label_values(&[self.host(target)]).get()).sum()
    }

    /// Read repairs done so far by every node.
    pub fn read_repairs(&self) -> u64 {
        self.nodes.iter().map(|n| n.metrics.read_repairs.get()).sum()
    }

    /// Node `i`'s own stored record of `key` (no network).
    pub fn local(&self, i: usize, key: &[u8]) -> Option<Record> {
        self.node(i).storage().get(KS, key).expect("storage get")
    }

    /// The live values node `i` stores for `key` (no network), sorted.
    pub fn local_values(&self, i: usize, key: &[u8]) -> Vec<Bytes> {
        let now = self.clock.now_ms();
        let mut values: Vec<Bytes> = self
            .local(i, key)
            .map(|r| r.live_siblings(now).filter_map(|s| s.value.clone()).collect())
            .unwrap_or_default();
        values.sort();
        values
    }

    /// Waits (virtual time, with a deadline) until `cond` holds; false on timeout.
    pub async fn eventually(&self, deadline: Duration, mut cond: impl FnMut(&Self) -> bool) -> bool {
        let until = tokio::time::Instant::now() + deadline;
        while tokio::time::Instant::now() < until {
            if cond(self) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        cond(self)
    }
}
