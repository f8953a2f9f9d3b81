//! [`Topology`]: the node lifecycle as a thin async shell over the pure
//! [`pending_moves`]/[`replace_moves`] and the [`Streamer`].
//!
//! - join: a fresh node waits for its turn (`turn.rs`: one join at a time,
//!   in host-id order), takes balancing tokens against its ring, announces
//!   JOINING with them, waits until the live members see it so (their writes
//!   now include it), yields if a concurrent claim wins, streams the ranges it
//!   gains, then becomes NORMAL. While the cluster has fewer than RF NORMAL
//!   nodes (being formed, `kvnode dev`) the first fresh nodes start NORMAL
//!   with host-id-seeded tokens instead.
//! - replace: a fresh node takes a dead node's host id and tokens, announces
//!   REPLACING (it receives writes, serves no reads), streams every range of
//!   the dead node from the surviving replicas, then becomes NORMAL.
//! - decommission: LEAVING; each new owner pulls the ranges it gains (from
//!   the leaving node first); hints held here are handed over; LEFT; exit.
//! - removenode (`removal.rs`): the dead node becomes LEAVING, written into
//!   gossip on its behalf (a newer generation of its state) and pushed to
//!   every live peer; the new owners pull from the surviving replicas; then
//!   LEFT the same way. Gossip carries the LEFT state to nodes that were down
//!   or start later, and every node saves it, so the host never comes back.
//!
//! The state of a change is persisted (`topology.state` in the meta
//! partition) so that a restarted node resumes its join or replacement.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::membership::{ClusterView, GossipHandle, Member, MemberStatus};
use crate::replication::{Coordinator, NodeParts};
use crate::ring::Token;
use crate::storage::{ScanPosition, StoredRecord};
use crate::transport::{HintedWrite, Peer, ReplicaWrite};

use super::peers::StreamPeers;
use super::progress::StreamProgress;
use super::stream::{StreamSettings, Streamer};
use super::turn::is_moving;
use super::{TopologyError, pending_moves, replace_moves};

/// Meta key of the lifecycle state of this node.
pub const STATE_KEY: &str = "topology.state";

/// Attempts of a gainer's streaming in a decommission or removenode before the change fails.
pub const PENDING_ATTEMPTS: u32 = 5;

/// Settings of the lifecycle (`[streaming]` plus membership timing).
#[derive(Debug, Clone, Copy)]
pub struct TopologySettings {
    /// Streaming pace and page size.
    pub stream: StreamSettings,
    /// How long to wait for live peers to see a status change before streaming anyway.
    pub settle_timeout: Duration,
    /// Vnodes of a joining node.
    pub vnodes: u32,
}

/// Proof that this node runs one topology change; see [`Topology::reserve`].
#[derive(Debug)]
pub struct Reservation(#[allow(dead_code)] tokio::sync::OwnedMutexGuard<()>);

/// The node lifecycle. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Topology {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    coordinator: Coordinator,
    /// This node's storage, view, hints and transport (given at construction).
    node: NodeParts,
    peers: Arc<dyn StreamPeers>,
    streamer: Streamer,
    settings: TopologySettings,
    busy: Arc<tokio::sync::Mutex<()>>,
    shutdown: CancellationToken,
    /// Gossip, once started: removals are written into it so that they spread and last.
    gossip: std::sync::OnceLock<GossipHandle>,
    /// Set once this node has heard its seeds (or had none, or gave up waiting).
    discovered: AtomicBool,
}

/// Refuses when a member other than `except` is joining, leaving or being
/// replaced: one topology change at a time in the cluster. (A fresh node that
/// has not claimed tokens yet owns nothing and is not in the way.)
pub fn check_idle(members: &[Arc<Member>], except: &[&str]) -> Result<(), TopologyError> {
    match members.iter().find(|m| is_moving(m) && !except.contains(&m.host_id.as_str())) {
        Some(m) => Err(TopologyError::Busy { host_id: m.host_id.clone(), status: m.status.as_str() }),
        None => Ok(()),
    }
}

impl Topology {
    /// The lifecycle of the node that `coordinator` serves, over the node's
    /// parts `node`; `shutdown` stops the process after decommission.
    pub fn new(
        coordinator: Coordinator,
        node: NodeParts,
        peers: Arc<dyn StreamPeers>,
        progress: StreamProgress,
        settings: TopologySettings,
        shutdown: CancellationToken,
    ) -> Self {
        let streamer = Streamer {
            coordinator: coordinator.clone(),
            node: node.clone(),
            peers: Arc::clone(&peers),
            progress,
            settings: settings.stream,
            stop: shutdown.clone(),
        };
        let inner = Inner {
            coordinator,
            node,
            peers,
            streamer,
            settings,
            busy: Default::default(),
            shutdown,
            gossip: std::sync::OnceLock::new(),
            discovered: AtomicBool::new(false),
        };
        Self { inner: Arc::new(inner) }
    }

