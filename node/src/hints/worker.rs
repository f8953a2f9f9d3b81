//! [`HandoffWorker`]: replays hints to their targets once they are alive;
//! drops at once the hints of a target that LEFT (decommissioned or
//! removed: it never comes back, and its ranges were streamed to their new
//! owners), and on every pass the hints of a down target that outlived
//! `max_hint_window`, so that hints for a node that never returns do not
//! grow without bound. Each pass (one `work` call) runs on a timer and on
//! every membership change; a pass never fails as a whole (a target that
//! cannot be reached is retried on the next pass).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::membership::{ClusterView, MemberStatus};
use crate::storage::StorageError;
use crate::transport::{Peer, Transport};
use crate::worker::{Worker, WorkerState};

use super::HintStore;

/// Hints sent to a target in one call.
const BATCH: usize = 100;

/// What one replay pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplayStats {
    /// Hints delivered and deleted.
    pub delivered: u64,
    /// Targets that were alive but refused or did not answer.
    pub failed_targets: Vec<String>,
    /// Hints dropped because their target left the cluster.
    pub dropped: u64,
    /// Hints of down targets dropped because they outlived the window.
    pub expired: u64,
}

/// Replays hints, oldest first, throttled to `rate` hints per second per target.
#[derive(Debug)]
pub struct HandoffWorker {
    hints: HintStore,
    view: Arc<ClusterView>,
    transport: Arc<dyn Transport>,
    interval: Duration,
    rate: u32,
    /// Membership changes, subscribed to on the first wait.
    changes: Option<watch::Receiver<u64>>,
}

impl HandoffWorker {
    /// A worker replaying `hints` through `transport` when `view` says a target is alive.
    pub fn new(
        hints: HintStore,
        view: Arc<ClusterView>,
        transport: Arc<dyn Transport>,
        interval: Duration,
        rate: u32,
    ) -> Self {
        Self { hints, view, transport, interval, rate: rate.max(1), changes: None }
    }

    /// One pass over every target with pending hints that is alive now.
    pub async fn replay_once(&self) -> ReplayStats {
        let mut stats = ReplayStats::default();
        let hints = self.hints.clone();
        let pending = match tokio::task::spawn_blocking(move || hints.pending_by_target()).await {
            Ok(Ok(p)) => p,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "cannot count pending hints");
                return stats;
            }
            Err(_) => return stats,
        };
        for (target, _) in pending.into_iter().filter(|(_, n)| *n > 0) {
            let member = self.view.member(&target);
            if member.as_ref().is_some_and(|m| m.status == MemberStatus::Left) {
                stats.dropped += self.blocking(&target, HintStore::drop_target).await;
                continue;
            }
            let Some(member) = member.filter(|_| self.view.is_alive(&target)) else {
                // Down (or unknown): nothing is delivered, but hints past the window go now.
                stats.expired += self.blocking(&target, HintStore::purge_expired).await;
                continue;
            };
            match self.replay_target(&target, &Peer::from(&member)).await {
                Ok(n) => stats.delivered += n,
                Err(e) => {
                    tracing::info!(target_host = %target, error = %e, "hint replay paused; retrying later");
                    stats.failed_targets.push(target);
                }
            }
        }
        stats
    }

    /// Runs a blocking store call for `target` off the reactor; a failure is logged and counts 0.
    async fn blocking(&self, target: &str, call: fn(&HintStore, &str) -> Result<u64, StorageError>) -> u64 {
        let (hints, t) = (self.hints.clone(), target.to_owned());
        match tokio::task::spawn_blocking(move || call(&hints, &t)).await {
            Ok(Ok(n)) => n,
            Ok(Err(e)) => {
                tracing::warn!(target_host = %target, error = %e, "cannot purge hints; retrying later");
                0
            }
            Err(_) => 0,
        }
    }

    async fn replay_target(&self, target: &str, peer: &Peer) -> Result<u64, String> {
        let mut delivered = 0;
        let from = self.view.local_host_id().to_owned();
        loop {
            let (hints, t) = (self.hints.clone(), target.to_owned());
            let batch = tokio::task::spawn_blocking(move || hints.batch(&t, BATCH))
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| e.to_string())?;
            if batch.is_empty() {
                return Ok(delivered);
            }
            let n = batch.len() as u64;
            let (keys, writes): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
            self.transport.deliver_hints(peer, &from, writes).await.map_err(|e| e.to_string())?;
            let (hints, t) = (self.hints.clone(), target.to_owned());
            let ticket = tokio::task::spawn_blocking(move || hints.remove(&t, keys))
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| e.to_string())?;
            // Losing a deletion in a crash only replays the hint again, which merges to the same state.
            drop(ticket);
            self.hints.count_replayed(target, n);
            delivered += n;
            tracing::debug!(target_host = %target, delivered, "replayed hints");
            tokio::time::sleep(Duration::from_secs_f64(n as f64 / f64::from(self.rate))).await;
        }
    }
}

