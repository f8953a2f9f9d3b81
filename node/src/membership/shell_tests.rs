//! Tests of the gossip shell: the handle applying rounds to the view, the
//! worker over an in-memory transport, and the gRPC transport and service
//! over a real socket.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use rand::SeedableRng;
use rand::rngs::StdRng;
use tokio_util::sync::CancellationToken;

use super::*;
use crate::peer::{GossipService, GrpcGossipTransport};
use crate::storage::{MemoryStorage, Storage};
use crate::transport::TransportError;
use crate::worker::{WorkerRunner, WorkerState};

fn member(host_id: &str, port: u16, generation: u64) -> Member {
    Member {
        host_id: host_id.to_owned(),
        node_id: u64::from(port),
        grpc_addr: SocketAddr::from(([127, 0, 0, 1], port)),
        http_addr: SocketAddr::from(([127, 0, 0, 1], port + 1000)),
        zone: String::new(),
        rack: String::new(),
        tokens: vec![u64::from(port) * 1_000_003],
        generation,
        status: MemberStatus::Normal,
    }
}

fn handle(m: &Member, seeds: Vec<SocketAddr>) -> GossipHandle {
    let view = Arc::new(ClusterView::new(m.clone()));
    GossipHandle::new(Gossiper::new(m, seeds, DetectorConfig::default()), view, None)
}

/// Runs the rounds `from` starts this tick against the handles registered by address.
fn round(from: &GossipHandle, peers: &HashMap<SocketAddr, GossipHandle>, rng: &mut StdRng) -> usize {
    let (out, _probes) = from.tick(rng, vec![AppValue::Load(10)]);
    for o in &out {
        let to = peers.get(&o.to).unwrap_or_else(|| panic!("no peer at {}", o.to));
        let ack = to.on_syn(&o.syn);
        let ack2 = from.on_ack(&ack);
        to.on_ack2(&ack2);
    }
    out.len()
}

#[test]
fn rounds_fill_both_views_and_spread_local_status_and_token_changes() {
    let (a, b, c) = (member("a", 1, 1), member("b", 2, 1), member("c", 3, 1));
    let (ha, hb, hc) = (handle(&a, vec![a.grpc_addr]), handle(&b, vec![a.grpc_addr]), handle(&c, vec![a.grpc_addr]));
    let peers: HashMap<SocketAddr, GossipHandle> =
        [(a.grpc_addr, ha.clone()), (b.grpc_addr, hb.clone()), (c.grpc_addr, hc.clone())].into_iter().collect();
    let mut rng = StdRng::seed_from_u64(7);
    assert_eq!(round(&ha, &peers, &mut rng), 0, "a knows no one and is its own only seed");
    assert_eq!(round(&hb, &peers, &mut rng), 1, "b gossips to its seed a");
    round(&hc, &peers, &mut rng);
    assert_eq!(ha.view().member_count(), 3, "the seed learned b and c from their SYNs");
    // b learns c from a's or c's next rounds.
    for _ in 0..5 {
        for h in [&ha, &hb, &hc] {
            round(h, &peers, &mut rng);
        }
    }
    for h in [&ha, &hb, &hc] {
        let hosts: Vec<String> = h.view().members().iter().map(|m| m.host_id.clone()).collect();
        assert_eq!(hosts, ["a", "b", "c"], "{}: membership spread through the seed", h.view().local_host_id());
    }
    assert_eq!(hc.view().member("b").as_deref(), Some(&b));
    assert_eq!(hc.load("b"), Some(10), "load travels with gossip");

    let mut changes = hc.view().subscribe();
    changes.borrow_and_update();
    assert!(hb.view().set_local_status(MemberStatus::Leaving));
    assert!(hb.view().set_local_tokens(vec![5, 6]));
    for _ in 0..10 {
        for h in [&ha, &hb, &hc] {
            round(h, &peers, &mut rng);
        }
    }
    let seen = hc.view().member("b").unwrap_or_else(|| panic!("c forgot b"));
    assert_eq!((seen.status.clone(), seen.tokens.clone()), (MemberStatus::Leaving, vec![5, 6]));
    assert!(changes.has_changed().unwrap_or(false), "the view published the change");
    assert_eq!(hc.view().ring().nodes().len(), 3, "the ring was rebuilt with b's new tokens");
    assert_eq!(*ha.view().local(), a, "gossip never replaced a's own member");
}

/// Routes SYNs and ACK2s to handles by address, failing for unknown ones.
#[derive(Debug, Default)]
struct MemNet {
    peers: Mutex<HashMap<SocketAddr, GossipHandle>>,
}

