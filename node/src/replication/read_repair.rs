//! Read repair: the replicas whose copy differs from what a read returns get
//! the merged record.
//!
//! [`ReadRepair`] holds the pure rules: the merge of the copies, which
//! replicas are stale, whether a blocking repair left the answer on enough
//! replicas, and what the answers that came after the decision need. The
//! shell ([`Repair`]) writes the record to those replicas.

use std::sync::Arc;

use bytes::Bytes;
use futures::FutureExt;
use futures::future::BoxFuture;
use futures::stream::{FuturesUnordered, StreamExt};

use crate::error::KvError;
use crate::transport::{Peer, ReplicaWrite};
use crate::version::{ConflictMode, Record};

use super::{Coordinator, Keyspace};

/// A replica's answer to a read: its host id and its copy, or why it failed.
pub(super) type Answer = (String, Result<Option<Record>, String>);

/// The read-repair rules (pure).
#[derive(Debug, Clone, Copy)]
pub(super) struct ReadRepair;

impl ReadRepair {
    /// The merge of every copy (`None` when no replica has the key).
    pub(super) fn merge<'a>(mode: ConflictMode, records: impl Iterator<Item = &'a Option<Record>>) -> Option<Record> {
        let mut merged: Option<Record> = None;
        for r in records.flatten() {
            match &mut merged {
                None => merged = Some(r.clone()),
                Some(m) => m.merge(r, mode),
            }
        }
        merged
    }

    /// The replicas whose copy differs from `merged` (none when nothing was found).
    pub(super) fn stale(merged: &Option<Record>, answers: &[(String, Option<Record>)]) -> Vec<String> {
        let Some(merged) = merged else { return Vec::new() };
        answers.iter().filter(|(_, r)| r.as_ref() != Some(merged)).map(|(host, _)| host.clone()).collect()
    }

    /// After a blocking repair that reached `repaired` of `stale` replicas:
    /// `Ok` when the answer now sits on at least `required` of the `answered`
    /// replicas, so that a later read at the same level cannot see less.
    pub(super) fn check_held(answered: usize, stale: usize, repaired: usize, required: u32) -> Result<(), KvError> {
        let holding = answered.saturating_sub(stale) + repaired;
        if holding < required as usize {
            return Err(KvError::QuorumNotReached {
                required,
                acked: holding as u32,
                failures: format!("read repair reached {repaired} of {stale} stale replicas before the deadline"),
            });
        }
        Ok(())
    }

    /// For the answers that came after the decision: the merge of them with
    /// what the read returned, and the late replicas that differ from it.
    pub(super) fn late(
        mode: ConflictMode,
        returned: Option<Record>,
        late: &[(String, Option<Record>)],
    ) -> (Option<Record>, Vec<String>) {
        let returned = [returned];
        let all = Self::merge(mode, returned.iter().chain(late.iter().map(|(_, r)| r)));
        let stale = Self::stale(&all, late);
        (all, stale)
    }
}

/// The read-repair shell of one key: writes the merged record to stale replicas.
#[derive(Debug, Clone)]
pub(super) struct Repair {
    coordinator: Coordinator,
    ks: Arc<Keyspace>,
    key: Bytes,
}

impl Repair {
    /// The repairs of `(ks, key)` coordinated by `coordinator`.
    pub(super) fn new(coordinator: &Coordinator, ks: &Arc<Keyspace>, key: &Bytes) -> Self {
        Self { coordinator: coordinator.clone(), ks: Arc::clone(ks), key: key.clone() }
    }

    /// Futures writing `record` to each of `hosts`; each is true when durable there.
    pub(super) fn send(&self, record: &Option<Record>, hosts: Vec<String>) -> Vec<BoxFuture<'static, bool>> {
        let Some(record) = record else { return Vec::new() };
        hosts.into_iter().map(|host| self.clone().one(record.clone(), host).boxed()).collect()
    }

    /// Sends `record` to `host`'s copy; true when it is durable there.
    async fn one(self, record: Record, host: String) -> bool {
        let inner = &self.coordinator.inner;
        inner.metrics.read_repairs.inc();
        let result = if host == inner.view.local_host_id() {
            let (ks, key) = (Arc::clone(&self.ks), self.key.clone());
            match self.coordinator.point_write(move |inner| inner.merge_local(&ks, key, &record)).await {
                Ok(ticket) => ticket.wait().await.map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            }
        } else if let Some(member) = inner.view.member(&host) {
            let write = ReplicaWrite { keyspace: self.ks.name.clone(), key: self.key.clone(), record, hint_for: None };
            inner.transport.write(&Peer::from(&member), write).await.map_err(|e| e.to_string())
        } else {
            Ok(())
        };
        if let Err(e) = &result {
            tracing::debug!(replica = %host, error = %e, "read repair failed; anti-entropy or a later read will retry");
        }
        result.is_ok()
    }

    /// Waits for the answers that came after the decision and repairs them.
    pub(super) async fn late(
        self,
        returned: Option<Record>,
        mut pending: FuturesUnordered<BoxFuture<'static, Answer>>,
    ) {
        let mut late = Vec::new();
        while let Some((host, answer)) = pending.next().await {
            if let Ok(record) = answer {
                late.push((host, record));
            }
        }
        let (all, stale) = ReadRepair::late(self.ks.conflict_mode, returned, &late);
        futures::future::join_all(self.send(&all, stale)).await;
    }
}

#[cfg(test)]
#[path = "read_repair_tests.rs"]
mod tests;
