//! [`Topo`]: a cluster whose membership changes while it runs, for
//! deterministic simulation of topology changes and node incarnations.
//!
//! Every node is built by the node's own assembly (`NodeCore`): a real
//! `Coordinator` and a real `Topology` (the production
//! join, replace, decommission and removenode code) over a [`SimNetwork`]:
//! replica calls cross it through `SimTransport`, topology calls through
//! the network's `SimStreamPeers` (each node's `Topology` serves them on
//! arrival), and member updates through [`pump_membership`] (the gossip
//! stand-in). Each node starts the way `kvnode` starts: its identity
//! comes from `topology::identity` (`adopt` for a replacement,
//! `load_or_create_with` with the cluster's seeded RNG), so its
//! version-vector actor follows the production rule, unless the cluster is
//! built with [`ActorPolicy::HostId`], the rule before actors existed (the
//! deliberately broken variant the checks must catch).
//!
//! Disks are [`PowerLossDisk`]s under `sync = periodic`: synced every
//! [`SYNC_INTERVAL`] by the background loop, and [`Topo::power_off`] loses
//! what was not synced. Over each node's disk a `WatchedStorage` shows every
//! record it stores to one [`DotWatch`], and a `LoggedStorage` records every
//! coordinated write in one [`WriteLog`] (ground truth for checkers).
//! Liveness is set by the test, as in `SimCluster`. Time is tokio's paused
//! clock, but unlike `SimCluster` a seed does not always replay exactly: the
//! topology's (and hints') metadata calls run on the blocking pool, whose
//! completions interleave with the other tasks in an order the seed does not
//! fix. The checks hold for every interleaving; a failure prints its seed
//! and what broke, and `RINGKV_SIM_SEEDS` widens the search.

#![allow(dead_code)]

pub mod disk;
pub mod peers;
pub mod workload;

use std::cell::RefCell;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use ringkv_node::assembly::{CoreParts, NodeCore, NodePorts};
use ringkv_node::clock::Clock;
use ringkv_node::config::Config;
use ringkv_node::membership::{ClusterView, Liveness, Member, MemberStatus};
use ringkv_node::peer::{SimConnector, SimNetwork, SimStreamPeers, SimTransport};
use ringkv_node::replication::{ClusterSettings, Coordinator};
use ringkv_node::ring::{NodeInfo, Ring, token_of};
use ringkv_node::storage::Storage;
use ringkv_node::topology::Topology;
use ringkv_node::topology::identity::{self, ActorOrigin};
use ringkv_node::version::{NodeId, Record};
use tokio_util::sync::CancellationToken;

use crate::sim::dots::{DotWatch, WatchedStorage};
use crate::sim::writes::{LoggedStorage, WriteLog};
use crate::sim::{KS, VirtualClock};
use disk::{Incarnation, PowerLossDisk};
use peers::{Directory, Pumped, pump_membership};

/// Vnodes per node.
pub const VNODES: u32 = 8;
/// `sync = periodic` interval of every disk.
pub const SYNC_INTERVAL: Duration = Duration::from_millis(1000);
/// Gossip stand-in interval.
pub const PUMP_INTERVAL: Duration = Duration::from_millis(100);

/// How a node's version-vector actor is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActorPolicy {
    /// `topology::identity`'s: fresh per incarnation that may have lost writes.
    Incarnation,
    /// Broken on purpose (the rule before actors): the first 8 bytes of the host id, forever.
    HostId,
}

/// One node position: a host id, an address, a disk, and the running process if any.
#[derive(Debug)]
pub struct Slot {
    pub host: String,
    pub addr: SocketAddr,
    pub disk: Arc<PowerLossDisk>,
    pub node: Option<Running>,
}

/// A running incarnation.
#[derive(Debug, Clone)]
pub struct Running {
    pub coordinator: Coordinator,
    pub view: Arc<ClusterView>,
    /// The tracked storage the node writes through.
    pub storage: Arc<dyn Storage>,
    pub topology: Topology,
    pub incarnation: Arc<Incarnation>,
    pub actor: NodeId,
    pub origin: ActorOrigin,
    pub shutdown: CancellationToken,
}

/// The cluster.
#[derive(Debug)]
pub struct Topo {
    pub net: Arc<SimNetwork>,
    pub log: Arc<WriteLog>,
    pub directory: Arc<Directory>,
    /// Every node's anti-entropy replica side.
    pumped: Arc<Pumped>,
    clock: Arc<dyn Clock>,
    config: Config,
    policy: ActorPolicy,
    rng: Mutex<StdRng>,
    pub slots: RefCell<Vec<Slot>>,
    /// Sees every record any replica stores (the unique-dot check at every write).
    pub watch: Arc<DotWatch>,
    /// When the background last synced every disk.
    last_sync: std::cell::Cell<tokio::time::Instant>,
}

