//! Group commit: the durability mechanism of `sync = always`.
//!
//! One dedicated thread (`ringkv-group-commit`) owns the write path. Writers
//! send their [`WriteBatch`] over a channel and block until it is *applied*;
//! the committer takes everything queued (up to `group_commit_max_batches`),
//! applies it as ONE engine batch (one journal write), tells every writer
//! "applied" (so `Storage::write` can return with the batch visible), then
//! issues ONE fsync and resolves every writer's [`DurableTicket`] with its
//! outcome. Concurrent writers therefore share fsyncs: the more writers wait,
//! the larger the next group.
//!
//! Invariants:
//! - a ticket resolves `Ok` only after an fsync that started after its batch
//!   was applied;
//! - every request is answered (applied and ticket), also on failure and on
//!   shutdown: a dropped sender reads as [`StorageError::ShutDown`];
//! - on shutdown the committer drains the queue before it exits.
//!
//! This module calls only its [`CommitSink`] (implemented by the fjall engine).

use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

use tokio::sync::oneshot;

use super::{DurableTicket, StorageError, WriteBatch};

/// What the committer needs from an engine.
pub(super) trait CommitSink: Send + Sync + 'static {
    /// Applies every batch of `group`, in order, atomically, with one journal
    /// write; when it returns the changes are visible to reads.
    fn apply(&self, group: &[&WriteBatch]) -> Result<(), StorageError>;

    /// Makes everything applied so far durable (one fsync of the journal).
    fn sync(&self) -> Result<(), StorageError>;
}

/// One writer waiting in the queue.
struct Request {
    batch: WriteBatch,
    applied: mpsc::SyncSender<Result<(), StorageError>>,
    durable: oneshot::Sender<Result<(), StorageError>>,
}

/// Handle on the committer thread; see the module docs.
pub(super) struct GroupCommitter {
    queue: Mutex<Option<mpsc::Sender<Request>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for GroupCommitter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let running = lock(&self.queue).is_some();
        f.debug_struct("GroupCommitter").field("running", &running).finish()
    }
}

impl GroupCommitter {
    /// Starts the committer thread; a group holds at most `max_batches` (at least 1).
    pub(super) fn start(sink: Arc<dyn CommitSink>, max_batches: usize) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::channel();
        let max_batches = max_batches.max(1);
        let thread = std::thread::Builder::new()
            .name("ringkv-group-commit".to_owned())
            .spawn(move || run(&rx, sink.as_ref(), max_batches))?;
        Ok(Self { queue: Mutex::new(Some(tx)), thread: Mutex::new(Some(thread)) })
    }

    /// Queues `batch`, blocks until it is applied (visible), and returns the
    /// ticket that resolves after the fsync of its group.
    pub(super) fn submit(&self, batch: WriteBatch) -> Result<DurableTicket, StorageError> {
        let (applied_tx, applied_rx) = mpsc::sync_channel(1);
        let (durable_tx, durable_rx) = oneshot::channel();
        let request = Request { batch, applied: applied_tx, durable: durable_tx };
        {
            let queue = lock(&self.queue);
            let sender = queue.as_ref().ok_or(StorageError::ShutDown)?;
            sender.send(request).map_err(|_| StorageError::ShutDown)?;
        }
        applied_rx.recv().map_err(|_| StorageError::ShutDown)??;
        Ok(DurableTicket::pending(durable_rx))
    }

    /// Stops accepting writes, lets the committer drain the queue, and joins it.
    /// Idempotent.
    pub(super) fn shutdown(&self) {
        drop(lock(&self.queue).take());
        let thread = lock(&self.thread).take();
        if let Some(thread) = thread
            && thread.join().is_err()
        {
            tracing::error!("group-commit thread panicked; its waiters were told the storage shut down");
        }
    }
}

impl Drop for GroupCommitter {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// The committer loop: runs until every sender is gone and the queue is empty.
fn run(queue: &mpsc::Receiver<Request>, sink: &dyn CommitSink, max_batches: usize) {
    while let Ok(first) = queue.recv() {
        let mut group = vec![first];
        while group.len() < max_batches {
            match queue.try_recv() {
                Ok(request) => group.push(request),
                Err(_) => break,
            }
        }
        commit_group(sink, group);
    }
}

/// Applies one group, releases its writers, fsyncs once, resolves the tickets.
fn commit_group(sink: &dyn CommitSink, group: Vec<Request>) {
    let batches: Vec<&WriteBatch> = group.iter().map(|r| &r.batch).collect();
    if let Err(err) = sink.apply(&batches) {
        for request in group {
            // A writer that went away no longer needs an answer.
            let _ = request.applied.send(Err(err.clone()));
            let _ = request.durable.send(Err(err.clone()));
        }
        return;
    }
    let mut waiting = Vec::with_capacity(group.len());
    for request in group {
        let _ = request.applied.send(Ok(()));
        waiting.push(request.durable);
    }
    let outcome = sink.sync();
    if let Err(err) = &outcome {
        tracing::error!(error = %err, writes = waiting.len(), "group commit fsync failed");
    }
    for durable in waiting {
        let _ = durable.send(outcome.clone());
    }
}

/// Locks a mutex whose data stays consistent even if a holder panicked.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    use super::*;

