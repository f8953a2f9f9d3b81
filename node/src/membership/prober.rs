//! [`StaticMembership`]: the static-membership shell, a [`Worker`] that
//! exchanges `Hello`s with the seeds and every known member, and
//! [`StaticMembership::merge_hello`], the receiving side of that exchange.
//!
//! Every `interval` the worker says hello, concurrently, to every seed address
//! and every known member except itself. Each answer is merged into the
//! [`ClusterView`] (the answering member, then the members it knows, so
//! membership spreads transitively) and marks the member alive; a member that
//! has not answered for longer than `down_after` is marked down.
//!
//! Invariants: the local member is never replaced by what peers say about it;
//! hearsay (a peer's `known` list) only replaces a member when its generation
//! is newer, while a member's own answer also replaces an entry of the same
//! generation; a member is only marked down after `down_after` has passed
//! since its last answer, or since it was first learned of when it never
//! answered. Time is read from an injected clock, so tests and simulation
//! drive it without timers.
//!
//! This module may call `membership::view` and the [`Transport`] trait only.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::future::join_all;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::transport::{Transport, TransportError};
use crate::worker::Worker;

use super::{ClusterView, Liveness, Member};

/// A source of monotonic time; production passes `Arc::new(tokio::time::Instant::now)`.
pub type InstantSource = Arc<dyn Fn() -> Instant + Send + Sync>;

/// The static-membership shell (seeds plus periodic `Hello`s); see the module docs.
pub struct StaticMembership {
    view: Arc<ClusterView>,
    transport: Arc<dyn Transport>,
    seeds: Vec<SocketAddr>,
    interval: Duration,
    down_after: Duration,
    clock: InstantSource,
    /// When each peer last answered (or was first learned of, until it answers).
    last_answer: Mutex<HashMap<String, Instant>>,
}

impl fmt::Debug for StaticMembership {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaticMembership")
            .field("local", &self.view.local_host_id())
            .field("seeds", &self.seeds)
            .field("interval", &self.interval)
            .field("down_after", &self.down_after)
            .finish_non_exhaustive()
    }
}

impl StaticMembership {
    /// A shell filling `view` by saying hello over `transport` to `seeds` and
    /// every known member each `interval` (1 s in production), marking a
    /// member down when it has not answered for `down_after` (3 s).
    pub fn new(
        view: Arc<ClusterView>,
        transport: Arc<dyn Transport>,
        seeds: Vec<SocketAddr>,
        interval: Duration,
        down_after: Duration,
        clock: InstantSource,
    ) -> Self {
        Self { view, transport, seeds, interval, down_after, clock, last_answer: Mutex::new(HashMap::new()) }
    }

    /// The view this shell fills.
    pub fn view(&self) -> &Arc<ClusterView> {
        &self.view
    }

    /// The receiving side of a hello (called from `ReplicaHandler::handle_hello`):
    /// merges `from` and the newer members of `known` into `view`, marks `from`
    /// alive, and answers with (the local member, every member of the view).
    pub fn merge_hello(view: &ClusterView, from: Member, known: Vec<Member>) -> (Member, Vec<Member>) {
        let from_host = from.host_id.clone();
        merge_member(view, from, Source::Itself);
        for member in known {
            merge_member(view, member, Source::Hearsay);
        }
        view.set_liveness(&from_host, Liveness::Alive);
        view.snapshot()
    }

    /// One round: hello to every target concurrently, merge the answers, then
    /// mark members that stayed silent past `down_after` as down.
    pub async fn probe_once(&self) {
        let (me, known) = self.view.snapshot();
        let calls = self.targets(&me, &known).into_iter().map(|addr| {
            let call = self.transport.hello(addr, me.clone(), known.clone());
            async move { (addr, call.await) }
        });
        let answers = join_all(calls).await;
        let now = (self.clock)();
        for (addr, answer) in answers {
            self.on_answer(addr, answer, now);
        }
        self.mark_silent_down(now);
    }

    /// Seeds and every known member's address, except our own, without duplicates.
    fn targets(&self, me: &Member, known: &[Member]) -> BTreeSet<SocketAddr> {
        let mut targets: BTreeSet<SocketAddr> = self.seeds.iter().copied().collect();
        targets.extend(known.iter().filter(|m| m.host_id != me.host_id).map(|m| m.grpc_addr));
        targets.remove(&me.grpc_addr);
        targets
    }

