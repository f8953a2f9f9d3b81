//! [`RepairWorker`]: runs a repair of every range this node replicates every
//! `interval` (trees rebuilt when older than the configured age; scans and
//! exchange paced by the throughput limit).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::worker::Worker;

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
    fn name(&self) -> &'static str {
        "anti-entropy"
    }

    fn run(self: Box<Self>, stop: CancellationToken) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(async move {
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(self.interval) => {}
                }
                let repair = self.repairer.run(RepairRequest::default(), |_| {});
                tokio::select! {
                    _ = stop.cancelled() => return,
                    result = repair => if let Err(e) = result {
                        tracing::warn!(error = %e, "scheduled repair failed; retrying next interval");
                    }
                }
            }
        })
    }
}
