//! [`Coordinator`]: validation, consistency, and read-modify-write of keys.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;

use crate::clock::Clock;
use crate::config::ServerConfig;
use crate::error::KvError;
use crate::ring::token_of;
use crate::storage::{DurableTicket, Storage, WriteBatch};
use crate::version::{NewWrite, NodeId, Record, Sibling, VersionVector};

use super::ops::decode_context;
use super::{
    Access, BatchOp, CasExpectation, CasOutcome, Consistency, KeyLocks, Keyspace, Keyspaces, PutOptions, ReadResult,
    WriteResult, required_replicas,
};

/// Limits on client input, from `[server]`.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest key in bytes.
    pub max_key_bytes: usize,
    /// Largest value in bytes.
    pub max_value_bytes: usize,
    /// Largest TTL in seconds.
    pub max_ttl_seconds: u64,
    /// Largest batch.
    pub max_batch_keys: usize,
    /// Request deadline.
    pub request_timeout: Duration,
}

impl From<&ServerConfig> for Limits {
    fn from(s: &ServerConfig) -> Self {
        Self {
            max_key_bytes: s.max_key_bytes,
            max_value_bytes: s.max_value_bytes,
            max_ttl_seconds: s.max_ttl_seconds,
            max_batch_keys: s.max_batch_keys,
            request_timeout: Duration::from_millis(s.request_timeout_ms),
        }
    }
}

/// Serves every client operation of this node. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Coordinator {
    pub(super) inner: Arc<Inner>,
}

#[derive(Debug)]
pub(super) struct Inner {
    pub(super) node_id: NodeId,
    pub(super) storage: Arc<dyn Storage>,
    pub(super) keyspaces: Keyspaces,
    pub(super) locks: KeyLocks,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) limits: Limits,
    draining: AtomicBool,
}

/// The replicas that can take part in a request: this node alone for now.
const REPLICAS_ALIVE: u32 = 1;

impl Coordinator {
    /// A coordinator writing dots as `node_id` into `storage`.
    pub fn new(
        node_id: NodeId,
        storage: Arc<dyn Storage>,
        keyspaces: Keyspaces,
        clock: Arc<dyn Clock>,
        limits: Limits,
    ) -> Self {
        let inner = Inner {
            node_id,
            storage,
            keyspaces,
            locks: KeyLocks::new(1024),
            clock,
            limits,
            draining: AtomicBool::new(false),
        };
        Self { inner: Arc::new(inner) }
    }

    /// The keyspace registry.
    pub fn keyspaces(&self) -> &Keyspaces {
        &self.inner.keyspaces
    }

