//! The replicated read path with read repair.
//!
//! The coordinator asks every alive replica of the key in parallel (the local
//! copy on the blocking pool), answers once the quorum groups of the level are
//! satisfied, and returns the merge of what it got: all concurrent siblings
//! plus a context covering them. Replicas whose copy differs from the merge
//! are repaired: before answering at QUORUM and stronger, in the background
//! below. A blocking repair must leave the returned value on as many replicas
//! as the read required, or the read fails: a later read at the same level can
//! then never see less than this one did. Answers that
//! arrive after the decision are compared and repaired in the background too.

use std::sync::Arc;

use bytes::Bytes;
use futures::FutureExt;
use futures::future::BoxFuture;
use futures::stream::{FuturesUnordered, StreamExt};

use crate::error::KvError;
use crate::transport::{Peer, ReplicaWrite};
use crate::version::Record;

use super::write_path::quorum_error;
use super::{Access, Consistency, ConsistencyLevel, Coordinator, Keyspace, QuorumOutcome, QuorumTracker, ReadResult};

type Answer = (String, Result<Option<Record>, String>);

impl Coordinator {
    /// Reads one key.
    pub async fn get(&self, keyspace: &str, key: Bytes, consistency: Consistency) -> Result<ReadResult, KvError> {
        let started = std::time::Instant::now();
        let ks = self.admit(keyspace, &key, Access::Read)?;
        let result = self.read_record(&ks, key, consistency).await;
        let level = consistency.level.map_or("default", ConsistencyLevel::name);
        self.inner.metrics.observe("read", level, result.as_ref().err(), started.elapsed());
        Ok(ReadResult::from_record(result?.as_ref(), self.inner.clock.now_ms()))
    }

    /// The merged record of `(ks, key)` at `consistency`, repairing stale replicas.
    pub(super) async fn read_record(
        &self,
        ks: &Arc<Keyspace>,
        key: Bytes,
        consistency: Consistency,
    ) -> Result<Option<Record>, KvError> {
        let plan = self.inner.plan(ks, &key);
        let groups = self.inner.quorum_groups(ks, &plan, consistency, Access::Read)?;
        let blocking_repair = self.inner.blocking_repair(ks, &groups);
        let required: u32 = groups.iter().map(|g| g.required).sum();
        let mut tracker = QuorumTracker::new(groups);
        let local = self.inner.view.local_host_id().to_owned();
        let mut pending: FuturesUnordered<BoxFuture<'static, Answer>> = FuturesUnordered::new();
        for replica in &plan.replicas {
            let host = replica.host_id.clone();
            if !self.inner.view.is_alive(&host) {
                tracker.fail(&host, "down");
                continue;
            }
            if !replica.serves_reads() {
                tracker.fail(&host, "still streaming its ranges in");
                continue;
            }
            if host == local {
                let (ks2, key2) = (Arc::clone(ks), key.clone());
                let read = self.clone();
                pending.push(
                    async move {
                        let r = read.read_local(&ks2, key2).await;
                        (host, r.map_err(|e| e.to_string()))
                    }
                    .boxed(),
                );
            } else {
                let call = self.inner.transport.read(&Peer::from(replica), &ks.name, &key);
                pending.push(call.map(move |r| (host, r.map_err(|e| e.to_string()))).boxed());
            }
        }
        let mut answers: Vec<(String, Option<Record>)> = Vec::new();
        let timeout = self.inner.limits.request_timeout;
        let deadline = tokio::time::Instant::now() + timeout;
        let mut outcome = tracker.outcome();
        while outcome == QuorumOutcome::Pending {
            let next = tokio::time::timeout_at(deadline, pending.next()).await;
            let Ok(Some((host, answer))) = next else {
                if next.is_err() {
                    return Err(KvError::Timeout { ms: timeout.as_millis() as u64 });
                }
                break;
            };
            outcome = match answer {
                Ok(record) => {
                    answers.push((host.clone(), record));
                    tracker.ack(&host)
                }
                Err(why) => tracker.fail(&host, why),
            };
        }
        if let QuorumOutcome::Failed(f) = outcome {
            self.inner.metrics.quorum_failures.with_label_values(&["read"]).inc();
            return Err(quorum_error(f));
        }
        let merged = merge_all(ks, answers.iter().map(|(_, r)| r));
        let repairs = self.repairs(ks, &key, &merged, &answers);
        let stale = repairs.len();
        if blocking_repair && stale > 0 {
            // Monotonic reads: what this read returns must sit on as many replicas as
            // the read needed, or a later read at the same level could miss it.
            let repaired = tokio::time::timeout_at(deadline, futures::future::join_all(repairs))
                .await
                .map(|done| done.into_iter().filter(|ok| *ok).count())
                .unwrap_or(0);
            let holding = answers.len() - stale + repaired;
            if holding < required as usize {
                self.inner.metrics.quorum_failures.with_label_values(&["read"]).inc();
                return Err(KvError::QuorumNotReached {
                    required,
                    acked: holding as u32,
                    failures: format!("read repair reached {repaired} of {stale} stale replicas before the deadline"),
                });
            }
        } else {
            tokio::spawn(futures::future::join_all(repairs));
        }
        if !pending.is_empty() {
            tokio::spawn(self.clone().repair_late(Arc::clone(ks), key, merged.clone(), pending));
        }
        Ok(merged)
    }

