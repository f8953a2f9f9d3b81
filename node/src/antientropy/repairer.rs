//! [`Repairer`]: a whole repair on this node: plans the ranges it replicates
//! (all keyspaces or one, all ranges or those meeting a token range), repairs
//! each with its live replicas, records "last full sync" for the ranges that
//! reached every replica, and reports progress after each range. One repair
//! runs at a time per node (the worker and `kvctl repair` share the lock).

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::membership::{ClusterView, Member};
use crate::replication::Coordinator;
use crate::ring::TokenRange;

use super::history::SyncHistory;
use super::peer::{AeError, AntiEntropyPeer, TreeRef};
use super::plan::{PlannedRange, plan_keyspace};
use super::replica::{LocalReplica, Throttle};
use super::session::{RepairStats, repair_range};

/// Ranges between two writes of the sync history.
const FLUSH_EVERY: u32 = 64;

/// Creates the [`AntiEntropyPeer`] for a member (gRPC in production).
pub trait PeerConnector: Send + Sync + std::fmt::Debug {
    /// The peer for `member`.
    fn connect(&self, member: &Member) -> Arc<dyn AntiEntropyPeer>;
}

/// What to repair.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RepairRequest {
    /// One keyspace; every keyspace when `None`.
    pub keyspace: Option<String>,
    /// Only the ranges meeting this token range; all when `None`.
    pub range: Option<TokenRange>,
    /// Rebuild every tree from a full scan first.
    pub full: bool,
}

/// Progress of a repair, reported after each range.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RepairProgress {
    /// Ranges finished (synced or failed).
    pub ranges_done: u32,
    /// Ranges planned.
    pub ranges_total: u32,
    /// Ranges that did not reach every replica.
    pub ranges_failed: u32,
    /// Totals so far.
    pub stats: RepairStats,
    /// The range just finished: keyspace, range, its last full sync (Unix ms).
    pub last: Option<(String, TokenRange, Option<i64>)>,
    /// True in the final report.
    pub done: bool,
    /// Time since the repair started.
    pub elapsed: Duration,
}

/// Runs repairs on this node; see the module docs.
#[derive(Debug)]
pub struct Repairer {
    local: Arc<LocalReplica>,
    view: Arc<ClusterView>,
    coordinator: Coordinator,
    connector: Arc<dyn PeerConnector>,
    history: Arc<SyncHistory>,
    tree_max_age: Duration,
    exchange_throttle: Throttle,
    running: tokio::sync::Mutex<()>,
}

/// The parts a [`Repairer`] is made of.
#[derive(Debug)]
pub struct RepairerParts {
    /// This node's replica side.
    pub local: Arc<LocalReplica>,
    /// The coordinator (keyspaces).
    pub coordinator: Coordinator,
    /// Members, ring, liveness.
    pub view: Arc<ClusterView>,
    /// How to reach peers.
    pub connector: Arc<dyn PeerConnector>,
    /// Where "last full sync" is kept.
    pub history: Arc<SyncHistory>,
    /// Trees older than this are rebuilt before they are compared.
    pub tree_max_age: Duration,
    /// Pace of record exchange.
    pub exchange_throttle: Throttle,
}

impl Repairer {
    /// A repairer from its parts.
    pub fn new(p: RepairerParts) -> Self {
        Self {
            local: p.local,
            view: p.view,
            coordinator: p.coordinator,
            connector: p.connector,
            history: p.history,
            tree_max_age: p.tree_max_age,
            exchange_throttle: p.exchange_throttle,
            running: tokio::sync::Mutex::new(()),
        }
    }

    /// The "last full sync" history.
    pub fn history(&self) -> &Arc<SyncHistory> {
        &self.history
    }

    /// The ranges `request` covers, dropping trees of ranges the ring no longer has.
    pub fn plan(&self, request: &RepairRequest) -> Result<Vec<PlannedRange>, AeError> {
        let ring = self.view.ring();
        let local = self.view.local_host_id().to_owned();
        let mut plan = Vec::new();
        for ks in self.coordinator.keyspaces().list() {
            let all = plan_keyspace(&ring, &local, &ks.name, ks.replication_factor as usize, None);
            let ranges: Vec<TokenRange> = all.iter().map(|p| p.range).collect();
            self.local.trees().retain(&ks.name, &ranges);
            if request.keyspace.as_ref().is_some_and(|k| k != &ks.name) {
                continue;
            }
            plan.extend(all.into_iter().filter(|p| request.range.is_none_or(|r| super::plan::intersects(r, p.range))));
        }
        Ok(plan)
    }

    /// Runs one repair, calling `report` after every range and once at the end.
    pub async fn run(
        &self,
        request: RepairRequest,
        mut report: impl FnMut(&RepairProgress) + Send,
    ) -> Result<RepairProgress, AeError> {
        let _one_at_a_time = self.running.try_lock().map_err(|_| AeError::Busy)?;
        let started = Instant::now();
        let plan = self.plan(&request)?;
        let mut progress = RepairProgress { ranges_total: plan.len() as u32, ..Default::default() };
        let max_age = if request.full { Duration::ZERO } else { self.tree_max_age };
        let local: Arc<dyn AntiEntropyPeer> = Arc::new(Arc::clone(&self.local));
        let mut flush_keyspaces: Vec<String> = plan.iter().map(|p| p.keyspace.clone()).collect();
        flush_keyspaces.dedup();
        for planned in plan {
            let tree =
                TreeRef { keyspace: planned.keyspace.clone(), range: planned.range, depth: self.local.trees().depth() };
            let range_started_ms = self.local.clock().now_ms();
            let mut peers = Vec::new();
            let mut unreachable = 0;
            for host in &planned.peers {
                match self.view.member(host).filter(|_| self.view.is_alive(host)) {
                    Some(m) => peers.push((host.clone(), self.connector.connect(&m))),
                    None => unreachable += 1,
                }
            }
            let outcome = repair_range(local.as_ref(), &peers, &tree, max_age).await;
            for (host, reason) in &outcome.failed {
                tracing::warn!(keyspace = %tree.keyspace, start = tree.range.start, end = tree.range.end, peer = %host, %reason, "range not repaired with peer");
            }
            let complete = unreachable == 0 && outcome.failed.is_empty();
            if complete {
                self.history.record(&tree.keyspace, tree.range, range_started_ms)?;
            } else {
                progress.ranges_failed += 1;
            }
            self.exchange_throttle.pace(outcome.stats.bytes_transferred).await;
            progress.stats.add(&outcome.stats);
            progress.ranges_done += 1;
            if progress.ranges_done.is_multiple_of(FLUSH_EVERY) {
                self.history.flush(&tree.keyspace)?;
            }
            let last = self.history.last_full_sync(&tree.keyspace, tree.range)?;
            progress.last = Some((tree.keyspace, tree.range, last));
            progress.elapsed = started.elapsed();
            report(&progress);
        }
        for ks in flush_keyspaces {
            self.history.flush(&ks)?;
        }
        progress.done = true;
        progress.elapsed = started.elapsed();
        report(&progress);
        tracing::info!(
            ranges = progress.ranges_total,
            failed = progress.ranges_failed,
            buckets_differing = progress.stats.buckets_differing,
            records_received = progress.stats.records_received,
            records_sent = progress.stats.records_sent,
            bytes_compared = progress.stats.bytes_compared,
            bytes_transferred = progress.stats.bytes_transferred,
            elapsed_ms = progress.elapsed.as_millis() as u64,
            "repair finished"
        );
        Ok(progress)
    }
}
