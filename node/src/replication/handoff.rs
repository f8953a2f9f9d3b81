//! Hinted handoff on the write path: where the hint for a replica that missed
//! a write goes, and whether a stored hint counts toward W (sloppy quorum).
//!
//! [`HintPolicy`] is the pure decision: stand-ins are taken in ring order, one
//! per hint, and when none is left the hint stays in this node's own
//! [`HintStore`](crate::hints::HintStore). Hints count toward W only with
//! `sloppy = true` or at level ANY. The shell (`store_hint`)
//! sends the hint to the stand-in and falls back to the local store.

use std::sync::Arc;

use bytes::Bytes;

use crate::membership::Member;
use crate::transport::{HintedWrite, Peer, ReplicaWrite};
use crate::version::Record;

use super::{Coordinator, Keyspace};

/// Where one hint goes: for `target`, stored on the stand-in `via`, or here when `None`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct HintFor {
    /// The replica that missed the write.
    pub(super) target: String,
    /// The stand-in asked to keep the hint.
    pub(super) via: Option<String>,
}

/// The hinted-handoff policy of one write (pure).
#[derive(Debug, Clone)]
pub(super) struct HintPolicy {
    counts: bool,
    stand_ins: std::vec::IntoIter<String>,
}

impl HintPolicy {
    /// `stand_ins` in ring order; hints count toward W when `sloppy` or at level ANY.
    pub(super) fn new(stand_ins: Vec<String>, sloppy: bool, any: bool) -> Self {
        Self { counts: sloppy || any, stand_ins: stand_ins.into_iter() }
    }

    /// True when a durable hint counts as the target's acknowledgement.
    pub(super) fn counts(&self) -> bool {
        self.counts
    }

    /// The hint for `target`: on the next unused stand-in, or here.
    pub(super) fn hint_for(&mut self, target: &str) -> HintFor {
        HintFor { target: target.to_owned(), via: self.stand_ins.next() }
    }
}

/// The handoff shell: stores the hint for `target` on its stand-in `via`
/// (resolved by the caller) when there is one and it answers, else in this
/// node's own hint store. `Ok(true)` once the hint is durable somewhere.
pub(super) async fn store_hint(
    c: Coordinator,
    ks: Arc<Keyspace>,
    key: Bytes,
    record: Record,
    target: String,
    via: Option<Arc<Member>>,
) -> Result<bool, String> {
    let local = c.inner.view.local_host_id().to_owned();
    if let Some(stand_in) = via.filter(|s| s.host_id != local) {
        let write = ReplicaWrite {
            keyspace: ks.name.clone(),
            key: key.clone(),
            record: record.clone(),
            hint_for: Some(target.clone()),
        };
        match c.inner.transport.write(&Peer::from(&stand_in), write).await {
            Ok(()) => return Ok(true),
            Err(e) => {
                tracing::debug!(stand_in = %stand_in.host_id, error = %e, "stand-in refused the hint; keeping it here")
            }
        }
    }
    let hinted = HintedWrite { keyspace: ks.name.clone(), key, record, created_at_ms: c.inner.clock.now_ms() };
    let target2 = target.clone();
    let stored = c.point_write(move |inner| Ok(inner.hints.store(&target2, &hinted)?)).await;
    let result = match stored {
        Ok(ticket) => ticket.wait().await.map(|()| true).map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    if let Err(e) = &result {
        tracing::error!(target = %target, error = %e, "could not store a hint; the replica will need repair");
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn hints_take_the_stand_ins_in_ring_order_then_stay_here() {
        let mut p = HintPolicy::new(hosts(&["d", "e"]), false, false);
        let via = |h: &HintFor| h.via.clone();
        assert_eq!(via(&p.hint_for("a")).as_deref(), Some("d"));
        let second = p.hint_for("b");
        assert_eq!((second.target.as_str(), second.via.as_deref()), ("b", Some("e")));
        assert_eq!(p.hint_for("c"), HintFor { target: "c".into(), via: None }, "no stand-in left: kept here");
        assert_eq!(p.hint_for("a").via, None);
    }

    #[test]
    fn hints_count_toward_w_only_when_sloppy_or_at_any() {
        for (sloppy, any, counts) in
            [(false, false, false), (true, false, true), (false, true, true), (true, true, true)]
        {
            assert_eq!(HintPolicy::new(Vec::new(), sloppy, any).counts(), counts, "sloppy={sloppy} any={any}");
        }
    }
}
