//! [`SyncWorker`]: the periodic fsync of `sync = "periodic"`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::storage::Storage;

use super::Worker;

/// fsyncs the storage every `interval`, so that at most one interval of
/// acknowledged writes can be lost on power failure (Cassandra's default).
#[derive(Debug)]
pub struct SyncWorker {
    storage: Arc<dyn Storage>,
    interval: Duration,
}

impl SyncWorker {
    /// A worker syncing `storage` every `interval`.
    pub fn new(storage: Arc<dyn Storage>, interval: Duration) -> Self {
        Self { storage, interval }
    }
}

impl Worker for SyncWorker {
    fn name(&self) -> &'static str {
        "periodic-sync"
    }

    fn run(self: Box<Self>, stop: CancellationToken) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(async move {
            let mut tick = tokio::time::interval(self.interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tick.tick() => {}
                }
                let storage = Arc::clone(&self.storage);
                match tokio::task::spawn_blocking(move || storage.sync()).await {
                    // The engine reports fsync latency to the metrics itself.
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => tracing::error!(error = %e, "periodic fsync failed"),
                    Err(e) => tracing::error!(error = %e, "periodic fsync task failed"),
                }
            }
        })
    }
}
