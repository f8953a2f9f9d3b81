//! The replica side: what this node does when a peer calls it.

use std::sync::Arc;

use bytes::Bytes;
use futures::FutureExt;
use futures::future::BoxFuture;

use crate::error::KvError;
use crate::transport::{
    CoordinateCall, CoordinateReply, HintedWrite, PageItem, PageQuery, ReplicaHandler, ReplicaWrite,
};
use crate::version::Record;

use super::Coordinator;

impl Coordinator {
    /// Merges `record` into the local copy (or stores it as a hint) and waits until durable.
    pub async fn apply_replica_write(&self, write: ReplicaWrite) -> Result<(), KvError> {
        let ks = self.inner.keyspaces.get(&write.keyspace)?;
        let ticket = match write.hint_for {
            Some(target) => {
                let hinted = HintedWrite {
                    keyspace: ks.name.clone(),
                    key: write.key,
                    record: write.record,
                    created_at_ms: self.inner.clock.now_ms(),
                };
                self.point_write(move |inner| Ok(inner.hints.store(&target, &hinted)?)).await?
            }
            None => {
                let (key, record) = (write.key, write.record);
                self.point_write(move |inner| inner.merge_local(&ks, key, &record)).await?
            }
        };
        self.durable(ticket).await
    }

    /// Merges many records of `keyspace` into the local copies in one
    /// storage batch and waits until it is durable (streaming, hint replay).
    pub async fn apply_replica_writes(&self, keyspace: &str, items: Vec<(Bytes, Record)>) -> Result<(), KvError> {
        if items.is_empty() {
            return Ok(());
        }
        let ks = self.inner.keyspaces.get(keyspace)?;
        let ticket = self.blocking(move |inner| inner.merge_local_many(&ks, items)).await?;
        self.durable(ticket).await
    }
}

impl ReplicaHandler for Coordinator {
    fn handle_read(&self, keyspace: String, key: Bytes) -> BoxFuture<'static, Result<Option<Record>, KvError>> {
        let this = self.clone();
        async move {
            let ks = this.inner.keyspaces.get(&keyspace)?;
            this.read_local(&ks, key).await
        }
        .boxed()
    }

    fn handle_write(&self, write: ReplicaWrite) -> BoxFuture<'static, Result<(), KvError>> {
        let this = self.clone();
        async move { this.apply_replica_write(write).await }.boxed()
    }

    fn handle_hints(&self, hints: Vec<HintedWrite>) -> BoxFuture<'static, Result<u32, KvError>> {
        let this = self.clone();
        async move {
            let applied = hints.len() as u32;
            let mut by_keyspace: std::collections::BTreeMap<String, Vec<(Bytes, Record)>> = Default::default();
            for h in hints {
                by_keyspace.entry(h.keyspace).or_default().push((h.key, h.record));
            }
            for (keyspace, items) in by_keyspace {
                this.apply_replica_writes(&keyspace, items).await?;
            }
            Ok(applied)
        }
        .boxed()
    }

    fn handle_coordinate(&self, call: CoordinateCall) -> BoxFuture<'static, Result<CoordinateReply, KvError>> {
        let this = self.clone();
        async move { this.mutate_routed(&call.keyspace, call.key, call.mutation, call.consistency, true).await }.boxed()
    }

    fn handle_page(&self, query: PageQuery) -> BoxFuture<'static, Result<Vec<PageItem>, KvError>> {
        let this = self.clone();
        async move { this.local_page(query).await }.boxed()
    }
}

/// The coordinator as the handler of peer calls.
pub fn handler(coordinator: &Coordinator) -> Arc<dyn ReplicaHandler> {
    Arc::new(coordinator.clone())
}
