//! The ring value: nodes, their tokens, and construction from explicit tokens.
//!
//! Role: [`Ring`] is an immutable, cheaply cloned (`Arc` inside) snapshot of
//! the token ring. It is built either from explicit tokens (so a ring learned
//! through gossip rebuilds bit-for-bit) or by token allocation
//! (see `allocation.rs`).
//!
//! Invariants, checked by [`RingBuilder::build`]:
//! - host ids are unique; nodes are stored sorted by host id, so a
//!   [`NodeIdx`] depends only on the set of nodes, never on insertion order;
//! - every node has at least one token and a non-zero weight;
//! - tokens are unique across the whole ring and stored sorted.
//!
//! A node owning token `t_i` is the primary owner of `(t_{i-1}, t_i]`
//! (wrapping). May call nothing but `std`.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use super::Token;

/// The size of the token space, `2^64`, as an exact integer.
pub(super) const RING_SIZE: u128 = 1 << 64;

/// A node's stable identity: the host id persisted on its disk (never an IP).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HostId(pub String);

impl HostId {
    /// The host id as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for HostId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<String> for HostId {
    fn from(s: String) -> Self {
        Self(s)
    }
}

impl From<&str> for HostId {
    fn from(s: &str) -> Self {
        Self(s.to_owned())
    }
}

/// A node as the ring sees it: identity, failure domains and capacity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeInfo {
    /// The node's persistent identity.
    pub host_id: HostId,
    /// Failure domain of the first order (availability zone).
    pub zone: String,
    /// Failure domain inside a zone; racks are compared as `(zone, rack)`.
    pub rack: String,
    /// Relative capacity: the node gets `vnodes × weight` tokens and a share
    /// of the ring proportional to it. Default 1; must be non-zero.
    pub weight: u32,
}

impl NodeInfo {
    /// A node of weight 1.
    pub fn new(host_id: impl Into<HostId>, zone: impl Into<String>, rack: impl Into<String>) -> Self {
        Self { host_id: host_id.into(), zone: zone.into(), rack: rack.into(), weight: 1 }
    }

    /// The same node with another weight.
    #[must_use]
    pub fn with_weight(mut self, weight: u32) -> Self {
        self.weight = weight;
        self
    }
}

/// A node's position in [`Ring::nodes`]. Only meaningful for the ring that
/// produced it; compare rings by [`HostId`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeIdx(pub(super) u32);

impl NodeIdx {
    /// The index into [`Ring::nodes`].
    pub fn get(self) -> usize {
        self.0 as usize
    }
}

/// A token range `(start, end]`: start exclusive, end inclusive, wrapping.
/// `start == end` means the whole ring.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TokenRange {
    /// Exclusive lower bound.
    pub start: Token,
    /// Inclusive upper bound.
    pub end: Token,
}

impl TokenRange {
    /// Whether `token` lies in the range.
    pub fn contains(&self, token: Token) -> bool {
        if self.start == self.end {
            true
        } else if self.start < self.end {
            self.start < token && token <= self.end
        } else {
            token > self.start || token <= self.end
        }
    }

    /// The number of tokens in the range (`2^64` for the whole ring).
    pub fn width(&self) -> u128 {
        range_width(self.start, self.end)
    }
}

/// Width of `(start, end]`; `start == end` is the whole ring.
pub(super) fn range_width(start: Token, end: Token) -> u128 {
    if start == end { RING_SIZE } else { u128::from(end.wrapping_sub(start)) }
}