    /// Hands the node's gossip to the lifecycle (once): removals go through it.
    pub fn set_gossip(&self, gossip: GossipHandle) {
        let _ = self.inner.gossip.set(gossip);
    }

    /// The node's gossip, once started.
    pub(super) fn gossip(&self) -> Option<&GossipHandle> {
        self.inner.gossip.get()
    }

    /// Marks that this node has heard its seeds: from now on it may report ready.
    pub fn set_discovered(&self) {
        self.inner.discovered.store(true, Ordering::SeqCst);
    }

    /// Why this fresh node waits to enter the ring, while it does (also in
    /// its streaming progress, which status shows).
    pub fn waiting(&self) -> Option<String> {
        Some(self.progress().snapshot().waiting).filter(|w| !w.is_empty())
    }

    pub(super) fn set_waiting(&self, why: Option<String>) {
        self.progress().set_waiting(why.as_deref());
    }

    pub(super) fn stopped(&self) -> CancellationToken {
        self.inner.shutdown.clone()
    }

    /// Holds this node's one-change-at-a-time lock.
    pub(super) async fn lock_busy(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.inner.busy.lock().await
    }

    pub(super) fn settings(&self) -> &TopologySettings {
        &self.inner.settings
    }

    /// The coordinator of this node.
    pub fn coordinator(&self) -> &Coordinator {
        &self.inner.coordinator
    }

    /// The peers client.
    pub fn peers(&self) -> &Arc<dyn StreamPeers> {
        &self.inner.peers
    }

    /// This node's parts (for the other files of `topology`).
    pub(super) fn node(&self) -> &NodeParts {
        &self.inner.node
    }

    /// This node's cluster view.
    pub fn view(&self) -> &Arc<ClusterView> {
        &self.inner.node.view
    }

    /// Up to `limit` local records after `after` in token order, up to
    /// token `upper` (the source side of streaming).
    pub async fn fetch_range(
        &self,
        after: Option<ScanPosition>,
        upper: Token,
        limit: usize,
    ) -> Result<Vec<StoredRecord>, TopologyError> {
        let storage = Arc::clone(&self.inner.node.storage);
        let records = tokio::task::spawn_blocking(move || storage.scan(after.as_ref(), Some(upper), None, limit))
            .await
            .map_err(|_| TopologyError::Stopped)??;
        Ok(records)
    }

    /// The streaming progress of this node.
    pub fn progress(&self) -> &StreamProgress {
        &self.inner.streamer.progress
    }

    /// The largest replication factor of any keyspace: moves are computed at it.
    pub fn max_rf(&self) -> usize {
        self.inner.coordinator.keyspaces().list().iter().map(|k| k.replication_factor).max().unwrap_or(1) as usize
    }

    /// Refuses when a member other than `except` is joining, leaving or being replaced.
    pub fn check_idle(&self, except: &[&str]) -> Result<(), TopologyError> {
        check_idle(&self.view().members(), except)
    }

    fn normal_count(&self) -> usize {
        self.view().members().iter().filter(|m| m.status == MemberStatus::Normal && !m.tokens.is_empty()).count()
    }

    pub(super) async fn set_state(&self, state: &str) -> Result<(), TopologyError> {
        let storage = Arc::clone(&self.inner.node.storage);
        let state = state.to_owned();
        tokio::task::spawn_blocking(move || storage.put_meta(STATE_KEY, state.as_bytes()))
            .await
            .map_err(|_| TopologyError::Stopped)??;
        Ok(())
    }

    /// Live members other than this node.
    pub(super) fn live_peers(&self) -> Vec<Arc<Member>> {
        let view = self.view();
        view.members()
            .into_iter()
            .filter(|m| {
                m.host_id != view.local_host_id() && view.is_alive(&m.host_id) && m.status != MemberStatus::Left
            })
            .collect()
    }