impl Topo {
    /// `n` NORMAL nodes at RF 3, 1..=10 ms delays, no loss yet.
    pub fn new(seed: u64, n: usize, policy: ActorPolicy) -> Topo {
        let net = Arc::new(SimNetwork::new(seed));
        net.set_delay(Duration::from_millis(1), Duration::from_millis(10));
        net.set_replica_timeout(Duration::from_millis(300));
        let mut config = Config::default();
        config.replication.replication_factor = 3;
        config.server.request_timeout_ms = 2000;
        config.ring.vnodes = VNODES;
        config.streaming.throughput_mb_per_s = 0;
        config.streaming.page_records = 64;
        config.topology.settle_timeout_ms = 3000;
        let clock: Arc<dyn Clock> = Arc::new(VirtualClock { start: tokio::time::Instant::now() });
        let c = Topo {
            net,
            log: Arc::new(WriteLog::default()),
            directory: Arc::new(Directory::default()),
            pumped: Arc::new(Pumped::default()),
            clock,
            config,
            policy,
            rng: Mutex::new(StdRng::seed_from_u64(seed ^ 0x70_90)),
            slots: RefCell::new(Vec::new()),
            watch: Arc::default(),
            last_sync: std::cell::Cell::new(tokio::time::Instant::now()),
        };
        let hosts: Vec<String> = (0..n).map(|_| c.new_host()).collect();
        let ring = Ring::initial(hosts.iter().map(|h| NodeInfo::new(h.as_str(), "", "")), VNODES).expect("ring");
        for (info, tokens) in ring.node_tokens() {
            let i = hosts.iter().position(|h| h == info.host_id.as_str()).expect("host");
            let disk = PowerLossDisk::new();
            identity::adopt(disk.incarnation().as_ref(), &hosts[i], &tokens, 0).expect("identity");
            c.add_slot(hosts[i].clone(), disk);
        }
        for i in 0..n {
            c.start(i, MemberStatus::Normal);
        }
        // A formed cluster: every view knows every member from the start.
        for (_, view) in c.directory.views() {
            for (_, other) in c.directory.views() {
                if other.local_host_id() != view.local_host_id() {
                    view.upsert(Member::clone(&other.local()));
                }
            }
        }
        c
    }

    fn new_host(&self) -> String {
        let mut rng = self.rng.lock().unwrap_or_else(PoisonError::into_inner);
        format!("{:016x}{:016x}", rng.random::<u64>(), rng.random::<u64>())
    }

    fn add_slot(&self, host: String, disk: Arc<PowerLossDisk>) -> usize {
        let mut slots = self.slots.borrow_mut();
        let i = slots.len();
        let addr = SocketAddr::from(([10, 0, 0, i as u8 + 1], 7000));
        slots.push(Slot { host, addr, disk, node: None });
        i
    }

    /// Number of slots (running or not).
    pub fn len(&self) -> usize {
        self.slots.borrow().len()
    }

    /// Host id of slot `i`.
    pub fn host(&self, i: usize) -> String {
        self.slots.borrow()[i].host.clone()
    }

    /// The running incarnation of slot `i`, if any.
    pub fn running(&self, i: usize) -> Option<Running> {
        self.slots.borrow()[i].node.clone()
    }

    /// Slots with a running node.
    pub fn up(&self) -> Vec<usize> {
        (0..self.len()).filter(|i| self.running(*i).is_some()).collect()
    }

    /// Slots a client may send requests to: running, and its view has heard
    /// of every running node. That is what `/readyz` must promise (issue 10
    /// item 4): a node that coordinates from a partial ring, right after a
    /// restart, acknowledges writes on replicas that do not own the key (a
    /// soak of this simulation lost an acknowledged write that way).
    pub fn serving(&self) -> Vec<usize> {
        let up = self.up();
        let hosts: Vec<String> = up.iter().map(|i| self.host(*i)).collect();
        let heard = |i: &usize| {
            let view = Arc::clone(&self.running(*i).expect("up").view);
            hosts.iter().all(|h| view.member(h).is_some())
        };
        up.iter().copied().filter(heard).collect()
    }

