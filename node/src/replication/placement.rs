//! Where a key lives: its replicas and stand-ins, and the quorum groups a
//! consistency level asks of them.

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
    /// Alive nodes after them on the ring, for hints (sloppy quorum).
    pub(super) stand_ins: Vec<Arc<Member>>,
}

impl Plan {
    pub(super) fn has(&self, host_id: &str) -> bool {
        self.replicas.iter().any(|m| m.host_id == host_id)
    }
}

impl Inner {
    /// The replicas and stand-ins of `(ks, key)`.
    pub(super) fn plan(&self, ks: &Keyspace, key: &Bytes) -> Plan {
        let ring = self.view.ring();
        if ring.is_empty() {
            return Plan { replicas: vec![self.view.local()], stand_ins: Vec::new() };
        }
        let token = token_of(&ks.name, key);
        let rf = ks.replication_factor as usize;
        let member = |idx| ring.node(idx).and_then(|n| self.view.member(n.host_id.as_str()));
        let replicas: Vec<Arc<Member>> = ring.preference_list(token, rf).into_iter().filter_map(member).collect();
        let stand_ins =
            ring.stand_ins(token, rf).filter_map(member).filter(|m| self.view.is_alive(&m.host_id)).take(rf).collect();
        Plan { replicas, stand_ins }
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
        let groups = match level {
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
        let any = level == Some(ConsistencyLevel::Any);
        for g in &groups {
            let alive = g.members.iter().filter(|h| self.view.is_alive(h)).count() as u32;
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
