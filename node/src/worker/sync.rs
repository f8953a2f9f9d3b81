//! [`SyncWorker`]: the periodic fsync of `sync = "periodic"`.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::{Interval, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use crate::storage::{Storage, StorageError};

use super::{Worker, WorkerState};

/// Why a periodic fsync failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SyncError {
    /// The engine's fsync failed.
    #[error("periodic fsync failed: {source}; check the disk holding the data directory")]
    Sync {
        /// The engine's error.
        source: StorageError,
    },
    /// The blocking task running the fsync failed (panicked).
    #[error("periodic fsync task failed: {source}")]
    Task {
        /// The task's error.
        source: tokio::task::JoinError,
    },
}

/// fsyncs the storage every `interval`, so that at most one interval of
/// acknowledged writes can be lost on power failure (Cassandra's default).
/// The first tick is at once; a late tick delays the next ones.
#[derive(Debug)]
pub struct SyncWorker {
    storage: Arc<dyn Storage>,
    interval: Duration,
    /// Created on the first wait (it needs the runtime).
    tick: Option<Interval>,
}

impl SyncWorker {
    /// A worker syncing `storage` every `interval`.
    pub fn new(storage: Arc<dyn Storage>, interval: Duration) -> Self {
        Self { storage, interval, tick: None }
    }
}

impl Worker for SyncWorker {
    type Error = SyncError;

    fn name(&self) -> &'static str {
        "periodic-sync"
    }

    async fn work(&mut self, _stop: &CancellationToken) -> Result<WorkerState, SyncError> {
        let storage = Arc::clone(&self.storage);
        // The engine reports fsync latency to the metrics itself.
        match tokio::task::spawn_blocking(move || storage.sync()).await {
            Ok(Ok(())) => Ok(WorkerState::Idle),
            Ok(Err(source)) => Err(SyncError::Sync { source }),
            Err(source) => Err(SyncError::Task { source }),
        }
    }

    async fn wait_for_work(&mut self) {
        let period = self.interval;
        let tick = self.tick.get_or_insert_with(|| {
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
            tick
        });
        tick.tick().await;
    }
}
