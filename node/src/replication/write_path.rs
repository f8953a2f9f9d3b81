//! The replicated write path.
//!
//! 1. A replica of the key coordinates: the local node when it is one (or,
//!    for CAS and increments, the first alive replica, so that conditional
//!    writes of one key serialise on one node); otherwise the write is
//!    forwarded to a replica, which mints the dot (dotted version vectors need
//!    the coordinator to be a replica).
//! 2. The coordinator applies the mutation locally, then sends the new record
//!    to the other replicas in parallel; each merges it and acknowledges once
//!    durable. The client gets its answer as soon as the [`QuorumTracker`]
//!    decides; the remaining writes finish in the background.
//! 3. A replica that is down or fails gets a hint: the record goes to the next
//!    alive stand-in on the ring, which stores it durably for the owner (or,
//!    when no stand-in takes it, to the coordinator's own hint store). With
//!    `sloppy = true` (or level ANY) a stored hint counts toward W.

use std::sync::Arc;

use bytes::Bytes;
use futures::FutureExt;
use futures::future::BoxFuture;
use futures::stream::{FuturesUnordered, StreamExt};
use tokio::sync::oneshot;

use crate::error::KvError;
use crate::membership::Member;
use crate::storage::DurableTicket;
use crate::transport::{CoordinateCall, CoordinateReply, HintedWrite, Peer, ReplicaWrite, TransportError};
use crate::version::Record;

use super::placement::Plan;
use super::{
    Access, Consistency, ConsistencyLevel, Coordinator, Keyspace, Mutation, QuorumFailure, QuorumOutcome, QuorumTracker,
};

/// What one background step of the fan-out reported.
enum Event {
    /// A replica's direct write finished.
    Direct(String, Result<(), String>),
    /// A hint for a replica finished; `counts` when it may count toward W.
    Hinted(String, Result<bool, String>),
}

impl Coordinator {
    /// Coordinates a write: validation, routing to a replica, replication.
    pub async fn mutate(
        &self,
        keyspace: &str,
        key: Bytes,
        m: Mutation,
        consistency: Consistency,
    ) -> Result<CoordinateReply, KvError> {
        self.mutate_routed(keyspace, key, m, consistency, false).await
    }

    /// As [`Coordinator::mutate`]; `forwarded` writes are coordinated here whatever the ring says.
    pub(super) async fn mutate_routed(
        &self,
        keyspace: &str,
        key: Bytes,
        m: Mutation,
        consistency: Consistency,
        forwarded: bool,
    ) -> Result<CoordinateReply, KvError> {
        let started = std::time::Instant::now();
        let ks = self.admit(keyspace, &key, Access::Write)?;
        self.inner.check_mutation(&ks, &m)?;
        let plan = self.inner.plan(&ks, &key);
        let groups = self.inner.quorum_groups(&ks, &plan, consistency, Access::Write)?;
        let local = self.inner.view.local_host_id().to_owned();
        let serialised = matches!(m, Mutation::Cas { .. } | Mutation::Increment { .. });
        let first_alive =
            plan.replicas.iter().find(|r| r.serves_reads() && self.inner.view.is_alive(&r.host_id)).cloned();
        let coordinator = match (serialised, plan.has(&local), first_alive) {
            (true, _, Some(first)) => first.host_id.clone(),
            (false, true, _) => local.clone(),
            (_, _, Some(first)) => first.host_id.clone(),
            (_, _, None) => local.clone(),
        };
        let level = consistency.level.map_or("default", ConsistencyLevel::name);
        let result = if coordinator != local && !forwarded {
            self.forward(
                &plan,
                &coordinator,
                CoordinateCall { keyspace: ks.name.clone(), key, mutation: m, consistency },
            )
            .await
        } else {
            let any = consistency.level == Some(ConsistencyLevel::Any);
            self.coordinate(ks, key, m, plan, QuorumTracker::new(groups), any).await
        };
        self.inner.metrics.observe("write", level, result.as_ref().err(), started.elapsed());
        result
    }

