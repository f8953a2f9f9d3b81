//! The load of the partition test: read-modify-write writers (each through
//! one node, at one consistency level, on its set of keys; two writers may
//! share keys) and probes (a fresh key per write, through one node), all
//! recorded in a [`History`].
//!
//! Every attempt is tagged with the phase it started in, so the test can
//! ask what happened through which node during which fault.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use ringkv_client::proto::{Consistency, ConsistencyLevel};
use ringkv_client::{Client, ClientError, PutOptions, RetryPolicy};
use ringkv_e2e::history::{Attempt, History, Outcome};
use tokio::task::JoinSet;
use tokio::time::Instant;

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
        .consistency(level(ConsistencyLevel::Quorum))
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

/// One read-modify-write writer.
#[derive(Debug, Clone)]
pub struct WriterSpec {
    /// Its name, part of every value it writes (values stay unique on shared keys).
    pub name: String,
    /// The node it talks to.
    pub via: usize,
    /// A client of that node.
    pub client: Client,
    /// The consistency level of its reads and writes.
    pub level: ConsistencyLevel,
    /// The keys it writes, in turn.
    pub keys: Vec<String>,
}

/// Running writers and probes; [`Workload::stop`] ends them.
#[derive(Debug)]
pub struct Workload {
    /// Every attempt so far.
    pub history: History,
    /// The current phase.
    pub phase: Phase,
    /// Reads that failed, per writer in start order (a writer does not write without a read).
    pub read_failures: Arc<Vec<AtomicU64>>,
    stop: Arc<AtomicBool>,
    tasks: JoinSet<Result<()>>,
}

impl Workload {
    /// Starts the writers.
    /// Seeds every key first (one blind write at ALL each, the first write
    /// the key ever sees), so that no writer ever writes without a context:
    /// a blind write replaces whatever its coordinator holds, seen or not.
    pub async fn start(writers: Vec<WriterSpec>) -> Result<Self> {
        let (history, phase, stop) = (History::new(), Phase::default(), Arc::new(AtomicBool::new(false)));
        phase.set("seed");
        seed(&history, &writers).await?;
        let read_failures: Arc<Vec<AtomicU64>> = Arc::new(writers.iter().map(|_| AtomicU64::new(0)).collect());
        let mut tasks = JoinSet::new();
        for (index, spec) in writers.into_iter().enumerate() {
            let client = spec.client.with_consistency(Some(level(spec.level)));
            let writer = Writer {
                index,
                spec,
                client,
                history: history.clone(),
                phase: phase.clone(),
                stop: Arc::clone(&stop),
                read_failures: Arc::clone(&read_failures),
            };
            tasks.spawn(writer.run());
        }
        Ok(Self { history, phase, read_failures, stop, tasks })
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
                let level = "QUORUM".to_owned();
                history.record(Attempt { key, value, observed: Vec::new(), outcome, phase: phase_now, via, level });
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

/// Writes `{key}-seed{n}` at ALL to every key of `writers`, through the
/// first writer of the key, until one is acknowledged (a few tries: a
/// freshly formed cluster sometimes refuses its first writes).
async fn seed(history: &History, writers: &[WriterSpec]) -> Result<()> {
    const TRIES: u32 = 5;
    let mut seeded = std::collections::BTreeSet::new();
    for spec in writers {
        for key in spec.keys.iter().filter(|k| seeded.insert(k.as_str())) {
            for n in 1..=TRIES {
                let value = format!("{key}-seed{n}");
                let options = PutOptions { consistency: Some(level(ConsistencyLevel::All)), ..Default::default() };
                let result = spec.client.put(key.clone(), value.clone(), options).await.map(drop);
                let error = result.as_ref().err().map(ToString::to_string);
                let (key, via, level, phase) = (key.clone(), spec.via, "ALL".to_owned(), "seed".to_owned());
                let outcome = outcome(result);
                history.record(Attempt { key: key.clone(), value, observed: Vec::new(), outcome, phase, via, level });
                match error {
                    None => break,
                    Some(e) if n == TRIES => bail!("seed {key} at ALL through node {via}: {e}"),
                    Some(e) => eprintln!("seed {key} at ALL through node {via} failed (try {n} of {TRIES}): {e}"),
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
    Ok(())
}

/// `level` as a request consistency.
pub fn level(level: ConsistencyLevel) -> Consistency {
    Consistency { level: level.into(), ..Default::default() }
}

struct Writer {
    index: usize,
    spec: WriterSpec,
    client: Client,
    history: History,
    phase: Phase,
    stop: Arc<AtomicBool>,
    read_failures: Arc<Vec<AtomicU64>>,
}

impl Writer {
    async fn run(self) -> Result<()> {
        let keys = &self.spec.keys;
        let (via, level) = (self.spec.via, ringkv_client::consistency::level_name(self.spec.level).to_owned());
        let mut seq = 0u64;
        while !self.stop.load(Ordering::Relaxed) {
            let key = &keys[seq as usize % keys.len()];
            seq += 1;
            let phase = self.phase.get();
            let started = Instant::now();
            let read = match self.client.get(key.clone()).await {
                Ok(read) => read,
                Err(_) => {
                    self.read_failures[self.index].fetch_add(1, Ordering::Relaxed);
                    // A refused read returns at once; do not spin on it.
                    tokio::time::sleep_until(started + Duration::from_millis(50)).await;
                    continue;
                }
            };
            let (observed, context) = match read {
                Some(record) => {
                    (record.siblings.iter().filter(|s| !s.tombstone).map(value_text).collect(), record.context)
                }
                None => {
                    // Never blind (see `start`): a seeded key that reads as
                    // missing counts as a refused read.
                    self.read_failures[self.index].fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep_until(started + Duration::from_millis(50)).await;
                    continue;
                }
            };
            let value = format!("{key}-{}-v{seq}", self.spec.name);
            let options = PutOptions { context, ..Default::default() };
            let result = self.client.put(key.clone(), value.clone(), options).await.map(drop);
            let outcome = outcome(result);
            let level = level.clone();
            self.history.record(Attempt { key: key.clone(), value, observed, outcome, phase, via, level });
            tokio::time::sleep(WRITER_PAUSE).await;
        }
        Ok(())
    }
}

/// A sibling's value as text (every value this workload writes is ASCII).
pub fn value_text(sibling: &ringkv_client::proto::Sibling) -> String {
    String::from_utf8_lossy(&sibling.value).into_owned()
}
