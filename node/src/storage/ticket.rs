//! [`DurableTicket`]: the promise that a write becomes durable.

use tokio::sync::oneshot;

use super::StorageError;

/// Resolves when a write is durable under the sync policy. A write must not
/// be acknowledged to anyone before its ticket resolved with `Ok`.
#[derive(Debug)]
pub struct DurableTicket(Option<oneshot::Receiver<Result<(), StorageError>>>);

impl DurableTicket {
    /// A ticket for a write that is already durable under the policy.
    pub fn ready() -> Self {
        Self(None)
    }

    /// A ticket resolved by the group-commit thread through `rx`.
    pub fn pending(rx: oneshot::Receiver<Result<(), StorageError>>) -> Self {
        Self(Some(rx))
    }

    /// Waits (async) until the write is durable.
    pub async fn wait(self) -> Result<(), StorageError> {
        match self.0 {
            None => Ok(()),
            Some(rx) => rx.await.unwrap_or(Err(StorageError::ShutDown)),
        }
    }

    /// Waits (blocking the thread) until the write is durable. Never call on the reactor.
    pub fn wait_blocking(self) -> Result<(), StorageError> {
        match self.0 {
            None => Ok(()),
            Some(rx) => rx.blocking_recv().unwrap_or(Err(StorageError::ShutDown)),
        }
    }
}
