//! One range's repair: the local replica compares its tree with each peer's
//! top-down ([`Descent`]) and the two exchange the records of the differing
//! buckets, each merging what the other sent. A second pass over the peers
//! synced before the last one hands them what later peers contributed, so
//! that every replica ends with the merge of all of them.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use super::merkle::Descent;
use super::peer::{AeError, AntiEntropyPeer, KeyedRecord, TreeRef};

/// What repairing ranges did; added up over a whole repair.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RepairStats {
    /// Bytes covered by the trees compared (both sides, every peer).
    pub bytes_compared: u64,
    /// Leaf buckets that differed.
    pub buckets_differing: u64,
    /// Tree nodes whose hashes were exchanged (both sides).
    pub hashes_exchanged: u64,
    /// Records received from peers (every record of the differing buckets).
    pub records_received: u64,
    /// Records sent to peers (only those the peer did not have as we have them).
    pub records_sent: u64,
    /// Bytes of records received plus sent.
    pub bytes_transferred: u64,
    /// Records merged locally that the peer had and we had not (as is).
    pub records_repaired_here: u64,
}

impl RepairStats {
    /// Adds `other` to `self`.
    pub fn add(&mut self, other: &RepairStats) {
        self.bytes_compared += other.bytes_compared;
        self.buckets_differing += other.buckets_differing;
        self.hashes_exchanged += other.hashes_exchanged;
        self.records_received += other.records_received;
        self.records_sent += other.records_sent;
        self.bytes_transferred += other.bytes_transferred;
        self.records_repaired_here += other.records_repaired_here;
    }
}

fn size(records: &[KeyedRecord]) -> u64 {
    records.iter().map(|(k, r)| (k.len() + r.encode().len()) as u64).sum()
}

/// How old each side's tree may be before it is rebuilt from a scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaxAge {
    /// For the local tree.
    pub local: Duration,
    /// For the peer's tree.
    pub peer: Duration,
}

impl MaxAge {
    /// The same age for both sides.
    pub fn both(age: Duration) -> Self {
        Self { local: age, peer: age }
    }
}

/// Compares `local`'s and `peer`'s trees of `tree` and exchanges the differing buckets.
pub async fn sync_pair(
    local: &dyn AntiEntropyPeer,
    peer: &dyn AntiEntropyPeer,
    tree: &TreeRef,
    max_age: MaxAge,
) -> Result<RepairStats, AeError> {
    let mut stats = RepairStats::default();
    sync_pair_into(local, peer, tree, max_age, &mut stats).await?;
    Ok(stats)
}

/// [`sync_pair`], counting into `stats` as it goes, so that a pair that
/// fails half way still reports what it compared and exchanged.
async fn sync_pair_into(
    local: &dyn AntiEntropyPeer,
    peer: &dyn AntiEntropyPeer,
    tree: &TreeRef,
    max_age: MaxAge,
    stats: &mut RepairStats,
) -> Result<(), AeError> {
    let (ours, theirs) =
        futures::try_join!(local.prepare_tree(tree, max_age.local), peer.prepare_tree(tree, max_age.peer))?;
    stats.bytes_compared = ours.bytes + theirs.bytes;
    let mut descent = Descent::new(tree.depth, ours.root, theirs.root);
    while let Some((level, indices)) = descent.query() {
        stats.hashes_exchanged += 2 * indices.len() as u64;
        let (a, b) =
            futures::try_join!(local.tree_level(tree, level, indices.clone()), peer.tree_level(tree, level, indices))?;
        descent.answer(&a, &b);
    }
    let buckets = descent.buckets().to_vec();
    if buckets.is_empty() {
        return Ok(());
    }
    stats.buckets_differing = buckets.len() as u64;
    let (mine, remote) =
        futures::try_join!(local.bucket_records(tree, buckets.clone()), peer.bucket_records(tree, buckets))?;
    let mine_by_key: HashMap<_, _> = mine.iter().map(|(k, r)| (k.clone(), r)).collect();
    let remote_by_key: HashMap<_, _> = remote.iter().map(|(k, r)| (k.clone(), r)).collect();
    let to_send: Vec<KeyedRecord> = mine.iter().filter(|(k, r)| remote_by_key.get(k) != Some(&r)).cloned().collect();
    let to_merge: Vec<KeyedRecord> = remote.iter().filter(|(k, r)| mine_by_key.get(k) != Some(&r)).cloned().collect();
    stats.records_received = remote.len() as u64;
    stats.records_sent = to_send.len() as u64;
    stats.records_repaired_here = to_merge.len() as u64;
    stats.bytes_transferred = size(&remote) + size(&to_send);
    futures::try_join!(local.merge_records(&tree.keyspace, to_merge), peer.merge_records(&tree.keyspace, to_send))?;
    Ok(())
}

/// The result of repairing one range with all its peers.
#[derive(Debug, Default)]
pub struct RangeOutcome {
    /// What was done.
    pub stats: RepairStats,
    /// Peers that could not be synced, with the reason.
    pub failed: Vec<(String, String)>,
}

/// Repairs `tree` between `local` and every peer (host id, peer); see the module docs.
pub async fn repair_range(
    local: &dyn AntiEntropyPeer,
    peers: &[(String, Arc<dyn AntiEntropyPeer>)],
    tree: &TreeRef,
    max_age: Duration,
) -> RangeOutcome {
    let mut outcome = RangeOutcome::default();
    // The local tree is checked (or rebuilt) once, before any peer, so that
    // a peer failing cannot leave it unchecked for the others.
    if let Err(e) = local.prepare_tree(tree, max_age).await {
        let reason = format!("the local tree could not be prepared: {e}");
        outcome.failed.extend(peers.iter().map(|(host, _)| (host.clone(), reason.clone())));
        return outcome;
    }
    let mut synced = Vec::new();
    let mut changed_after_first = false;
    for (i, (host, peer)) in peers.iter().enumerate() {
        let ages = MaxAge { local: Duration::MAX, peer: max_age };
        let mut stats = RepairStats::default();
        let result = sync_pair_into(local, peer.as_ref(), tree, ages, &mut stats).await;
        outcome.stats.add(&stats);
        match result {
            Ok(()) => {
                changed_after_first |= i > 0 && stats.records_repaired_here > 0;
                synced.push(i);
            }
            Err(e) => outcome.failed.push((host.clone(), e.to_string())),
        }
    }
    if changed_after_first {
        // The trees were just built or checked: do not rebuild them again.
        for &i in synced.iter().filter(|&&i| i + 1 < peers.len()) {
            let (host, peer) = &peers[i];
            let mut stats = RepairStats::default();
            let result = sync_pair_into(local, peer.as_ref(), tree, MaxAge::both(Duration::MAX), &mut stats).await;
            outcome.stats.add(&stats);
            if let Err(e) = result {
                outcome.failed.push((host.clone(), e.to_string()));
            }
        }
    }
    outcome
}