    /// Waits until every live peer reports `host_id` with `status` (and, for
    /// this node, its current tokens), so their writes already include the
    /// change, or the settle timeout passes.
    pub(super) async fn wait_seen(&self, host_id: &str, status: &MemberStatus) {
        let deadline = tokio::time::Instant::now() + self.inner.settings.settle_timeout;
        let tokens = (host_id == self.view().local_host_id()).then(|| self.view().local().tokens.clone());
        loop {
            let mut behind = Vec::new();
            for peer in self.live_peers() {
                match self.inner.peers.describe(peer.grpc_addr, host_id).await.map(|d| d.member) {
                    Ok(Some(d))
                        if d.member.status == *status && tokens.as_ref().is_none_or(|t| *t == d.member.tokens) => {}
                    _ => behind.push(peer.host_id.clone()),
                }
            }
            if behind.is_empty() {
                return;
            }
            if tokio::time::Instant::now() >= deadline || self.inner.shutdown.is_cancelled() {
                tracing::warn!(
                    host_id,
                    status = status.as_str(),
                    ?behind,
                    "peers did not see the status change in time; going on"
                );
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Streams until done, retrying failed attempts (a source down, a peer
    /// restarting) every second until the node stops.
    async fn stream_until_done(
        &self,
        operation: &str,
        moves: impl Fn(&Self) -> Vec<super::RangeMove>,
        prefer: Option<&str>,
    ) -> Result<(), TopologyError> {
        loop {
            match self.inner.streamer.run(operation, &moves(self), prefer).await {
                Ok(_) => return Ok(()),
                Err(TopologyError::Stopped) => return Err(TopologyError::Stopped),
                Err(e) => {
                    tracing::warn!(operation, error = %e, "streaming failed; retrying in 1 s (progress is kept)");
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_secs(1)) => {}
                        () = self.inner.shutdown.cancelled() => return Err(TopologyError::Stopped),
                    }
                }
            }
        }
    }

    fn current_moves(&self) -> Vec<super::RangeMove> {
        let view = self.view();
        match view.pending_ring() {
            Some(next) => pending_moves(&view.ring(), &next, self.max_rf()),
            None => Vec::new(),
        }
    }

    /// Resumes a join interrupted by a restart: JOINING with the persisted tokens, stream, NORMAL.
    pub async fn resume_join(&self) -> Result<(), TopologyError> {
        let _guard = self.inner.busy.lock().await;
        self.view().set_local_status(MemberStatus::Joining);
        self.finish_join(true).await
    }

    pub(super) async fn finish_join(&self, resume: bool) -> Result<(), TopologyError> {
        let view = self.view();
        let host = view.local_host_id().to_owned();
        tracing::info!(host_id = %host, resume, "joining the cluster");
        self.wait_seen(&host, &MemberStatus::Joining).await;
        self.stream_until_done("join", Self::current_moves, None).await?;
        self.set_state("normal").await?;
        view.set_local_status(MemberStatus::Normal);
        tracing::info!(host_id = %host, "joined: NORMAL");
        Ok(())
    }

    /// A node forming a new cluster: NORMAL at once with its seeded tokens.
    pub async fn form(&self, tokens: Vec<crate::ring::Token>) -> Result<(), TopologyError> {
        let _guard = self.inner.busy.lock().await;
        self.set_state("normal").await?;
        let view = self.view();
        view.set_local_tokens(tokens);
        view.set_local_status(MemberStatus::Normal);
        Ok(())
    }

    /// Stops the node (a lifecycle step that cannot go on).
    pub fn stop(&self) {
        self.inner.shutdown.cancel();
    }

    /// Replaces the dead node whose host id and tokens this node took: REPLACING, stream, NORMAL.
    pub async fn replace(&self) -> Result<(), TopologyError> {
        let _guard = self.inner.busy.lock().await;
        let view = self.view();
        let host = view.local_host_id().to_owned();
        self.set_state(&format!("replacing:{host}")).await?;
        let status = MemberStatus::Replacing { old_host_id: host.clone() };
        view.set_local_status(status.clone());
        tracing::info!(host_id = %host, "replacing a dead node: streaming its ranges from the surviving replicas");
        self.wait_seen(&host, &status).await;
        let rf = self.max_rf();
        let me = host.clone();
        self.stream_until_done("replace", move |t: &Self| replace_moves(&t.view().ring(), rf, &me), None).await?;
        self.set_state("normal").await?;
        view.set_local_status(MemberStatus::Normal);
        tracing::info!(host_id = %host, "replacement done: NORMAL");
        Ok(())
    }

    /// Streams in every range this node gains in the transition under way
    /// (called by the node that drives a decommission or removenode). A
    /// failed attempt (a lost call, a source restarting) is retried every
    /// second, [`PENDING_ATTEMPTS`] times in all; progress is kept between attempts.
    pub async fn stream_pending(&self, prefer: Option<String>) -> Result<(u64, u64), TopologyError> {
        let mut attempt = 1;
        loop {
            let moves = self.current_moves();
            match self.inner.streamer.run("pending", &moves, prefer.as_deref()).await {
                Err(e) if attempt < PENDING_ATTEMPTS && !matches!(e, TopologyError::Stopped) => {
                    tracing::warn!(attempt, error = %e, "streaming failed; retrying in 1 s (progress is kept)");
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_secs(1)) => {}
                        () = self.inner.shutdown.cancelled() => return Err(TopologyError::Stopped),
                    }
                    attempt += 1;
                }
                result => return result,
            }
        }
    }

