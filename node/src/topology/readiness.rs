//! Whether a node can serve its ranges (`/readyz`): pure, over the
//! [`ClusterView`].
//!
//! Ready means NORMAL, in the ring, and for every range this node replicates
//! the ring holds at least as many replicas as the default read and write
//! levels need, and that many of them are alive and serve reads. A node that
//! knows fewer replicas than needed (say, one that has formed a cluster whose
//! other members it has not seen NORMAL yet) is not ready: a QUORUM write
//! through it would fail with "2 required, 1 alive".

use crate::membership::{ClusterView, MemberStatus};
use crate::replication::{Access, Consistency, Keyspace, required_replicas};

/// Replicas the default levels of `ks` need per range (the larger of reads and writes).
fn required(view: &ClusterView, ks: &Keyspace) -> usize {
    let need = |access, default| {
        required_replicas(Consistency::default(), access, default, ks.replication_factor, view.zone_count(), &ks.name)
            .unwrap_or(1) as usize
    };
    need(Access::Read, ks.read_consistency).max(need(Access::Write, ks.write_consistency))
}

/// Whether this node can serve every range it replicates at `ks`'s default levels.
pub fn can_serve(view: &ClusterView, ks: &Keyspace) -> bool {
    let local = view.local();
    if local.status != MemberStatus::Normal {
        return false;
    }
    let rf = ks.replication_factor as usize;
    let required = required(view, ks);
    let ring = view.ring();
    let Some(me) = ring.index_of(&local.host_id) else { return false };
    ring.entries().all(|(t, _)| {
        let pref = ring.preference_list(t, rf);
        if !pref.contains(&me) {
            return true;
        }
        let usable = pref
            .iter()
            .filter_map(|i| ring.node(*i))
            .filter_map(|n| view.member(n.host_id.as_str()))
            .filter(|m| m.serves_reads() && view.is_alive(&m.host_id))
            .count();
        usable >= required
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::membership::{Liveness, Member};
    use crate::replication::Keyspaces;

    fn member(host: &str, token: u64, status: MemberStatus) -> Member {
        Member {
            host_id: host.into(),
            node_id: token,
            grpc_addr: "127.0.0.1:1".parse().unwrap(),
            http_addr: "127.0.0.1:2".parse().unwrap(),
            zone: String::new(),
            rack: String::new(),
            tokens: vec![token * 1000],
            generation: 1,
            status,
        }
    }

    fn keyspace(rf: u32) -> std::sync::Arc<Keyspace> {
        let mut config = Config::default();
        config.replication.replication_factor = rf;
        Keyspaces::from_config(&config).get("").unwrap()
    }

    #[test]
    fn a_lone_node_is_ready_only_when_it_alone_makes_the_default_level() {
        let view = ClusterView::new(member("a", 1, MemberStatus::Normal));
        assert!(can_serve(&view, &keyspace(1)), "RF 1, QUORUM of 1: alone is enough");
        assert!(!can_serve(&view, &keyspace(3)), "RF 3, QUORUM of 2: a node that knows only itself is not ready");
    }

    #[test]
    fn a_node_is_ready_once_enough_replicas_of_each_range_are_normal_and_alive() {
        let ks = keyspace(3);
        let view = ClusterView::new(member("a", 1, MemberStatus::Normal));
        view.upsert(member("b", 2, MemberStatus::Joining));
        view.upsert(member("c", 3, MemberStatus::Joining));
        assert!(!can_serve(&view, &ks), "its peers still joining: nothing to make a quorum with");
        view.upsert(member("b", 2, MemberStatus::Normal));
        assert!(can_serve(&view, &ks), "two of three replicas serve: QUORUM works");
        view.set_liveness("b", Liveness::Down);
        assert!(!can_serve(&view, &ks), "one of them down: QUORUM fails");
        view.set_liveness("b", Liveness::Alive);
        view.upsert(member("c", 3, MemberStatus::Normal));
        assert!(can_serve(&view, &ks));
        let joining = ClusterView::new(member("a", 1, MemberStatus::Joining));
        assert!(!can_serve(&joining, &keyspace(1)), "not NORMAL");
    }
}
