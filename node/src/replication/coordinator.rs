//! [`Coordinator`]: validation, consistency, and the entry points of every
//! client operation. Writes become [`Mutation`]s coordinated by a replica of
//! the key (`write_path.rs`); reads ask replicas and repair (`read_path.rs`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;

use crate::clock::Clock;
use crate::error::KvError;
use crate::hints::HintStore;
use crate::membership::ClusterView;
use crate::ring::token_of;
use crate::storage::{DurableTicket, Storage, WriteBatch, WriteOp};
use crate::transport::{CoordinateReply, Transport};
use crate::version::{NodeId, Record, VersionVector};

use super::metrics::ReplicationMetrics;
use super::ops::decode_context;
use super::{
    Access, BatchOp, CasExpectation, CasOutcome, ClusterSettings, Consistency, CoordinatorParts, KeyLocks, Keyspace,
    Keyspaces, Limits, Mutation, NodeParts, PutOptions, ReadResult, WriteResult,
};

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
    pub(super) view: Arc<ClusterView>,
    pub(super) transport: Arc<dyn Transport>,
    pub(super) hints: HintStore,
    pub(super) settings: ClusterSettings,
    pub(super) metrics: ReplicationMetrics,
    draining: AtomicBool,
}

impl Coordinator {
    /// A coordinator of a cluster of one: this node holds every key.
    pub fn new(
        node_id: NodeId,
        storage: Arc<dyn Storage>,
        keyspaces: Keyspaces,
        clock: Arc<dyn Clock>,
        limits: Limits,
    ) -> Self {
        let node = NodeParts::solo(node_id, storage, Arc::clone(&clock));
        Self::solo(node_id, &node, keyspaces, clock, limits)
    }

    /// A coordinator of a cluster of one over `node` (from [`NodeParts::solo`]),
    /// for callers that also hand the parts to other components.
    pub fn solo(
        node_id: NodeId,
        node: &NodeParts,
        keyspaces: Keyspaces,
        clock: Arc<dyn Clock>,
        limits: Limits,
    ) -> Self {
        Self::clustered(CoordinatorParts {
            node_id,
            storage: Arc::clone(&node.storage),
            keyspaces,
            clock,
            limits,
            view: Arc::clone(&node.view),
            transport: Arc::clone(&node.transport),
            settings: ClusterSettings::default(),
            metrics: ReplicationMetrics::unregistered(),
            hints: node.hints.clone(),
        })
    }

    /// A coordinator of a cluster.
    pub fn clustered(p: CoordinatorParts) -> Self {
        let inner = Inner {
            node_id: p.node_id,
            storage: p.storage,
            keyspaces: p.keyspaces,
            locks: KeyLocks::new(1024),
            clock: p.clock,
            limits: p.limits,
            view: p.view,
            transport: p.transport,
            hints: p.hints,
            settings: p.settings,
            metrics: p.metrics,
            draining: AtomicBool::new(false),
        };
        Self { inner: Arc::new(inner) }
    }

    /// The keyspace registry: configuration, read-only (the keyspaces, their
    /// replication factors and default levels), not a part of the coordinator's state.
    pub fn keyspaces(&self) -> &Keyspaces {
        &self.inner.keyspaces
    }

    /// Refuses new writes from now on (graceful shutdown, `Drain`).
    pub fn drain(&self) {
        self.inner.draining.store(true, Ordering::SeqCst);
    }

