//! Which ranges this node repairs, and with whom (pure).
//!
//! The repair unit is a primary ring range `(previous token, token]`: every
//! node computes the same boundaries from the ring, and the range has one
//! replica set (the preference list of its end token at the keyspace's RF).

use crate::ring::{Ring, Token, TokenRange};

/// One range of one keyspace this node replicates, and its other replicas.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedRange {
    /// Keyspace.
    pub keyspace: String,
    /// The range.
    pub range: TokenRange,
    /// Host ids of the other replicas.
    pub peers: Vec<String>,
}

/// Every primary range of `ring` with its replica set (host ids) at `rf`, sorted by end token.
pub fn replica_sets(ring: &Ring, rf: usize) -> Vec<(TokenRange, Vec<String>)> {
    let tokens: Vec<Token> = ring.entries().map(|(t, _)| t).collect();
    let Some(&last) = tokens.last() else { return Vec::new() };
    let mut prev = last;
    let mut out = Vec::with_capacity(tokens.len());
    for &t in &tokens {
        let replicas = ring
            .preference_list(t, rf)
            .into_iter()
            .filter_map(|i| ring.node(i).map(|n| n.host_id.as_str().to_owned()))
            .collect();
        out.push((TokenRange { start: prev, end: t }, replicas));
        prev = t;
    }
    out
}

/// Whether two ranges share a token.
pub fn intersects(a: TokenRange, b: TokenRange) -> bool {
    a.contains(b.end) || b.contains(a.end)
}

/// The ranges of `keyspace` (at `rf`) that `local` replicates, limited to
/// those meeting `only` when given.
pub fn plan_keyspace(
    ring: &Ring,
    local: &str,
    keyspace: &str,
    rf: usize,
    only: Option<TokenRange>,
) -> Vec<PlannedRange> {
    replica_sets(ring, rf)
        .into_iter()
        .filter(|(range, replicas)| replicas.iter().any(|r| r == local) && only.is_none_or(|o| intersects(o, *range)))
        .map(|(range, replicas)| PlannedRange {
            keyspace: keyspace.to_owned(),
            range,
            peers: replicas.into_iter().filter(|r| r != local).collect(),
        })
        .collect()
}

/// The entry of `sets` (sorted by end token, from [`replica_sets`]) whose range holds `token`.
pub fn find_range(sets: &[(TokenRange, Vec<String>)], token: Token) -> Option<&(TokenRange, Vec<String>)> {
    let i = sets.partition_point(|(r, _)| r.end < token);
    sets.get(if i == sets.len() { 0 } else { i })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ring::NodeInfo;

    fn ring() -> Ring {
        Ring::builder()
            .node(NodeInfo::new("a", "", ""), [100, 400])
            .node(NodeInfo::new("b", "", ""), [200, 500])
            .node(NodeInfo::new("c", "", ""), [300])
            .build()
            .expect("ring")
    }

    #[test]
    fn ranges_cover_the_ring_with_their_replicas() {
        let sets = replica_sets(&ring(), 2);
        let ranges: Vec<_> = sets.iter().map(|(r, _)| (r.start, r.end)).collect();
        assert_eq!(ranges, vec![(500, 100), (100, 200), (200, 300), (300, 400), (400, 500)]);
        assert_eq!(sets[0].1, vec!["a".to_owned(), "b".to_owned()]);
        for token in [0, 50, 100, 101, 250, 499, 500, 501, u64::MAX] {
            let (range, _) = find_range(&sets, token).expect("found");
            assert!(range.contains(token), "{token} in {range:?}");
        }
    }

    #[test]
    fn plan_keeps_only_local_ranges_and_the_filter() {
        let plan = plan_keyspace(&ring(), "c", "default", 2, None);
        assert!(plan.iter().all(|p| !p.peers.contains(&"c".to_owned()) && p.peers.len() == 1));
        assert_eq!(plan.iter().map(|p| p.range.end).collect::<Vec<_>>(), vec![200, 300]);
        let only = plan_keyspace(&ring(), "c", "default", 2, Some(TokenRange { start: 250, end: 260 }));
        assert_eq!(only.len(), 1);
        assert_eq!(only[0].range, TokenRange { start: 200, end: 300 });
    }
}
