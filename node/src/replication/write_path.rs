//! The replicated write path.
//!
//! 1. A replica of the key coordinates: the local node when it is one (or,
//!    for CAS, increments and put-if-absent, the first alive replica, so that
//!    conditional writes of one key serialise on one node under its key lock);
//!    otherwise the write is
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
use crate::transport::{CoordinateCall, CoordinateReply, Peer, ReplicaWrite, TransportError};
use crate::version::Record;

use super::handoff::{HintFor, HintPolicy, store_hint};
use super::placement::Plan;
use super::write_policy::{Action, Next, WritePolicy, WriteReply};
use super::{Access, Consistency, ConsistencyLevel, Coordinator, Keyspace, Mutation, QuorumFailure, QuorumTracker};

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
        let serialised = m.is_conditional();
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
        let stand_ins = plan.stand_ins.iter().map(|m| m.host_id.clone()).collect();
        let hints = HintPolicy::new(stand_ins, self.inner.settings.sloppy, any);
        let policy = WritePolicy::new(tracker, hints, plan.write_targets().map(|m| m.host_id.clone()).collect());
        let fan_out = FanOut { coordinator: self.clone(), ks, key, record, plan };
        tokio::spawn(fan_out.run(applied.ticket, policy, decided_tx));
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
}

/// The replication of one record this node applied: the thin async shell
/// of [`WritePolicy`] (sends, collects, asks the policy, reports its decision).
struct FanOut {
    coordinator: Coordinator,
    ks: Arc<Keyspace>,
    key: Bytes,
    record: Record,
    plan: Plan,
}

impl FanOut {
    /// Replicates the record and reports the quorum decision on `decided`;
    /// keeps going after the decision until every target has it or a hint.
    async fn run(self, local_ticket: DurableTicket, mut policy: WritePolicy, decided: Decided) {
        let view = Arc::clone(&self.coordinator.inner.view);
        let local = view.local_host_id().to_owned();
        let mut decided = Some(decided);
        let mut events: FuturesUnordered<BoxFuture<'static, WriteReply>> = FuturesUnordered::new();
        let local_durable = async move { local_ticket.wait().await.map_err(|e| e.to_string()) };
        if self.plan.has(&local) {
            let host = local.clone();
            events.push(local_durable.map(move |result| WriteReply::Direct { host, result }).boxed());
        } else {
            // A forwarded write on a node outside the replica set: its copy does not count.
            tokio::spawn(local_durable);
        }
        let step = policy.start(&local, &|h| view.is_alive(h));
        self.start_calls(step.actions, &mut events);
        report(&mut decided, step.next);
        while let Some(reply) = events.next().await {
            if let WriteReply::Direct { host, result: Err(why) } = &reply {
                tracing::debug!(replica = %host, error = %why, "replica write failed; hinting");
            }
            let step = policy.on_reply(reply);
            self.start_calls(step.actions, &mut events);
            report(&mut decided, step.next);
        }
        report(&mut decided, policy.on_all_replied());
    }

    /// Starts the calls `actions` ask for.
    fn start_calls(&self, actions: Vec<Action>, events: &mut FuturesUnordered<BoxFuture<'static, WriteReply>>) {
        for action in actions {
            match action {
                Action::Send(host) => {
                    let Some(replica) = self.plan.write_targets().find(|m| m.host_id == host) else { continue };
                    let write = ReplicaWrite {
                        keyspace: self.ks.name.clone(),
                        key: self.key.clone(),
                        record: self.record.clone(),
                        hint_for: None,
                    };
                    let call = self.coordinator.inner.transport.write(&Peer::from(replica), write);
                    events.push(
                        call.map(move |r| WriteReply::Direct { host, result: r.map_err(|e| e.to_string()) }).boxed(),
                    );
                }
                Action::Hint(HintFor { target, via }) => {
                    let via = via.and_then(|v| self.plan.stand_ins.iter().find(|m| m.host_id == v).cloned());
                    let (ks, key, record) = (Arc::clone(&self.ks), self.key.clone(), self.record.clone());
                    let host = target.clone();
                    let hint = store_hint(self.coordinator.clone(), ks, key, record, target, via);
                    events.push(hint.map(move |result| WriteReply::Hinted { host, result }).boxed());
                }
            }
        }
    }
}

/// Where the client's answer goes.
type Decided = oneshot::Sender<Result<(), QuorumFailure>>;

fn report(decided: &mut Option<Decided>, next: Next) {
    let result = match next {
        Next::Wait => return,
        Next::Ack => Ok(()),
        Next::Fail(f) => Err(f),
    };
    if let Some(tx) = decided.take() {
        // The client may have timed out and gone; the write still completes.
        let _ = tx.send(result);
    }
}

pub(super) fn quorum_error(f: QuorumFailure) -> KvError {
    KvError::QuorumNotReached { required: f.required, acked: f.acked, failures: f.to_string() }
}