    /// The storage engine.
    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.inner.storage
    }

    /// Refuses new writes from now on (graceful shutdown, `Drain`).
    pub fn drain(&self) {
        self.inner.draining.store(true, Ordering::SeqCst);
    }

    /// Runs `f` on the blocking pool under the request deadline.
    pub(super) async fn blocking<T, F>(&self, f: F) -> Result<T, KvError>
    where
        T: Send + 'static,
        F: FnOnce(&Inner) -> Result<T, KvError> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        let timeout = inner.limits.request_timeout;
        let task = tokio::task::spawn_blocking(move || f(&inner));
        match tokio::time::timeout(timeout, task).await {
            Ok(Ok(result)) => result,
            // The closure panicked or the runtime is shutting down.
            Ok(Err(_join)) => Err(KvError::ShuttingDown),
            Err(_) => Err(KvError::Timeout { ms: timeout.as_millis() as u64 }),
        }
    }

    /// Waits for durability within the request deadline.
    pub(super) async fn durable(&self, ticket: DurableTicket) -> Result<(), KvError> {
        let timeout = self.inner.limits.request_timeout;
        match tokio::time::timeout(timeout, ticket.wait()).await {
            Ok(result) => result.map_err(KvError::from),
            Err(_) => Err(KvError::Timeout { ms: timeout.as_millis() as u64 }),
        }
    }

    /// Resolves the keyspace and checks the key and the consistency of a request.
    pub(super) fn admit(
        &self,
        keyspace: &str,
        key: &[u8],
        consistency: Consistency,
        access: Access,
    ) -> Result<Arc<Keyspace>, KvError> {
        let ks = self.inner.keyspaces.get(keyspace)?;
        self.inner.check_key(key)?;
        self.check_consistency(&ks, consistency, access)?;
        if access == Access::Write && self.inner.draining.load(Ordering::SeqCst) {
            return Err(KvError::ShuttingDown);
        }
        Ok(ks)
    }

    pub(super) fn check_consistency(&self, ks: &Keyspace, c: Consistency, access: Access) -> Result<(), KvError> {
        let default = match access {
            Access::Read => ks.read_consistency,
            Access::Write => ks.write_consistency,
        };
        let required = required_replicas(c, access, default, ks.replication_factor, 0, &ks.name)?;
        if required > REPLICAS_ALIVE {
            return Err(KvError::Unavailable { required, alive: REPLICAS_ALIVE });
        }
        Ok(())
    }

    /// Reads one key.
    pub async fn get(&self, keyspace: &str, key: Bytes, consistency: Consistency) -> Result<ReadResult, KvError> {
        let ks = self.admit(keyspace, &key, consistency, Access::Read)?;
        self.blocking(move |inner| {
            let record = inner.storage.get(&ks.name, &key)?;
            Ok(ReadResult::from_record(record.as_ref(), inner.clock.now_ms()))
        })
        .await
    }

    /// Writes one key.
    pub async fn put(
        &self,
        keyspace: &str,
        key: Bytes,
        value: Bytes,
        opts: PutOptions,
    ) -> Result<WriteResult, KvError> {
        let ks = self.admit(keyspace, &key, opts.consistency, Access::Write)?;
        self.inner.check_value(&value)?;
        let context = decode_context(&opts.context)?;
        let expires = self.inner.expiry(opts.ttl_seconds, &ks)?;
        let if_absent = opts.if_absent;
        let (result, ticket) = self
            .blocking(move |inner| {
                inner.update(&ks, key, |record, now_ms| {
                    if if_absent && record.is_live(now_ms) {
                        return Ok(None);
                    }
                    Ok(Some((Some(context), Some(value), expires)))
                })
            })
            .await?;
        self.durable(ticket).await?;
        Ok(result)
    }

    /// Deletes one key (writes a tombstone covering `context`, or everything
    /// this replica has seen when the context is empty).
    pub async fn delete(
        &self,
        keyspace: &str,
        key: Bytes,
        context: Bytes,
        consistency: Consistency,
    ) -> Result<WriteResult, KvError> {
        let ks = self.admit(keyspace, &key, consistency, Access::Write)?;
        let context = decode_context(&context)?;
        let (result, ticket) = self
            .blocking(move |inner| inner.update(&ks, key, |_, _| Ok(Some((Some(context), None, Expiry::Never)))))
            .await?;
        self.durable(ticket).await?;
        Ok(result)
    }

    /// Sets (`ttl_seconds > 0`) or clears (`0`) the TTL of a live key by
    /// rewriting its newest value; returns the new version, `None` when absent.
    pub async fn touch(
        &self,
        keyspace: &str,
        key: Bytes,
        ttl_seconds: u64,
        consistency: Consistency,
    ) -> Result<Option<u64>, KvError> {
        let ks = self.admit(keyspace, &key, consistency, Access::Write)?;
        let expires = if ttl_seconds == 0 { Expiry::Never } else { self.inner.expiry(Some(ttl_seconds), &ks)? };
        let (result, ticket) = self
            .blocking(move |inner| {
                inner.update(&ks, key, |record, now_ms| {
                    Ok(record.newest_live(now_ms).map(|s| (None, s.value.clone(), expires)))
                })
            })
            .await?;
        self.durable(ticket).await?;
        Ok(result.applied.then_some(result.version))
    }

    /// Adds `delta` to the decimal integer stored at `key` (absent counts as 0).
    pub async fn increment(
        &self,
        keyspace: &str,
        key: Bytes,
        delta: i64,
        ttl_seconds: Option<u64>,
        consistency: Consistency,
    ) -> Result<(i64, u64), KvError> {
        let ks = self.admit(keyspace, &key, consistency, Access::Write)?;
        let ttl = ttl_seconds.filter(|t| *t > 0);
        let expires = match ttl {
            Some(_) => self.inner.expiry(ttl, &ks)?,
            None => Expiry::Keep,
        };
        let ((result, value), ticket) = self
            .blocking(move |inner| {
                let mut new_value = 0;
                let (result, ticket) = inner.update(&ks, key, |record, now_ms| {
                    let current = match record.newest_live(now_ms) {
                        None => 0,
                        Some(s) => parse_counter(s.value.as_deref().unwrap_or_default())?,
                    };
                    new_value =
                        current.checked_add(delta).ok_or(KvError::Overflow { current, delta })?;
                    Ok(Some((None, Some(Bytes::from(new_value.to_string())), expires)))
                })?;
                Ok(((result, new_value), ticket))
            })
            .await?;
        self.durable(ticket).await?;
        Ok((value, result.version))
    }

    /// Replaces the value only when the key matches `expected`.
    pub async fn compare_and_set(
        &self,
        keyspace: &str,
        key: Bytes,
        expected: CasExpectation,
        new_value: Bytes,
        ttl_seconds: Option<u64>,
        consistency: Consistency,
    ) -> Result<CasOutcome, KvError> {
        let ks = self.admit(keyspace, &key, consistency, Access::Write)?;
        self.inner.check_value(&new_value)?;
        let expected_clock = match &expected {
            CasExpectation::Context(c) => Some(decode_context(c)?),
            _ => None,
        };
        let expires = self.inner.expiry(ttl_seconds, &ks)?;
        let (result, current, ticket) = self
            .blocking(move |inner| {
                let mut current = Vec::new();
                let (result, ticket) = inner.update(&ks, key, |record, now_ms| {
                    if cas_matches(record, &expected, expected_clock.as_ref(), now_ms) {
                        Ok(Some((None, Some(new_value), expires)))
                    } else {
                        current = record.live_siblings(now_ms).cloned().collect();
                        Ok(None)
                    }
                })?;
                Ok((result, current, ticket))
            })
            .await?;
        self.durable(ticket).await?;
        Ok(CasOutcome { applied: result.applied, version: result.version, context: result.context, current })
    }

    /// Reads many keys of one keyspace.
    pub async fn batch_get(
        &self,
        keyspace: &str,
        keys: Vec<Bytes>,
        consistency: Consistency,
    ) -> Result<Vec<(Bytes, ReadResult)>, KvError> {
        self.inner.check_batch(keys.len())?;
        let ks = self.admit(keyspace, b"-", consistency, Access::Read)?;
        for key in &keys {
            self.inner.check_key(key)?;
        }
        self.blocking(move |inner| {
            let now_ms = inner.clock.now_ms();
            keys.into_iter()
                .map(|key| {
                    let record = inner.storage.get(&ks.name, &key)?;
                    Ok((key, ReadResult::from_record(record.as_ref(), now_ms)))
                })
                .collect()
        })
        .await
    }

    /// Writes many keys. `atomic`: every op is validated first and all are
    /// applied in one storage batch, or none. Otherwise each op stands alone.
    pub async fn batch_write(
        &self,
        keyspace: &str,
        ops: Vec<BatchOp>,
        atomic: bool,
        consistency: Consistency,
    ) -> Result<Vec<Result<WriteResult, KvError>>, KvError> {
        self.inner.check_batch(ops.len())?;
        let ks = self.admit(keyspace, b"-", consistency, Access::Write)?;
        if atomic {
            return self.batch_write_atomic(ks, ops).await.map(|v| v.into_iter().map(Ok).collect());
        }
        let mut results = Vec::with_capacity(ops.len());
        for op in ops {
            let opts = PutOptions { context: op.context, ttl_seconds: op.ttl_seconds, if_absent: false, consistency };
            let result = match op.value {
                Some(value) => self.put(&ks.name, op.key, value, opts).await,
                None => self.delete(&ks.name, op.key, opts.context, consistency).await,
            };
            results.push(result);
        }
        Ok(results)
    }

    async fn batch_write_atomic(&self, ks: Arc<Keyspace>, ops: Vec<BatchOp>) -> Result<Vec<WriteResult>, KvError> {
        let mut prepared = Vec::with_capacity(ops.len());
        for op in ops {
            self.inner.check_key(&op.key)?;
            if let Some(v) = &op.value {
                self.inner.check_value(v)?;
            }
            let context = decode_context(&op.context)?;
            let expires = match op.value {
                Some(_) => self.inner.expiry(op.ttl_seconds, &ks)?,
                None => Expiry::Never,
            };
            prepared.push((op.key, op.value, context, expires));
        }
        let (results, ticket) = self.blocking(move |inner| inner.apply_atomic(&ks, prepared)).await?;
        self.durable(ticket).await?;
        Ok(results)
    }
}

