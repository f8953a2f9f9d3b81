//! Fixtures for the anti-entropy tests: in-process replicas over the
//! in-memory engine, built by the node's own assembly (`NodeCore`: tracked
//! storage, coordinator as the merger, local replica), and repairers. A
//! repairer reaches the other replicas over a fault-free `SimNetwork` (its
//! `SimConnector`), as a node's reaches them over gRPC.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use ringkv_node::antientropy::{LocalReplica, Repairer, RepairerParts, SyncHistory, Throttle, TreeStore};
use ringkv_node::assembly::{CoreParts, NodeCore, NodePorts};
use ringkv_node::clock::ManualClock;
use ringkv_node::config::Config;
use ringkv_node::membership::{ClusterView, Member, MemberStatus};
use ringkv_node::peer::{SimConnector, SimNetwork};
use ringkv_node::replication::{ClusterSettings, Coordinator};
use ringkv_node::storage::{MemoryStorage, Storage, WriteBatch, WriteOp};
use ringkv_node::transport::UnconnectedTransport;
use ringkv_node::version::{ConflictMode, Dot, NewWrite, NodeId, Record, VersionVector};

/// A fixed start time for every clock.
pub const START_US: i64 = 1_700_000_000_000_000;
/// The keyspace the tests use.
pub const KS: &str = "default";

/// One in-process replica.
#[derive(Debug)]
pub struct TestReplica {
    pub host_id: String,
    pub storage: Arc<dyn Storage>,
    pub view: Arc<ClusterView>,
    pub trees: Arc<TreeStore>,
    pub coordinator: Coordinator,
    pub local: Arc<LocalReplica>,
}

fn member(i: usize, tokens: Vec<u64>) -> Member {
    Member {
        host_id: format!("node-{i}"),
        node_id: i as NodeId + 1,
        grpc_addr: SocketAddr::from(([127, 0, 0, 1], 7000 + i as u16)),
        http_addr: SocketAddr::from(([127, 0, 0, 1], 8000 + i as u16)),
        zone: String::new(),
        rack: String::new(),
        tokens,
        generation: 1,
        status: MemberStatus::Normal,
    }
}

/// Tokens of member `i` of `n`: 8 evenly spread vnodes, interleaved.
fn tokens(i: usize, n: usize) -> Vec<u64> {
    let step = u64::MAX / (8 * n as u64);
    (0..8).map(|v| step * (v * n as u64 + i as u64) + 1).collect()
}

/// `n` replicas sharing `clock`, each seeing all `n` members alive, replication factor `rf`, tree `depth`;
/// each built by the node's own assembly (`NodeCore`) with no network: the
/// tests connect replicas through [`repairer`], which gives every repair a
/// fresh history (the core's own repairer is never run).
pub fn replicas(n: usize, rf: u32, depth: u32, clock: &Arc<ManualClock>) -> Vec<TestReplica> {
    let mut config = Config::default();
    config.replication.replication_factor = rf;
    config.antientropy.depth = depth;
    config.antientropy.throughput_mb_per_s = 0.0;
    config.hints.max_hint_window_seconds = 3600;
    (0..n)
        .map(|i| {
            let core = NodeCore::build(CoreParts {
                config: &config,
                storage: Arc::new(MemoryStorage::new()),
                clock: clock.clone(),
                local: member(i, tokens(i, n)),
                ports: NodePorts {
                    transport: Arc::new(UnconnectedTransport),
                    // The core's own repairer is never run: its connector reaches nobody.
                    connector: Arc::new(SimConnector::new(Arc::new(SimNetwork::new(0)), &format!("node-{i}"))),
                },
                settings: ClusterSettings::default(),
                registry: None,
            });
            for j in (0..n).filter(|&j| j != i) {
                core.view.upsert(member(j, tokens(j, n)));
            }
            TestReplica {
                host_id: format!("node-{i}"),
                storage: core.storage,
                view: core.view,
                trees: core.trees,
                coordinator: core.coordinator,
                local: core.antientropy.local,
            }
        })
        .collect()
}

/// A repairer for replica `i` of `all`, with a fresh history.
pub fn repairer(all: &[TestReplica], i: usize, hint_window_ms: u64) -> Repairer {
    // A fault-free network: these tests are about the repair, not the faults (`ae_simulation.rs` is).
    let net = Arc::new(SimNetwork::new(0));
    for r in all {
        net.serve_anti_entropy(&r.host_id, Arc::clone(&r.local));
    }
    let r = &all[i];
    let history = Arc::new(SyncHistory::new(
        Arc::clone(&r.storage),
        Arc::clone(&r.view),
        r.coordinator.clone(),
        std::time::Duration::from_millis(hint_window_ms),
    ));
    Repairer::new(RepairerParts {
        local: Arc::clone(&r.local),
        coordinator: r.coordinator.clone(),
        view: Arc::clone(&r.view),
        connector: Arc::new(SimConnector::new(net, &r.host_id)),
        history,
        tree_max_age: std::time::Duration::from_secs(3600),
        exchange_throttle: Throttle::mb_per_s(0.0),
    })
}

/// A record written by `node` (counter `counter`) with `value` (None: tombstone) at `ts_ms`.
pub fn write(node: NodeId, counter: u64, value: Option<&str>, ts_ms: i64) -> Record {
    let mut r = Record::default();
    if counter > 1 {
        r.clock = VersionVector::from_entries([(node, counter - 1)]);
    }
    let context = r.clock.clone();
    let dot = r.apply_write(
        node,
        &context,
        NewWrite {
            value: value.map(|v| Bytes::from(v.to_owned())),
            timestamp_micros: ts_ms * 1000,
            expires_at_ms: None,
        },
        ConflictMode::Siblings,
    );
    assert_eq!(dot, Dot { node, counter });
    r
}

/// Stores `record` as is (bypassing versioning), or removes the key.
pub fn put_raw(storage: &dyn Storage, key: &str, record: Option<Record>) {
    let key = Bytes::from(key.to_owned());
    let op = match record {
        Some(record) => WriteOp::Put { keyspace: KS.to_owned(), key, record },
        None => WriteOp::Purge { keyspace: KS.to_owned(), key },
    };
    drop(storage.write(WriteBatch { ops: vec![op] }).expect("write"));
}

/// Every record of the keyspace, by key.
pub fn contents(storage: &dyn Storage) -> BTreeMap<Bytes, Record> {
    storage.scan(None, None, Some(KS), usize::MAX).expect("scan").into_iter().map(|s| (s.key, s.record)).collect()
}
