//! [`RepairWorker`]: runs a repair of every range this node replicates every
//! `interval` (trees rebuilt when older than the configured age; scans and
//! exchange paced by the throughput limit). A repair under way ends early
//! when the node stops; a failed one is retried after the next interval
//! (the runner logs and counts it).

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::worker::{Worker, WorkerState};

use super::AeError;
use super::repairer::{RepairRequest, Repairer};

/// Scheduled anti-entropy; see the module docs.
#[derive(Debug)]
pub struct RepairWorker {
    repairer: Arc<Repairer>,
    interval: Duration,
}

impl RepairWorker {
    /// A worker repairing through `repairer` every `interval`.
    pub fn new(repairer: Arc<Repairer>, interval: Duration) -> Self {
        Self { repairer, interval }
    }
}

impl Worker for RepairWorker {
    type Error = AeError;

    fn name(&self) -> &'static str {
        "anti-entropy"
    }

    async fn work(&mut self, stop: &CancellationToken) -> Result<WorkerState, AeError> {
        let repair = self.repairer.run(RepairRequest::default(), |_| {});
        tokio::select! {
            () = stop.cancelled() => Ok(WorkerState::Idle),
            result = repair => result.map(|_| WorkerState::Idle),
        }
    }

    async fn wait_for_work(&mut self) {
        tokio::time::sleep(self.interval).await;
    }
}
