//! Transport: how a node talks to its peers, behind the [`Transport`] trait.
//!
//! Implementations: `peer::GrpcTransport` (tonic over HTTP/2, in the `peer`
//! layer with every other node-to-node client) and `peer::SimTransport`
//! (in-process, for deterministic simulation with drop / delay / partition /
//! crash). The receiving side of every call is a [`ReplicaHandler`],
//! implemented by the coordinator; the gRPC server in `server/replica.rs` and
//! the simulator both deliver to it.
//!
//! This module may call `version`, `ring`, `membership` and `replication`
//! types (a forwarded write carries a `Mutation`) and `error` only; the
//! simulator also maps handler errors through `server::status` to what the
//! gRPC server would answer.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;

use crate::membership::Member;
use crate::version::Record;

/// The peer a call goes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// Its host id.
    pub host_id: String,
    /// Its gRPC address.
    pub addr: SocketAddr,
}

impl From<&Member> for Peer {
    fn from(m: &Member) -> Self {
        Self { host_id: m.host_id.clone(), addr: m.grpc_addr }
    }
}

impl From<&std::sync::Arc<Member>> for Peer {
    fn from(m: &std::sync::Arc<Member>) -> Self {
        Self::from(m.as_ref())
    }
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let short = self.host_id.get(..8).unwrap_or(&self.host_id);
        write!(f, "{short}@{}", self.addr)
    }
}

/// A write a replica must merge into its copy (or keep as a hint).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaWrite {
    /// Keyspace.
    pub keyspace: String,
    /// Key.
    pub key: Bytes,
    /// The record to merge.
    pub record: Record,
    /// When set, the receiver is a stand-in: it stores a durable hint for this host.
    pub hint_for: Option<String>,
}

/// A hinted write on its way to its owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HintedWrite {
    /// Keyspace.
    pub keyspace: String,
    /// Key.
    pub key: Bytes,
    /// The record.
    pub record: Record,
    /// When the hint was stored, ms since the epoch.
    pub created_at_ms: i64,
}

/// A write to coordinate on a replica (see `ringkv.cluster.v1.Mutation`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoordinateCall {
    /// Keyspace.
    pub keyspace: String,
    /// Key.
    pub key: Bytes,
    /// What to do.
    pub mutation: crate::replication::Mutation,
    /// Consistency asked for.
    pub consistency: crate::replication::Consistency,
}

/// Which of a node's own records a page asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PageOrder {
    /// Key order within the keyspace (LIST), keys starting with `prefix`, after `after`.
    ByKey {
        /// Key prefix.
        prefix: Bytes,
        /// Start strictly after this key.
        after: Option<Bytes>,
    },
    /// Token order (SCAN), strictly after `(token, key)`.
    ByToken {
        /// Start strictly after this position.
        after: Option<(crate::ring::Token, Bytes)>,
    },
}

/// A request for one page of a node's own records (cluster-wide LIST and SCAN).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageQuery {
    /// Keyspace.
    pub keyspace: String,
    /// Order and start.
    pub order: PageOrder,
    /// Most records to return.
    pub limit: u32,
}

/// One record of a page, with its place on the ring.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageItem {
    /// Token of the key.
    pub token: crate::ring::Token,
    /// The key.
    pub key: Bytes,
    /// The node's record (may be dead: tombstones and expired values are included).
    pub record: Record,
}

/// Why a call to a peer failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// No answer before the deadline.
    #[error("{peer} did not answer within {timeout:?}")]
    Timeout {
        /// The peer.
        peer: String,
        /// The deadline.
        timeout: Duration,
    },
    /// The peer could not be reached.
    #[error("{peer} is unreachable: {reason}")]
    Unreachable {
        /// The peer.
        peer: String,
        /// What the connection attempt said.
        reason: String,
    },
    /// The peer answered with an error.
    #[error("{peer} refused the call: {code}: {message}")]
    Remote {
        /// The peer.
        peer: String,
        /// The gRPC status it answered with (typed: match on it, not on its name).
        code: crate::error::RemoteStatus,
        /// The stable `RKV-…` code the peer sent in the status metadata, if any.
        rkv_code: Option<String>,
        /// Its message (without the `[RKV-…]` prefix when the code came separately).
        message: String,
    },
    /// The peer's answer could not be decoded.
    #[error("{peer} sent a malformed answer: {reason}")]
    Malformed {
        /// The peer.
        peer: String,
        /// What was wrong.
        reason: String,
    },
}

