//! Token allocation: choose tokens for a new node so ownership stays even.
//!
//! Role: given the current [`Ring`] and a new node's `vnodes`, pick
//! `vnodes × weight` tokens. The first node of a ring gets tokens seeded from
//! its host id (xxh3 of `host_id, i`); every later node takes its share,
//! `weight / total weight` of the ring, from the nodes that hold the most
//! above their own target share, one token at a time: each new token is put
//! inside the largest range of the currently most over-target node and
//! takes exactly as much of it as needed. Primary ownership therefore stays
//! balanced to within rounding at 64+ vnodes. Replicated ownership (rf > 1)
//! is not optimised and is about as even as with random tokens.
//!
//! Invariants: allocation is a pure function of `(ring, node, vnodes)` (all
//! integer arithmetic, ties broken by index), so every node computes the same
//! tokens; a new token never coincides with an existing one; existing tokens
//! never move, so only ranges the new node takes change primary owner.
//! May call nothing but `std` and `xxhash-rust`.

use std::collections::BTreeSet;

use super::Token;
use super::topology::{HostId, MAX_TOKENS_PER_NODE, NodeInfo, RING_SIZE, Ring, RingError, range_width};

/// Marks ranges already owned by the node being allocated.
const NEW: usize = usize::MAX;

impl Ring {
    /// Tokens for `node`, which must not be in the ring yet: `vnodes × weight`
    /// of them, chosen so that every node ends near `weight / total weight`
    /// of primary ownership. Deterministic.
    pub fn allocate_tokens(&self, node: &NodeInfo, vnodes: u32) -> Result<Vec<Token>, RingError> {
        let count = token_count(node, vnodes)?;
        if self.index_of(node.host_id.as_str()).is_some() {
            return Err(RingError::DuplicateHostId { host_id: node.host_id.clone() });
        }
        if self.is_empty() {
            return Ok(seeded_tokens(&node.host_id, count));
        }
        Ok(Allocator::new(self, node.weight).run(count))
    }

    /// This ring plus `node` with tokens from [`Ring::allocate_tokens`].
    pub fn with_node(&self, node: NodeInfo, vnodes: u32) -> Result<Ring, RingError> {
        let tokens = self.allocate_tokens(&node, vnodes)?;
        self.node_tokens().into_iter().fold(Ring::builder(), |b, (n, t)| b.node(n, t)).node(node, tokens).build()
    }

    /// This ring without the node `host_id` (its ranges fall to the next
    /// tokens clockwise). The ring itself if the node is absent.
    pub fn without_node(&self, host_id: &str) -> Result<Ring, RingError> {
        self.node_tokens()
            .into_iter()
            .filter(|(n, _)| n.host_id.as_str() != host_id)
            .fold(Ring::builder(), |b, (n, t)| b.node(n, t))
            .build()
    }

    /// A new cluster: nodes are added one at a time in host-id order, so the
    /// result depends only on the set of nodes and `vnodes`.
    pub fn initial(nodes: impl IntoIterator<Item = NodeInfo>, vnodes: u32) -> Result<Ring, RingError> {
        let mut nodes: Vec<NodeInfo> = nodes.into_iter().collect();
        nodes.sort_by(|a, b| a.host_id.cmp(&b.host_id));
        nodes.into_iter().try_fold(Ring::empty(), |ring, n| ring.with_node(n, vnodes))
    }
}

/// `vnodes × weight`, validated.
fn token_count(node: &NodeInfo, vnodes: u32) -> Result<usize, RingError> {
    if node.weight == 0 {
        return Err(RingError::ZeroWeight { host_id: node.host_id.clone() });
    }
    if vnodes == 0 {
        return Err(RingError::ZeroVnodes { host_id: node.host_id.clone() });
    }
    let count = u64::from(vnodes) * u64::from(node.weight);
    if count > MAX_TOKENS_PER_NODE {
        return Err(RingError::TooManyTokens { host_id: node.host_id.clone(), count });
    }
    Ok(count as usize)
}

