//! [`TreeStore`]: the Merkle trees of this node, one per (keyspace, range),
//! held in memory, kept up to date on every write and rebuilt by scans.
//!
//! Concurrency. A write's tree update must be atomic with the storage write
//! relative to a rebuild scan, or a record could be counted twice (by the
//! scan and by the delta) or not at all. The store has a `gate`: writers
//! hold it shared across "read old record, write, apply delta"; a rebuild
//! holds it exclusively while it scans one page and advances its cursor. A
//! rebuild's new tree takes the deltas of records its scan already passed
//! (token at or before the cursor); later ones it will see in the scan.
//!
//! Trees exist only for (keyspace, range) pairs a repair asked for; writes to
//! other keyspaces skip all of this (one map lookup).

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::ring::{Token, TokenRange};
use crate::storage::{ScanPosition, Storage, StorageError};

use super::merkle::{Hash, MerkleTree, bucket_of, record_hash};

/// Records read per rebuild page (the gate is held exclusively for one page).
pub const REBUILD_PAGE: usize = 512;

/// One record's contribution to a tree: its hash and its size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Contribution {
    /// [`record_hash`] of the record.
    pub hash: Hash,
    /// Key plus encoded record, in bytes.
    pub bytes: u64,
}

impl Contribution {
    /// The contribution of `(keyspace, key, record)`.
    pub fn of(keyspace: &str, key: &[u8], record: &crate::version::Record) -> Self {
        let encoded = record.encode();
        Self { hash: record_hash(keyspace, key, &encoded), bytes: (key.len() + encoded.len()) as u64 }
    }
}

/// A tree with the time it was last built from a full scan.
#[derive(Debug, Clone)]
pub struct BuiltTree {
    /// The tree.
    pub tree: MerkleTree,
    /// Unix ms of the scan that built it.
    pub built_at_ms: i64,
}

#[derive(Debug)]
struct Building {
    tree: MerkleTree,
    /// Every record with a token up to here (in range order) was scanned.
    covered_through: Option<Token>,
}

#[derive(Debug)]
struct Slot {
    range: TokenRange,
    current: Option<BuiltTree>,
    building: Option<Building>,
}

/// Position of `token` in the scan order of `range` (0 for the first token).
fn offset(range: TokenRange, token: Token) -> u64 {
    token.wrapping_sub(range.start).wrapping_sub(1)
}

/// The Merkle trees of this node; see the module docs.
#[derive(Debug)]
pub struct TreeStore {
    depth: u32,
    gate: RwLock<()>,
    slots: Mutex<HashMap<String, Vec<Slot>>>,
}

/// Summary of a change applied by a writer: keyspace, key, token, old and new contribution.
#[derive(Debug, Clone)]
pub struct Delta {
    /// Keyspace.
    pub keyspace: String,
    /// Token of the key.
    pub token: Token,
    /// What the old record contributed (none when absent).
    pub old: Option<Contribution>,
    /// What the new record contributes (none when purged).
    pub new: Option<Contribution>,
}

impl TreeStore {
    /// A store of trees with `2^depth` buckets each.
    pub fn new(depth: u32) -> Self {
        Self { depth: depth.min(super::merkle::MAX_DEPTH), gate: RwLock::new(()), slots: Mutex::new(HashMap::new()) }
    }

    /// Depth of every tree.
    pub fn depth(&self) -> u32 {
        self.depth
    }

    fn slots(&self) -> MutexGuard<'_, HashMap<String, Vec<Slot>>> {
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Held shared by writers around "read old, write, apply deltas".
    pub fn write_gate(&self) -> RwLockReadGuard<'_, ()> {
        self.gate.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn scan_gate(&self) -> RwLockWriteGuard<'_, ()> {
        self.gate.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// True when some tree of `keyspace` exists or is being built (call under the write gate).
    pub fn tracks(&self, keyspace: &str) -> bool {
        self.slots().get(keyspace).is_some_and(|s| !s.is_empty())
    }

    /// Applies writers' deltas to every tree (and tree being built) they touch.
    pub fn apply(&self, deltas: &[Delta]) {
        let mut slots = self.slots();
        for d in deltas {
            let Some(list) = slots.get_mut(&d.keyspace) else { continue };
            for slot in list.iter_mut().filter(|s| s.range.contains(d.token)) {
                let bucket = bucket_of(slot.range, d.token, self.depth);
                if let Some(built) = &mut slot.current {
                    apply_one(&mut built.tree, bucket, d);
                }
                if let Some(b) = &mut slot.building
                    && b.covered_through.is_some_and(|c| offset(slot.range, d.token) <= offset(slot.range, c))
                {
                    apply_one(&mut b.tree, bucket, d);
                }
            }
        }
    }

    /// Drops the trees of `keyspace` whose range is not in `keep` (after a ring change).
    pub fn retain(&self, keyspace: &str, keep: &[TokenRange]) {
        if let Some(list) = self.slots().get_mut(keyspace) {
            list.retain(|s| keep.contains(&s.range));
        }
    }

    /// A copy of the built tree of (keyspace, range), if any.
    pub fn get(&self, keyspace: &str, range: TokenRange) -> Option<BuiltTree> {
        self.slots().get(keyspace)?.iter().find(|s| s.range == range)?.current.clone()
    }

