//! [`LocalReplica`]: this node's side of anti-entropy: prepares (builds or
//! rebuilds, throttled) its trees, answers tree levels and bucket records
//! from local storage, and merges repaired records through the normal
//! replica merge path ([`RecordMerger`], the coordinator), never overwriting.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::FutureExt;
use futures::future::BoxFuture;

use crate::clock::Clock;
use crate::error::KvError;
use crate::replication::Coordinator;
use crate::ring::Token;
use crate::storage::{ScanPosition, Storage};
use crate::transport::ReplicaWrite;
use crate::version::Record;

use super::merkle::{Hash, bucket_bounds};
use super::peer::{AeError, AntiEntropyPeer, KeyedRecord, TreeRef, TreeSummary};
use super::trees::TreeStore;

/// Records merged concurrently (so that they share group commits).
const MERGE_CONCURRENCY: usize = 64;
/// Records read per scan call when collecting buckets.
const BUCKET_PAGE: usize = 1000;

/// Merges a record into local storage the way a replica write does.
pub trait RecordMerger: Send + Sync + std::fmt::Debug {
    /// Merges `record` into the local copy of `(keyspace, key)`, durably.
    fn merge(&self, keyspace: String, key: Bytes, record: Record) -> BoxFuture<'static, Result<(), KvError>>;
}

impl RecordMerger for Coordinator {
    fn merge(&self, keyspace: String, key: Bytes, record: Record) -> BoxFuture<'static, Result<(), KvError>> {
        let this = self.clone();
        async move { this.apply_replica_write(ReplicaWrite { keyspace, key, record, hint_for: None }).await }.boxed()
    }
}

/// Paces background I/O to a byte rate.
#[derive(Debug, Clone, Copy)]
pub struct Throttle {
    bytes_per_second: f64,
}

impl Throttle {
    /// At most `mb_per_s` MiB per second; 0 means unlimited.
    pub fn mb_per_s(mb_per_s: f64) -> Self {
        Self { bytes_per_second: mb_per_s * 1024.0 * 1024.0 }
    }

    /// Sleeps as long as moving `bytes` takes at the rate.
    pub async fn pace(&self, bytes: u64) {
        if self.bytes_per_second > 0.0 && bytes > 0 {
            tokio::time::sleep(Duration::from_secs_f64(bytes as f64 / self.bytes_per_second)).await;
        }
    }
}

/// This node as an anti-entropy replica; see the module docs.
#[derive(Debug)]
pub struct LocalReplica {
    trees: Arc<TreeStore>,
    storage: Arc<dyn Storage>,
    merger: Arc<dyn RecordMerger>,
    clock: Arc<dyn Clock>,
    throttle: Throttle,
    builds: tokio::sync::Mutex<()>,
}

impl LocalReplica {
    /// A replica over `storage` (which must feed `trees`, see [`TrackedStorage`](super::TrackedStorage)).
    pub fn new(
        trees: Arc<TreeStore>,
        storage: Arc<dyn Storage>,
        merger: Arc<dyn RecordMerger>,
        clock: Arc<dyn Clock>,
        throttle: Throttle,
    ) -> Self {
        Self { trees, storage, merger, clock, throttle, builds: tokio::sync::Mutex::new(()) }
    }

    /// The trees.
    pub fn trees(&self) -> &Arc<TreeStore> {
        &self.trees
    }