    /// Checks what decommissioning this node needs, without changing anything.
    pub fn check_decommission(&self) -> Result<(), TopologyError> {
        let local = self.view().local();
        if local.status != MemberStatus::Normal {
            return Err(TopologyError::Precondition {
                reason: format!(
                    "this node is {}, not NORMAL; only a NORMAL node can be decommissioned",
                    local.status.as_str()
                ),
            });
        }
        self.check_idle(&[])?;
        let (remaining, rf) = (self.normal_count().saturating_sub(1), self.max_rf());
        if remaining < rf {
            return Err(TopologyError::TooFewNodes { what: "decommission", remaining, rf: rf as u32 });
        }
        Ok(())
    }

    /// Reserves this node for one topology change (decommission, removenode):
    /// a second one is refused until the guard is dropped.
    pub fn reserve(&self) -> Result<Reservation, TopologyError> {
        Arc::clone(&self.inner.busy).try_lock_owned().map(Reservation).map_err(|_| TopologyError::Busy {
            host_id: self.view().local_host_id().to_owned(),
            status: "changing the topology",
        })
    }

    /// Decommissions this node: LEAVING, new owners stream, hints handed
    /// over, LEFT; then the process stops.
    pub async fn decommission(&self, _reserved: Reservation) -> Result<(), TopologyError> {
        self.check_decommission()?;
        let view = self.view();
        let local = view.local_host_id().to_owned();
        self.set_state("leaving").await?;
        view.set_local_status(MemberStatus::Leaving);
        self.wait_seen(&local, &MemberStatus::Leaving).await;
        if let Err(e) = self.drive_pending(Some(local.clone())).await {
            tracing::error!(error = %e, "decommission failed; back to NORMAL");
            view.set_local_status(MemberStatus::Normal);
            self.set_state("normal").await?;
            return Err(e);
        }
        if let Err(e) = self.hand_over_hints_retrying().await {
            tracing::error!(error = %e, "decommission failed handing hints over; back to NORMAL");
            view.set_local_status(MemberStatus::Normal);
            self.set_state("normal").await?;
            return Err(e);
        }
        self.set_state("left").await?;
        view.set_local_status(MemberStatus::Left);
        self.wait_seen(&local, &MemberStatus::Left).await;
        tracing::info!(host_id = %local, "decommissioned: LEFT; stopping");
        self.inner.shutdown.cancel();
        Ok(())
    }

    /// Asks every gainer of the transition under way to stream its ranges.
    pub(super) async fn drive_pending(&self, prefer: Option<String>) -> Result<(), TopologyError> {
        let moves = self.current_moves();
        let mut gainers: Vec<String> = moves.iter().map(|m| m.to.as_str().to_owned()).collect();
        gainers.sort();
        gainers.dedup();
        let local = self.view().local_host_id().to_owned();
        let calls = gainers.into_iter().map(|host| {
            let prefer = prefer.clone();
            let this = self.clone();
            let local = local.clone();
            async move {
                if host == local {
                    return this.stream_pending(prefer).await.map(|_| ());
                }
                let member = this.view().member(&host).ok_or(TopologyError::UnknownHost { host_id: host.clone() })?;
                this.inner.peers.stream_pending(member.grpc_addr, prefer).await.map(|_| ())
            }
        });
        for r in futures::future::join_all(calls).await {
            r?;
        }
        Ok(())
    }

    /// [`hand_over_hints`](Self::hand_over_hints), retried every second
    /// ([`PENDING_ATTEMPTS`] in all): a hint is removed only once delivered,
    /// so a retry sends what is left.
    async fn hand_over_hints_retrying(&self) -> Result<(), TopologyError> {
        let mut attempt = 1;
        loop {
            match self.hand_over_hints().await {
                Err(e) if attempt < PENDING_ATTEMPTS && !matches!(e, TopologyError::Stopped) => {
                    tracing::warn!(attempt, error = %e, "handing hints over failed; retrying in 1 s");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    attempt += 1;
                }
                result => return result,
            }
        }
    }

