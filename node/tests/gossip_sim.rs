//! Gossip and phi-accrual failure detection, proven on the sans-IO core
//! ([`ringkv_node::membership::Gossiper`]) over a simulated network
//! (`gossip_net`): virtual time, seeded, with delay, jitter, loss, crashes
//! and partitions. Every scenario runs several seeds (`RINGKV_GOSSIP_SEEDS`
//! raises the count, e.g. `RINGKV_GOSSIP_SEEDS=50`).
//!
//! This is the sans-IO simulation: it models what the shell-level one
//! (`gossip_shell_sim.rs`, real `GossipWorker`s over the one `SimNetwork`)
//! cannot: TCP connections (retransmission timing after a cut, reconnects),
//! name resolution following restarts, and clusters of 50 to 100 nodes.
//!
//! Measured numbers are printed (`cargo test -p ringkv-node --test gossip_sim -- --nocapture`).

mod gossip_net;

use gossip_net::{GossipSim, NetConfig, host};
use ringkv_node::membership::{AppStateKey, AppValue, Liveness, MemberStatus};

fn seeds() -> u64 {
    std::env::var("RINGKV_GOSSIP_SEEDS").ok().and_then(|s| s.parse().ok()).unwrap_or(4)
}

/// `RINGKV_GOSSIP_HEAVY=1` adds the large variants (minutes in a debug build).
fn heavy() -> bool {
    std::env::var_os("RINGKV_GOSSIP_HEAVY").is_some()
}

/// Rounds allowed for full convergence: `C * log2(n)`.
const C: f64 = 2.0;

fn bound(n: usize) -> u64 {
    (C * (n as f64).log2()).ceil() as u64
}

/// A cluster started from nothing (each node knows only the 3 seeds'
/// addresses) converges in at most C·log2(n) rounds, for 50 and 100 nodes.
#[test]
fn a_cold_cluster_converges_in_logarithmic_rounds() {
    for n in [50usize, 100] {
        let mut worst = 0;
        for seed in 0..seeds() {
            let mut sim = GossipSim::new(n, 3, seed, NetConfig::default());
            let rounds = sim.rounds_to_converge(200).unwrap_or_else(|| panic!("n={n} seed={seed}: no convergence"));
            assert!(rounds <= bound(n), "n={n} seed={seed}: {rounds} rounds > {} = {C}*log2(n)", bound(n));
            worst = worst.max(rounds);
        }
        println!("cold start n={n}: worst {worst} rounds to converge (bound {})", bound(n));
    }
}

/// One node's status and token change reaches every node of a converged
/// cluster in at most C·log2(n) rounds.
#[test]
fn a_status_and_token_change_spreads_in_logarithmic_rounds() {
    for n in [50usize, 100] {
        let mut worst = 0;
        for seed in 0..seeds() {
            let mut sim = GossipSim::new(n, 3, 100 + seed, NetConfig::default());
            sim.rounds_to_converge(200).unwrap_or_else(|| panic!("n={n} seed={seed}: no convergence"));
            let changer = (seed as usize * 7 + 5) % n;
            let tokens = vec![42, 4242, 424242];
            assert!(
                sim.core_mut(changer)
                    .update_local([AppValue::Status(MemberStatus::Leaving), AppValue::Tokens(tokens.clone())])
            );
            assert!(!sim.converged(), "the change is not known yet");
            let rounds = sim.rounds_to_converge(200).unwrap_or_else(|| panic!("n={n} seed={seed}: change lost"));
            for i in 0..n {
                let seen = sim.core(i).endpoint(&host(changer)).and_then(|s| s.to_member(&host(changer)));
                let seen = seen.unwrap_or_else(|| panic!("node {i} does not know {changer}"));
                assert_eq!((seen.status, seen.tokens.clone()), (MemberStatus::Leaving, tokens.clone()), "node {i}");
            }
            assert!(rounds <= bound(n), "n={n} seed={seed}: {rounds} rounds > {}", bound(n));
            worst = worst.max(rounds);
        }
        println!("status change n={n}: worst {worst} rounds to reach everyone (bound {})", bound(n));
    }
}

