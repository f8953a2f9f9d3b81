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
use crate::transport::Peer;
use crate::version::Record;

use super::placement::Plan;
use super::read_policy::{ReadAnswer, ReadNext, ReadPolicy, ReadTarget};
use super::read_repair::{Answer, ReadRepair, Repair};
use super::write_path::quorum_error;
use super::{Access, Consistency, ConsistencyLevel, Coordinator, Keyspace, ReadResult};

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

    /// The merged record of `(ks, key)` at `consistency`, repairing stale
    /// replicas. The decisions are [`ReadPolicy`]'s; this shell asks and collects.
    pub(super) async fn read_record(
        &self,
        ks: &Arc<Keyspace>,
        key: Bytes,
        consistency: Consistency,
    ) -> Result<Option<Record>, KvError> {
        let plan = self.inner.plan(ks, &key);
        let groups = self.inner.quorum_groups(ks, &plan, consistency, Access::Read)?;
        let blocking = self.inner.blocking_repair(ks, &groups);
        let mut policy = ReadPolicy::new(groups, blocking, ks.conflict_mode);
        let targets: Vec<ReadTarget> = plan
            .replicas
            .iter()
            .map(|r| ReadTarget {
                host: r.host_id.clone(),
                alive: self.inner.view.is_alive(&r.host_id),
                serves_reads: r.serves_reads(),
            })
            .collect();
        let (ask, mut next) = policy.start(&targets);
        let mut pending = self.ask(ks, &key, &plan, ask);
        let timeout = self.inner.limits.request_timeout;
        let deadline = tokio::time::Instant::now() + timeout;
        let answer = loop {
            next = match next {
                ReadNext::Answer(answer) => break answer,
                ReadNext::Fail(f) => {
                    self.inner.metrics.quorum_failures.with_label_values(&["read"]).inc();
                    return Err(quorum_error(f));
                }
                ReadNext::Wait => match tokio::time::timeout_at(deadline, pending.next()).await {
                    Err(_) => return Err(KvError::Timeout { ms: timeout.as_millis() as u64 }),
                    Ok(Some((host, answer))) => policy.on_answer(&host, answer),
                    Ok(None) => policy.on_all_answered(),
                },
            };
        };
        let ReadAnswer { merged, stale, blocking, required, answered } = answer;
        let stale_count = stale.len();
        let repair = Repair::new(self, ks, &key);
        let repairs = repair.send(&merged, stale);
        if blocking && stale_count > 0 {
            // Monotonic reads: what this read returns must sit on as many replicas as
            // the read needed, or a later read at the same level could miss it.
            let repaired = tokio::time::timeout_at(deadline, futures::future::join_all(repairs))
                .await
                .map(|done| done.into_iter().filter(|ok| *ok).count())
                .unwrap_or(0);
            if let Err(e) = ReadRepair::check_held(answered, stale_count, repaired, required) {
                self.inner.metrics.quorum_failures.with_label_values(&["read"]).inc();
                return Err(e);
            }
        } else {
            tokio::spawn(futures::future::join_all(repairs));
        }
        if !pending.is_empty() {
            tokio::spawn(repair.late(merged.clone(), pending));
        }
        Ok(merged)
    }

    /// Asks each of `hosts` for its copy: this node's on the storage pool, the others over the transport.
    fn ask(
        &self,
        ks: &Arc<Keyspace>,
        key: &Bytes,
        plan: &Plan,
        hosts: Vec<String>,
    ) -> FuturesUnordered<BoxFuture<'static, Answer>> {
        let local = self.inner.view.local_host_id().to_owned();
        let pending: FuturesUnordered<BoxFuture<'static, Answer>> = FuturesUnordered::new();
        for host in hosts {
            if host == local {
                let (ks2, key2, read) = (Arc::clone(ks), key.clone(), self.clone());
                pending.push(
                    async move {
                        let r = read.read_local(&ks2, key2).await;
                        (host, r.map_err(|e| e.to_string()))
                    }
                    .boxed(),
                );
            } else if let Some(replica) = plan.replicas.iter().find(|r| r.host_id == host) {
                let call = self.inner.transport.read(&Peer::from(replica), &ks.name, key);
                pending.push(call.map(move |r| (host, r.map_err(|e| e.to_string()))).boxed());
            }
        }
        pending
    }
}