    /// Starts an incarnation of slot `i` on its disk, announcing `status`
    /// (`Normal` for a restart), as `kvnode serve` does; marks it alive everywhere.
    pub fn start(&self, i: usize, status: MemberStatus) -> Running {
        let (host, addr, disk) = {
            let s = &self.slots.borrow()[i];
            (s.host.clone(), s.addr, Arc::clone(&s.disk))
        };
        let incarnation = disk.incarnation();
        let id = {
            let mut rng = self.rng.lock().unwrap_or_else(PoisonError::into_inner);
            identity::load_or_create_with(incarnation.as_ref(), VNODES, "", "", &mut *rng).expect("identity")
        };
        assert_eq!(id.host_id, host, "slot {i} came up as another host");
        let actor = match self.policy {
            ActorPolicy::Incarnation => id.node_id,
            ActorPolicy::HostId => u64::from_str_radix(&host[..16], 16).expect("hex host id"),
        };
        let tokens = if status == MemberStatus::Joining { Vec::new() } else { id.tokens.clone() };
        let member = Member {
            host_id: host.clone(),
            node_id: actor,
            grpc_addr: addr,
            http_addr: addr,
            zone: String::new(),
            rack: String::new(),
            tokens,
            generation: id.generation,
            status,
        };
        let watched = Arc::new(WatchedStorage::new(incarnation.clone(), &host, Arc::clone(&self.watch)));
        let logged: Arc<dyn Storage> = Arc::new(LoggedStorage::new(watched, actor, Arc::clone(&self.log)));
        let core = self.core(&host, logged, member.clone());
        for s in self.slots.borrow().iter().filter(|s| s.node.is_none() && s.host != host) {
            core.view.set_liveness(&s.host, Liveness::Down);
        }
        let coordinator = core.coordinator.clone();
        self.net.register(&member, ringkv_node::replication::handler(&coordinator));
        self.net.serve_anti_entropy(&host, Arc::clone(&core.antientropy.local));
        let shutdown = CancellationToken::new();
        let peers = Arc::new(SimStreamPeers::new(Arc::clone(&self.net), &host));
        let topology = core.topology(peers, shutdown.clone());
        let view = Arc::clone(&core.view);
        self.directory.register(addr, &host, topology.clone());
        self.net.serve_streaming(addr, &host, topology.clone());
        let storage = Arc::clone(&core.storage);
        let running = Running { coordinator, view, storage, topology, incarnation, actor, origin: id.actor, shutdown };
        self.slots.borrow_mut()[i].node = Some(running.clone());
        self.net.restart(&host);
        self.mark(&host, Liveness::Alive);
        running
    }

    /// A node's core, built by the node's own assembly over the simulated network.
    fn core(&self, host: &str, storage: Arc<dyn Storage>, local: Member) -> NodeCore {
        let connector = Arc::new(SimConnector::new(Arc::clone(&self.net), host));
        NodeCore::build(CoreParts {
            config: &self.config,
            storage,
            clock: Arc::clone(&self.clock),
            local,
            ports: NodePorts {
                transport: Arc::new(SimTransport::new(Arc::clone(&self.net), host.to_owned())),
                connector,
            },
            settings: ClusterSettings {
                replica_timeout: Duration::from_millis(300),
                sloppy: false,
                inline_storage: true,
                inline_point_ops: true,
            },
            registry: None,
        })
    }

    /// Sets `host`'s liveness in every running view.
    pub fn mark(&self, host: &str, liveness: Liveness) {
        for (_, view) in self.directory.views() {
            view.set_liveness(host, liveness);
        }
    }

    /// Slot `i` loses power: its process dies (nothing in flight is written),
    /// it is unreachable and marked down everywhere, and its disk loses every
    /// write since the last sync. Returns how many record writes were lost.
    pub fn power_off(&self, i: usize) -> u64 {
        let (host, addr, disk, node) = {
            let mut slots = self.slots.borrow_mut();
            let s = &mut slots[i];
            (s.host.clone(), s.addr, Arc::clone(&s.disk), s.node.take())
        };
        let node = node.expect("slot is running");
        node.incarnation.kill();
        node.shutdown.cancel();
        self.directory.unregister(addr);
        self.net.stop_streaming(addr);
        self.net.crash(&host);
        self.mark(&host, Liveness::Down);
        disk.power_loss()
    }

