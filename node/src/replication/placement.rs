//! Where a key lives: its replicas and stand-ins, and the quorum groups a
//! consistency level asks of them.
//!
//! During a ring transition (a node joining, leaving, being replaced or
//! removed) a key has, besides its replicas in the read ring, *pending*
//! owners: the nodes of its preference list in the write ring that are not in
//! the read one. Writes go to both, and a write waits for W + pending acks
//! (as Cassandra does), so that a write acknowledged during the move is on W
//! owners whichever ring wins. Reads use the replicas of the read ring only,
//! and skip members still streaming their data in (REPLACING).

use std::sync::Arc;

use bytes::Bytes;

use crate::error::KvError;
use crate::membership::Member;
use crate::ring::token_of;

use super::coordinator::Inner;
use super::{Access, Consistency, ConsistencyLevel, Keyspace, QuorumGroup, required_replicas};

/// The nodes a key's request involves.
#[derive(Debug, Clone)]
pub(super) struct Plan {
    /// The key's replicas, in preference order (at most RF).
    pub(super) replicas: Vec<Arc<Member>>,
    /// Owners in the write ring that are not replicas yet: they get writes
    /// (counted on top of W) but serve no reads.
    pub(super) pending: Vec<Arc<Member>>,
    /// Alive nodes after them on the ring, for hints (sloppy quorum).
    pub(super) stand_ins: Vec<Arc<Member>>,
}

impl Plan {
    /// True when `host_id` is a replica that may coordinate and serve reads
    /// (a replica still streaming its data in may do neither).
    pub(super) fn has(&self, host_id: &str) -> bool {
        self.replicas.iter().any(|m| m.host_id == host_id && m.serves_reads())
    }

    /// Every node a write goes to: replicas, then pending owners.
    pub(super) fn write_targets(&self) -> impl Iterator<Item = &Arc<Member>> {
        self.replicas.iter().chain(&self.pending)
    }
}

impl Inner {
    /// The replicas and stand-ins of `(ks, key)`.
    pub(super) fn plan(&self, ks: &Keyspace, key: &Bytes) -> Plan {
        let ring = self.view.ring();
        if ring.is_empty() {
            return Plan { replicas: vec![self.view.local()], pending: Vec::new(), stand_ins: Vec::new() };
        }
        let token = token_of(&ks.name, key);
        let rf = ks.replication_factor as usize;
        let member = |idx| ring.node(idx).and_then(|n| self.view.member(n.host_id.as_str()));
        let replicas: Vec<Arc<Member>> = ring.preference_list(token, rf).into_iter().filter_map(member).collect();
        let stand_ins =
            ring.stand_ins(token, rf).filter_map(member).filter(|m| self.view.is_alive(&m.host_id)).take(rf).collect();
        let pending = match self.view.pending_ring() {
            Some(next) => next
                .preference_list(token, rf)
                .into_iter()
                .filter_map(|idx| next.node(idx).and_then(|n| self.view.member(n.host_id.as_str())))
                .filter(|m| !replicas.iter().any(|r| r.host_id == m.host_id))
                .collect(),
            None => Vec::new(),
        };
        Plan { replicas, pending, stand_ins }
    }

    /// The quorum groups `c` asks of `plan`'s replicas, refusing levels the
    /// keyspace cannot satisfy and requests too few replicas are alive for.
    pub(super) fn quorum_groups(
        &self,
        ks: &Keyspace,
        plan: &Plan,
        c: Consistency,
        access: Access,
    ) -> Result<Vec<QuorumGroup<String>>, KvError> {
        let default = match access {
            Access::Read => ks.read_consistency,
            Access::Write => ks.write_consistency,
        };
        let rf = ks.replication_factor;
        let zones = self.view.zone_count();
        let required = required_replicas(c, access, default, rf, zones, &ks.name)?;
        let explicit = match access {
            Access::Read => c.r.is_some(),
            Access::Write => c.w.is_some(),
        };
        let level = if explicit { None } else { Some(c.level.unwrap_or(default)) };
        let hosts = |filter: &dyn Fn(&Member) -> bool| -> Vec<String> {
            plan.replicas.iter().filter(|m| filter(m)).map(|m| m.host_id.clone()).collect()
        };
        let majority = |n: usize| (n / 2 + 1) as u32;
        let mut groups = match level {
            Some(ConsistencyLevel::LocalQuorum) => {
                let zone = self.view.local().zone.clone();
                let members = hosts(&|m| m.zone == zone);
                vec![QuorumGroup { name: format!("zone {zone}"), required: majority(members.len()), members }]
            }
            Some(ConsistencyLevel::EachQuorum) => {
                let mut zones: Vec<String> = plan.replicas.iter().map(|m| m.zone.clone()).collect();
                zones.sort();
                zones.dedup();
                zones
                    .into_iter()
                    .map(|zone| {
                        let members = hosts(&|m| m.zone == zone);
                        QuorumGroup { name: format!("zone {zone}"), required: majority(members.len()), members }
                    })
                    .collect()
            }
            _ => vec![QuorumGroup { name: "replicas".into(), members: hosts(&|_| true), required }],
        };
        if access == Access::Write {
            // Pending owners in a group's scope are added to it and must ack on top of W.
            for g in &mut groups {
                let in_scope = |m: &Member| match level {
                    Some(ConsistencyLevel::LocalQuorum | ConsistencyLevel::EachQuorum) => {
                        g.name == format!("zone {}", m.zone)
                    }
                    _ => true,
                };
                for m in plan.pending.iter().filter(|m| in_scope(m)) {
                    g.members.push(m.host_id.clone());
                    g.required += 1;
                }
            }
        }
        let any = level == Some(ConsistencyLevel::Any);
        let usable = |h: &String| {
            self.view.is_alive(h)
                && (access == Access::Write || plan.replicas.iter().any(|m| &m.host_id == h && m.serves_reads()))
        };
        for g in &groups {
            let alive = g.members.iter().filter(|h| usable(h)).count() as u32;
            let sloppy_alive = if any || (self.settings.sloppy && access == Access::Write) {
                alive + plan.stand_ins.len() as u32 + u32::from(any)
            } else {
                alive
            };
            if sloppy_alive < g.required || (g.members.len() as u32) < g.required {
                return Err(KvError::Unavailable { required: g.required, alive });
            }
        }
        Ok(groups)
    }

    /// True when reads at `c` repair before answering (QUORUM and stronger),
    /// so that a read never returns something older than a previous one did.
    pub(super) fn blocking_repair(&self, ks: &Keyspace, groups: &[QuorumGroup<String>]) -> bool {
        let required: u32 = groups.iter().map(|g| g.required).sum();
        required > ks.replication_factor / 2 && required > 1
    }
}