    /// Repair futures for every answer that differs from `merged`.
    fn repairs(
        &self,
        ks: &Arc<Keyspace>,
        key: &Bytes,
        merged: &Option<Record>,
        answers: &[(String, Option<Record>)],
    ) -> Vec<BoxFuture<'static, bool>> {
        let Some(merged) = merged else { return Vec::new() };
        answers
            .iter()
            .filter(|(_, r)| r.as_ref() != Some(merged))
            .map(|(host, _)| self.clone().repair_one(Arc::clone(ks), key.clone(), merged.clone(), host.clone()).boxed())
            .collect()
    }

    /// Sends `record` to `host`'s copy; true when it is durable there.
    async fn repair_one(self, ks: Arc<Keyspace>, key: Bytes, record: Record, host: String) -> bool {
        self.inner.metrics.read_repairs.inc();
        let result = if host == self.inner.view.local_host_id() {
            let ks2 = Arc::clone(&ks);
            match self.point_write(move |inner| inner.merge_local(&ks2, key, &record)).await {
                Ok(ticket) => ticket.wait().await.map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            }
        } else if let Some(member) = self.inner.view.member(&host) {
            let write = ReplicaWrite { keyspace: ks.name.clone(), key, record, hint_for: None };
            self.inner.transport.write(&Peer::from(&member), write).await.map_err(|e| e.to_string())
        } else {
            Ok(())
        };
        if let Err(e) = &result {
            tracing::debug!(replica = %host, error = %e, "read repair failed; anti-entropy or a later read will retry");
        }
        result.is_ok()
    }

    /// Waits for the answers that came after the decision and repairs them.
    async fn repair_late(
        self,
        ks: Arc<Keyspace>,
        key: Bytes,
        merged: Option<Record>,
        mut pending: FuturesUnordered<BoxFuture<'static, Answer>>,
    ) {
        let mut late = Vec::new();
        while let Some((host, answer)) = pending.next().await {
            if let Ok(record) = answer {
                late.push((host, record));
            }
        }
        let all = merge_all(
            &ks,
            merged.iter().map(|r| Some(r.clone())).collect::<Vec<_>>().iter().chain(late.iter().map(|(_, r)| r)),
        );
        futures::future::join_all(self.repairs(&ks, &key, &all, &late)).await;
    }
}

fn merge_all<'a>(ks: &Keyspace, records: impl Iterator<Item = &'a Option<Record>>) -> Option<Record> {
    let mut merged: Option<Record> = None;
    for r in records.flatten() {
        match &mut merged {
            None => merged = Some(r.clone()),
            Some(m) => m.merge(r, ks.conflict_mode),
        }
    }
    merged
}
