//! How a node enters the ring at start: hear the seeds first, then, for a
//! fresh node, wait for its turn (`turn.rs`) and form or join. A fresh node
//! never gives up: it waits (logging why, shown in status) with backoff and
//! jitter, and retries until its turn comes or the node stops.
//!
//! Calls [`Topology`], the [`ClusterView`](crate::membership::ClusterView),
//! peers' `DescribeMember` and the persisted tokens (`topology::identity`).

use std::net::SocketAddr;
use std::time::Duration;

use std::sync::Arc;

use crate::membership::{Member, MemberStatus};
use crate::ring::{NodeInfo, Token};

use super::turn::{Turn, yield_to};
use super::{Topology, TopologyError};

/// `topology.state` of a fresh node that has not entered the ring yet: a
/// restart before its turn comes keeps it fresh (it must not come back NORMAL).
pub const FRESH_STATE: &str = "fresh";

/// First and largest pause between two looks at whose turn it is (a change
/// of the view ends a pause early; each pause gets up to 50% jitter on top).
const BACKOFF: (Duration, Duration) = (Duration::from_millis(200), Duration::from_secs(3));

impl Topology {
    /// Waits until every seed (other than this node) is a member of the view,
    /// or `discovery` passes; from then on the node may report ready.
    pub async fn discover(&self, seeds: &[SocketAddr], discovery: Duration) {
        let view = self.view();
        let own = view.local().grpc_addr;
        let deadline = tokio::time::Instant::now() + discovery;
        let mut changes = view.subscribe();
        loop {
            let members = view.members();
            let heard = seeds
                .iter()
                .filter(|s| **s != own)
                .all(|s| members.iter().any(|m| m.grpc_addr == *s && m.host_id != view.local_host_id()));
            if heard {
                break;
            }
            if tokio::time::Instant::now() >= deadline {
                tracing::warn!(?seeds, known = members.len(), "not every seed answered in time; going on");
                break;
            }
            let _ = tokio::time::timeout_at(deadline, changes.changed()).await;
        }
        self.set_discovered();
    }

    /// A fresh node: hears its seeds, then waits for its turn and forms (NORMAL
    /// with `seeded` tokens) or joins; never gives up while the node runs.
    pub async fn enter(
        &self,
        seeded: Vec<Token>,
        seeds: &[SocketAddr],
        discovery: Duration,
    ) -> Result<(), TopologyError> {
        self.set_waiting(Some("hearing the seeds".into()));
        self.discover(seeds, discovery).await;
        let mut pause = BACKOFF.0;
        loop {
            let why = match self.turn() {
                // This view may lag behind the ring the peers know: forming is
                // only for a cluster that really has fewer than RF nodes.
                Turn::Form if self.ring_nodes_known().await >= self.max_rf() => {
                    "this node's view is catching up with the ring its peers know".to_owned()
                }
                Turn::Form => {
                    tracing::info!(rf = self.max_rf(), "the cluster is being formed: NORMAL now");
                    self.set_waiting(None);
                    return self.form(seeded).await;
                }
                Turn::Join => {
                    self.wait_for_whole_ring().await;
                    match self.join().await? {
                        None => {
                            self.set_waiting(None);
                            return Ok(());
                        }
                        Some(why) => why,
                    }
                }
                Turn::Wait(why) => why,
            };
            if self.waiting().as_deref() != Some(why.as_str()) {
                tracing::info!(reason = %why, "waiting for this node's turn to enter the ring");
                self.set_waiting(Some(why));
            }
            self.pause(pause).await?;
            pause = (pause * 2).min(BACKOFF.1);
        }
    }