/// At the defaults a SIGKILLed node is DOWN at every peer within 10 s, in
/// clusters of 3, 5, 10 and 50 nodes (100 with `RINGKV_GOSSIP_HEAVY`), with
/// 200 ms of jitter: detection uses direct probes, so it does not slow down
/// as the cluster grows.
#[test]
fn a_killed_node_is_down_everywhere_within_10s() {
    let limit = 10_000u64;
    let mut sizes = vec![3usize, 5, 10, 50];
    if heavy() {
        sizes.push(100);
    }
    for n in sizes {
        let mut worst = 0;
        for seed in 0..seeds() {
            let net = NetConfig { delay_ms: 1, jitter_ms: 200, loss: 0.0 };
            let mut sim = GossipSim::new(n, 3.min(n), 200 + seed, net);
            sim.run_for(60_000);
            assert!(sim.all_see_all(Liveness::Alive), "n={n} seed={seed}: not all alive before the kill");
            let victim = (seed as usize) % n;
            let killed_at = sim.now();
            sim.crash(victim);
            sim.run_for(20_000);
            for observer in (0..n).filter(|&o| o != victim) {
                let down = sim
                    .verdicts
                    .iter()
                    .find(|v| v.observer == observer && v.target == victim && v.to == Liveness::Down)
                    .unwrap_or_else(|| panic!("n={n} seed={seed}: node {observer} never convicted {victim}"));
                worst = worst.max(down.at - killed_at);
            }
            assert!(sim.drops.down > 0, "messages to the dead node were dropped (the crash fired)");
        }
        println!("kill n={n}: slowest peer marked the dead node DOWN after {worst} ms (limit {limit})");
        assert!(worst <= limit, "n={n}: a peer took {worst} ms");
    }
}

/// With 200 ms of delay jitter, and with 5 % message loss on top, no live
/// node is convicted in an hour of virtual time (3 and 10 nodes; 30 with
/// `RINGKV_GOSSIP_HEAVY`). Not even SUSPECT once they know each other: the
/// SUSPECT verdicts counted are those of the cold start.
#[test]
fn jitter_and_loss_never_convict_a_live_node_in_an_hour() {
    let mut cases = vec![(3usize, 0.0), (3, 0.05), (10, 0.05)];
    if heavy() {
        cases.push((30, 0.05));
    }
    for (n, loss) in cases {
        let mut suspects = 0;
        for seed in 0..seeds() {
            let net = NetConfig { delay_ms: 1, jitter_ms: 200, loss };
            let mut sim = GossipSim::new(n, 3.min(n), 300 + seed, net);
            sim.run_for(3_600_000);
            let wrong: Vec<_> = sim.verdicts.iter().filter(|v| v.to == Liveness::Down).collect();
            assert!(
                wrong.is_empty(),
                "n={n} loss={loss} seed={seed}: live nodes convicted: {:?}",
                &wrong[..wrong.len().min(5)]
            );
            suspects += sim.verdicts.iter().filter(|v| v.to == Liveness::Suspect).count();
            if loss > 0.0 {
                assert!(sim.drops.loss > 0, "the loss fired");
            }
            assert!(sim.all_see_all(Liveness::Alive));
        }
        println!(
            "1 h, n={n}, jitter 200 ms, loss {loss}: 0 convictions, {suspects} SUSPECT verdicts over {} seeds",
            seeds()
        );
    }
}