impl GossipTransport for MemNet {
    fn syn(&self, to: SocketAddr, syn: GossipSyn) -> BoxFuture<'static, Result<GossipAck, TransportError>> {
        let peer = self.peers.lock().unwrap_or_else(|e| e.into_inner()).get(&to).cloned();
        let answer = peer
            .map(|p| p.on_syn(&syn))
            .ok_or_else(|| TransportError::Unreachable { peer: to.to_string(), reason: "no such node".into() });
        Box::pin(async move { answer })
    }

    fn ack2(&self, to: SocketAddr, ack2: GossipAck2) -> BoxFuture<'static, Result<(), TransportError>> {
        if let Some(p) = self.peers.lock().unwrap_or_else(|e| e.into_inner()).get(&to) {
            p.on_ack2(&ack2);
        }
        Box::pin(async { Ok(()) })
    }

    fn ping(
        &self,
        to: SocketAddr,
        ping: GossipPing,
        _timeout: Duration,
    ) -> BoxFuture<'static, Result<GossipPing, TransportError>> {
        let peer = self.peers.lock().unwrap_or_else(|e| e.into_inner()).get(&to).cloned();
        let answer = peer
            .map(|p| p.on_ping(&ping))
            .ok_or_else(|| TransportError::Unreachable { peer: to.to_string(), reason: "no such node".into() });
        Box::pin(async move { answer })
    }
}

#[tokio::test]
async fn workers_join_two_nodes_at_their_first_tick_and_stop_when_cancelled() {
    let (a, b) = (member("a", 11, 1), member("b", 12, 1));
    let (ha, hb) = (handle(&a, vec![]), handle(&b, vec![a.grpc_addr]));
    let net = Arc::new(MemNet::default());
    net.peers.lock().unwrap_or_else(|e| e.into_inner()).extend([(a.grpc_addr, ha.clone()), (b.grpc_addr, hb.clone())]);
    let storage: Arc<dyn Storage> = Arc::new(MemoryStorage::new());
    let stop = CancellationToken::new();
    let mut runner = WorkerRunner::new(&stop);
    for h in [&ha, &hb] {
        let transport: Arc<dyn GossipTransport> = Arc::clone(&net) as Arc<dyn GossipTransport>;
        // An hour-long interval: only the immediate first tick can do the work.
        let worker =
            GossipWorker::new(h.clone(), transport, Arc::clone(&storage), "s1".into(), Duration::from_secs(3600));
        runner.spawn(worker);
    }
    let mut changes = ha.view().subscribe();
    let joined =
        tokio::time::timeout(Duration::from_secs(10), changes.wait_for(|_| ha.view().member("b").is_some())).await;
    assert!(joined.is_ok(), "a learned b from b's first SYN");
    stop.cancel();
    let report = runner.stop(Duration::from_secs(5)).await;
    assert!(report.aborted.is_empty(), "both stopped when cancelled: {report:?}");
    assert!(report.workers.iter().all(|w| w.state == WorkerState::Done && w.errors == 0), "{report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_round_over_grpc_exchanges_states_and_an_unreachable_peer_is_an_error() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap_or_else(|e| panic!("bind: {e}"));
    let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
    let server_member = Member { grpc_addr: addr, ..member("server", 21, 4) };
    let server = handle(&server_member, vec![]);
    let stop = CancellationToken::new();
    let service = GossipService::new(server.clone()).into_server();
    let incoming = tonic::transport::server::TcpIncoming::from(listener);
    let serving = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming_shutdown(incoming, stop.clone().cancelled_owned()),
    );

    let client_member = member("client", 22, 2);
    let client = handle(&client_member, vec![addr]);
    let transport = GrpcGossipTransport::new(Duration::from_secs(5), Duration::from_secs(2));
    let (out, probes) = client.tick(&mut StdRng::seed_from_u64(1), vec![]);
    assert_eq!(out.iter().map(|o| o.to).collect::<Vec<_>>(), [addr], "the only seed");
    assert!(probes.is_empty(), "no peer is known yet, so none is probed");
    let ack = transport.syn(addr, out[0].syn.clone()).await.unwrap_or_else(|e| panic!("syn: {e}"));
    let ack2 = client.on_ack(&ack);
    transport.ack2(addr, ack2).await.unwrap_or_else(|e| panic!("ack2: {e}"));
    assert_eq!(client.view().member("server").as_deref(), Some(&server_member));
    assert_eq!(server.view().member("client").as_deref(), Some(&client_member));

    // Now each knows the other, the client probes the server; the answer is the server's own probe.
    let (_, probes) = client.tick(&mut StdRng::seed_from_u64(2), vec![]);
    assert_eq!(probes.iter().map(|p| p.to).collect::<Vec<_>>(), [addr], "every known peer is probed");
    let pong = transport.ping(addr, probes[0].ping.clone(), Duration::from_secs(1)).await;
    let pong = pong.unwrap_or_else(|e| panic!("ping: {e}"));
    assert_eq!(pong.from, "server");
    client.on_pong(&pong);
    assert!(client.phi("server") < 1.0, "a fresh answer: the server is alive");

    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap_or_else(|e| panic!("bind: {e}"));
    let dead = closed.local_addr().unwrap_or_else(|e| panic!("{e}"));
    drop(closed);
    let failed = transport.syn(dead, out[0].syn.clone()).await;
    assert!(matches!(failed, Err(TransportError::Unreachable { .. } | TransportError::Timeout { .. })), "{failed:?}");
    let failed = transport.ping(dead, probes[0].ping.clone(), Duration::from_millis(500)).await;
    assert!(matches!(failed, Err(TransportError::Unreachable { .. } | TransportError::Timeout { .. })), "{failed:?}");
    stop.cancel();
    let _ = serving.await;
}

