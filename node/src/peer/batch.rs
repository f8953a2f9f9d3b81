//! [`Batcher`]: coalesces concurrent calls to one peer into batch calls.
//!
//! Each caller enqueues its item with a reply slot and waits. One task per
//! (peer, call kind) takes the first waiting item, then everything else that
//! is already waiting (up to `max_batch`), and sends them as one batch call;
//! up to `max_in_flight` batch calls run at once. Under light load a batch
//! holds one item and costs what a single call costs; under heavy load the
//! items that queue up while calls are in flight share the next call, so the
//! number of RPCs, frames and wake-ups per item falls as the load grows —
//! no timer, no added latency.
//!
//! Invariants: every enqueued item gets exactly one answer (its own result,
//! the batch's error, or `Unreachable` when the task is gone); an answer
//! goes to the item at the same position of the batch; the task ends when
//! the batcher is dropped.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::{Semaphore, mpsc, oneshot};

use crate::transport::TransportError;

type Slot<O> = oneshot::Sender<Result<O, TransportError>>;

/// Coalesces items of type `I` answered by `O`; see the module docs.
#[derive(Debug)]
pub struct Batcher<I, O> {
    tx: mpsc::UnboundedSender<(I, Slot<O>)>,
    peer: String,
}

impl<I: Send + 'static, O: Send + 'static> Batcher<I, O> {
    /// Starts the task; `call` sends one batch and returns one result per item, in order.
    /// Must be called inside a tokio runtime.
    pub fn spawn<F, Fut>(peer: String, max_batch: usize, max_in_flight: usize, call: F) -> Self
    where
        F: Fn(Vec<I>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Vec<Result<O, TransportError>>, TransportError>> + Send + 'static,
    {
        let (tx, mut rx) = mpsc::unbounded_channel::<(I, Slot<O>)>();
        let call = Arc::new(call);
        let permits = Arc::new(Semaphore::new(max_in_flight.max(1)));
        let who = peer.clone();
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                // Waiting for a permit lets more items queue up behind `first`.
                let Ok(permit) = Arc::clone(&permits).acquire_owned().await else { return };
                let mut batch = vec![first];
                while batch.len() < max_batch.max(1) {
                    match rx.try_recv() {
                        Ok(item) => batch.push(item),
                        Err(_) => break,
                    }
                }
                // Callers that gave up (their deadline passed while queued) need no call.
                batch.retain(|(_, slot)| !slot.is_closed());
                if batch.is_empty() {
                    continue;
                }
                let call = Arc::clone(&call);
                let who = who.clone();
                tokio::spawn(async move {
                    let (items, slots): (Vec<I>, Vec<Slot<O>>) = batch.into_iter().unzip();
                    let expected = slots.len();
                    match call(items).await {
                        Ok(results) if results.len() == expected => {
                            for (slot, result) in slots.into_iter().zip(results) {
                                let _ = slot.send(result);
                            }
                        }
                        Ok(results) => {
                            let reason = format!("answered {} items of a batch of {expected}", results.len());
                            for slot in slots {
                                let _ = slot
                                    .send(Err(TransportError::Malformed { peer: who.clone(), reason: reason.clone() }));
                            }
                        }
                        Err(e) => {
                            for slot in slots {
                                let _ = slot.send(Err(e.clone()));
                            }
                        }
                    }
                    drop(permit);
                });
            }
        });
        Self { tx, peer }
    }

    /// Enqueues `item` and waits for its answer.
    pub fn call(&self, item: I) -> impl Future<Output = Result<O, TransportError>> + Send + 'static {
        let (slot, answer) = oneshot::channel();
        let sent = self.tx.send((item, slot)).is_ok();
        let peer = self.peer.clone();
        async move {
            let gone = || TransportError::Unreachable { peer, reason: "the batching task has stopped".into() };
            if !sent {
                return Err(gone());
            }
            answer.await.unwrap_or_else(|_| Err(gone()))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    #[tokio::test]
    async fn concurrent_calls_share_batches_and_get_their_own_answers() {
        let sizes = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&sizes);
        let batcher = Batcher::spawn("peer".into(), 16, 1, move |items: Vec<u32>| {
            seen.lock().unwrap().push(items.len());
            async move {
                tokio::task::yield_now().await;
                Ok(items.into_iter().map(|i| if i % 7 == 0 { Err(remote(i)) } else { Ok(i * 2) }).collect())
            }
        });
        let calls: Vec<_> = (1..=100u32).map(|i| batcher.call(i)).collect();
        let answers = futures::future::join_all(calls).await;
        for (i, answer) in (1..=100u32).zip(answers) {
            if i % 7 == 0 {
                assert_eq!(answer, Err(remote(i)));
            } else {
                assert_eq!(answer, Ok(i * 2));
            }
        }
        let sizes = sizes.lock().unwrap().clone();
        assert_eq!(sizes.iter().sum::<usize>(), 100, "every item sent once");
        assert!(sizes.len() < 100, "items were coalesced: {sizes:?}");
        assert!(sizes.iter().all(|&s| s <= 16), "no batch above max_batch: {sizes:?}");
    }

    #[tokio::test]
    async fn a_failed_or_short_batch_fails_each_of_its_items() {
        let failing: Batcher<u32, u32> =
            Batcher::spawn("p".into(), 8, 2, |_items: Vec<u32>| async { Err(unreachable_peer()) });
        assert_eq!(failing.call(1).await, Err(unreachable_peer()));
        let short = Batcher::spawn("p".into(), 8, 2, |_items: Vec<u32>| async { Ok(Vec::<Result<u32, _>>::new()) });
        assert!(matches!(short.call(1).await, Err(TransportError::Malformed { .. })));
    }

    fn remote(i: u32) -> TransportError {
        TransportError::Remote {
            peer: "peer".into(),
            code: crate::error::RemoteStatus::Internal,
            rkv_code: None,
            message: format!("item {i}"),
        }
    }

    fn unreachable_peer() -> TransportError {
        TransportError::Unreachable { peer: "p".into(), reason: "down".into() }
    }
}