/// A node that restarts (new generation, new address, new tokens) replaces
/// its old state everywhere and is ALIVE again.
#[test]
fn a_restarted_node_replaces_its_old_state_everywhere() {
    let n = 10;
    for seed in 0..seeds() {
        let mut sim = GossipSim::new(n, 3, 400 + seed, NetConfig::default());
        sim.rounds_to_converge(100).unwrap_or_else(|| panic!("seed={seed}: no convergence"));
        let victim = 1 + (seed as usize) % (n - 1);
        sim.core_mut(victim).update_local([AppValue::Load(12345)]);
        sim.run_for(10_000);
        sim.crash(victim);
        sim.run_for(15_000);
        assert!((0..n).filter(|&o| o != victim).all(|o| sim.core(o).liveness(&host(victim)) == Liveness::Down));
        sim.restart(victim, vec![7, 8, 9]);
        let restarted_at = sim.now();
        let rounds = sim.rounds_to_converge(30).unwrap_or_else(|| panic!("seed={seed}: restart not learned"));
        sim.run_for(2_000);
        let new = sim.member(victim).clone();
        for o in 0..n {
            let state = sim.core(o).endpoint(&host(victim)).unwrap_or_else(|| panic!("node {o} lost {victim}"));
            assert_eq!(state.to_member(&host(victim)).as_ref(), Some(&new), "node {o} holds the new state");
            assert_eq!(state.get(AppStateKey::Load), None, "node {o} dropped the old generation's load");
            assert_eq!(sim.core(o).liveness(&host(victim)), Liveness::Alive, "node {o}");
        }
        let back =
            sim.verdicts.iter().filter(|v| v.target == victim && v.at >= restarted_at && v.to == Liveness::Alive);
        assert_eq!(back.count(), n - 1, "every peer saw it come back once");
        println!("seed {seed}: restart known everywhere after {rounds} rounds");
    }
}

/// A partition makes each side convict the other; once healed, the cluster
/// re-converges (every node alive, the changes made meanwhile known everywhere).
#[test]
fn a_healed_partition_reconverges() {
    let n = 12;
    for seed in 0..seeds() {
        let mut sim = GossipSim::new(n, 3, 500 + seed, NetConfig::default());
        sim.rounds_to_converge(100).unwrap_or_else(|| panic!("seed={seed}: no convergence"));
        // Seeds 0..3 on side 0 with nodes 3..6; nodes 6..12 alone on side 1.
        let groups: Vec<u8> = (0..n).map(|i| u8::from(i >= n / 2)).collect();
        sim.partition(Some(groups.clone()));
        sim.run_for(30_000);
        assert!(sim.drops.partition > 0, "the partition cut traffic");
        for i in 0..n {
            for j in (0..n).filter(|&j| groups[j] != groups[i]) {
                assert_eq!(sim.core(i).liveness(&host(j)), Liveness::Down, "{i} convicted {j} across the cut");
            }
        }
        sim.core_mut(n - 1).update_local([AppValue::Status(MemberStatus::Leaving)]);
        sim.core_mut(0).update_local([AppValue::Schema("v2".into())]);
        sim.partition(None);
        let healed_at = sim.now();
        let rounds = sim.rounds_to_converge(30).unwrap_or_else(|| panic!("seed={seed}: no re-convergence"));
        let mut waited = 0;
        while !sim.all_see_all(Liveness::Alive) && waited < 30 {
            sim.run_for(1_000);
            waited += 1;
        }
        assert!(sim.all_see_all(Liveness::Alive), "seed={seed}: not all alive 30 s after healing");
        println!(
            "seed {seed}: healed partition re-converged in {rounds} rounds, all alive after {} ms",
            sim.now() - healed_at
        );
    }
}

/// After a cut longer than the detector's conviction time (every node
/// isolated for 10 s: all convict all), every node sees every other ALIVE
/// within 2 s of the heal. Connections that lost packets during the cut
/// wait out TCP's retransmission backoff (the next retransmission 12.6 s
/// after the first loss); probes to a peer silent for two intervals open a
/// new connection, so the heal is seen within an interval.
#[test]
fn after_a_long_cut_nodes_see_each_other_within_2s_of_the_heal() {
    let n = 5;
    let mut worst = 0;
    for seed in 0..seeds() {
        let mut sim = GossipSim::new(n, 3, 600 + seed, NetConfig::default());
        sim.rounds_to_converge(100).unwrap_or_else(|| panic!("seed={seed}: no convergence"));
        sim.run_for(20_000);
        assert!(sim.all_see_all(Liveness::Alive), "seed={seed}: alive before the cut");
        sim.partition(Some((0..n as u8).collect()));
        sim.run_for(10_000);
        assert!(sim.drops.partition > 0, "the cut dropped messages");
        assert!(sim.all_see_all(Liveness::Down), "seed={seed}: after 10 s every node convicted every other");
        sim.partition(None);
        let healed_at = sim.now();
        while !sim.all_see_all(Liveness::Alive) && sim.now() - healed_at < 30_000 {
            sim.run_for(50);
        }
        let took = sim.now() - healed_at;
        println!("seed {seed}: all alive {took} ms after healing a 10 s cut");
        worst = worst.max(took);
    }
    assert!(worst <= 2_000, "a node took {worst} ms after the heal to see every other alive (target 2000)");
}