    /// The storage.
    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.storage
    }

    /// The wall clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    fn check_depth(&self, tree: &TreeRef) -> Result<(), AeError> {
        match self.trees.depth() {
            d if d == tree.depth => Ok(()),
            ours => Err(AeError::DepthMismatch { ours, theirs: tree.depth }),
        }
    }

    fn summary(&self, tree: &TreeRef) -> Option<TreeSummary> {
        self.trees.with_tree(&tree.keyspace, tree.range, |b| TreeSummary {
            root: b.tree.root(),
            records: b.tree.records(),
            bytes: b.tree.bytes(),
            built_at_ms: b.built_at_ms,
        })
    }

    fn fresh(&self, tree: &TreeRef, max_age: Duration) -> Option<TreeSummary> {
        let s = self.summary(tree)?;
        let age = self.clock.now_ms().saturating_sub(s.built_at_ms);
        (u128::try_from(age).unwrap_or(0) <= max_age.as_millis()).then_some(s)
    }

    /// Builds the tree of `tree` from a full scan, paced by the throttle.
    /// Returns the bytes scanned.
    pub async fn rebuild(&self, tree: &TreeRef) -> Result<u64, AeError> {
        self.trees.begin_rebuild(&tree.keyspace, tree.range);
        // Dropped (cancelled) or failed before the end: abandon the half-built tree.
        let mut unfinished = AbandonOnDrop { trees: &self.trees, tree: Some(tree) };
        let mut scanned = 0;
        loop {
            let (trees, storage, clock, t) =
                (Arc::clone(&self.trees), Arc::clone(&self.storage), Arc::clone(&self.clock), tree.clone());
            let (bytes, done) = tokio::task::spawn_blocking(move || {
                trees.rebuild_page(storage.as_ref(), &t.keyspace, t.range, clock.now_ms())
            })
            .await
            .map_err(|_| AeError::ShuttingDown)??;
            scanned += bytes;
            if done {
                unfinished.tree = None;
                return Ok(scanned);
            }
            self.throttle.pace(bytes).await;
        }
    }

    async fn prepare(&self, tree: &TreeRef, max_age: Duration) -> Result<TreeSummary, AeError> {
        self.check_depth(tree)?;
        if let Some(s) = self.fresh(tree, max_age) {
            return Ok(s);
        }
        let _one_build_at_a_time = self.builds.lock().await;
        if let Some(s) = self.fresh(tree, max_age) {
            return Ok(s);
        }
        let scanned = self.rebuild(tree).await?;
        tracing::debug!(keyspace = %tree.keyspace, start = tree.range.start, end = tree.range.end, scanned, "Merkle tree built");
        self.summary(tree).ok_or(AeError::NoTree { keyspace: tree.keyspace.clone(), range: tree.range })
    }

    fn level(&self, tree: &TreeRef, level: u32, indices: &[u32]) -> Result<Vec<Hash>, AeError> {
        self.check_depth(tree)?;
        self.trees
            .with_tree(&tree.keyspace, tree.range, |b| b.tree.hashes(level, indices))
            .ok_or(AeError::NoTree { keyspace: tree.keyspace.clone(), range: tree.range })
    }

    /// Every local record of the buckets (blocking).
    fn collect_buckets(storage: &dyn Storage, tree: &TreeRef, buckets: &[u32]) -> Result<Vec<KeyedRecord>, AeError> {
        let mut out = Vec::new();
        for &b in buckets {
            let Some((first, last)) = bucket_bounds(tree.range, b, tree.depth) else { continue };
            let segments: Vec<(Token, Token)> =
                if first <= last { vec![(first, last)] } else { vec![(first, Token::MAX), (0, last)] };
            for (lo, hi) in segments {
                let mut after =
                    lo.checked_sub(1).map(|t| ScanPosition { token: t, keyspace: String::new(), key: Bytes::new() });
                loop {
                    let page = storage.scan(after.as_ref(), Some(hi), Some(&tree.keyspace), BUCKET_PAGE)?;
                    let full = page.len() == BUCKET_PAGE;
                    after = page.last().map(|s| ScanPosition {
                        token: s.token,
                        keyspace: s.keyspace.clone(),
                        key: s.key.clone(),
                    });
                    out.extend(page.into_iter().filter(|s| s.token >= lo).map(|s| (s.key, s.record)));
                    if !full {
                        break;
                    }
                }
            }
        }
        Ok(out)
    }

    async fn records(&self, tree: &TreeRef, buckets: Vec<u32>) -> Result<Vec<KeyedRecord>, AeError> {
        self.check_depth(tree)?;
        let (storage, t) = (Arc::clone(&self.storage), tree.clone());
        tokio::task::spawn_blocking(move || Self::collect_buckets(storage.as_ref(), &t, &buckets))
            .await
            .map_err(|_| AeError::ShuttingDown)?
    }

    async fn merge(&self, keyspace: String, records: Vec<KeyedRecord>) -> Result<u32, AeError> {
        let mut merged = 0;
        let mut rest = records.into_iter().peekable();
        while rest.peek().is_some() {
            let chunk: Vec<_> = rest
                .by_ref()
                .take(MERGE_CONCURRENCY)
                .map(|(key, record)| self.merger.merge(keyspace.clone(), key, record))
                .collect();
            for result in futures::future::join_all(chunk).await {
                result.map_err(|source| AeError::Merge { keyspace: keyspace.clone(), source })?;
                merged += 1;
            }
        }
        Ok(merged)
    }
}

/// The in-process implementation: calls go straight to the replica.
impl AntiEntropyPeer for Arc<LocalReplica> {
    fn prepare_tree(&self, tree: &TreeRef, max_age: Duration) -> BoxFuture<'static, Result<TreeSummary, AeError>> {
        let (this, tree) = (Arc::clone(self), tree.clone());
        async move { this.prepare(&tree, max_age).await }.boxed()
    }

    fn tree_level(
        &self,
        tree: &TreeRef,
        level: u32,
        indices: Vec<u32>,
    ) -> BoxFuture<'static, Result<Vec<Hash>, AeError>> {
        let result = self.level(tree, level, &indices);
        async move { result }.boxed()
    }

    fn bucket_records(
        &self,
        tree: &TreeRef,
        buckets: Vec<u32>,
    ) -> BoxFuture<'static, Result<Vec<KeyedRecord>, AeError>> {
        let (this, tree) = (Arc::clone(self), tree.clone());
        async move { this.records(&tree, buckets).await }.boxed()
    }

    fn merge_records(&self, keyspace: &str, records: Vec<KeyedRecord>) -> BoxFuture<'static, Result<u32, AeError>> {
        let (this, keyspace) = (Arc::clone(self), keyspace.to_owned());
        async move { this.merge(keyspace, records).await }.boxed()
    }
}

/// Abandons the rebuild of `tree` when dropped, unless `tree` was cleared.
struct AbandonOnDrop<'a> {
    trees: &'a TreeStore,
    tree: Option<&'a TreeRef>,
}

impl Drop for AbandonOnDrop<'_> {
    fn drop(&mut self) {
        if let Some(tree) = self.tree {
            self.trees.abandon_rebuild(&tree.keyspace, tree.range);
        }
    }
}
