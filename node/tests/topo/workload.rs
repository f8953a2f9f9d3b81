//! The client workload of the topology simulations and their final checks.
//!
//! Clients loop until stopped: each picks a key and a node, and either
//! writes blind (60 %) or reads and writes back with the read's context
//! (40 %), at QUORUM, with a value never written before. Acknowledged writes are kept
//! for [`lost_acks`]; errors are counted (replicas down, lost messages,
//! nodes coming and going all refuse writes; none of that is a bug here).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use ringkv_node::replication::{ConsistencyLevel, PutOptions};
use ringkv_node::server::status::classify;
use ringkv_node::version::{ConflictMode, Record, VersionVector};
use tokio_util::sync::CancellationToken;

use super::Topo;
use crate::sim::dots::{Acked, DotClash, dot_clashes, log_clashes, lost_acks};
use crate::sim::{KS, at, b};

/// Keys the clients write.
pub const KEYS: usize = 240;
/// Keys each client mostly writes.
pub const KEYS_PER_CLIENT: usize = 8;

/// What the clients saw.
#[derive(Debug, Default)]
pub struct Clients {
    pub acked: Vec<Acked>,
    pub failed: BTreeMap<String, u32>,
}

/// Key `k`.
pub fn key(k: usize) -> Bytes {
    b(&format!("key-{k:03}"))
}

/// Client `id` until `stop`; one operation every 1..=`gap_ms` ms. Like an
/// application server with a connection to one node, it goes through its
/// home node (slot `id`) while that serves ([`Topo::serving`]), else
/// through a random one; most
/// of its writes are to its own keys, the rest to anyone's.
pub async fn client(c: &Topo, seed: u64, id: usize, gap_ms: u64, stop: &CancellationToken, out: &RefCell<Clients>) {
    let mut rng = StdRng::seed_from_u64(seed * 1000 + id as u64);
    let mut op = 0u32;
    while !stop.is_cancelled() {
        tokio::time::sleep(Duration::from_millis(rng.random_range(1..=gap_ms))).await;
        let up = c.serving();
        if up.is_empty() {
            continue;
        }
        let via = if up.contains(&id) { id } else { up[rng.random_range(0..up.len())] };
        let Some(node) = c.running(via) else { continue };
        let k = if rng.random_bool(0.9) {
            (id * KEYS_PER_CLIENT + rng.random_range(0..KEYS_PER_CLIENT)) % KEYS
        } else {
            rng.random_range(0..KEYS)
        };
        let value = b(&format!("k{k:03}=c{id}.{op}"));
        op += 1;
        let context = if rng.random_bool(0.4) {
            match node.coordinator.get(KS, key(k), at(ConsistencyLevel::Quorum)).await {
                Ok(read) => read.context,
                Err(e) => {
                    *out.borrow_mut().failed.entry(format!("read: {}", classify(&e).code)).or_default() += 1;
                    continue;
                }
            }
        } else {
            Bytes::new()
        };
        let opts = PutOptions { context, consistency: at(ConsistencyLevel::Quorum), ..PutOptions::default() };
        match node.coordinator.put(KS, key(k), value.clone(), opts).await {
            Ok(w) => {
                let context = VersionVector::decode_context(&w.context).expect("context");
                out.borrow_mut().acked.push(Acked { keyspace: KS.into(), key: key(k), value: Some(value), context });
            }
            Err(e) => *out.borrow_mut().failed.entry(format!("write: {}", classify(&e).code)).or_default() += 1,
        }
    }
}

/// What the final checks found.
#[derive(Debug, Default)]
pub struct Verdict {
    /// Dots two replicas hold with different values.
    pub replica_clashes: Vec<DotClash>,
    /// Dots minted twice for different writes.
    pub log_clashes: Vec<DotClash>,
    /// Acknowledged writes that are gone.
    pub lost: Vec<String>,
}

/// The unique-dot checks over every running node (now, and at every record
/// write), and the no-lost-write check
/// over the merge of each key's replicas in `witness`'s ring.
pub fn check(c: &Topo, witness: usize, acked: &[Acked]) -> Verdict {
    let copies = c.all_copies();
    let mut replica_clashes = dot_clashes(copies.iter().map(|(h, k, r)| (h.clone(), KS, k.as_ref(), r)));
    let seen = c.watch.clashes();
    let earlier: Vec<DotClash> =
        seen.into_iter().filter(|s| !replica_clashes.iter().any(|f| f.key == s.key && f.dot == s.dot)).collect();
    replica_clashes.extend(earlier);
    let merged = |_: &str, k: &[u8]| -> Option<Record> {
        let mut out: Option<Record> = None;
        for r in c.replicas_of(witness, k).into_iter().filter_map(|i| c.local(i, k)) {
            match &mut out {
                Some(m) => m.merge(&r, ConflictMode::Siblings),
                None => out = Some(r),
            }
        }
        out
    };
    Verdict { replica_clashes, log_clashes: log_clashes(&c.log), lost: lost_acks(&c.log, acked, merged) }
}
