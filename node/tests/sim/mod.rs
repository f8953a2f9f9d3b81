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
//!
//! Each node is built by the node's own assembly (`NodeCore`, as `kvnode`
//! builds its own) over the simulated network: the anti-entropy tracked
//! storage keeps each node's Merkle trees, and each node has a real [`Repairer`]
//! whose exchange crosses the simulated network (the network's
//! `SimConnector`, counted as `Protocol::AntiEntropy`). Under it,
//! a [`LoggedStorage`] records every coordinated write in one [`WriteLog`]
//! (ground truth for checkers). Hints are stored but only replayed when a
//! test calls [`SimCluster::replay_hints`]; nothing runs in the background.

// Shared by several test crates, each of which uses a part of it.
#![allow(dead_code)]

pub mod dots;
pub mod writes;

use std::ops::RangeInclusive;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use ringkv_node::antientropy::plan::replica_sets;
use ringkv_node::antientropy::{AeError, RepairProgress, RepairRequest, Repairer, TreeStore};
use ringkv_node::assembly::{CoreParts, NodeCore, NodePorts};
use ringkv_node::clock::Clock;
use ringkv_node::config::Config;
use ringkv_node::hints::HandoffWorker;
use ringkv_node::membership::{Liveness, Member, MemberStatus};
use ringkv_node::peer::{SimConnector, SimNetwork, SimTransport};
use ringkv_node::replication::{
    ClusterSettings, Consistency, ConsistencyLevel, Coordinator, NodeParts, ReplicationMetrics,
};
use ringkv_node::ring::{NodeInfo, Ring, TokenRange, token_of};
use ringkv_node::storage::MemoryStorage;
use ringkv_node::version::Record;

use writes::{LoggedStorage, WriteLog};

/// The keyspace every simulation uses.
pub const KS: &str = "default";

/// Virtual-time epoch of the simulated wall clocks (µs since the Unix epoch).
pub const EPOCH_MICROS: i64 = 1_700_000_000_000_000;

/// A wall clock that follows tokio's (paused, virtual) clock.
#[derive(Debug)]
pub struct VirtualClock {
    /// Virtual time zero.
    pub start: tokio::time::Instant,
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
        let members = self.members();
        let mut config = Config::default();
        config.replication.replication_factor = self.rf;
        config.server.request_timeout_ms = self.request_timeout.as_millis() as u64;
        config.hints.replay_rate_per_second = 100_000;
        let shared = Shared {
            net: Arc::clone(&net),
            config,
            clock: Arc::new(VirtualClock { start: tokio::time::Instant::now() }),
            log: Arc::new(WriteLog::default()),
        };
        let nodes = members.iter().map(|local| self.node(&shared, &members, local)).collect();
        let rng = Mutex::new(StdRng::seed_from_u64(self.seed ^ 0x5EED));
        // A call lives at most its deadline plus its reply's delay.
        let quiet = 2 * (self.replica_timeout + *self.delay.end());
        SimCluster { net, nodes, rng, clock: shared.clock, log: shared.log, quiet }
    }

    /// Every member, in node order, with the tokens of one initial ring.
    fn members(&self) -> Vec<Member> {
        let hosts: Vec<String> = (0..self.nodes).map(|i| format!("node-{i}")).collect();
        let zone_of = |i: usize| if self.zones == 0 { String::new() } else { format!("z{}", i % self.zones) };
        let infos = hosts.iter().enumerate().map(|(i, h)| NodeInfo::new(h.as_str(), zone_of(i), ""));
        let ring = Ring::initial(infos, 16).expect("initial ring");
        let mut members: Vec<Member> = ring
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
        members.sort_by_key(|m| m.node_id);
        members
    }

    /// One node, built by the node's own assembly (`NodeCore`) over the
    /// simulated network; its coordinator registered on the network, its
    /// anti-entropy replica side serving the network's anti-entropy calls.
    fn node(&self, shared: &Shared, members: &[Member], local: &Member) -> SimNode {
        let host = local.host_id.clone();
        let logged =
            Arc::new(LoggedStorage::new(Arc::new(MemoryStorage::new()), local.node_id, Arc::clone(&shared.log)));
        let connector = Arc::new(SimConnector::new(Arc::clone(&shared.net), &host));
        let core = NodeCore::build(CoreParts {
            config: &shared.config,
            storage: logged,
            clock: Arc::clone(&shared.clock),
            local: local.clone(),
            ports: NodePorts {
                transport: Arc::new(SimTransport::new(Arc::clone(&shared.net), host.clone())),
                connector,
            },
            settings: ClusterSettings {
                replica_timeout: self.replica_timeout,
                sloppy: self.sloppy,
                inline_storage: true,
                inline_point_ops: true,
            },
            registry: None,
        });
        members.iter().for_each(|m| _ = core.view.upsert(m.clone()));
        shared.net.register(local, ringkv_node::replication::handler(&core.coordinator));
        shared.net.serve_anti_entropy(&host, Arc::clone(&core.antientropy.local));
        SimNode {
            host,
            coordinator: core.coordinator.clone(),
            parts: core.parts(),
            metrics: core.metrics.clone(),
            handoff: core.handoff(),
            trees: Arc::clone(&core.trees),
            repairer: Arc::clone(&core.antientropy.repairer),
        }
    }
}

