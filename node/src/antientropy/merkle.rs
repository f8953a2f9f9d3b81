//! [`MerkleTree`]: a hash tree over the token buckets of one range (pure).
//!
//! A leaf is the wrapping sum of the 128-bit hashes of the records whose token
//! falls in its bucket ([`record_hash`]): order-independent and updatable in
//! O(1) from the old and new hash of a changed record. An inner node is the
//! xxh3-128 of its two children (0 when both are empty), recomputed lazily
//! when a level is read after changes. [`Descent`] is the top-down comparison
//! as a state machine: it asks for the hashes of one level at a time and ends
//! with the leaf buckets that differ.

use crate::ring::{Token, TokenRange};

/// A 128-bit hash.
pub type Hash = u128;

/// Largest supported depth (2^20 buckets per range).
pub const MAX_DEPTH: u32 = 20;

/// Levels the top-down comparison descends per round trip (16-way).
pub const DESCENT_STEP: u32 = 4;

/// Hash of one stored record: `xxh3-128(keyspace, key, encoded record)`,
/// length-prefixed so that field boundaries cannot shift.
pub fn record_hash(keyspace: &str, key: &[u8], encoded_record: &[u8]) -> Hash {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    h.update(&(keyspace.len() as u32).to_be_bytes());
    h.update(keyspace.as_bytes());
    h.update(&(key.len() as u32).to_be_bytes());
    h.update(key);
    h.update(encoded_record);
    h.digest128()
}

fn combine(left: Hash, right: Hash) -> Hash {
    if left == 0 && right == 0 {
        return 0;
    }
    let mut buf = [0u8; 32];
    buf[..16].copy_from_slice(&left.to_be_bytes());
    buf[16..].copy_from_slice(&right.to_be_bytes());
    xxhash_rust::xxh3::xxh3_128(&buf)
}

/// The leaf bucket of `token` in `range` with `2^depth` buckets of (nearly)
/// equal token width. `token` must lie in `range`.
pub fn bucket_of(range: TokenRange, token: Token, depth: u32) -> u32 {
    let offset = u128::from(token.wrapping_sub(range.start).wrapping_sub(1));
    ((offset << depth) / range.width()) as u32
}

/// The tokens of bucket `bucket`: `(first, last)`, both inclusive; `None`
/// when the bucket is empty (a range narrower than its bucket count).
pub fn bucket_bounds(range: TokenRange, bucket: u32, depth: u32) -> Option<(Token, Token)> {
    let width = range.width();
    let lo = (u128::from(bucket) * width).div_ceil(1u128 << depth);
    let hi = (u128::from(bucket) + 1).saturating_mul(width).div_ceil(1u128 << depth);
    if hi <= lo {
        return None;
    }
    let first = range.start.wrapping_add(1).wrapping_add(lo as u64);
    let last = range.start.wrapping_add(hi as u64);
    Some((first, last))
}

/// A Merkle tree of `2^depth` leaf buckets, with record and byte counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MerkleTree {
    depth: u32,
    /// `levels[l]` holds the `2^l` nodes of level `l`; `levels[depth]` are the leaves.
    levels: Vec<Vec<Hash>>,
    dirty: bool,
    records: u64,
    bytes: u64,
}

impl MerkleTree {
    /// An empty tree (every hash 0). `depth` is clamped to [`MAX_DEPTH`].
    pub fn new(depth: u32) -> Self {
        let depth = depth.min(MAX_DEPTH);
        let levels = (0..=depth).map(|l| vec![0; 1usize << l]).collect();
        Self { depth, levels, dirty: false, records: 0, bytes: 0 }
    }

    /// Depth: the tree has `2^depth` leaves.
    pub fn depth(&self) -> u32 {
        self.depth
    }

    /// Records summarised.
    pub fn records(&self) -> u64 {
        self.records
    }

    /// Bytes (keys plus encoded records) summarised.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Adds a record's hash to `bucket`.
    pub fn insert(&mut self, bucket: u32, hash: Hash, bytes: u64) {
        self.change(bucket, |leaf| leaf.wrapping_add(hash));
        self.records += 1;
        self.bytes += bytes;
    }

    /// Removes a record's hash from `bucket` (the inverse of [`insert`](Self::insert)).
    pub fn remove(&mut self, bucket: u32, hash: Hash, bytes: u64) {
        self.change(bucket, |leaf| leaf.wrapping_sub(hash));
        self.records = self.records.saturating_sub(1);
        self.bytes = self.bytes.saturating_sub(bytes);
    }

    fn change(&mut self, bucket: u32, f: impl FnOnce(Hash) -> Hash) {
        let leaves = &mut self.levels[self.depth as usize];
        if let Some(leaf) = leaves.get_mut(bucket as usize) {
            *leaf = f(*leaf);
            self.dirty = true;
        }
    }

    fn refresh(&mut self) {
        if !self.dirty {
            return;
        }
        for l in (0..self.depth as usize).rev() {
            let (upper, lower) = self.levels.split_at_mut(l + 1);
            let (parents, children) = (&mut upper[l], &lower[0]);
            for (i, parent) in parents.iter_mut().enumerate() {
                *parent = combine(children[2 * i], children[2 * i + 1]);
            }
        }
        self.dirty = false;
    }

    /// The root hash.
    pub fn root(&mut self) -> Hash {
        self.refresh();
        self.levels[0][0]
    }

