//! The load of the partition test: read-modify-write writers (one per
//! node, each owning its keys) and probes (a fresh key per write, through
//! one node), all recorded in a [`History`].
//!
//! Every attempt is tagged with the phase it started in, so the test can
//! ask what happened through which node during which fault.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::{Context as _, Result};
use ringkv_client::proto::{Consistency, ConsistencyLevel};
use ringkv_client::{Client, ClientError, PutOptions, RetryPolicy};
use ringkv_e2e::history::{Attempt, History, Outcome};
use tokio::task::JoinSet;
use tokio::time::Instant;

/// Keys each writer owns.
pub const KEYS_PER_WRITER: usize = 4;
/// Client timeout of every request: above the node's 2 s replica timeout,
/// so a write the coordinator gives up on is answered, not cut off.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(3);
/// Pause between two operations of one writer (keeps the history small).
const WRITER_PAUSE: Duration = Duration::from_millis(5);
/// Pause between two probe writes.
pub const PROBE_PAUSE: Duration = Duration::from_millis(50);

/// A client of the node at `endpoint` (`HOST:PORT`) that never retries.
pub async fn client(endpoint: impl std::fmt::Display) -> Result<Client> {
    let endpoint = endpoint.to_string();
    Client::builder(endpoint.clone())
        .timeout(CLIENT_TIMEOUT)
        .connect_timeout(CLIENT_TIMEOUT)
        .retry(RetryPolicy::none())
        .consistency(Consistency { level: ConsistencyLevel::Quorum.into(), ..Default::default() })
        .connect()
        .await
        .with_context(|| format!("connect to {endpoint}"))
}

/// What a failed write means: a timeout or a lost connection is unknown;
/// an answer from a node is a refusal (which may still have been applied
/// on some replicas, so the checker treats both alike).
pub fn outcome(result: Result<(), ClientError>) -> Outcome {
    match result {
        Ok(()) => Outcome::Ok,
        Err(e @ (ClientError::Timeout { .. } | ClientError::DeadlineExceeded { .. } | ClientError::Connect { .. })) => {
            Outcome::Unknown(e.to_string())
        }
        Err(e @ ClientError::Unavailable { .. }) if !e.to_string().contains("RKV-") => Outcome::Unknown(e.to_string()),
        Err(e) => Outcome::Failed(e.to_string()),
    }
}

/// The phase label every new attempt is tagged with.
#[derive(Debug, Clone, Default)]
pub struct Phase(Arc<Mutex<String>>);

impl Phase {
    /// Switches to `name`.
    pub fn set(&self, name: &str) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = name.to_owned();
    }

    /// The current phase.
    pub fn get(&self) -> String {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

/// Running writers and probes; [`Workload::stop`] ends them.
#[derive(Debug)]
pub struct Workload {
    /// Every attempt so far.
    pub history: History,
    /// The current phase.
    pub phase: Phase,
    /// Reads that failed, per writer (a writer does not write without a read).
    pub read_failures: Arc<Vec<AtomicU64>>,
    stop: Arc<AtomicBool>,
    tasks: JoinSet<Result<()>>,
}

impl Workload {
    /// Starts one writer per client (`clients[i]` talks to node `i`).
    pub fn start(clients: Vec<Client>) -> Self {
        let (history, phase, stop) = (History::new(), Phase::default(), Arc::new(AtomicBool::new(false)));
        let read_failures: Arc<Vec<AtomicU64>> = Arc::new(clients.iter().map(|_| AtomicU64::new(0)).collect());
        let mut tasks = JoinSet::new();
        for (via, client) in clients.into_iter().enumerate() {
            let writer = Writer {
                via,
                client,
                history: history.clone(),
                phase: phase.clone(),
                stop: Arc::clone(&stop),
                read_failures: Arc::clone(&read_failures),
            };
            tasks.spawn(writer.run());
        }
        Self { history, phase, read_failures, stop, tasks }
    }

    /// Starts a probe: fresh keys written (blind, at QUORUM) through
    /// `client` (node `via`) every [`PROBE_PAUSE`] until the workload stops
    /// or `until` is set. Recorded in the history like every write.
    pub fn probe(&mut self, via: usize, client: Client, until: Arc<AtomicBool>) {
        let (history, phase, stop) = (self.history.clone(), self.phase.clone(), Arc::clone(&self.stop));
        self.tasks.spawn(async move {
            static PROBES: AtomicU64 = AtomicU64::new(0);
            while !stop.load(Ordering::Relaxed) && !until.load(Ordering::Relaxed) {
                let n = PROBES.fetch_add(1, Ordering::Relaxed);
                let phase_now = phase.get();
                let (key, value) = (format!("probe-{phase_now}-{n}"), format!("probe-{n}"));
                let result = client.put(key.clone(), value.clone(), PutOptions::default()).await.map(drop);
                let outcome = outcome(result);
                history.record(Attempt { key, value, observed: Vec::new(), outcome, phase: phase_now, via });
                tokio::time::sleep(PROBE_PAUSE).await;
            }
            Ok(())
        });
    }

    /// Stops every writer and probe and waits for them (their last attempts are recorded).
    pub async fn stop(mut self) -> Result<History> {
        self.stop.store(true, Ordering::Relaxed);
        while let Some(joined) = self.tasks.join_next().await {
            joined.context("a writer panicked")??;
        }
        Ok(self.history)
    }
}

struct Writer {
    via: usize,
    client: Client,
    history: History,
    phase: Phase,
    stop: Arc<AtomicBool>,
    read_failures: Arc<Vec<AtomicU64>>,
}

impl Writer {
    async fn run(self) -> Result<()> {
        let keys: Vec<String> = (0..KEYS_PER_WRITER).map(|k| format!("writer{}-key{k}", self.via)).collect();
        let mut seq = 0u64;
        while !self.stop.load(Ordering::Relaxed) {
            let key = &keys[seq as usize % keys.len()];
            seq += 1;
            let phase = self.phase.get();
            let started = Instant::now();
            let read = match self.client.get(key.clone()).await {
                Ok(read) => read,
                Err(_) => {
                    self.read_failures[self.via].fetch_add(1, Ordering::Relaxed);
                    // A refused read returns at once; do not spin on it.
                    tokio::time::sleep_until(started + Duration::from_millis(50)).await;
                    continue;
                }
            };
            let (observed, context) = match read {
                Some(record) => {
                    (record.siblings.iter().filter(|s| !s.tombstone).map(value_text).collect(), record.context)
                }
                None => (Vec::new(), Default::default()),
            };
            let value = format!("{key}-v{seq}");
            let options = PutOptions { context, ..Default::default() };
            let result = self.client.put(key.clone(), value.clone(), options).await.map(drop);
            let outcome = outcome(result);
            self.history.record(Attempt { key: key.clone(), value, observed, outcome, phase, via: self.via });
            tokio::time::sleep(WRITER_PAUSE).await;
        }
        Ok(())
    }
}

/// A sibling's value as text (every value this workload writes is ASCII).
pub fn value_text(sibling: &ringkv_client::proto::Sibling) -> String {
    String::from_utf8_lossy(&sibling.value).into_owned()
}