    /// Sends the write to a replica to coordinate, trying alive replicas in order.
    async fn forward(&self, plan: &Plan, first: &str, call: CoordinateCall) -> Result<CoordinateReply, KvError> {
        let mut order: Vec<&Arc<Member>> =
            plan.replicas.iter().filter(|r| r.serves_reads() && self.inner.view.is_alive(&r.host_id)).collect();
        order.sort_by_key(|r| r.host_id != first);
        let mut last = None;
        for replica in order {
            self.inner.metrics.forwarded.inc();
            match self.inner.transport.coordinate(&Peer::from(replica), call.clone()).await {
                Ok(reply) => return Ok(reply),
                Err(TransportError::Remote { peer, code, rkv_code, message }) => {
                    return Err(KvError::Remote { peer, code, rkv_code, message });
                }
                // The replica may have applied the write: the outcome is unknown, and
                // retrying elsewhere could apply it twice.
                Err(TransportError::Timeout { timeout, .. }) => {
                    return Err(KvError::Timeout { ms: timeout.as_millis() as u64 });
                }
                Err(e) => last = Some(e),
            }
        }
        tracing::warn!(error = ?last, "no replica of the key could be reached to coordinate a forwarded write");
        Err(KvError::Unavailable { required: 1, alive: 0 })
    }

    /// Applies the mutation here and replicates the new record.
    async fn coordinate(
        &self,
        ks: Arc<Keyspace>,
        key: Bytes,
        m: Mutation,
        plan: Plan,
        tracker: QuorumTracker<String>,
        any: bool,
    ) -> Result<CoordinateReply, KvError> {
        let (ks2, key2) = (Arc::clone(&ks), key.clone());
        let applied = self.point_write(move |inner| inner.apply_mutation(&ks2, key2, &m)).await?;
        let Some(record) = applied.record else { return Ok(applied.reply) };
        let (decided_tx, decided_rx) = oneshot::channel();
        let fan_out = self.clone().fan_out(ks, key, record, applied.ticket, plan, tracker, any, decided_tx);
        tokio::spawn(fan_out);
        let timeout = self.inner.limits.request_timeout;
        match tokio::time::timeout(timeout, decided_rx).await {
            Ok(Ok(Ok(()))) => Ok(applied.reply),
            Ok(Ok(Err(f))) => {
                self.inner.metrics.quorum_failures.with_label_values(&["write"]).inc();
                Err(quorum_error(f))
            }
            Ok(Err(_)) => Err(KvError::ShuttingDown),
            Err(_) => Err(KvError::Timeout { ms: timeout.as_millis() as u64 }),
        }
    }