/// Why a ring could not be built or a node could not be added.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RingError {
    /// Two nodes share a host id.
    #[error("duplicate host id {host_id} in the ring")]
    DuplicateHostId {
        /// The repeated host id.
        host_id: HostId,
    },
    /// A node has no tokens (or `vnodes × weight` is zero).
    #[error("node {host_id} has zero vnodes; give it at least one token")]
    ZeroVnodes {
        /// The node without tokens.
        host_id: HostId,
    },
    /// A node has weight 0; weights are relative capacities and must be ≥ 1.
    #[error("node {host_id} has weight 0; use a weight of at least 1")]
    ZeroWeight {
        /// The node with weight 0.
        host_id: HostId,
    },
    /// The same token is claimed twice (by one node or by two).
    #[error("token {token} is claimed by both {first} and {second}")]
    DuplicateToken {
        /// The contested token.
        token: Token,
        /// One claimant.
        first: HostId,
        /// The other claimant (may equal `first`).
        second: HostId,
    },
    /// `vnodes × weight` exceeds [`MAX_TOKENS_PER_NODE`].
    #[error("node {host_id} would get {count} tokens; at most {max} are allowed", max = MAX_TOKENS_PER_NODE)]
    TooManyTokens {
        /// The node.
        host_id: HostId,
        /// The requested number of tokens.
        count: u64,
    },
}

/// Upper bound on tokens per node, to refuse absurd `vnodes × weight`.
pub const MAX_TOKENS_PER_NODE: u64 = 1 << 16;

/// The shared, immutable content of a [`Ring`].
#[derive(Debug, PartialEq, Eq)]
pub(super) struct RingInner {
    /// Nodes sorted by host id; `NodeIdx` indexes this.
    pub(super) nodes: Vec<NodeInfo>,
    /// Dense zone id per node (zones numbered in sorted order).
    pub(super) zone_of: Vec<u32>,
    /// Dense `(zone, rack)` id per node.
    pub(super) rack_of: Vec<u32>,
    /// Number of distinct zones.
    pub(super) zone_count: usize,
    /// Number of distinct `(zone, rack)` pairs.
    pub(super) rack_count: usize,
    /// All tokens, sorted ascending.
    pub(super) tokens: Vec<Token>,
    /// `owners[i]` owns `tokens[i]`.
    pub(super) owners: Vec<NodeIdx>,
}

/// An immutable token ring. Cloning is an `Arc` bump.
#[derive(Clone, Debug)]
pub struct Ring {
    pub(super) inner: Arc<RingInner>,
}

impl PartialEq for Ring {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner) || self.inner == other.inner
    }
}

impl Eq for Ring {}

impl Default for Ring {
    fn default() -> Self {
        Self::empty()
    }
}

impl Ring {
    /// A ring without nodes: every preference list is empty.
    pub fn empty() -> Self {
        RingBuilder::default().build_unchecked_empty()
    }

    /// Start building a ring from explicit tokens.
    pub fn builder() -> RingBuilder {
        RingBuilder::default()
    }

    /// The nodes, sorted by host id; [`NodeIdx`] indexes this slice.
    pub fn nodes(&self) -> &[NodeInfo] {
        &self.inner.nodes
    }

    /// The node at `idx`, if `idx` belongs to this ring.
    pub fn node(&self, idx: NodeIdx) -> Option<&NodeInfo> {
        self.inner.nodes.get(idx.get())
    }

    /// The index of the node with this host id.
    pub fn index_of(&self, host_id: &str) -> Option<NodeIdx> {
        let pos = self.inner.nodes.binary_search_by(|n| n.host_id.as_str().cmp(host_id)).ok()?;
        Some(NodeIdx(pos as u32))
    }

    /// Number of nodes.
    pub fn node_count(&self) -> usize {
        self.inner.nodes.len()
    }

    /// Whether the ring has no nodes.
    pub fn is_empty(&self) -> bool {
        self.inner.nodes.is_empty()
    }

    /// Number of tokens (vnodes) in the ring.
    pub fn token_count(&self) -> usize {
        self.inner.tokens.len()
    }