impl Worker for HandoffWorker {
    type Error = Infallible;

    fn name(&self) -> &'static str {
        "hinted-handoff"
    }

    async fn work(&mut self, _stop: &CancellationToken) -> Result<WorkerState, Infallible> {
        let stats = self.replay_once().await;
        if stats.delivered > 0 {
            tracing::info!(delivered = stats.delivered, "hinted handoff delivered hints");
        }
        Ok(WorkerState::Idle)
    }

    async fn wait_for_work(&mut self) {
        // Replay at once when a peer comes back, and on a timer for hints stored meanwhile.
        let changes = self.changes.get_or_insert_with(|| self.view.subscribe());
        tokio::select! {
            _ = tokio::time::sleep(self.interval) => {}
            _ = changes.changed() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{Clock, ManualClock};
    use crate::hints::store::tests_support::hint;
    use crate::membership::{Liveness, Member};
    use crate::replication::ReplicationMetrics;
    use crate::storage::MemoryStorage;
    use crate::transport::UnconnectedTransport;

    fn member(host: &str, status: MemberStatus) -> Member {
        Member {
            host_id: host.into(),
            node_id: 1,
            grpc_addr: "127.0.0.1:1".parse().unwrap(),
            http_addr: "127.0.0.1:2".parse().unwrap(),
            zone: String::new(),
            rack: String::new(),
            tokens: vec![host.len() as u64],
            generation: 1,
            status,
        }
    }

    #[tokio::test]
    async fn hints_of_a_left_node_go_at_once_and_a_down_nodes_expire_without_replay() {
        let clock = Arc::new(ManualClock::at_micros(5_000_000_000));
        let dyn_clock: Arc<dyn Clock> = clock.clone();
        let hints = HintStore::new(
            Arc::new(MemoryStorage::new()),
            dyn_clock,
            Duration::from_secs(60),
            ReplicationMetrics::unregistered(),
        );
        let view = Arc::new(ClusterView::new(member("me", MemberStatus::Normal)));
        view.upsert(member("removed", MemberStatus::Normal));
        view.upsert(member("down", MemberStatus::Normal));
        view.set_liveness("removed", Liveness::Down);
        view.set_liveness("down", Liveness::Down);
        for i in 0..5 {
            hints.store("removed", &hint(&format!("r{i}"), clock.now_ms())).unwrap();
            hints.store("down", &hint(&format!("d{i}"), clock.now_ms())).unwrap();
        }
        let worker =
            HandoffWorker::new(hints.clone(), Arc::clone(&view), Arc::new(UnconnectedTransport), Duration::ZERO, 100);
        let stats = worker.replay_once().await;
        assert_eq!((stats.delivered, stats.dropped, stats.expired), (0, 0, 0), "a down node's young hints wait");

        view.upsert(member("removed", MemberStatus::Left));
        let stats = worker.replay_once().await;
        assert_eq!(stats.dropped, 5, "the hints of a LEFT node are dropped on the next pass");
        clock.advance_ms(61_000);
        let stats = worker.replay_once().await;
        assert_eq!(stats.expired, 5, "a down node's hints past the window go without a replay");
        let pending = hints.pending_by_target().unwrap();
        assert_eq!((pending.get("removed"), pending.get("down")), (Some(&0), Some(&0)));
    }
}
