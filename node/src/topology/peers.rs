//! [`StreamPeers`]: the calls topology makes to other nodes (a narrow trait
//! of its own, beside the replica `Transport`), and the domain types they
//! carry. The gRPC implementation (`peer::GrpcStreamPeers`, over the
//! `ringkv.cluster.v1.Streaming` service), the service and the proto
//! conversions live in the `peer` layer.

use std::fmt;
use std::net::SocketAddr;

use futures::future::BoxFuture;

use crate::membership::{Member, MemberStatus};
use crate::ring::Token;
use crate::storage::{ScanPosition, StoredRecord};

use super::TopologyError;
use super::progress::ProgressSnapshot;

/// A token segment `(lower, upper]` that does not wrap; `lower = None` starts at token 0 inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Segment {
    /// Exclusive lower bound, or `None` for "from token 0 inclusive".
    pub lower: Option<Token>,
    /// Inclusive upper bound.
    pub upper: Token,
}

/// A request for one page of a segment.
#[derive(Debug, Clone)]
pub struct FetchPage {
    /// The segment.
    pub segment: Segment,
    /// Resume strictly after this record.
    pub after: Option<ScanPosition>,
    /// Most records in the page.
    pub limit: u32,
    /// Who asks (for the source's logs).
    pub requester: String,
}

/// One page of records.
#[derive(Debug, Clone)]
pub struct FetchedPage {
    /// The records, in token order.
    pub records: Vec<StoredRecord>,
    /// Encoded size of the page (keys and records), for throttling and metrics.
    pub bytes: u64,
    /// Nothing is left in the segment after these records.
    pub done: bool,
}

/// A member as another node sees it.
#[derive(Debug, Clone)]
pub struct Described {
    /// The member.
    pub member: Member,
    /// Not convicted by that node's failure detector.
    pub alive: bool,
}

/// What another node answers about a member, and the size of its ring.
#[derive(Debug, Clone)]
pub struct Description {
    /// The member, when that node knows it.
    pub member: Option<Described>,
    /// Nodes in that node's read ring.
    pub ring_nodes: u32,
}

/// Calls topology makes to other nodes.
pub trait StreamPeers: Send + Sync + fmt::Debug + 'static {
    /// One page of `peer`'s records in a segment.
    fn fetch(&self, peer: SocketAddr, req: FetchPage) -> BoxFuture<'static, Result<FetchedPage, TopologyError>>;
    /// What `peer` knows of the member `host_id` (`None`: unknown there).
    fn describe(&self, peer: SocketAddr, host_id: &str) -> BoxFuture<'static, Result<Description, TopologyError>>;
    /// Sets `host_id`'s status in `peer`'s view (LEAVING or LEFT, for removenode).
    fn set_status(
        &self,
        peer: SocketAddr,
        host_id: &str,
        status: MemberStatus,
    ) -> BoxFuture<'static, Result<(), TopologyError>>;
    /// Asks `peer` to stream in every range it gains; answers when it is done.
    fn stream_pending(
        &self,
        peer: SocketAddr,
        prefer: Option<String>,
    ) -> BoxFuture<'static, Result<(u64, u64), TopologyError>>;
    /// `peer`'s streaming progress.
    fn progress(&self, peer: SocketAddr) -> BoxFuture<'static, Result<ProgressSnapshot, TopologyError>>;
}
