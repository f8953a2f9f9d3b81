//! [`HandoffWorker`]: replays hints to their targets once they are alive.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::membership::ClusterView;
use crate::transport::{Peer, Transport};
use crate::worker::Worker;

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
}

/// Replays hints, oldest first, throttled to `rate` hints per second per target.
#[derive(Debug)]
pub struct HandoffWorker {
    hints: HintStore,
    view: Arc<ClusterView>,
    transport: Arc<dyn Transport>,
    interval: Duration,
    rate: u32,
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
        Self { hints, view, transport, interval, rate: rate.max(1) }
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
            let Some(member) = self.view.member(&target).filter(|_| self.view.is_alive(&target)) else { continue };
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
    fn name(&self) -> &'static str {
        "hinted-handoff"
    }

    fn run(self: Box<Self>, stop: CancellationToken) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(async move {
            let mut changes = self.view.subscribe();
            loop {
                // Replay at once when a peer comes back, and on a timer for hints stored meanwhile.
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(self.interval) => {}
                    _ = changes.changed() => {}
                }
                let stats = self.replay_once().await;
                if stats.delivered > 0 {
                    tracing::info!(delivered = stats.delivered, "hinted handoff delivered hints");
                }
            }
        })
    }
}