    fn on_answer(&self, addr: SocketAddr, answer: Result<(Member, Vec<Member>), TransportError>, now: Instant) {
        let (peer, known) = match answer {
            Ok(answer) => answer,
            Err(e) => {
                tracing::debug!(%addr, error = %e, "hello got no answer");
                return;
            }
        };
        if peer.host_id == self.view.local_host_id() {
            // A seed list that names this node itself.
            return;
        }
        let host_id = peer.host_id.clone();
        merge_member(&self.view, peer, Source::Itself);
        for member in known {
            merge_member(&self.view, member, Source::Hearsay);
        }
        self.last_answer.lock().unwrap_or_else(PoisonError::into_inner).insert(host_id.clone(), now);
        self.view.set_liveness(&host_id, Liveness::Alive);
    }

    fn mark_silent_down(&self, now: Instant) {
        let local = self.view.local_host_id().to_owned();
        let mut last_answer = self.last_answer.lock().unwrap_or_else(PoisonError::into_inner);
        let mut silent = Vec::new();
        for member in self.view.members().into_iter().filter(|m| m.host_id != local) {
            let last = *last_answer.entry(member.host_id.clone()).or_insert(now);
            let quiet_for = now.saturating_duration_since(last);
            if quiet_for > self.down_after {
                silent.push((member.host_id.clone(), quiet_for));
            }
        }
        drop(last_answer);
        for (host_id, quiet_for) in silent {
            if self.view.is_alive(&host_id) {
                tracing::warn!(%host_id, ?quiet_for, down_after = ?self.down_after, "peer stopped answering hellos");
            }
            self.view.set_liveness(&host_id, Liveness::Down);
        }
    }
}

impl Worker for StaticMembership {
    fn name(&self) -> &'static str {
        "static-membership"
    }

    fn run(self: Box<Self>, stop: CancellationToken) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(async move {
            tracing::info!(seeds = ?self.seeds, interval = ?self.interval, down_after = ?self.down_after, "static membership started");
            // `interval` panics on zero; config validation should prevent it, this keeps the worker alive regardless.
            let mut tick = tokio::time::interval(self.interval.max(Duration::from_millis(1)));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                // The first tick completes at once: the initial round runs at start.
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tick.tick() => {}
                }
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = self.probe_once() => {}
                }
            }
        })
    }
}

/// Who told us about a member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    /// The member itself (its hello or its answer).
    Itself,
    /// Another member's `known` list.
    Hearsay,
}

