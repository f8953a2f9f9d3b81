//! Version vectors and dots.

use std::collections::BTreeMap;

/// A version-vector actor: the writer named in dots. One per node
/// *incarnation* (see `topology::identity`), not the host id: a node that may
/// have lost its own writes takes a fresh one, so no dot is ever minted twice.
pub type NodeId = u64;

/// One event: the `counter`-th write coordinated by `node` for a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Dot {
    /// The coordinating node.
    pub node: NodeId,
    /// Its per-key write counter, starting at 1.
    pub counter: u64,
}

/// A version vector: for each node, how many of its writes are known.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VersionVector(BTreeMap<NodeId, u64>);

impl VersionVector {
    /// The empty vector (no writes seen).
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds a vector from `(node, counter)` pairs; later pairs win ties by max.
    pub fn from_entries(entries: impl IntoIterator<Item = (NodeId, u64)>) -> Self {
        let mut vv = Self::new();
        for (node, counter) in entries {
            if counter > 0 {
                let slot = vv.0.entry(node).or_insert(0);
                *slot = (*slot).max(counter);
            }
        }
        vv
    }

    /// The entries, sorted by node.
    pub fn entries(&self) -> impl Iterator<Item = (NodeId, u64)> + '_ {
        self.0.iter().map(|(n, c)| (*n, *c))
    }

    /// Number of nodes in the vector.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when no write has been seen.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many writes of `node` are known.
    pub fn get(&self, node: NodeId) -> u64 {
        self.0.get(&node).copied().unwrap_or(0)
    }

    /// True when the event `dot` is part of this history.
    pub fn contains(&self, dot: Dot) -> bool {
        self.get(dot.node) >= dot.counter
    }

    /// Adds one event (and, as counters are contiguous, all before it).
    pub fn add(&mut self, dot: Dot) {
        let slot = self.0.entry(dot.node).or_insert(0);
        *slot = (*slot).max(dot.counter);
    }

    /// Pointwise maximum with `other`.
    pub fn merge(&mut self, other: &VersionVector) {
        for (node, counter) in other.entries() {
            self.add(Dot { node, counter });
        }
    }

    /// True when this history includes all of `other`'s.
    pub fn descends(&self, other: &VersionVector) -> bool {
        other.entries().all(|(n, c)| self.get(n) >= c)
    }

    /// True when neither history includes the other.
    pub fn concurrent(&self, other: &VersionVector) -> bool {
        !self.descends(other) && !other.descends(self)
    }

    /// Sum of all counters.
    pub fn sum(&self) -> u64 {
        self.0.values().fold(0u64, |acc, c| acc.saturating_add(*c))
    }
}