    /// All `(token, owner)` entries in token order.
    pub fn entries(&self) -> impl Iterator<Item = (Token, NodeIdx)> + '_ {
        self.inner.tokens.iter().copied().zip(self.inner.owners.iter().copied())
    }

    /// The tokens of one node, ascending (what it gossips as its `tokens`).
    pub fn tokens_of(&self, idx: NodeIdx) -> Vec<Token> {
        self.entries().filter(|&(_, o)| o == idx).map(|(t, _)| t).collect()
    }

    /// Every node with its tokens, e.g. to rebuild the ring elsewhere.
    pub fn node_tokens(&self) -> Vec<(NodeInfo, Vec<Token>)> {
        let mut per_node: Vec<Vec<Token>> = vec![Vec::new(); self.node_count()];
        for (t, o) in self.entries() {
            per_node[o.get()].push(t);
        }
        self.inner.nodes.iter().cloned().zip(per_node).collect()
    }
}

/// Builds a [`Ring`] from nodes and their explicit tokens.
#[derive(Debug, Default, Clone)]
pub struct RingBuilder {
    nodes: Vec<(NodeInfo, Vec<Token>)>,
}

impl RingBuilder {
    /// Add a node with its tokens (order and insertion order do not matter).
    #[must_use]
    pub fn node(mut self, info: NodeInfo, tokens: impl IntoIterator<Item = Token>) -> Self {
        self.nodes.push((info, tokens.into_iter().collect()));
        self
    }

    /// Validate and build the ring.
    pub fn build(mut self) -> Result<Ring, RingError> {
        self.nodes.sort_by(|a, b| a.0.host_id.cmp(&b.0.host_id));
        for pair in self.nodes.windows(2) {
            if pair[0].0.host_id == pair[1].0.host_id {
                return Err(RingError::DuplicateHostId { host_id: pair[0].0.host_id.clone() });
            }
        }
        let mut entries: Vec<(Token, NodeIdx)> = Vec::new();
        for (i, (info, tokens)) in self.nodes.iter().enumerate() {
            if info.weight == 0 {
                return Err(RingError::ZeroWeight { host_id: info.host_id.clone() });
            }
            if tokens.is_empty() {
                return Err(RingError::ZeroVnodes { host_id: info.host_id.clone() });
            }
            entries.extend(tokens.iter().map(|&t| (t, NodeIdx(i as u32))));
        }
        entries.sort_unstable();
        for pair in entries.windows(2) {
            if pair[0].0 == pair[1].0 {
                return Err(RingError::DuplicateToken {
                    token: pair[0].0,
                    first: self.nodes[pair[0].1.get()].0.host_id.clone(),
                    second: self.nodes[pair[1].1.get()].0.host_id.clone(),
                });
            }
        }
        let nodes: Vec<NodeInfo> = self.nodes.into_iter().map(|(n, _)| n).collect();
        Ok(assemble(nodes, entries))
    }

    fn build_unchecked_empty(self) -> Ring {
        assemble(Vec::new(), Vec::new())
    }
}

/// Intern zones and racks and wrap the validated parts.
fn assemble(nodes: Vec<NodeInfo>, entries: Vec<(Token, NodeIdx)>) -> Ring {
    let mut zones: BTreeMap<&str, u32> = BTreeMap::new();
    let mut racks: BTreeMap<(&str, &str), u32> = BTreeMap::new();
    for n in &nodes {
        zones.entry(n.zone.as_str()).or_insert(0);
        racks.entry((n.zone.as_str(), n.rack.as_str())).or_insert(0);
    }
    for (i, v) in zones.values_mut().enumerate() {
        *v = i as u32;
    }
    for (i, v) in racks.values_mut().enumerate() {
        *v = i as u32;
    }
    let zone_of = nodes.iter().map(|n| zones[n.zone.as_str()]).collect();
    let rack_of = nodes.iter().map(|n| racks[&(n.zone.as_str(), n.rack.as_str())]).collect();
    let (zone_count, rack_count) = (zones.len(), racks.len());
    let (tokens, owners) = entries.into_iter().unzip();
    Ring { inner: Arc::new(RingInner { nodes, zone_of, rack_of, zone_count, rack_count, tokens, owners }) }
}