    /// Sends every hint held here to its target (or, when the target is
    /// down, to a live NORMAL peer as a hint for it).
    async fn hand_over_hints(&self) -> Result<(), TopologyError> {
        let hints = self.inner.node.hints.clone();
        let pending = tokio::task::spawn_blocking(move || hints.pending_by_target())
            .await
            .map_err(|_| TopologyError::Stopped)??;
        let local = self.view().local_host_id().to_owned();
        for (target, count) in pending.into_iter().filter(|(_, n)| *n > 0) {
            tracing::info!(target_host = %target, count, "handing hints over");
            loop {
                let (hints, t) = (self.inner.node.hints.clone(), target.clone());
                let batch = tokio::task::spawn_blocking(move || hints.batch(&t, 256))
                    .await
                    .map_err(|_| TopologyError::Stopped)??;
                if batch.is_empty() {
                    break;
                }
                let (keys, writes): (Vec<_>, Vec<HintedWrite>) = batch.into_iter().unzip();
                self.deliver(&local, &target, writes).await?;
                let (hints, t) = (self.inner.node.hints.clone(), target.clone());
                let ticket = tokio::task::spawn_blocking(move || hints.remove(&t, keys))
                    .await
                    .map_err(|_| TopologyError::Stopped)??;
                ticket.wait().await?;
            }
        }
        Ok(())
    }

    async fn deliver(&self, local: &str, target: &str, writes: Vec<HintedWrite>) -> Result<(), TopologyError> {
        let transport = &self.inner.node.transport;
        let view = self.view();
        if let Some(m) = view.member(target).filter(|m| view.is_alive(&m.host_id) && m.status != MemberStatus::Left) {
            let peer = Peer::from(&m);
            transport
                .deliver_hints(&peer, local, writes)
                .await
                .map_err(|e| TopologyError::Peer { peer: target.to_owned(), message: e.to_string() })?;
            return Ok(());
        }
        let keeper = self.live_peers().into_iter().find(|m| m.status == MemberStatus::Normal).ok_or_else(|| {
            TopologyError::Precondition { reason: "no live NORMAL peer to hand hints over to".into() }
        })?;
        for w in writes {
            let write =
                ReplicaWrite { keyspace: w.keyspace, key: w.key, record: w.record, hint_for: Some(target.into()) };
            transport
                .write(&Peer::from(&keeper), write)
                .await
                .map_err(|e| TopologyError::Peer { peer: keeper.host_id.clone(), message: e.to_string() })?;
        }
        Ok(())
    }

    /// Whether this node can serve (`/readyz`): it has heard its seeds, and
    /// [`super::readiness::can_serve`] its ranges at the default keyspace's levels.
    pub fn ready(&self) -> bool {
        if !self.inner.discovered.load(Ordering::SeqCst) {
            return false;
        }
        let Ok(ks) = self.inner.coordinator.keyspaces().get("") else { return false };
        super::readiness::can_serve(self.view(), &ks)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(host: &str, status: MemberStatus) -> Arc<Member> {
        Arc::new(Member {
            host_id: host.into(),
            node_id: 1,
            grpc_addr: "127.0.0.1:1".parse().unwrap(),
            http_addr: "127.0.0.1:2".parse().unwrap(),
            zone: String::new(),
            rack: String::new(),
            tokens: vec![1],
            generation: 1,
            status,
        })
    }

    #[test]
    fn a_second_change_is_refused_while_one_is_under_way() {
        let mut members = vec![member("a", MemberStatus::Normal), member("b", MemberStatus::Left)];
        assert!(check_idle(&members, &[]).is_ok(), "NORMAL and LEFT are at rest");
        for status in
            [MemberStatus::Joining, MemberStatus::Leaving, MemberStatus::Replacing { old_host_id: "c".into() }]
        {
            members.push(member("c", status.clone()));
            let err = check_idle(&members, &[]).unwrap_err();
            assert!(matches!(&err, TopologyError::Busy { host_id, .. } if host_id == "c"), "{err}");
            assert!(err.to_string().contains(status.as_str()), "{err}");
            assert!(check_idle(&members, &["c"]).is_ok(), "the member being changed itself is not in the way");
            members.pop();
        }
    }
}