    /// A fresh node whose turn it is (see `turn.rs`) claims balancing tokens
    /// against its ring and joins. When a concurrent claim wins, it withdraws
    /// (no tokens, undecided again) and returns why, to wait and try again.
    pub async fn join(&self) -> Result<Option<String>, TopologyError> {
        let _guard = self.lock_busy().await;
        let view = self.view();
        let local = view.local();
        let info = NodeInfo::new(local.host_id.clone(), local.zone.clone(), local.rack.clone());
        let tokens = view
            .ring()
            .allocate_tokens(&info, self.settings().vnodes)
            .map_err(|e| TopologyError::Precondition { reason: format!("cannot allocate tokens to join: {e}") })?;
        let storage = Arc::clone(&self.node().storage);
        let to_save = tokens.clone();
        tokio::task::spawn_blocking(move || super::identity::save_tokens(storage.as_ref(), &to_save))
            .await
            .map_err(|_| TopologyError::Stopped)??;
        self.set_state("joining").await?;
        // Whose turn it is is decided and the claim made with no await in
        // between, so a claim made elsewhere after this check is seen by the
        // claim-conflict check below (see turn.rs).
        if let Turn::Wait(why) = self.turn() {
            self.set_state(FRESH_STATE).await?;
            return Ok(Some(why));
        }
        view.set_local_tokens(tokens);
        self.wait_seen(&local.host_id, &MemberStatus::Joining).await;
        if let Some(winner) = self.conflicting_claim().await {
            view.set_local_tokens(Vec::new());
            self.set_state(FRESH_STATE).await?;
            let why = format!("{} claimed a topology change at the same time and goes first", winner);
            tracing::info!(host_id = %local.host_id, %winner, "join claim withdrawn: another claim wins");
            return Ok(Some(why));
        }
        self.finish_join(false).await.map(|()| None)
    }

    /// The turn of this (undecided) node, from its own view.
    pub(super) fn turn(&self) -> Turn {
        let view = self.view();
        super::turn::turn(&view.members(), |h| view.is_alive(h), view.local_host_id(), self.max_rf())
    }

    /// After a claim has spread: the host id of a member whose own answer (or,
    /// when it does not answer, this node's view of it) wins over this claim.
    async fn conflicting_claim(&self) -> Option<String> {
        let local = self.view().local_host_id().to_owned();
        let mut answers = Vec::new();
        for peer in self.live_peers() {
            let own = self.peers().describe(peer.grpc_addr, &peer.host_id).await.ok().and_then(|d| d.member);
            answers.push(own.map_or_else(|| Member::clone(&peer), |d| d.member));
        }
        yield_to(&local, &answers).map(|m| m.host_id.clone())
    }

    /// Sleeps `pause` plus jitter, or less when the view changes first.
    async fn pause(&self, pause: Duration) -> Result<(), TopologyError> {
        let jitter = pause.mul_f64(rand::random::<f64>() * 0.5);
        let mut changes = self.view().subscribe();
        let stop = self.stopped();
        tokio::select! {
            () = tokio::time::sleep(pause + jitter) => Ok(()),
            _ = changes.changed() => {
                // Let the rest of a burst of changes arrive; jittered, so that
                // nodes woken by the same change do not all look at once.
                tokio::time::sleep(jitter.min(Duration::from_millis(250))).await;
                Ok(())
            }
            () = stop.cancelled() => Err(TopologyError::Stopped),
        }
    }

    /// Tokens are allocated against the ring: waits (up to the settle timeout)
    /// until this view holds as many ring nodes as any live peer reports.
    async fn wait_for_whole_ring(&self) {
        let deadline = tokio::time::Instant::now() + self.settings().settle_timeout;
        let known = self.ring_nodes_known().await;
        let mut changes = self.view().subscribe();
        while self.view().ring().node_count() < known && tokio::time::Instant::now() < deadline {
            let _ = tokio::time::timeout_at(deadline, changes.changed()).await;
        }
    }

    /// The most nodes any live peer (or this view) counts in its read ring.
    async fn ring_nodes_known(&self) -> usize {
        let mut known = self.view().ring().node_count();
        for peer in self.live_peers() {
            let ask = self.peers().describe(peer.grpc_addr, &peer.host_id);
            if let Ok(Ok(d)) = tokio::time::timeout(Duration::from_secs(2), ask).await {
                known = known.max(d.ring_nodes as usize);
            }
        }
        known
    }
}