/// What a write does to the key's expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Expiry {
    /// No TTL.
    Never,
    /// Expires at this time (ms since the epoch).
    At(i64),
    /// Keep the expiry of the newest live sibling (increment).
    Keep,
}

/// What an update closure decides: `None` = do not write; else the context to
/// supersede (`None` = everything this replica has), the value (`None` =
/// tombstone) and the expiry.
pub(super) type Change = Option<(Option<VersionVector>, Option<Bytes>, Expiry)>;

impl Inner {
    pub(super) fn check_key(&self, key: &[u8]) -> Result<(), KvError> {
        let max = self.limits.max_key_bytes;
        match key.len() {
            0 => Err(KvError::EmptyKey { max }),
            len if len > max => Err(KvError::KeyTooLarge { len, max }),
            _ => Ok(()),
        }
    }

    pub(super) fn check_value(&self, value: &[u8]) -> Result<(), KvError> {
        let max = self.limits.max_value_bytes;
        if value.len() > max {
            return Err(KvError::ValueTooLarge { len: value.len(), max });
        }
        Ok(())
    }

    fn check_batch(&self, len: usize) -> Result<(), KvError> {
        let max = self.limits.max_batch_keys;
        if len > max {
            return Err(KvError::BatchTooLarge { len, max });
        }
        Ok(())
    }

