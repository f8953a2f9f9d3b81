//! Hinted handoff: durable hints for replicas that missed writes.
//!
//! When a replica is down or fails a write, the record goes to a stand-in
//! (or stays with the coordinator) as a hint: `(target host, time, seq) →
//! (keyspace, key, record)` in the storage's own hints partition, written
//! through the same group commit as data, so a hint is acknowledged only when
//! durable and survives restarts. The [`HandoffWorker`] replays a target's
//! hints, oldest first and throttled, once membership sees it alive; delivery
//! merges records, so replaying twice is harmless. Hints older than
//! `max_hint_window` are dropped (anti-entropy repairs what they carried).
//!
//! This module may call `storage`, `transport`, `membership`, `version`,
//! `clock`, `worker` (the handoff is a `Worker`) and `replication` (its
//! metrics, which count hints); never `peer` or `server`.

mod store;
mod worker;

pub use store::{HintKey, HintStore};
pub(crate) use store::{decode_hint, encode_hint};
pub use worker::{HandoffWorker, ReplayStats};
