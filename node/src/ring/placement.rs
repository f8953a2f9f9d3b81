//! Placement: preference lists, stand-ins, ownership and ring diffs.
//!
//! Role: answer "which nodes hold this token" for a given replication factor
//! `rf`, and measure how a [`Ring`] spreads the token space.
//!
//! The walk: start at the first token `≥` the key's token (wrapping) and go
//! clockwise, keeping each node the first time it is met. From that walk the
//! preference list picks, NetworkTopologyStrategy-like, in three passes:
//! 1. nodes in zones not yet used;
//! 2. nodes in `(zone, rack)`s not yet used;
//! 3. any node not yet picked.
//!
//! Invariants: the first node of the walk (the primary owner) is always the
//! first entry; a list holds `min(rf, nodes)` distinct nodes; stand-ins are the
//! rest of the walk, in walk order. Every key in `(t_{i-1}, t_i]` has the
//! replica set of `t_i`, which is what ownership and diffs iterate over.
//! May call nothing but `std`.

use super::Token;
use super::topology::{HostId, NodeIdx, RING_SIZE, Ring, TokenRange, range_width};

impl Ring {
    /// Index of the first token `≥ token`, wrapping to 0. Ring must be non-empty.
    fn start_index(&self, token: Token) -> usize {
        let i = self.inner.tokens.partition_point(|&t| t < token);
        if i == self.inner.tokens.len() { 0 } else { i }
    }

