//! [`PurgeWorker`]: removes records that can never be read again.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::replication::{Coordinator, RepairHistory};
use crate::storage::ScanPosition;

use super::Worker;

/// Records examined per blocking pass, so the worker never holds a thread long.
const PASS_SIZE: usize = 1000;

/// Walks the store in token order every `interval` and purges records whose
/// siblings are all tombstones or expired values dead for longer than
/// `gc_grace` and whose range was fully repaired since they were written
/// (the rule is in `replication/purge.rs`; `history` knows the repairs).
#[derive(Debug)]
pub struct PurgeWorker {
    coordinator: Coordinator,
    interval: Duration,
    gc_grace: Duration,
    history: Arc<dyn RepairHistory>,
}

impl PurgeWorker {
    /// A worker purging through `coordinator` (which holds the key locks).
    pub fn new(
        coordinator: Coordinator,
        interval: Duration,
        gc_grace: Duration,
        history: Arc<dyn RepairHistory>,
    ) -> Self {
        Self { coordinator, interval, gc_grace, history }
    }
}

impl Worker for PurgeWorker {
    fn name(&self) -> &'static str {
        "purge"
    }

    fn run(self: Box<Self>, stop: CancellationToken) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(async move {
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(self.interval) => {}
                }
                let mut after: Option<ScanPosition> = None;
                let mut purged = 0;
                loop {
                    if stop.is_cancelled() {
                        return;
                    }
                    match self
                        .coordinator
                        .purge_pass(after.take(), PASS_SIZE, self.gc_grace, Arc::clone(&self.history))
                        .await
                    {
                        Ok((n, next)) => {
                            purged += n;
                            match next {
                                Some(pos) => after = Some(pos),
                                None => break,
                            }
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "purge pass failed; retrying next interval");
                            break;
                        }
                    }
                }
                if purged > 0 {
                    tracing::info!(purged, "purged dead records");
                }
            }
        })
    }
}
