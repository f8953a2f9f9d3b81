//! Deterministic simulation of conditional writes racing on one key:
//! put-if-absent pairs sent at the same instant through two different nodes
//! (both replicas, or a replica and a non-replica), with no failure.
//!
//! Put-if-absent is routed like CAS, to the key's first live replica, where
//! both requests meet under one key lock: exactly one wins. Before that each
//! replica decided on its own copy and both won (two siblings). This is not
//! linearizable under failures (that takes Paxos); the test injects none.

mod sim;

use bytes::Bytes;
use ringkv_node::replication::{ConsistencyLevel::*, PutOptions};
use sim::{KS, SimCluster, at, b};

fn if_absent() -> PutOptions {
    PutOptions { if_absent: true, consistency: at(Quorum), ..PutOptions::default() }
}

/// Races one put-if-absent pair per `(left, right)` entry point; returns how many pairs had two winners.
async fn race(c: &SimCluster, pairs: &[(usize, usize)], round: &str) -> usize {
    let mut double = 0;
    for (n, &(left, right)) in pairs.iter().enumerate() {
        let key = b(&format!("{round}-{n}"));
        let (l, r) = futures::join!(
            c.node(left).put(KS, key.clone(), b("left"), if_absent()),
            c.node(right).put(KS, key.clone(), b("right"), if_absent()),
        );
        let (l, r) = (l.expect("left put-if-absent"), r.expect("right put-if-absent"));
        assert!(l.applied || r.applied, "{round} {n}: neither put-if-absent won on an absent key");
        let read = c.node(left).get(KS, key.clone(), at(All)).await.expect("read at ALL");
        let values: Vec<Bytes> = read.siblings.iter().filter_map(|s| s.value.clone()).collect();
        if l.applied && r.applied {
            double += 1;
            assert_eq!(values.len(), 2, "{round} {n}: both won, so both values are siblings: {values:?}");
        } else {
            let winner = if l.applied { b("left") } else { b("right") };
            assert_eq!(values, vec![winner], "{round} {n}: the loser's value must not be stored");
        }
    }
    double
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn concurrent_put_if_absent_through_two_nodes_has_one_winner() {
    for seed in 0..4u64 {
        let c = SimCluster::new(seed).delay_ms(1..=20).build();
        let mut through_replicas = Vec::new();
        let mut through_a_non_replica = Vec::new();
        for n in 0..12 {
            let replicas = c.replicas_of(format!("replicas-{n}").as_bytes());
            // The two replicas after the first: each would coordinate on its own copy.
            through_replicas.push((replicas[1], replicas[2]));
            let key = format!("mixed-{n}");
            let (replicas, others) = (c.replicas_of(key.as_bytes()), c.non_replicas_of(key.as_bytes()));
            through_a_non_replica.push((replicas[1], others[0]));
        }
        let before = c.net.stats();
        let double = race(&c, &through_replicas, "replicas").await + race(&c, &through_a_non_replica, "mixed").await;
        assert!(c.net.stats().since(&before).delivered > 0, "seed {seed}: the requests crossed no network");
        assert_eq!(double, 0, "seed {seed}: {double} of 24 put-if-absent pairs had two winners");
    }
}