/// What every node of a cluster being built shares.
#[derive(Debug)]
struct Shared {
    net: Arc<SimNetwork>,
    config: Config,
    clock: Arc<dyn Clock>,
    log: Arc<WriteLog>,
}

/// One simulated node.
#[derive(Debug)]
pub struct SimNode {
    /// Its host id.
    pub host: String,
    /// Its coordinator (also its replica handler).
    pub coordinator: Coordinator,
    /// Its storage, view, transport and hints.
    pub parts: NodeParts,
    /// Its replication metrics.
    pub metrics: ReplicationMetrics,
    handoff: HandoffWorker,
    /// Its Merkle trees (kept by its tracked storage).
    pub trees: Arc<TreeStore>,
    /// Its anti-entropy repairer (what `RepairWorker` and `kvctl repair` run).
    pub repairer: Arc<Repairer>,
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
    log: Arc<WriteLog>,
    /// How long the network must stay silent before [`SimCluster::settle`] trusts that no call is in flight.
    quiet: Duration,
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
        let ring = self.nodes[0].parts.view.ring();
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
            n.parts.view.set_liveness(self.host(i), liveness);
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
        let pending = |n: &SimNode| n.parts.hints.pending_by_target().expect("pending").values().sum::<u64>();
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
        self.nodes[i].parts.storage.get(KS, key).expect("storage get")
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

    /// Every write any node coordinated so far.
    pub fn write_log(&self) -> &WriteLog {
        &self.log
    }

    /// Whether the replicas of `key` hold different records (no network).
    pub fn replicas_disagree(&self, key: &[u8]) -> bool {
        let mut copies = self.replicas_of(key).into_iter().map(|r| self.local(r, key));
        let first = copies.next().flatten();
        copies.any(|c| c != first)
    }

    /// Waits (virtual time, with a deadline) until no replica call is in
    /// flight: the network's counters have not moved for longer than such a
    /// call can live, and whatever a finished call triggers (a hint) is itself
    /// a counted call. Not for use during a repair, whose calls live longer.
    pub async fn settle(&self, deadline: Duration) -> bool {
        let mut last = (self.net.stats(), tokio::time::Instant::now());
        self.eventually(deadline, |c| {
            let now = (c.net.stats(), tokio::time::Instant::now());
            if now.0 != last.0 {
                last = now;
            }
            now.1 - last.1 > c.quiet
        })
        .await
    }

    /// One anti-entropy repair of every range node `i` replicates, through its real repairer.
    pub async fn repair(&self, i: usize) -> Result<RepairProgress, AeError> {
        self.repair_reporting(i, |_| {}).await
    }

    /// As [`SimCluster::repair`], calling `report` after every range.
    pub async fn repair_reporting(
        &self,
        i: usize,
        report: impl FnMut(&RepairProgress) + Send,
    ) -> Result<RepairProgress, AeError> {
        self.nodes[i].repairer.run(RepairRequest::default(), report).await
    }

    /// Every range of the ring with its replicas (node indexes).
    pub fn ranges(&self) -> Vec<(TokenRange, Vec<usize>)> {
        let ring = self.nodes[0].parts.view.ring();
        let rf = self.node(0).keyspaces().get(KS).expect("keyspace").replication_factor as usize;
        let sets = replica_sets(&ring, rf).into_iter();
        sets.map(|(range, hosts)| (range, hosts.iter().map(|h| self.index_of(h)).collect())).collect()
    }

    /// Whether the Merkle trees of `range` differ between `replicas` (or are not all built).
    pub fn trees_disagree(&self, range: TokenRange, replicas: &[usize]) -> bool {
        let root = |i: usize| self.nodes[i].trees.with_tree(KS, range, |built| built.tree.root());
        let roots: Vec<_> = replicas.iter().map(|i| root(*i)).collect();
        roots.iter().any(|r| r.is_none() || *r != roots[0])
    }

    /// Ranges whose replicas' Merkle trees disagree, and the number of ranges.
    pub fn ranges_disagreeing(&self) -> (usize, usize) {
        let ranges = self.ranges();
        (ranges.iter().filter(|(range, replicas)| self.trees_disagree(*range, replicas)).count(), ranges.len())
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