/// A rolling restart in Kubernetes: the seeds (nodes 0 and 1, known by
/// name) restart on new IPs with empty data while cut off from nodes 2 and
/// 3, so {0, 1} and {2, 3} each form a ring of their own. Once the network
/// heals, 2 and 3 follow the seeds' names to the new addresses and the two
/// groups merge into one cluster, every node alive and known everywhere.
#[test]
fn split_rings_merge_once_seed_names_resolve_to_the_new_addresses() {
    let n = 4;
    for seed in 0..seeds() {
        let mut sim = GossipSim::new(n, 2, 700 + seed, NetConfig::default());
        sim.rounds_to_converge(100).unwrap_or_else(|| panic!("seed={seed}: no convergence"));
        sim.partition(Some(vec![0, 0, 1, 1]));
        sim.crash(0);
        sim.crash(1);
        sim.run_for(15_000);
        sim.restart_with(0, vec![11], false);
        sim.restart_with(1, vec![12], false);
        sim.run_for(10_000);
        assert_eq!(sim.core(0).endpoints().len(), 2, "seed={seed}: the restarted seeds know only each other");
        assert!(sim.core(2).liveness(&host(0)) == Liveness::Down && sim.core(3).liveness(&host(1)) == Liveness::Down);
        sim.partition(None);
        let healed_at = sim.now();
        let rounds = sim.rounds_to_converge(30).unwrap_or_else(|| panic!("seed={seed}: the two rings never merged"));
        while !sim.all_see_all(Liveness::Alive) && sim.now() - healed_at < 30_000 {
            sim.run_for(100);
        }
        assert!(sim.all_see_all(Liveness::Alive), "seed={seed}: not all alive 30 s after the heal");
        for i in 0..n {
            let at = sim.core(i).endpoint(&host(0)).and_then(|s| s.to_member(&host(0))).map(|m| m.grpc_addr);
            assert_eq!(at, Some(sim.member(0).grpc_addr), "seed={seed}: node {i} knows seed 0's new address");
        }
        println!("seed {seed}: merged in {rounds} rounds, all alive {} ms after the heal", sim.now() - healed_at);
    }
}

fn status_seen(sim: &GossipSim, observer: usize, target: usize) -> Option<MemberStatus> {
    sim.core(observer).endpoint(&host(target)).and_then(|s| s.to_member(&host(target))).map(|m| m.status)
}