/// The result of a coordinated write, as the coordinating replica reports it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CoordinateReply {
    /// The write result.
    pub result: crate::replication::WriteResult,
    /// New counter value (increments).
    pub counter: i64,
    /// The record after the call, when a CAS did not apply.
    pub current: Option<Record>,
}

/// Calls from one node to another. Every call has a deadline.
pub trait Transport: Send + Sync + fmt::Debug + 'static {
    /// Reads a replica's record of a key.
    fn read(
        &self,
        to: &Peer,
        keyspace: &str,
        key: &Bytes,
    ) -> BoxFuture<'static, Result<Option<Record>, TransportError>>;

    /// Sends a record to merge (or to keep as a hint); resolves when durable there.
    fn write(&self, to: &Peer, write: ReplicaWrite) -> BoxFuture<'static, Result<(), TransportError>>;

    /// Delivers hinted writes to their owner; resolves with how many it applied.
    fn deliver_hints(
        &self,
        to: &Peer,
        from_host_id: &str,
        hints: Vec<HintedWrite>,
    ) -> BoxFuture<'static, Result<u32, TransportError>>;

    /// Asks a replica of the key to coordinate a write.
    fn coordinate(
        &self,
        to: &Peer,
        call: CoordinateCall,
    ) -> BoxFuture<'static, Result<CoordinateReply, TransportError>>;

    /// Reads one page of the peer's own records.
    fn page(&self, to: &Peer, query: PageQuery) -> BoxFuture<'static, Result<Vec<PageItem>, TransportError>>;
}

/// The receiving side of [`Transport`] calls (implemented by the coordinator).
pub trait ReplicaHandler: Send + Sync + fmt::Debug + 'static {
    /// Reads the local record.
    fn handle_read(
        &self,
        keyspace: String,
        key: Bytes,
    ) -> BoxFuture<'static, Result<Option<Record>, crate::error::KvError>>;

    /// Merges a record (or stores a hint); resolves when durable.
    fn handle_write(&self, write: ReplicaWrite) -> BoxFuture<'static, Result<(), crate::error::KvError>>;

    /// Applies hinted writes meant for this node.
    fn handle_hints(&self, hints: Vec<HintedWrite>) -> BoxFuture<'static, Result<u32, crate::error::KvError>>;

    /// Coordinates a write forwarded by a non-replica.
    fn handle_coordinate(
        &self,
        call: CoordinateCall,
    ) -> BoxFuture<'static, Result<CoordinateReply, crate::error::KvError>>;

    /// Answers one page of this node's own records.
    fn handle_page(&self, query: PageQuery) -> BoxFuture<'static, Result<Vec<PageItem>, crate::error::KvError>>;
}

/// The transport of a node without peers: every call fails as unreachable.
/// A cluster of one never calls it; it exists so a standalone coordinator
/// needs no network.
#[derive(Debug, Default, Clone, Copy)]
pub struct UnconnectedTransport;

fn unconnected<T: Send + 'static>(peer: String) -> BoxFuture<'static, Result<T, TransportError>> {
    Box::pin(std::future::ready(Err(TransportError::Unreachable { peer, reason: "this node has no peers".into() })))
}

impl Transport for UnconnectedTransport {
    fn read(&self, to: &Peer, _: &str, _: &Bytes) -> BoxFuture<'static, Result<Option<Record>, TransportError>> {
        unconnected(to.to_string())
    }

    fn write(&self, to: &Peer, _: ReplicaWrite) -> BoxFuture<'static, Result<(), TransportError>> {
        unconnected(to.to_string())
    }

    fn deliver_hints(
        &self,
        to: &Peer,
        _: &str,
        _: Vec<HintedWrite>,
    ) -> BoxFuture<'static, Result<u32, TransportError>> {
        unconnected(to.to_string())
    }

    fn coordinate(&self, to: &Peer, _: CoordinateCall) -> BoxFuture<'static, Result<CoordinateReply, TransportError>> {
        unconnected(to.to_string())
    }

    fn page(&self, to: &Peer, _: PageQuery) -> BoxFuture<'static, Result<Vec<PageItem>, TransportError>> {
        unconnected(to.to_string())
    }
}
