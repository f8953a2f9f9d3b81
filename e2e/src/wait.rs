//! Waiting on conditions with deadlines: the only way e2e tests wait.

use std::time::Duration;

use anyhow::{Result, bail};
use tokio::time::Instant;

/// How often [`wait_until`] re-checks its condition.
pub const POLL_INTERVAL: Duration = Duration::from_millis(25);

/// Polls `condition` every [`POLL_INTERVAL`] until it returns true, failing
/// with `what` in the message once `timeout` has passed. The condition is
/// checked at least once, and once more after the deadline, so a slow
/// machine only fails when the condition really never held.
pub async fn wait_until(timeout: Duration, what: &str, mut condition: impl AsyncFnMut() -> bool) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        if condition().await {
            return Ok(());
        }
        if Instant::now() >= deadline {
            if condition().await {
                return Ok(());
            }
            bail!("timed out after {timeout:?} waiting until {what}");
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}