    /// The expiry of a write with `ttl_seconds` (or the keyspace default).
    pub(super) fn expiry(&self, ttl_seconds: Option<u64>, ks: &Keyspace) -> Result<Expiry, KvError> {
        let Some(ttl) = ttl_seconds.filter(|t| *t > 0).or(ks.default_ttl_seconds) else {
            return Ok(Expiry::Never);
        };
        let max = self.limits.max_ttl_seconds;
        if ttl > max {
            return Err(KvError::TtlOutOfRange { ttl_seconds: ttl, max });
        }
        Ok(Expiry::At(self.clock.now_ms() + (ttl as i64) * 1000))
    }

    /// Read-modify-write of one key under its lock. `decide` sees the current
    /// record and says what to write. Returns once the write is visible; the
    /// ticket says when it is durable.
    pub(super) fn update<F>(&self, ks: &Keyspace, key: Bytes, decide: F) -> Result<(WriteResult, DurableTicket), KvError>
    where
        F: FnOnce(&Record, i64) -> Result<Change, KvError>,
    {
        let _guard = self.locks.lock(token_of(&ks.name, &key));
        let mut record = self.storage.get(&ks.name, &key)?.unwrap_or_default();
        let now_ms = self.clock.now_ms();
        let existed = record.is_live(now_ms);
        let Some(change) = decide(&record, now_ms)? else {
            let result = WriteResult {
                applied: false,
                existed,
                context: Bytes::from(record.clock.encode_context()),
                version: record.version(),
                timestamp_micros: 0,
            };
            return Ok((result, DurableTicket::ready()));
        };
        let timestamp_micros = self.apply_change(ks, &mut record, change, now_ms);
        let result = WriteResult {
            applied: true,
            existed,
            context: Bytes::from(record.clock.encode_context()),
            version: record.version(),
            timestamp_micros,
        };
        let ticket = self.storage.write(WriteBatch::put(&ks.name, key, record))?;
        Ok((result, ticket))
    }