/// Upserts `member` unless it is the local node or older than what the view
/// holds; returns true when the view changed.
fn merge_member(view: &ClusterView, member: Member, source: Source) -> bool {
    if member.host_id == view.local_host_id() {
        return false;
    }
    let newer = match view.member(&member.host_id) {
        None => true,
        Some(old) if member.generation > old.generation => true,
        Some(old) => source == Source::Itself && member.generation == old.generation,
    };
    if !newer {
        return false;
    }
    let (host_id, addr, generation) = (member.host_id.clone(), member.grpc_addr, member.generation);
    let changed = view.upsert(member);
    if changed {
        tracing::info!(%host_id, %addr, generation, ?source, "cluster member added or updated");
    }
    changed
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use bytes::Bytes;
    use futures::future::BoxFuture;

    use super::*;
    use crate::transport::{CoordinateCall, CoordinateReply, HintedWrite, Peer, ReplicaWrite};
    use crate::version::Record;

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
            status: crate::membership::MemberStatus::Normal,
        }
    }

    /// Answers hellos from the views registered at each address, unless silenced.
    #[derive(Debug, Default)]
    struct FakeNet {
        views: Mutex<HashMap<SocketAddr, Arc<ClusterView>>>,
        silent: Mutex<BTreeSet<SocketAddr>>,
        hellos: AtomicUsize,
    }

    impl FakeNet {
        fn add(&self, view: &Arc<ClusterView>) {
            self.views.lock().unwrap().insert(view.local().grpc_addr, Arc::clone(view));
        }

        fn silence(&self, addr: SocketAddr, silent: bool) {
            let mut s = self.silent.lock().unwrap();
            if silent {
                s.insert(addr)
            } else {
                s.remove(&addr)
            };
        }
    }

    fn unused<T: Send + 'static>() -> BoxFuture<'static, Result<T, TransportError>> {
        Box::pin(async { Err(TransportError::Unreachable { peer: "test".into(), reason: "not used".into() }) })
    }

    impl Transport for FakeNet {
        fn read(&self, _: &Peer, _: &str, _: &Bytes) -> BoxFuture<'static, Result<Option<Record>, TransportError>> {
            unused()
        }
        fn write(&self, _: &Peer, _: ReplicaWrite) -> BoxFuture<'static, Result<(), TransportError>> {
            unused()
        }
        fn deliver_hints(
            &self,
            _: &Peer,
            _: &str,
            _: Vec<HintedWrite>,
        ) -> BoxFuture<'static, Result<u32, TransportError>> {
            unused()
        }
        fn coordinate(
            &self,
            _: &Peer,
            _: CoordinateCall,
        ) -> BoxFuture<'static, Result<CoordinateReply, TransportError>> {
            unused()
        }
        fn page(
            &self,
            _: &Peer,
            _: crate::transport::PageQuery,
        ) -> BoxFuture<'static, Result<Vec<crate::transport::PageItem>, TransportError>> {
            unused()
        }
        fn hello(
            &self,
            addr: SocketAddr,
            me: Member,
            known: Vec<Member>,
        ) -> BoxFuture<'static, Result<(Member, Vec<Member>), TransportError>> {
            self.hellos.fetch_add(1, Ordering::SeqCst);
            let view = self.views.lock().unwrap().get(&addr).cloned();
            let answer = match view {
                Some(view) if !self.silent.lock().unwrap().contains(&addr) => {
                    Ok(StaticMembership::merge_hello(&view, me, known))
                }
                _ => Err(TransportError::Unreachable { peer: addr.to_string(), reason: "silenced".into() }),
            };
            Box::pin(async move { answer })
        }
    }

    /// A clock that moves only when told to.
    #[derive(Clone)]
    struct ManualInstant(Arc<Mutex<Instant>>);

    impl ManualInstant {
        fn new() -> Self {
            Self(Arc::new(Mutex::new(Instant::now())))
        }
        fn advance(&self, by: Duration) {
            *self.0.lock().unwrap() += by;
        }
        fn source(&self) -> InstantSource {
            let at = Arc::clone(&self.0);
            Arc::new(move || *at.lock().unwrap())
        }
    }

    fn shell(
        view: &Arc<ClusterView>,
        net: &Arc<FakeNet>,
        seeds: Vec<SocketAddr>,
        clock: &ManualInstant,
    ) -> StaticMembership {
        let transport: Arc<dyn Transport> = Arc::clone(net) as Arc<dyn Transport>;
        StaticMembership::new(
            Arc::clone(view),
            transport,
            seeds,
            Duration::from_secs(1),
            Duration::from_secs(3),
            clock.source(),
        )
    }

    fn hosts(view: &ClusterView) -> Vec<String> {
        view.members().into_iter().map(|m| m.host_id.clone()).collect()
    }

    #[tokio::test]
    async fn one_round_makes_both_views_know_both_members_and_spreads_transitively() {
        let net = Arc::new(FakeNet::default());
        let (a, b, c) = (member("a", 1, 1), member("b", 2, 1), member("c", 3, 1));
        let (va, vb) = (Arc::new(ClusterView::new(a.clone())), Arc::new(ClusterView::new(b.clone())));
        vb.upsert(c.clone());
        net.add(&va);
        net.add(&vb);
        // The seed list names a itself too: that hello is skipped.
        let prober = shell(&va, &net, vec![a.grpc_addr, b.grpc_addr], &ManualInstant::new());
        prober.probe_once().await;
        assert_eq!(hosts(&va), ["a", "b", "c"], "a learned b from b and c from b's known list");
        assert_eq!(hosts(&vb), ["a", "b", "c"]);
        assert_eq!(va.member("b").as_deref(), Some(&b));
        assert_eq!(net.hellos.load(Ordering::SeqCst), 1, "only b was probed");
        assert_eq!(va.ring().nodes().len(), 3);
        prober.probe_once().await;
        assert_eq!(net.hellos.load(Ordering::SeqCst), 3, "second round probes b and c");
    }

    #[tokio::test]
    async fn a_silent_peer_goes_down_after_down_after_and_comes_back() {
        let net = Arc::new(FakeNet::default());
        let (a, b) = (member("a", 1, 1), member("b", 2, 1));
        let (va, vb) = (Arc::new(ClusterView::new(a)), Arc::new(ClusterView::new(b.clone())));
        net.add(&va);
        net.add(&vb);
        let clock = ManualInstant::new();
        let prober = shell(&va, &net, vec![b.grpc_addr], &clock);
        let mut changes = va.subscribe();

        prober.probe_once().await;
        assert!(va.is_alive("b"));
        net.silence(b.grpc_addr, true);
        clock.advance(Duration::from_secs(2));
        prober.probe_once().await;
        assert!(va.is_alive("b"), "2 s of silence is within down_after");
        clock.advance(Duration::from_secs(2));
        changes.borrow_and_update();
        prober.probe_once().await;
        assert_eq!(va.liveness("b"), Liveness::Down, "4 s of silence is past down_after");
        assert!(changes.has_changed().unwrap(), "the change was published");

        net.silence(b.grpc_addr, false);
        clock.advance(Duration::from_secs(1));
        prober.probe_once().await;
        assert_eq!(va.liveness("b"), Liveness::Alive);
        assert_eq!(hosts(&va), ["a", "b"], "a down member stays a member");
    }

    #[tokio::test]
    async fn a_member_learned_by_hearsay_that_never_answers_goes_down() {
        let net = Arc::new(FakeNet::default());
        let (a, b, c) = (member("a", 1, 1), member("b", 2, 1), member("c", 3, 1));
        let (va, vb) = (Arc::new(ClusterView::new(a)), Arc::new(ClusterView::new(b.clone())));
        vb.upsert(c);
        net.add(&va);
        net.add(&vb);
        let clock = ManualInstant::new();
        let prober = shell(&va, &net, vec![b.grpc_addr], &clock);
        prober.probe_once().await;
        assert!(va.is_alive("c"), "presumed alive when first learned of");
        clock.advance(Duration::from_secs(4));
        prober.probe_once().await;
        assert_eq!((va.liveness("b"), va.liveness("c")), (Liveness::Alive, Liveness::Down));
    }

    #[test]
    fn merge_hello_keeps_newer_generations_and_never_replaces_the_local_member() {
        let a = member("a", 1, 5);
        let view = ClusterView::new(a.clone());
        view.upsert(member("b", 2, 2));
        view.set_liveness("c", Liveness::Down);
        let stale_b = member("b", 20, 1);
        let fake_a = member("a", 99, 9);
        let (me, members) =
            StaticMembership::merge_hello(&view, member("c", 3, 1), vec![stale_b, fake_a, member("d", 4, 0)]);
        assert_eq!(me, a);
        assert_eq!(members.iter().map(|m| m.host_id.as_str()).collect::<Vec<_>>(), ["a", "b", "c", "d"]);
        assert_eq!(view.member("b").map(|m| m.generation), Some(2), "stale hearsay ignored");
        assert_eq!(*view.local(), a);
        assert!(view.is_alive("c"), "the sender is alive");

        let restarted_b = member("b", 22, 3);
        StaticMembership::merge_hello(&view, member("c", 3, 1), vec![restarted_b.clone()]);
        assert_eq!(view.member("b").as_deref(), Some(&restarted_b), "a newer generation replaces");
        let moved_c = Member { zone: "z2".into(), ..member("c", 3, 1) };
        StaticMembership::merge_hello(&view, moved_c.clone(), vec![]);
        assert_eq!(view.member("c").as_deref(), Some(&moved_c), "a member's own word replaces its same generation");
    }

    #[tokio::test]
    async fn the_worker_probes_at_start_and_stops_when_cancelled() {
        let net = Arc::new(FakeNet::default());
        let (a, b) = (member("a", 1, 1), member("b", 2, 1));
        let (va, vb) = (Arc::new(ClusterView::new(a)), Arc::new(ClusterView::new(b.clone())));
        net.add(&vb);
        let transport: Arc<dyn Transport> = Arc::clone(&net) as Arc<dyn Transport>;
        let clock: InstantSource = Arc::new(Instant::now);
        let worker = StaticMembership::new(
            Arc::clone(&va),
            transport,
            vec![b.grpc_addr],
            Duration::from_secs(3600),
            Duration::from_secs(3),
            clock,
        );
        let stop = CancellationToken::new();
        let handle = tokio::spawn(Box::new(worker).run(stop.clone()));
        let mut changes = va.subscribe();
        let learned =
            tokio::time::timeout(Duration::from_secs(5), changes.wait_for(|_| va.member("b").is_some())).await;
        assert!(learned.is_ok(), "the initial round ran without waiting an interval");
        stop.cancel();
        let stopped = tokio::time::timeout(Duration::from_secs(5), handle).await;
        assert!(matches!(stopped, Ok(Ok(()))), "{stopped:?}");
    }
}