/// `count` distinct pseudo-random tokens derived from the host id alone.
fn seeded_tokens(host_id: &HostId, count: usize) -> Vec<Token> {
    let mut out = BTreeSet::new();
    let mut i: u64 = 0;
    while out.len() < count {
        let mut h = xxhash_rust::xxh3::Xxh3::new();
        h.update(host_id.as_str().as_bytes());
        h.update(&[0]);
        h.update(&i.to_be_bytes());
        out.insert(h.digest());
        i += 1;
    }
    out.into_iter().collect()
}

/// Working state of one allocation: a mutable copy of the ring's entries.
struct Allocator {
    /// Sorted tokens, existing and new.
    tokens: Vec<Token>,
    /// Owner per token: an existing node index, or [`NEW`].
    owners: Vec<usize>,
    /// Primary ownership per existing node.
    owned: Vec<u128>,
    /// Target primary ownership per existing node after the join.
    target: Vec<u128>,
    /// What the new node still has to take.
    need: u128,
}

impl Allocator {
    fn new(ring: &Ring, new_weight: u32) -> Self {
        let tokens = ring.inner.tokens.clone();
        let owners: Vec<usize> = ring.inner.owners.iter().map(|o| o.get()).collect();
        let mut owned = vec![0u128; ring.node_count()];
        for i in 0..tokens.len() {
            owned[owners[i]] += range_width(ring.prev_token(i), tokens[i]);
        }
        let weights: Vec<u128> = ring.nodes().iter().map(|n| u128::from(n.weight)).collect();
        let total: u128 = weights.iter().sum::<u128>() + u128::from(new_weight);
        let target = weights.iter().map(|w| RING_SIZE * w / total).collect();
        let need = RING_SIZE * u128::from(new_weight) / total;
        Self { tokens, owners, owned, target, need }
    }

    fn run(mut self, count: usize) -> Vec<Token> {
        let mut out = Vec::with_capacity(count);
        for k in 0..count {
            let share = (self.need / (count - k) as u128).max(1);
            match self.place(share) {
                Some(t) => out.push(t),
                // Ring saturated (needs ~2^64 tokens): nothing left to split.
                None => break,
            }
        }
        out.sort_unstable();
        out
    }

    /// Place one token taking up to `share` from the most over-target node.
    fn place(&mut self, share: u128) -> Option<Token> {
        let mut donors: Vec<usize> = (0..self.owned.len()).collect();
        // Most over target first; ties by index, for determinism.
        donors.sort_by_key(|&x| (std::cmp::Reverse(self.owned[x] as i128 - self.target[x] as i128), x));
        for x in donors {
            let Some((i, width)) = self.best_range_of(x) else { continue };
            let excess = self.owned[x].saturating_sub(self.target[x]).max(1);
            let take = share.min(excess).min(width - 1);
            let prev = self.tokens[if i == 0 { self.tokens.len() - 1 } else { i - 1 }];
            let token = prev.wrapping_add(take as u64);
            // Keep `tokens` sorted: the new token precedes tokens[i], except in
            // the wrapping range of tokens[0] when it lands before u64::MAX.
            let at = if token > self.tokens[i] { self.tokens.len() } else { i };
            self.tokens.insert(at, token);
            self.owners.insert(at, NEW);
            self.owned[x] -= take;
            self.need = self.need.saturating_sub(take);
            return Some(token);
        }
        None
    }

    /// The widest splittable range owned by `x`, preferring ranges whose
    /// predecessor is not already the new node (adjacent tokens of one node
    /// would act as one vnode). Returns `(index of its end token, width)`.
    fn best_range_of(&self, x: usize) -> Option<(usize, u128)> {
        let n = self.tokens.len();
        let mut best: Option<(bool, u128, usize)> = None;
        for i in 0..n {
            if self.owners[i] != x {
                continue;
            }
            let prev = if i == 0 { n - 1 } else { i - 1 };
            let width = range_width(self.tokens[prev], self.tokens[i]);
            let key = (self.owners[prev] != NEW, width, i);
            if width >= 2 && best.is_none_or(|b| (key.0, key.1) > (b.0, b.1)) {
                best = Some(key);
            }
        }
        best.map(|(_, w, i)| (i, w))
    }
}
