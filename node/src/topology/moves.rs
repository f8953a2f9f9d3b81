//! Which token ranges move during a ring transition, to whom, and from where
//! (pure: rings in, moves out).
//!
//! A transition is described by two rings: the read ring (the owners now) and
//! the write ring (the owners once every JOINING, LEAVING, REPLACING or
//! removed member has finished). Every elementary range between the tokens of
//! both rings is compared: each host in its write preference list that is not
//! in its read preference list *gains* it, and must stream it from the
//! range's current replicas. These are exactly the ranges whose replica set
//! changes, i.e. what [`Ring::moved_fraction`] measures.
//!
//! A replacement keeps the dead node's host id and tokens, so both rings are
//! equal: [`replace_moves`] gives the dead node's ranges, from the other replicas.

use crate::ring::{HostId, Ring, Token, TokenRange};

/// A range one host must stream in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangeMove {
    /// The range `(start, end]`.
    pub range: TokenRange,
    /// The host that gains it.
    pub to: HostId,
    /// Its current replicas (read ring): where to stream from, those that
    /// lose the range first, then in preference order.
    pub sources: Vec<HostId>,
}

fn hosts(ring: &Ring, token: Token, rf: usize) -> Vec<HostId> {
    ring.preference_list(token, rf).into_iter().filter_map(|i| ring.node(i)).map(|n| n.host_id.clone()).collect()
}

/// Every range a host gains between `read` and `write`, adjacent ranges with
/// the same gainer and sources merged, sorted by gainer then token.
pub fn pending_moves(read: &Ring, write: &Ring, rf: usize) -> Vec<RangeMove> {
    if read.is_empty() || write.is_empty() {
        return Vec::new();
    }
    let mut bounds: Vec<Token> = read.entries().chain(write.entries()).map(|(t, _)| t).collect();
    bounds.sort_unstable();
    bounds.dedup();
    let mut moves: Vec<RangeMove> = Vec::new();
    for (j, &end) in bounds.iter().enumerate() {
        let start = if j == 0 { bounds[bounds.len() - 1] } else { bounds[j - 1] };
        let old = hosts(read, end, rf);
        let new = hosts(write, end, rf);
        // The replica that loses the range streams first (Cassandra's consistent
        // range movement): it holds every write the old replica set acknowledged.
        let mut sources = old.clone();
        sources.sort_by_key(|h| new.contains(h));
        for to in new.iter().filter(|h| !old.contains(h)) {
            let m = RangeMove { range: TokenRange { start, end }, to: to.clone(), sources: sources.clone() };
            push_merged(&mut moves, m);
        }
    }
    finish(moves)
}

/// The ranges the replacement of `dead` (same host id and tokens) streams in:
/// every range `dead` replicates in `ring`, from the other replicas.
pub fn replace_moves(ring: &Ring, rf: usize, dead: &str) -> Vec<RangeMove> {
    let Some(idx) = ring.index_of(dead) else { return Vec::new() };
    let to = HostId::from(dead);
    let mut moves = Vec::new();
    for range in ring.ranges_of(idx, rf) {
        // A merged range can span several replica sets: split it at the ring's tokens.
        for (start, end) in split_at_tokens(ring, range) {
            let sources: Vec<HostId> = hosts(ring, end, rf).into_iter().filter(|h| *h != to).collect();
            push_merged(&mut moves, RangeMove { range: TokenRange { start, end }, to: to.clone(), sources });
        }
    }
    finish(moves)
}

/// `range` cut at every ring token inside it, as `(start, end]` pieces.
fn split_at_tokens(ring: &Ring, range: TokenRange) -> Vec<(Token, Token)> {
    let mut cuts: Vec<Token> = ring.entries().map(|(t, _)| t).filter(|&t| range.contains(t)).collect();
    // Order the cuts clockwise from the range's start.
    cuts.sort_unstable_by_key(|&t| t.wrapping_sub(range.start.wrapping_add(1)));
    let mut out = Vec::new();
    let mut prev = range.start;
    for t in cuts {
        out.push((prev, t));
        prev = t;
    }
    out
}

fn push_merged(moves: &mut Vec<RangeMove>, m: RangeMove) {
    if let Some(last) = moves.iter_mut().rev().find(|l| l.to == m.to)
        && last.range.end == m.range.start
        && last.sources == m.sources
    {
        last.range.end = m.range.end;
        return;
    }
    moves.push(m);
}

fn finish(mut moves: Vec<RangeMove>) -> Vec<RangeMove> {
    // The walk started at the lowest token: join a last range that wraps onto the first.
    let mut out: Vec<RangeMove> = Vec::new();
    moves.sort_by(|a, b| (&a.to, a.range.start).cmp(&(&b.to, b.range.start)));
    for m in moves {
        match out.iter_mut().find(|o| o.to == m.to && o.sources == m.sources && o.range.end == m.range.start) {
            Some(o) if o.range.start != m.range.end => o.range.end = m.range.end,
            _ => out.push(m),
        }
    }
    out
}

/// The fraction of the token space covered by `moves` (each range counted once per gainer).
pub fn moved_width(moves: &[RangeMove]) -> f64 {
    moves.iter().map(|m| m.range.width() as f64).sum::<f64>() / 2f64.powi(64)
}

#[cfg(test)]
mod tests;