    /// Runs `f` on the built tree of (keyspace, range), if any.
    pub fn with_tree<T>(&self, keyspace: &str, range: TokenRange, f: impl FnOnce(&mut BuiltTree) -> T) -> Option<T> {
        let mut slots = self.slots();
        let slot = slots.get_mut(keyspace)?.iter_mut().find(|s| s.range == range)?;
        slot.current.as_mut().map(f)
    }

    /// Starts a rebuild of (keyspace, range): from now on writes the scan has
    /// passed also go to the new tree. Call [`rebuild_page`](Self::rebuild_page)
    /// until it returns true.
    pub fn begin_rebuild(&self, keyspace: &str, range: TokenRange) {
        let _gate = self.scan_gate();
        let mut slots = self.slots();
        let list = slots.entry(keyspace.to_owned()).or_default();
        let building = Building { tree: MerkleTree::new(self.depth), covered_through: None };
        match list.iter_mut().find(|s| s.range == range) {
            Some(slot) => slot.building = Some(building),
            None => list.push(Slot { range, current: None, building: Some(building) }),
        }
    }

    /// Drops an unfinished rebuild of (keyspace, range) (its caller gave
    /// up), so writes stop feeding it; the current tree, if any, stays.
    pub fn abandon_rebuild(&self, keyspace: &str, range: TokenRange) {
        let mut slots = self.slots();
        let Some(list) = slots.get_mut(keyspace) else { return };
        if let Some(slot) = list.iter_mut().find(|s| s.range == range) {
            slot.building = None;
        }
        list.retain(|s| s.current.is_some() || s.building.is_some());
    }

    /// Scans the next page of (keyspace, range) into the tree being built.
    /// Returns the bytes scanned and whether the scan is complete (then the
    /// new tree replaces the old one, stamped `now_ms`).
    pub fn rebuild_page(
        &self,
        storage: &dyn Storage,
        keyspace: &str,
        range: TokenRange,
        now_ms: i64,
    ) -> Result<(u64, bool), StorageError> {
        let _gate = self.scan_gate();
        let covered = {
            let slots = self.slots();
            let slot = slots.get(keyspace).and_then(|l| l.iter().find(|s| s.range == range));
            match slot.and_then(|s| s.building.as_ref()) {
                Some(b) => b.covered_through,
                // Dropped meanwhile (ring change): nothing left to do.
                None => return Ok((0, true)),
            }
        };
        let (page, next_covered, done) = scan_page(storage, keyspace, range, covered)?;
        let mut slots = self.slots();
        let Some(slot) = slots.get_mut(keyspace).and_then(|l| l.iter_mut().find(|s| s.range == range)) else {
            return Ok((0, true));
        };
        let Some(b) = slot.building.as_mut() else { return Ok((0, true)) };
        let mut bytes = 0;
        for (token, c) in page {
            b.tree.insert(bucket_of(range, token, self.depth), c.hash, c.bytes);
            bytes += c.bytes;
        }
        b.covered_through = Some(next_covered);
        if done && let Some(b) = slot.building.take() {
            slot.current = Some(BuiltTree { tree: b.tree, built_at_ms: now_ms });
        }
        Ok((bytes, done))
    }
}

fn apply_one(tree: &mut MerkleTree, bucket: u32, d: &Delta) {
    if let Some(old) = d.old {
        tree.remove(bucket, old.hash, old.bytes);
    }
    if let Some(new) = d.new {
        tree.insert(bucket, new.hash, new.bytes);
    }
}

/// The records of (keyspace, range) strictly after `covered` (in range order), at
/// most about [`REBUILD_PAGE`]; ends at a token boundary. Returns them, the
/// last token now covered and whether the range is done.
type Page = (Vec<(Token, Contribution)>, Token, bool);

fn scan_page(
    storage: &dyn Storage,
    keyspace: &str,
    range: TokenRange,
    covered: Option<Token>,
) -> Result<Page, StorageError> {
    // The first token still to scan, and the end of its segment: a wrapping
    // range is scanned as (start, MAX] then [0, end].
    let next = covered.map_or(range.start.wrapping_add(1), |c| c.wrapping_add(1));
    if covered == Some(range.end) || (covered.is_some() && offset(range, next) == 0) {
        return Ok((Vec::new(), range.end, true));
    }
    let segment_end =
        if next <= range.end && !(range.start == range.end && next > range.start) { range.end } else { Token::MAX };
    let after =
        next.checked_sub(1).map(|t| ScanPosition { token: t, keyspace: String::new(), key: Default::default() });
    let mut limit = REBUILD_PAGE;
    loop {
        let found = storage.scan(after.as_ref(), Some(segment_end), Some(keyspace), limit)?;
        let full = found.len() == limit;
        let in_range: Vec<_> = found.into_iter().filter(|s| s.token >= next && range.contains(s.token)).collect();
        if !full {
            let page = in_range.iter().map(|s| (s.token, Contribution::of(&s.keyspace, &s.key, &s.record))).collect();
            let done = segment_end == range.end;
            return Ok((page, segment_end, done));
        }
        // A full page: keep whole tokens only (drop the last token's records, they come next time).
        let Some(last) = in_range.last().map(|s| s.token) else {
            limit *= 2;
            continue;
        };
        let page: Vec<_> = in_range
            .iter()
            .filter(|s| s.token < last)
            .map(|s| (s.token, Contribution::of(&s.keyspace, &s.key, &s.record)))
            .collect();
        if page.is_empty() {
            // Every record of the page has one token: read more at once.
            limit *= 2;
            continue;
        }
        return Ok((page, last - 1, false));
    }
}