/// removenode as gossip: node 0 writes LEAVING then LEFT into the dead
/// node 5's state. The LEFT state reaches a node that was partitioned away
/// during the removal (holding the old NORMAL state), a node that was down
/// and restarts from its saved membership, a node restarting with its saved
/// membership, and a brand-new node; the removed node itself, started again
/// on its old data, stays LEFT everywhere and learns it was removed.
#[test]
fn a_removal_reaches_every_node_and_the_removed_host_never_comes_back() {
    let n = 6;
    let dead = 5;
    for seed in 0..seeds() {
        let mut sim = GossipSim::new(n, 3, 800 + seed, NetConfig::default());
        sim.rounds_to_converge(100).unwrap_or_else(|| panic!("seed={seed}: no convergence"));
        sim.crash(dead);
        sim.crash(4);
        sim.partition(Some(vec![0, 0, 1, 0, 0, 0]));
        sim.run_for(15_000);
        assert!(sim.core(0).liveness(&host(dead)) == Liveness::Down);
        assert!(sim.core_mut(0).advertise_removal(&host(dead), MemberStatus::Leaving));
        sim.run_for(5_000);
        assert_eq!(status_seen(&sim, 3, dead), Some(MemberStatus::Leaving), "seed={seed}: LEAVING spread");
        assert!(sim.core_mut(0).advertise_removal(&host(dead), MemberStatus::Left));
        assert!(!sim.core_mut(0).advertise_removal(&host(dead), MemberStatus::Leaving), "LEFT is final");
        sim.run_for(5_000);
        assert_eq!(status_seen(&sim, 2, dead), Some(MemberStatus::Normal), "node 2 is cut off and holds NORMAL");
        sim.restart_with(4, vec![44], true);
        sim.restart_with(1, vec![11], true);
        let newcomer = sim.add_node();
        sim.partition(None);
        sim.run_for(20_000);
        for i in (0..sim.nodes()).filter(|&i| i != dead) {
            assert_eq!(status_seen(&sim, i, dead), Some(MemberStatus::Left), "seed={seed}: node {i}");
        }
        assert!(sim.core(newcomer).endpoint(&host(dead)).is_some_and(|s| s.is_left()));
        // The removed node is started again on its old data directory.
        sim.restart_with(dead, vec![55], true);
        sim.run_for(20_000);
        for i in (0..sim.nodes()).filter(|&i| i != dead) {
            assert_eq!(status_seen(&sim, i, dead), Some(MemberStatus::Left), "seed={seed}: node {i} after it returned");
        }
        assert_eq!(sim.removed_notices, vec![dead], "seed={seed}: the removed node learned it, once");
        println!("seed {seed}: the removal reached all {} nodes", sim.nodes() - 1);
    }
}

/// A node restarting from its saved membership knows the whole ring at
/// once (each peer DOWN until it answers), so it never serves as the whole
/// ring, even when no seed answers; peers that answer are ALIVE within an
/// interval or two.
#[test]
fn a_restart_from_saved_membership_knows_the_ring_and_judges_peers_by_their_answers() {
    let n = 5;
    for seed in 0..seeds() {
        let mut sim = GossipSim::new(n, 2, 900 + seed, NetConfig::default());
        sim.rounds_to_converge(100).unwrap_or_else(|| panic!("seed={seed}: no convergence"));
        sim.crash(0);
        sim.crash(1);
        sim.crash(2);
        sim.run_for(1_000);
        sim.restart_with(4, vec![44], true);
        assert_eq!(sim.core(4).endpoints().len(), n, "every member known before any message");
        assert!((0..4).all(|p| sim.core(4).liveness(&host(p)) == Liveness::Down), "restored peers start DOWN");
        sim.run_for(3_000);
        assert_eq!(sim.core(4).liveness(&host(3)), Liveness::Alive, "seed={seed}: the live peer answered");
        assert!((0..3).all(|p| sim.core(4).liveness(&host(p)) == Liveness::Down), "the dead stay DOWN");
    }
}

/// Not a check: prints the heartbeat inter-arrival statistics the detector
/// sees (for tuning `DetectorConfig`). `cargo test -p ringkv-node --test gossip_sim -- --ignored --nocapture`
#[test]
#[ignore]
fn print_inter_arrival_statistics() {
    for (n, loss) in [(3usize, 0.05), (10, 0.05), (30, 0.05), (50, 0.05), (100, 0.05)] {
        let net = NetConfig { delay_ms: 1, jitter_ms: 200, loss };
        let mut sim = GossipSim::new(n, 3.min(n), 900, net);
        sim.run_for(1_800_000);
        let (mut max, mut mean, mut std, mut count) = (0.0f64, 0.0, 0.0f64, 0.0);
        for i in 0..n {
            for j in (0..n).filter(|&j| j != i) {
                if let Some(w) = sim.core(i).detector().window(&host(j)) {
                    max = max.max(w.max_interval_ms());
                    mean += w.mean_ms();
                    std = std.max(w.std_dev_ms());
                    count += 1.0;
                }
            }
        }
        println!("n={n}: mean interval {:.0} ms, largest std dev {std:.0} ms, longest gap {max:.0} ms", mean / count);
    }
}