    /// Hashes of nodes `indices` of `level` (0 for an index out of range).
    pub fn hashes(&mut self, level: u32, indices: &[u32]) -> Vec<Hash> {
        self.refresh();
        let Some(nodes) = self.levels.get(level as usize) else { return vec![0; indices.len()] };
        indices.iter().map(|&i| nodes.get(i as usize).copied().unwrap_or(0)).collect()
    }

    /// The leaf hashes.
    pub fn leaves(&self) -> &[Hash] {
        &self.levels[self.depth as usize]
    }
}

/// The top-down comparison of two trees of equal depth, without I/O: ask
/// [`Descent::query`] for the nodes whose hashes are needed, give both sides'
/// answers to [`Descent::answer`], repeat until `query` returns `None`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Descent {
    depth: u32,
    level: u32,
    differing: Vec<u32>,
    step: u32,
}

impl Descent {
    /// Starts from the two roots.
    pub fn new(depth: u32, local_root: Hash, remote_root: Hash) -> Self {
        let differing = if local_root == remote_root { Vec::new() } else { vec![0] };
        Self { depth, level: 0, differing, step: DESCENT_STEP }
    }

    /// Levels descended per round (at least 1).
    pub fn with_step(mut self, step: u32) -> Self {
        self.step = step.max(1);
        self
    }

    /// The next level and node indices to compare; `None` when finished.
    pub fn query(&self) -> Option<(u32, Vec<u32>)> {
        if self.differing.is_empty() || self.level >= self.depth {
            return None;
        }
        let next = (self.level + self.step).min(self.depth);
        let fan = 1u32 << (next - self.level);
        let indices = self.differing.iter().flat_map(|&i| (i * fan)..(i * fan + fan)).collect();
        Some((next, indices))
    }

    /// Takes both sides' hashes of the nodes [`query`](Self::query) named.
    pub fn answer(&mut self, local: &[Hash], remote: &[Hash]) {
        let Some((level, indices)) = self.query() else { return };
        self.differing =
            indices.into_iter().enumerate().filter(|(n, _)| local.get(*n) != remote.get(*n)).map(|(_, i)| i).collect();
        self.level = level;
    }

    /// The differing leaf buckets once finished (empty when the roots matched).
    pub fn buckets(&self) -> &[u32] {
        if self.level >= self.depth { &self.differing } else { &[] }
    }

    /// Whether the comparison is finished.
    pub fn finished(&self) -> bool {
        self.query().is_none()
    }
}

/// The leaf buckets in which `a` and `b` differ, found top-down.
pub fn diff(a: &mut MerkleTree, b: &mut MerkleTree) -> Vec<u32> {
    let mut descent = Descent::new(a.depth(), a.root(), b.root());
    while let Some((level, indices)) = descent.query() {
        let (ha, hb) = (a.hashes(level, &indices), b.hashes(level, &indices));
        descent.answer(&ha, &hb);
    }
    descent.buckets().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_partition_the_range() {
        for range in [
            TokenRange { start: 10, end: 1000 },
            TokenRange { start: u64::MAX - 5, end: 7 },
            TokenRange { start: 42, end: 42 },
            TokenRange { start: 0, end: 3 },
        ] {
            for depth in [0, 1, 3, 8] {
                let mut expected_first = range.start.wrapping_add(1);
                let mut covered = 0u128;
                for b in 0..(1u32 << depth) {
                    // Empty buckets exist when the range is narrower than the bucket count.
                    let Some((first, last)) = bucket_bounds(range, b, depth) else { continue };
                    assert_eq!(first, expected_first, "{range:?} depth {depth} bucket {b}");
                    assert_eq!(bucket_of(range, first, depth), b);
                    assert_eq!(bucket_of(range, last, depth), b);
                    covered += u128::from(last.wrapping_sub(first)) + 1;
                    expected_first = last.wrapping_add(1);
                }
                assert_eq!(expected_first, range.end.wrapping_add(1), "{range:?} depth {depth} ends at the range end");
                assert_eq!(covered, range.width(), "{range:?} depth {depth} covers every token once");
            }
        }
    }

    #[test]
    fn insert_then_remove_restores_the_tree() {
        let mut t = MerkleTree::new(4);
        let empty_root = t.root();
        t.insert(3, 0xdead, 10);
        t.insert(3, 0xbeef, 5);
        assert_ne!(t.root(), empty_root);
        t.remove(3, 0xdead, 10);
        t.remove(3, 0xbeef, 5);
        assert_eq!(t.root(), empty_root);
        assert_eq!((t.records(), t.bytes()), (0, 0));
    }

    #[test]
    fn descent_finds_one_changed_leaf_in_few_rounds() {
        let mut a = MerkleTree::new(8);
        let mut b = MerkleTree::new(8);
        for i in 0..256u32 {
            a.insert(i, u128::from(i) + 1, 1);
            b.insert(i, u128::from(i) + 1, 1);
        }
        b.insert(77, 5, 1);
        let mut descent = Descent::new(8, a.root(), b.root());
        let mut rounds = 0;
        while let Some((level, indices)) = descent.query() {
            rounds += 1;
            assert!(indices.len() <= 16, "one differing node asks for 16 children, not {}", indices.len());
            descent.answer(&a.hashes(level, &indices), &b.hashes(level, &indices));
        }
        assert_eq!(rounds, 2);
        assert_eq!(descent.buckets(), &[77]);
        assert!(diff(&mut a.clone(), &mut a).is_empty());
    }

    #[test]
    fn depth_zero_is_a_single_bucket() {
        let mut a = MerkleTree::new(0);
        let mut b = MerkleTree::new(0);
        b.insert(0, 9, 1);
        assert_eq!(diff(&mut a, &mut b), vec![0]);
    }
}