    /// Replicates `record` and reports the quorum decision on `decided`; keeps
    /// going after the decision until every replica has it or a hint.
    #[allow(clippy::too_many_arguments)]
    async fn fan_out(
        self,
        ks: Arc<Keyspace>,
        key: Bytes,
        record: Record,
        local_ticket: DurableTicket,
        plan: Plan,
        mut tracker: QuorumTracker<String>,
        any: bool,
        decided: oneshot::Sender<Result<(), QuorumFailure>>,
    ) {
        let local = self.inner.view.local_host_id().to_owned();
        let count_hints = any || self.inner.settings.sloppy;
        let mut decided = Some(decided);
        let mut events: FuturesUnordered<BoxFuture<'static, Event>> = FuturesUnordered::new();
        let mut stand_ins = plan.stand_ins.clone().into_iter();
        let mut hint = |this: &Self, target: &Member, events: &mut FuturesUnordered<BoxFuture<'static, Event>>| {
            let via = stand_ins.next();
            events
                .push(this.clone().hint(ks.clone(), key.clone(), record.clone(), target.host_id.clone(), via).boxed());
        };
        let local_durable = async move { local_ticket.wait().await.map_err(|e| e.to_string()) };
        if plan.has(&local) {
            let host = local.clone();
            events.push(local_durable.map(move |r| Event::Direct(host, r)).boxed());
        } else {
            // A forwarded write on a node outside the replica set: its copy does not count.
            tokio::spawn(local_durable);
        }
        for replica in plan.write_targets().filter(|r| r.host_id != local) {
            if !self.inner.view.is_alive(&replica.host_id) {
                if !count_hints {
                    tracker.fail(&replica.host_id, "down");
                }
                hint(&self, replica, &mut events);
                continue;
            }
            let write =
                ReplicaWrite { keyspace: ks.name.clone(), key: key.clone(), record: record.clone(), hint_for: None };
            let call = self.inner.transport.write(&Peer::from(replica), write);
            let host = replica.host_id.clone();
            events.push(call.map(move |r| Event::Direct(host, r.map_err(|e| e.to_string()))).boxed());
        }
        report(&mut decided, tracker.outcome());
        while let Some(event) = events.next().await {
            let outcome = match event {
                Event::Direct(host, Ok(())) => tracker.ack(&host),
                Event::Direct(host, Err(why)) => {
                    tracing::debug!(replica = %host, error = %why, "replica write failed; hinting");
                    if let Some(target) = plan.write_targets().find(|r| r.host_id == host) {
                        hint(&self, target, &mut events);
                    }
                    if count_hints { tracker.outcome() } else { tracker.fail(&host, why) }
                }
                Event::Hinted(host, Ok(true)) if count_hints => tracker.ack(&host),
                Event::Hinted(host, Err(why)) if count_hints => tracker.fail(&host, why),
                Event::Hinted(..) => tracker.outcome(),
            };
            report(&mut decided, outcome);
        }
        if decided.is_some() {
            let failure = QuorumFailure {
                group: "replicas".into(),
                required: 0,
                acked: tracker.acked(),
                failed: 0,
                failures: "undecided after every replica answered".into(),
            };
            report(&mut decided, QuorumOutcome::Failed(failure));
        }
    }

    /// Stores a hint for `target`: on the stand-in `via` when there is one and
    /// it answers, else in this node's own hint store. `Ok(true)` once the hint
    /// is durable somewhere (it may then count toward W under sloppy quorum or ANY).
    async fn hint(
        self,
        ks: Arc<Keyspace>,
        key: Bytes,
        record: Record,
        target: String,
        via: Option<Arc<Member>>,
    ) -> Event {
        let local = self.inner.view.local_host_id().to_owned();
        if let Some(stand_in) = via.filter(|s| s.host_id != local) {
            let write = ReplicaWrite {
                keyspace: ks.name.clone(),
                key: key.clone(),
                record: record.clone(),
                hint_for: Some(target.clone()),
            };
            match self.inner.transport.write(&Peer::from(&stand_in), write).await {
                Ok(()) => return Event::Hinted(target, Ok(true)),
                Err(e) => {
                    tracing::debug!(stand_in = %stand_in.host_id, error = %e, "stand-in refused the hint; keeping it here")
                }
            }
        }
        let hinted = HintedWrite { keyspace: ks.name.clone(), key, record, created_at_ms: self.inner.clock.now_ms() };
        let target2 = target.clone();
        let stored = self.point_write(move |inner| Ok(inner.hints.store(&target2, &hinted)?)).await;
        let result = match stored {
            Ok(ticket) => ticket.wait().await.map(|()| true).map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        if let Err(e) = &result {
            tracing::error!(target = %target, error = %e, "could not store a hint; the replica will need repair");
        }
        Event::Hinted(target, result)
    }
}

fn report(decided: &mut Option<oneshot::Sender<Result<(), QuorumFailure>>>, outcome: QuorumOutcome) {
    let result = match outcome {
        QuorumOutcome::Pending => return,
        QuorumOutcome::Reached => Ok(()),
        QuorumOutcome::Failed(f) => Err(f),
    };
    if let Some(tx) = decided.take() {
        // The client may have timed out and gone; the write still completes.
        let _ = tx.send(result);
    }
}

pub(super) fn quorum_error(f: QuorumFailure) -> KvError {
    KvError::QuorumNotReached { required: f.required, acked: f.acked, failures: f.to_string() }
}