    /// Owners of all tokens, clockwise from `start`, once around.
    fn owners_from(&self, start: usize) -> impl Iterator<Item = NodeIdx> + '_ {
        let owners = &self.inner.owners;
        owners[start..].iter().chain(owners[..start].iter()).copied()
    }

    /// The distinct nodes of the walk, long enough that the preference list
    /// over this prefix equals the one over the whole walk: once every zone
    /// and every rack has been met, later nodes can only be pass-3 picks, and
    /// those come in walk order.
    fn walk_prefix(&self, token: Token, rf: usize) -> Vec<NodeIdx> {
        let inner = &*self.inner;
        let n = inner.nodes.len();
        let (mut seen, mut zones, mut racks) =
            (vec![false; n], vec![false; inner.zone_count], vec![false; inner.rack_count]);
        let (mut zones_met, mut racks_met) = (0, 0);
        let mut walk = Vec::new();
        for node in self.owners_from(self.start_index(token)) {
            let i = node.get();
            if seen[i] {
                continue;
            }
            seen[i] = true;
            walk.push(node);
            let (z, r) = (inner.zone_of[i] as usize, inner.rack_of[i] as usize);
            zones_met += usize::from(!std::mem::replace(&mut zones[z], true));
            racks_met += usize::from(!std::mem::replace(&mut racks[r], true));
            if walk.len() == n || (walk.len() >= rf && zones_met == inner.zone_count && racks_met == inner.rack_count) {
                break;
            }
        }
        walk
    }

    /// The `min(rf, nodes)` distinct replicas of `token`, primary owner first,
    /// spread over as many zones, then racks, as possible.
    pub fn preference_list(&self, token: Token, rf: usize) -> Vec<NodeIdx> {
        if self.is_empty() || rf == 0 {
            return Vec::new();
        }
        let walk = self.walk_prefix(token, rf);
        self.select(&walk, rf)
    }

    /// The preference list of `(keyspace, key)`.
    pub fn replicas_of_key(&self, keyspace: &str, key: &[u8], rf: usize) -> Vec<NodeIdx> {
        self.preference_list(super::token_of(keyspace, key), rf)
    }

    /// The three-pass zone/rack-aware pick over a distinct walk.
    fn select(&self, walk: &[NodeIdx], rf: usize) -> Vec<NodeIdx> {
        let inner = &*self.inner;
        let want = rf.min(inner.nodes.len());
        let mut picked = vec![false; inner.nodes.len()];
        let (mut zone_used, mut rack_used) = (vec![false; inner.zone_count], vec![false; inner.rack_count]);
        let mut out = Vec::with_capacity(want);
        for pass in 0..3 {
            for &node in walk {
                if out.len() == want {
                    return out;
                }
                let i = node.get();
                let (z, r) = (inner.zone_of[i] as usize, inner.rack_of[i] as usize);
                let eligible = !picked[i]
                    && match pass {
                        0 => !zone_used[z],
                        1 => !rack_used[r],
                        _ => true,
                    };
                if eligible {
                    picked[i] = true;
                    zone_used[z] = true;
                    rack_used[r] = true;
                    out.push(node);
                }
            }
        }
        out
    }

    /// Sloppy-quorum stand-ins for `token`: every node not in its preference
    /// list, in walk order (the next healthy ones take over for a down replica).
    pub fn stand_ins(&self, token: Token, rf: usize) -> StandIns<'_> {
        let mut excluded = vec![false; self.node_count()];
        for n in self.preference_list(token, rf) {
            excluded[n.get()] = true;
        }
        let start = if self.is_empty() { 0 } else { self.start_index(token) };
        StandIns { ring: self, start, step: 0, excluded }
    }

    /// For each node (by [`NodeIdx`]), the fraction of the token space it
    /// replicates at `rf`. Sums to `min(rf, nodes)`.
    pub fn ownership(&self, rf: usize) -> Vec<f64> {
        let mut owned = vec![0u128; self.node_count()];
        for (i, w) in self.range_widths() {
            for n in self.preference_list(self.inner.tokens[i], rf) {
                owned[n.get()] += w;
            }
        }
        owned.into_iter().map(|o| o as f64 / RING_SIZE as f64).collect()
    }

    /// For each node, the fraction of the token space it is primary owner of.
    pub fn primary_ownership(&self) -> Vec<f64> {
        self.ownership(1)
    }

    /// `max / min − 1` of ownership at `rf` divided by weight: 0 is perfect
    /// balance, 0.05 means the most loaded node holds 5 % more per unit of
    /// weight than the least loaded one.
    pub fn ownership_spread(&self, rf: usize) -> f64 {
        let per_weight = self.ownership(rf).into_iter().zip(self.nodes()).map(|(o, n)| o / f64::from(n.weight));
        let (min, max) = per_weight.fold((f64::INFINITY, 0.0f64), |(lo, hi), x| (lo.min(x), hi.max(x)));
        if min > 0.0 && min.is_finite() { max / min - 1.0 } else { 0.0 }
    }

    /// The ranges `node` replicates at `rf`, adjacent ones merged, in token
    /// order. A single range with `start == end` is the whole ring.
    pub fn ranges_of(&self, node: NodeIdx, rf: usize) -> Vec<TokenRange> {
        let mut out: Vec<TokenRange> = Vec::new();
        let mut all = true;
        for (i, _) in self.range_widths() {
            let end = self.inner.tokens[i];
            if !self.preference_list(end, rf).contains(&node) {
                all = false;
                continue;
            }
            let start = self.prev_token(i);
            match out.last_mut() {
                Some(last) if last.end == start => last.end = end,
                _ => out.push(TokenRange { start, end }),
            }
        }
        if all && !out.is_empty() {
            let end = self.inner.tokens[self.inner.tokens.len() - 1];
            return vec![TokenRange { start: end, end }];
        }
        // The walk started at token 0's range; join a range crossing it.
        if out.len() > 1
            && out[out.len() - 1].end == out[0].start
            && let Some(last) = out.pop()
        {
            out[0].start = last.start;
        }
        out
    }

    /// The fraction of the token space whose replica set (by host id) at `rf`
    /// differs between `old` and `new`: what a ring change has to stream.
    pub fn moved_fraction(old: &Ring, new: &Ring, rf: usize) -> f64 {
        let mut bounds: Vec<Token> = old.inner.tokens.iter().chain(&new.inner.tokens).copied().collect();
        bounds.sort_unstable();
        bounds.dedup();
        let replicas = |ring: &Ring, t: Token| -> Vec<HostId> {
            let mut hosts: Vec<HostId> = ring
                .preference_list(t, rf)
                .into_iter()
                .filter_map(|n| ring.node(n))
                .map(|n| n.host_id.clone())
                .collect();
            hosts.sort_unstable();
            hosts
        };
        let mut moved = 0u128;
        for (j, &b) in bounds.iter().enumerate() {
            let prev = if j == 0 { bounds[bounds.len() - 1] } else { bounds[j - 1] };
            if replicas(old, b) != replicas(new, b) {
                moved += range_width(prev, b);
            }
        }
        moved as f64 / RING_SIZE as f64
    }

    /// `(i, width of (t_{i-1}, t_i])` for every token index.
    fn range_widths(&self) -> impl Iterator<Item = (usize, u128)> + '_ {
        (0..self.inner.tokens.len()).map(|i| (i, range_width(self.prev_token(i), self.inner.tokens[i])))
    }

    /// The token before index `i`, wrapping.
    pub(super) fn prev_token(&self, i: usize) -> Token {
        let tokens = &self.inner.tokens;
        tokens[if i == 0 { tokens.len() - 1 } else { i - 1 }]
    }
}

/// Iterator over sloppy-quorum stand-ins; see [`Ring::stand_ins`].
#[derive(Debug)]
pub struct StandIns<'a> {
    ring: &'a Ring,
    start: usize,
    step: usize,
    /// Nodes already in the preference list or already yielded.
    excluded: Vec<bool>,
}

impl Iterator for StandIns<'_> {
    type Item = NodeIdx;

    fn next(&mut self) -> Option<NodeIdx> {
        let owners = &self.ring.inner.owners;
        while self.step < owners.len() {
            let node = owners[(self.start + self.step) % owners.len()];
            self.step += 1;
            if !std::mem::replace(&mut self.excluded[node.get()], true) {
                return Some(node);
            }
        }
        None
    }
}
