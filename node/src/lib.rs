//! RingKV storage node: a Dynamo-style replica and coordinator.
//!
//! # Layout
//! - [`config`]: the node's [`config::Config`], one section per component.
//! - [`clock`]: wall-clock time behind a trait, so tests can inject time.
//! - [`version`]: dotted version vectors, sibling sets, the record codec (pure).
//! - [`ring`]: tokens and placement (pure).
//! - [`storage`]: the [`storage::Storage`] trait, the fjall engine with group
//!   commit, and the in-memory engine.
//! - [`replication`]: the `Coordinator` that serves every client operation:
//!   validation, consistency levels, read-modify-write under per-key locks.
//! - [`assembly`]: the one place a node is put together from its config:
//!   the [`assembly::NodeCore`] (every non-IO part, also used by the
//!   simulations) and the [`assembly::Node`] process (start, graceful stop).
//! - [`server`]: the client-facing gRPC, HTTP and RESP front ends, error
//!   mapping, metrics.
//! - [`membership`]: the cluster view (members, ring, liveness), gossip and
//!   the phi-accrual failure detector.
//! - [`transport`]: the replica calls between nodes as a port (`Transport`,
//!   `ReplicaHandler`, their types and errors) and its simulated network.
//! - [`peer`]: everything that crosses between nodes over gRPC: one channel
//!   pool type, one call helper, the proto conversions, and the clients and
//!   services of every cluster protocol (replica, anti-entropy, gossip,
//!   streaming), each implementing its domain's port.
//! - [`hints`]: durable hinted handoff for replicas that missed writes.
//! - [`tls`]: rustls listeners (plain or TLS), certificate reload, mutual TLS
//!   for the cluster port, generated dev certificates.
//! - [`topology`]: node lifecycle (join, decommission, replace, removenode),
//!   range streaming, and the node's persistent identity.
//! - [`worker`]: the `Worker` trait, the `WorkerRunner` that runs, lists and
//!   stops every background loop, and `Jobs` (the node's one-shot tasks);
//!   the periodic sync and the purge live here, the other workers beside
//!   what they work on.
//! - [`antientropy`]: Merkle-tree anti-entropy between replicas, `RepairWorker`.
//! - [`schema`]: the cluster schema (keyspaces, users) as versioned entries:
//!   highest-stamp-wins merge, digest for gossip, durable load/save.
//! - [`auth`]: users, token credentials, roles per keyspace and `authorize`.
//! - [`error`]: the error a client operation can end with.
//! - [`metrics`]: helpers shared by every module's Prometheus metrics.
//! - [`fuzzing`]: the fuzz targets' bodies (`fuzz/`), also replayed by `tests/fuzz_corpus.rs`.

pub mod antientropy;
pub mod assembly;
pub mod auth;
pub mod clock;
pub mod config;
pub mod error;
pub mod fuzzing;
pub mod hints;
pub mod membership;
pub mod metrics;
pub mod peer;
pub mod replication;
pub mod ring;
pub mod schema;
pub mod server;
pub mod storage;
pub mod tls;
pub mod topology;
pub mod transport;
pub mod version;
pub mod worker;

/// The keyspace that always exists.
pub const DEFAULT_KEYSPACE: &str = "default";