    /// Slot `i`'s process stops cleanly (after a decommission, or a rolling
    /// restart): nothing more is written, the disk is synced and the clean
    /// shutdown recorded, as `Node::stopped` does.
    pub fn stop_clean(&self, i: usize) {
        let (host, addr, node) = {
            let mut slots = self.slots.borrow_mut();
            let s = &mut slots[i];
            (s.host.clone(), s.addr, s.node.take())
        };
        let node = node.expect("slot is running");
        node.shutdown.cancel();
        self.directory.unregister(addr);
        self.net.stop_streaming(addr);
        self.net.crash(&host);
        self.mark(&host, Liveness::Down);
        identity::mark_clean_shutdown(node.incarnation.as_ref(), node.actor).expect("clean shutdown");
        node.incarnation.kill();
    }

    /// [`Topo::power_off`] late in a sync interval (90 % of it after the
    /// last sync), when the unsynced tail is longest.
    pub async fn power_off_late(&self, i: usize) -> u64 {
        let mut at = self.last_sync.get() + SYNC_INTERVAL * 9 / 10;
        if at <= tokio::time::Instant::now() {
            at += SYNC_INTERVAL;
        }
        tokio::time::sleep_until(at).await;
        self.power_off(i)
    }

    /// A new machine takes over the dead slot `i` (`kvnode serve --replace`):
    /// an empty disk, the dead node's host id, tokens and generation as a
    /// live node describes them, REPLACING. Run `topology.replace()` next.
    pub fn replacement(&self, i: usize) -> Running {
        let host = self.host(i);
        assert!(self.running(i).is_none(), "slot {i} must be dead to be replaced");
        let witness = self.up()[0];
        let dead = self.running(witness).expect("up").view.member(&host).expect("known member");
        let disk = PowerLossDisk::new();
        identity::adopt(disk.incarnation().as_ref(), &host, &dead.tokens, dead.generation).expect("adopt");
        self.slots.borrow_mut()[i].disk = disk;
        self.start(i, MemberStatus::Replacing { old_host_id: host })
    }

    /// A new node with an empty disk, JOINING with no tokens yet (run `topology.join(false)` next).
    pub fn joiner(&self) -> (usize, Running) {
        let host = self.new_host();
        let disk = PowerLossDisk::new();
        identity::adopt(disk.incarnation().as_ref(), &host, &[], 0).expect("identity");
        let i = self.add_slot(host, disk);
        (i, self.start(i, MemberStatus::Joining))
    }

    /// The background of a running cluster until `stop`: the gossip stand-in and the periodic sync.
    pub async fn background(&self, stop: &CancellationToken) {
        let mut since_sync = Duration::ZERO;
        while !stop.is_cancelled() {
            pump_membership(&self.net, &self.directory, &self.pumped);
            tokio::time::sleep(PUMP_INTERVAL).await;
            since_sync += PUMP_INTERVAL;
            if since_sync >= SYNC_INTERVAL {
                since_sync = Duration::ZERO;
                for i in self.up() {
                    let _ = self.running(i).expect("up").incarnation.sync();
                }
                self.last_sync.set(tokio::time::Instant::now());
            }
        }
    }

    /// The replicas of `key` in `i`'s read ring (slot indexes).
    pub fn replicas_of(&self, i: usize, key: &[u8]) -> Vec<usize> {
        let view = Arc::clone(&self.running(i).expect("up").view);
        let ring = view.ring();
        let pref = ring.preference_list(token_of(KS, key), 3);
        let hosts: Vec<String> =
            pref.iter().filter_map(|i| ring.node(*i)).map(|n| n.host_id.as_str().to_owned()).collect();
        let slots = self.slots.borrow();
        hosts.iter().filter_map(|h| slots.iter().position(|s| &s.host == h)).collect()
    }

    /// Slot `i`'s own copy of `key`, if it runs.
    pub fn local(&self, i: usize, key: &[u8]) -> Option<Record> {
        self.running(i)?.storage.get(KS, key).expect("get")
    }

    /// Every record of every running node: `(host, key, record)`.
    pub fn all_copies(&self) -> Vec<(String, Bytes, Record)> {
        let mut out = Vec::new();
        for i in self.up() {
            let storage = Arc::clone(&self.running(i).expect("up").storage);
            for r in storage.scan(None, None, Some(KS), usize::MAX).expect("scan") {
                out.push((self.host(i), r.key, r.record));
            }
        }
        out
    }

    /// Waits (virtual time, with a deadline) until `cond` holds; false on timeout.
    pub async fn eventually(&self, deadline: Duration, mut cond: impl FnMut(&Self) -> bool) -> bool {
        let until = tokio::time::Instant::now() + deadline;
        while tokio::time::Instant::now() < until {
            if cond(self) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        cond(self)
    }
}