    /// Applies a decided change to a record in memory; returns its timestamp.
    fn apply_change(&self, ks: &Keyspace, record: &mut Record, change: (Option<VersionVector>, Option<Bytes>, Expiry), now_ms: i64) -> i64 {
        let (context, value, expiry) = change;
        // A blind write (no context) supersedes everything this replica has seen.
        let context = context.filter(|c| !c.is_empty()).unwrap_or_else(|| record.clock.clone());
        let expires_at_ms = match expiry {
            Expiry::Never => None,
            Expiry::At(at) => Some(at),
            Expiry::Keep => record.newest_live(now_ms).and_then(|s| s.expires_at_ms),
        };
        // Timestamps never go backwards for a key, even if the wall clock does.
        let newest = record.siblings.iter().map(|s| s.timestamp_micros).max().unwrap_or(i64::MIN);
        let timestamp_micros = self.clock.now_micros().max(newest.saturating_add(1));
        let write = NewWrite { value, timestamp_micros, expires_at_ms };
        record.apply_write(self.node_id, &context, write, ks.conflict_mode);
        timestamp_micros
    }

    /// Applies prepared ops of one keyspace under all their locks, in one batch.
    fn apply_atomic(
        &self,
        ks: &Keyspace,
        ops: Vec<(Bytes, Option<Bytes>, VersionVector, Expiry)>,
    ) -> Result<(Vec<WriteResult>, DurableTicket), KvError> {
        let tokens: Vec<u64> = ops.iter().map(|(k, ..)| token_of(&ks.name, k)).collect();
        let _guards = self.locks.lock_many(&tokens);
        let now_ms = self.clock.now_ms();
        let mut working: std::collections::HashMap<Bytes, Record> = std::collections::HashMap::new();
        let mut results = Vec::with_capacity(ops.len());
        for (key, value, context, expiry) in ops {
            let record = match working.entry(key.clone()) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::hash_map::Entry::Vacant(e) => {
                    e.insert(self.storage.get(&ks.name, &key)?.unwrap_or_default())
                }
            };
            let existed = record.is_live(now_ms);
            let timestamp_micros = self.apply_change(ks, record, (Some(context), value, expiry), now_ms);
            results.push(WriteResult {
                applied: true,
                existed,
                context: Bytes::from(record.clock.encode_context()),
                version: record.version(),
                timestamp_micros,
            });
        }
        let mut batch = WriteBatch::default();
        for (key, record) in working {
            batch.ops.push(crate::storage::WriteOp::Put { keyspace: ks.name.clone(), key, record });
        }
        let ticket = self.storage.write(batch)?;
        Ok((results, ticket))
    }
}

fn parse_counter(value: &[u8]) -> Result<i64, KvError> {
    std::str::from_utf8(value)
        .ok()
        .and_then(|s| s.trim().parse::<i64>().ok())
        .ok_or(KvError::NotAnInteger)
}

fn cas_matches(record: &Record, expected: &CasExpectation, clock: Option<&VersionVector>, now_ms: i64) -> bool {
    match expected {
        CasExpectation::Absent => !record.is_live(now_ms),
        CasExpectation::Version(v) => {
            if *v == 0 { !record.is_live(now_ms) } else { record.version() == *v && record.is_live(now_ms) }
        }
        CasExpectation::Context(_) => clock.is_some_and(|c| *c == record.clock),
        CasExpectation::Value(v) => {
            let live: Vec<&Sibling> = record.live_siblings(now_ms).collect();
            matches!(live.as_slice(), [only] if only.value.as_ref() == Some(v))
        }
    }
}
