//! [`PurgeWorker`]: removes records that can never be read again.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::error::KvError;
use crate::replication::{Coordinator, RepairHistory};
use crate::storage::ScanPosition;

use super::{Worker, WorkerState};

/// Records examined per blocking pass, so the worker never holds a thread long.
const PASS_SIZE: usize = 1000;

/// Walks the store in token order every `interval` and purges records whose
/// siblings are all tombstones or expired values dead for longer than
/// `gc_grace` and whose range was fully repaired since they were written
/// (the rule is in `replication/purge.rs`; `history` knows the repairs).
/// One `work` call is one pass of [`PASS_SIZE`] records (Busy until the walk
/// ends); a failed pass ends the walk, and the next one starts from the
/// beginning after `interval`.
#[derive(Debug)]
pub struct PurgeWorker {
    coordinator: Coordinator,
    interval: Duration,
    gc_grace: Duration,
    history: Arc<dyn RepairHistory>,
    /// Where the walk under way continues (`None`: at the beginning).
    after: Option<ScanPosition>,
    /// Records purged by the walk under way.
    purged: usize,
}

impl PurgeWorker {
    /// A worker purging through `coordinator` (which holds the key locks).
    pub fn new(
        coordinator: Coordinator,
        interval: Duration,
        gc_grace: Duration,
        history: Arc<dyn RepairHistory>,
    ) -> Self {
        Self { coordinator, interval, gc_grace, history, after: None, purged: 0 }
    }

    /// Ends the walk under way: reports it and starts the next at the beginning.
    fn end_walk(&mut self) {
        if self.purged > 0 {
            tracing::info!(purged = self.purged, "purged dead records");
        }
        self.purged = 0;
        self.after = None;
    }
}

impl Worker for PurgeWorker {
    type Error = KvError;

    fn name(&self) -> &'static str {
        "purge"
    }

    async fn work(&mut self, _stop: &CancellationToken) -> Result<WorkerState, KvError> {
        let pass = self.coordinator.purge_pass(self.after.take(), PASS_SIZE, self.gc_grace, Arc::clone(&self.history));
        match pass.await {
            Ok((n, next)) => {
                self.purged += n;
                match next {
                    Some(pos) => {
                        self.after = Some(pos);
                        Ok(WorkerState::Busy)
                    }
                    None => {
                        self.end_walk();
                        Ok(WorkerState::Idle)
                    }
                }
            }
            Err(e) => {
                self.end_walk();
                Err(e)
            }
        }
    }

    async fn wait_for_work(&mut self) {
        tokio::time::sleep(self.interval).await;
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use tokio_util::sync::CancellationToken;

    use super::*;
    use crate::clock::{Clock, ManualClock};
    use crate::config::{Config, ServerConfig};
    use crate::replication::{Consistency, Keyspaces, Limits, PutOptions, SoleReplica};
    use crate::storage::{MemoryStorage, Storage};
    use crate::worker::WorkerRunner;

    #[tokio::test]
    async fn under_the_runner_a_walk_of_several_passes_purges_every_dead_record_and_keeps_the_live() {
        let clock = Arc::new(ManualClock::at_micros(1_700_000_000_000_000));
        let dyn_clock: Arc<dyn Clock> = clock.clone();
        let storage = Arc::new(MemoryStorage::new());
        let keyspaces = Keyspaces::from_config(&Config::default());
        let limits = Limits::from(&ServerConfig::default());
        let c = Coordinator::new(7, storage.clone(), keyspaces, dyn_clock, limits);
        let dead = PASS_SIZE + PASS_SIZE / 2;
        for i in 0..dead {
            let key = Bytes::from(format!("gone-{i:05}"));
            c.put("", key.clone(), Bytes::from_static(b"v"), PutOptions::default()).await.expect("put");
            c.delete("", key, Bytes::new(), Consistency::default()).await.expect("delete");
        }
        c.put("", Bytes::from_static(b"live"), Bytes::from_static(b"v"), PutOptions::default()).await.expect("put");
        clock.advance_ms(61_000);

        let stop = CancellationToken::new();
        let mut runner = WorkerRunner::new(&stop);
        let grace = Duration::from_secs(60);
        runner.spawn(PurgeWorker::new(c.clone(), Duration::from_millis(20), grace, Arc::new(SoleReplica)));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let left = || storage.scan(None, None, None, 10).map(|page| page.len()).unwrap_or(usize::MAX);
        while left() > 1 {
            assert!(tokio::time::Instant::now() < deadline, "dead records left: {:?}", runner.list());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let status = runner.stop(Duration::from_secs(5)).await.workers.remove(0);
        assert!(status.iterations >= 2 && status.errors == 0, "{status:?}");
        assert!(storage.get("default", b"live").expect("get").is_some(), "the live record stays");
    }
}