    /// Records group sizes and fsyncs; can be told to fail.
    #[derive(Default)]
    struct FakeSink {
        groups: Mutex<Vec<usize>>,
        syncs: AtomicUsize,
        fail_apply: AtomicBool,
        fail_sync: AtomicBool,
    }

    impl CommitSink for FakeSink {
        fn apply(&self, group: &[&WriteBatch]) -> Result<(), StorageError> {
            if self.fail_apply.load(Ordering::SeqCst) {
                return Err(StorageError::DiskFull { op: "test apply" });
            }
            lock(&self.groups).push(group.len());
            Ok(())
        }

        fn sync(&self) -> Result<(), StorageError> {
            self.syncs.fetch_add(1, Ordering::SeqCst);
            if self.fail_sync.load(Ordering::SeqCst) {
                return Err(StorageError::Poisoned { op: "test fsync", source: Arc::new(fjall::Error::Poisoned) });
            }
            Ok(())
        }
    }

    type Answers = (mpsc::Receiver<Result<(), StorageError>>, oneshot::Receiver<Result<(), StorageError>>);

    /// Queues `n` requests, closes the queue, and runs the committer to the end on this thread.
    fn run_queued(sink: &FakeSink, n: usize, max_batches: usize) -> Vec<Answers> {
        let (tx, rx) = mpsc::channel();
        let mut answers = Vec::new();
        for _ in 0..n {
            let (applied, applied_rx) = mpsc::sync_channel(1);
            let (durable, durable_rx) = oneshot::channel();
            tx.send(Request { batch: WriteBatch::default(), applied, durable }).expect("queue open");
            answers.push((applied_rx, durable_rx));
        }
        drop(tx);
        run(&rx, sink, max_batches);
        answers
    }

    #[test]
    fn queued_writes_share_one_apply_and_one_fsync_per_group() {
        let sink = FakeSink::default();
        let answers = run_queued(&sink, 10, 4);
        assert_eq!(*lock(&sink.groups), vec![4, 4, 2]);
        assert_eq!(sink.syncs.load(Ordering::SeqCst), 3);
        for (applied, mut durable) in answers {
            assert!(applied.recv().expect("answered").is_ok());
            assert!(durable.try_recv().expect("resolved").is_ok());
        }
    }

    #[test]
    fn failed_fsync_fails_every_ticket_of_the_group_but_writes_were_applied() {
        let sink = FakeSink::default();
        sink.fail_sync.store(true, Ordering::SeqCst);
        for (applied, mut durable) in run_queued(&sink, 3, 8) {
            assert!(applied.recv().expect("answered").is_ok());
            let err = durable.try_recv().expect("resolved").expect_err("fsync failed");
            assert!(err.to_string().contains("restart the node"), "{err}");
        }
    }

    #[test]
    fn failed_apply_fails_the_writers_and_skips_the_fsync() {
        let sink = FakeSink::default();
        sink.fail_apply.store(true, Ordering::SeqCst);
        for (applied, mut durable) in run_queued(&sink, 3, 8) {
            assert!(matches!(applied.recv().expect("answered"), Err(StorageError::DiskFull { .. })));
            assert!(durable.try_recv().expect("resolved").is_err());
        }
        assert_eq!(sink.syncs.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn submit_resolves_ticket_and_is_refused_after_shutdown() {
        let sink = Arc::new(FakeSink::default());
        let committer = GroupCommitter::start(sink.clone(), 16).expect("thread starts");
        let ticket = committer.submit(WriteBatch::default()).expect("applied");
        ticket.wait_blocking().expect("durable");
        assert_eq!(sink.syncs.load(Ordering::SeqCst), 1);
        committer.shutdown();
        committer.shutdown();
        assert!(matches!(committer.submit(WriteBatch::default()), Err(StorageError::ShutDown)));
    }
}