    /// Runs `f` on the blocking pool (or inline in simulation) under the request deadline.
    pub(super) async fn blocking<T, F>(&self, f: F) -> Result<T, KvError>
    where
        T: Send + 'static,
        F: FnOnce(&Inner) -> Result<T, KvError> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        if inner.settings.inline_storage {
            return f(&inner);
        }
        let timeout = inner.limits.request_timeout;
        let task = tokio::task::spawn_blocking(move || f(&inner));
        match tokio::time::timeout(timeout, task).await {
            Ok(Ok(result)) => result,
            // The closure panicked or the runtime is shutting down.
            Ok(Err(_join)) => Err(KvError::ShuttingDown),
            Err(_) => Err(KvError::Timeout { ms: timeout.as_millis() as u64 }),
        }
    }

    /// Runs a single-key storage call `f`: inline when `inline_point_ops`
    /// (a few microseconds on a cache hit), else like [`Self::blocking`].
    pub(super) async fn point<T, F>(&self, f: F) -> Result<T, KvError>
    where
        T: Send + 'static,
        F: FnOnce(&Inner) -> Result<T, KvError> + Send + 'static,
    {
        if self.inner.settings.inline_point_ops {
            return f(&self.inner);
        }
        self.blocking(f).await
    }

    /// Runs a single-key storage write `f`: like [`Self::point`], except under
    /// `sync = always`, where submitting to group commit waits for the
    /// committer (which may be in an fsync) and so stays off the runtime.
    pub(super) async fn point_write<T, F>(&self, f: F) -> Result<T, KvError>
    where
        T: Send + 'static,
        F: FnOnce(&Inner) -> Result<T, KvError> + Send + 'static,
    {
        if self.inner.storage.sync_policy() == crate::storage::SyncPolicy::Always {
            return self.blocking(f).await;
        }
        self.point(f).await
    }

    /// The local record of a key.
    pub(super) async fn read_local(&self, ks: &Arc<Keyspace>, key: Bytes) -> Result<Option<Record>, KvError> {
        let ks = Arc::clone(ks);
        self.point(move |inner| Ok(inner.storage.get(&ks.name, &key)?)).await
    }

    /// Waits for durability within the request deadline.
    pub(super) async fn durable(&self, ticket: DurableTicket) -> Result<(), KvError> {
        let timeout = self.inner.limits.request_timeout;
        match tokio::time::timeout(timeout, ticket.wait()).await {
            Ok(result) => result.map_err(KvError::from),
            Err(_) => Err(KvError::Timeout { ms: timeout.as_millis() as u64 }),
        }
    }

    /// Resolves the keyspace and checks the key of a request.
    pub(super) fn admit(&self, keyspace: &str, key: &[u8], access: Access) -> Result<Arc<Keyspace>, KvError> {
        let ks = self.inner.keyspaces.get(keyspace)?;
        self.inner.check_key(key)?;
        if access == Access::Write && self.inner.draining.load(Ordering::SeqCst) {
            return Err(KvError::ShuttingDown);
        }
        Ok(ks)
    }

    /// Writes one key.
    pub async fn put(
        &self,
        keyspace: &str,
        key: Bytes,
        value: Bytes,
        opts: PutOptions,
    ) -> Result<WriteResult, KvError> {
        let m =
            Mutation::Put { value, context: opts.context, ttl_seconds: opts.ttl_seconds, if_absent: opts.if_absent };
        Ok(self.mutate(keyspace, key, m, opts.consistency).await?.result)
    }

    /// Deletes one key (writes a tombstone covering `context`, or everything
    /// the coordinating replica has seen when the context is empty).
    pub async fn delete(
        &self,
        keyspace: &str,
        key: Bytes,
        context: Bytes,
        consistency: Consistency,
    ) -> Result<WriteResult, KvError> {
        Ok(self.mutate(keyspace, key, Mutation::Delete { context }, consistency).await?.result)
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
        let r = self.mutate(keyspace, key, Mutation::Touch { ttl_seconds }, consistency).await?.result;
        Ok(r.applied.then_some(r.version))
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
        let r = self.mutate(keyspace, key, Mutation::Increment { delta, ttl_seconds }, consistency).await?;
        Ok((r.counter, r.result.version))
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
        let m = Mutation::Cas { expected, new_value, ttl_seconds };
        let CoordinateReply { result, current, .. } = self.mutate(keyspace, key, m, consistency).await?;
        let now_ms = self.inner.clock.now_ms();
        let current = current.map(|r| r.live_siblings(now_ms).cloned().collect()).unwrap_or_default();
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
        self.inner.keyspaces.get(keyspace)?;
        for key in &keys {
            self.inner.check_key(key)?;
        }
        let reads = keys.iter().map(|k| self.get(keyspace, k.clone(), consistency));
        let results = futures::future::join_all(reads).await;
        keys.into_iter().zip(results).map(|(k, r)| r.map(|r| (k, r))).collect()
    }

    /// Writes many keys. `atomic`: every op is validated before any is applied;
    /// on a cluster of one they are applied in one storage batch. Across
    /// replicas, all-or-nothing after a coordinator crash needs the batchlog
    /// (not built yet). Otherwise each op stands alone.
    pub async fn batch_write(
        &self,
        keyspace: &str,
        ops: Vec<BatchOp>,
        atomic: bool,
        consistency: Consistency,
    ) -> Result<Vec<Result<WriteResult, KvError>>, KvError> {
        self.inner.check_batch(ops.len())?;
        let ks = self.admit(keyspace, b"-", Access::Write)?;
        if atomic {
            for op in &ops {
                self.inner.check_key(&op.key)?;
                self.inner.check_mutation(&ks, &batch_mutation(op))?;
            }
            if self.inner.view.member_count() == 1 {
                return self.batch_write_local_atomic(ks, ops).await.map(|v| v.into_iter().map(Ok).collect());
            }
        }
        let mut results = Vec::with_capacity(ops.len());
        for op in ops {
            let m = batch_mutation(&op);
            results.push(self.mutate(&ks.name, op.key, m, consistency).await.map(|r| r.result));
        }
        Ok(results)
    }

    async fn batch_write_local_atomic(
        &self,
        ks: Arc<Keyspace>,
        ops: Vec<BatchOp>,
    ) -> Result<Vec<WriteResult>, KvError> {
        let mut prepared = Vec::with_capacity(ops.len());
        for op in ops {
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

fn batch_mutation(op: &BatchOp) -> Mutation {
    match &op.value {
        Some(value) => Mutation::Put {
            value: value.clone(),
            context: op.context.clone(),
            ttl_seconds: op.ttl_seconds,
            if_absent: false,
        },
        None => Mutation::Delete { context: op.context.clone() },
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

    /// The expiry of a write with `ttl_seconds` (or, when absent, the keyspace
    /// default). An explicit 0 is refused on every protocol, as Redis refuses
    /// `EX 0`: it would otherwise silently mean "no TTL".
    pub(super) fn expiry(&self, ttl_seconds: Option<u64>, ks: &Keyspace) -> Result<Expiry, KvError> {
        let Some(ttl) = ttl_seconds.or(ks.default_ttl_seconds) else {
            return Ok(Expiry::Never);
        };
        let max = self.limits.max_ttl_seconds;
        if ttl == 0 || ttl > max {
            return Err(KvError::TtlOutOfRange { ttl_seconds: ttl, max });
        }
        Ok(Expiry::At(self.clock.now_ms() + (ttl as i64) * 1000))
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
            batch.ops.push(WriteOp::Put { keyspace: ks.name.clone(), key, record });
        }
        let ticket = self.storage.write(batch)?;
        Ok((results, ticket))
    }
}
