//! [`Jobs`]: the one-shot tasks a node starts in the background (entering
//! the ring at start, a decommission, a removenode or a repair asked for
//! over the Admin API), owned so that none is detached: each is kept in one
//! `JoinSet`, reaped as it ends (a panic is logged), and
//! [`WorkerRunner::stop`](super::WorkerRunner::stop) waits for them until
//! its deadline, then aborts the rest. Dropping the last handle aborts them
//! too.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::task::{Id, JoinError, JoinSet};
use tokio::time::Instant;

/// Why a job was not started.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JobError {
    /// The node is stopping: no new background work is accepted.
    #[error("cannot start {job}: the node is shutting down; retry once it is back, or on another node")]
    Stopping {
        /// The job refused.
        job: &'static str,
    },
}

#[derive(Debug, Default)]
struct Inner {
    set: JoinSet<()>,
    names: HashMap<Id, &'static str>,
    closed: bool,
}

impl Inner {
    /// Forgets the jobs that ended, logging a panic with the job's name.
    fn reap(&mut self) {
        while let Some(done) = self.set.try_join_next_with_id() {
            log_end(done, &mut self.names);
        }
    }
}

/// A cloneable handle to the node's one-shot tasks.
#[derive(Debug, Clone, Default)]
pub struct Jobs {
    inner: Arc<Mutex<Inner>>,
}

impl Jobs {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts `job` (named `name` in logs and in the stop report); refused
    /// once the node is stopping.
    pub fn spawn<F>(&self, name: &'static str, job: F) -> Result<(), JobError>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let mut inner = self.lock();
        if inner.closed {
            return Err(JobError::Stopping { job: name });
        }
        inner.reap();
        let id = inner.set.spawn(job).id();
        inner.names.insert(id, name);
        Ok(())
    }

    /// Names of the jobs running now.
    pub fn running(&self) -> Vec<&'static str> {
        let mut inner = self.lock();
        inner.reap();
        inner.names.values().copied().collect()
    }

    /// Refuses new jobs, waits for the running ones until `until`, aborts
    /// the rest and returns their names.
    pub(super) async fn close(&self, until: Instant) -> Vec<&'static str> {
        let (mut set, mut names) = {
            let mut inner = self.lock();
            inner.closed = true;
            (std::mem::take(&mut inner.set), std::mem::take(&mut inner.names))
        };
        loop {
            match tokio::time::timeout_at(until, set.join_next_with_id()).await {
                Ok(Some(done)) => log_end(done, &mut names),
                Ok(None) => return Vec::new(),
                Err(_) => break,
            }
        }
        let late: Vec<_> = names.into_values().collect();
        tracing::warn!(jobs = ?late, "background jobs did not end before the stop deadline; aborted");
        set.abort_all();
        late
    }
}

/// Forgets an ended job; a panic is logged with its name.
fn log_end(done: Result<(Id, ()), JoinError>, names: &mut HashMap<Id, &'static str>) {
    match done {
        Ok((id, ())) => {
            names.remove(&id);
        }
        Err(e) => {
            let job = names.remove(&e.id()).unwrap_or("?");
            if !e.is_cancelled() {
                tracing::error!(job, error = %e, "background job panicked");
            }
        }
    }
}