/// Names are looked up again: a seed whose name moved to a new address is
/// followed (and kept while its name does not resolve), and a silent
/// peer's advertised name leads a SYN to where it resolves now.
#[tokio::test]
async fn seed_names_and_silent_peers_names_are_followed_to_new_addresses() {
    let me = member("me", 1, 1);
    let old_seed = SocketAddr::from(([127, 0, 0, 2], 7100));
    let new_seed = SocketAddr::from(([127, 0, 0, 3], 7100));
    let h = handle(&me, vec![old_seed]);
    let names = Arc::new(StaticResolver::new());
    let resolver: Arc<dyn Resolver> = names.clone();
    let seeds = vec!["seed-0:7100".to_owned()];
    GossipWorker::resolve(h.clone(), Arc::clone(&resolver), seeds.clone(), Duration::from_secs(1)).await;
    assert_eq!(h.seeds(), [old_seed], "an unresolvable name keeps the address known");
    names.set("seed-0:7100", vec![new_seed]);
    GossipWorker::resolve(h.clone(), Arc::clone(&resolver), seeds.clone(), Duration::from_secs(1)).await;
    assert_eq!(h.seeds(), [new_seed], "the seed's name moved: followed");
    // A seed with no name yet at start (its pod not created yet) is used once its name resolves.
    let late = SocketAddr::from(([127, 0, 0, 4], 7100));
    let both = vec!["seed-0:7100".to_owned(), "seed-1:7100".to_owned()];
    GossipWorker::resolve(h.clone(), Arc::clone(&resolver), both.clone(), Duration::from_secs(1)).await;
    assert_eq!(h.seeds(), [new_seed]);
    names.set("seed-1:7100", vec![late]);
    GossipWorker::resolve(h.clone(), Arc::clone(&resolver), both, Duration::from_secs(1)).await;
    assert_eq!(h.seeds(), [new_seed, late], "the late seed is contacted once it resolves");

    // A peer known from saved membership, silent, advertising a name that now resolves elsewhere.
    let peer = member("peer", 5, 3);
    let mut peer_core = Gossiper::new(&peer, vec![], DetectorConfig::default());
    peer_core.update_local([AppValue::HostName("peer-0:7100".into())]);
    let state = peer_core.endpoint("peer").cloned().unwrap_or_else(|| panic!("own state"));
    h.restore([("peer".to_owned(), state)].into_iter().collect());
    assert_eq!(h.view().liveness("peer"), Liveness::Down, "restored peers are DOWN until they answer");
    let moved = SocketAddr::from(([127, 0, 0, 9], 7100));
    names.set("peer-0:7100", vec![moved]);
    let mut rng = StdRng::seed_from_u64(3);
    let (_, probes) = h.tick(&mut rng, vec![]);
    assert!(
        probes.iter().any(|p| p.to == peer.grpc_addr && p.reconnect),
        "a silent peer is probed on a new connection"
    );
    GossipWorker::resolve(h.clone(), resolver, seeds, Duration::from_secs(1)).await;
    let (out, _) = h.tick(&mut rng, vec![]);
    assert!(
        out.iter().any(|o| o.to == moved && o.reason == TargetReason::Resolved),
        "a SYN goes where the peer's name resolves now: {out:?}"
    );
}
