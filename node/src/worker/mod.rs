//! Background workers and the [`WorkerRunner`] that runs them.
//!
//! Each background loop is a `*Worker` in its own file. The runner spawns
//! them on the runtime with one cancellation token, keeps every
//! `JoinHandle`, lists them, and stops them with a deadline; a worker that
//! panicked or failed is reported, not silently lost.

mod purge;
mod sync;

pub use purge::PurgeWorker;
pub use sync::SyncWorker;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A background job: runs until `stop` is cancelled.
pub trait Worker: Send + 'static {
    /// Name shown in logs and listings.
    fn name(&self) -> &'static str;

    /// Runs the job until `stop` is cancelled.
    fn run(self: Box<Self>, stop: CancellationToken) -> Pin<Box<dyn Future<Output = ()> + Send>>;
}

/// Runs workers and stops them together.
#[derive(Debug, Default)]
pub struct WorkerRunner {
    stop: CancellationToken,
    handles: Vec<(&'static str, JoinHandle<()>)>,
}

impl WorkerRunner {
    /// A runner whose workers stop when `parent` is cancelled or on [`WorkerRunner::stop`].
    pub fn new(parent: &CancellationToken) -> Self {
        Self { stop: parent.child_token(), handles: Vec::new() }
    }

    /// Starts `worker` on the current runtime.
    pub fn spawn(&mut self, worker: Box<dyn Worker>) {
        let name = worker.name();
        tracing::debug!(worker = name, "starting worker");
        let handle = tokio::spawn(worker.run(self.stop.clone()));
        self.handles.push((name, handle));
    }

    /// Names of the workers started.
    pub fn names(&self) -> Vec<&'static str> {
        self.handles.iter().map(|(n, _)| *n).collect()
    }

    /// Cancels every worker and waits for them up to `deadline`.
    pub async fn stop(self, deadline: Duration) {
        self.stop.cancel();
        for (name, handle) in self.handles {
            match tokio::time::timeout(deadline, handle).await {
                Ok(Ok(())) => tracing::debug!(worker = name, "worker stopped"),
                Ok(Err(e)) => tracing::error!(worker = name, error = %e, "worker panicked"),
                Err(_) => tracing::warn!(worker = name, ?deadline, "worker did not stop before the deadline"),
            }
        }
    }
}
