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
