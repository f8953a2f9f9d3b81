//! Identity across restarts, and the actor rule: kept after a clean stop,
//! fresh (and never a known one) otherwise.

use rand::SeedableRng;
use rand::rngs::StdRng;

use super::*;
use crate::storage::MemoryStorage;

/// An RNG that returns `script` in order, then counts up from 1000.
struct Scripted {
    script: Vec<u64>,
    next: u64,
}

impl rand::RngCore for Scripted {
    fn next_u32(&mut self) -> u32 {
        self.next_u64() as u32
    }
    fn next_u64(&mut self) -> u64 {
        if self.script.is_empty() {
            self.next += 1;
            return 1000 + self.next;
        }
        self.script.remove(0)
    }
    fn fill_bytes(&mut self, dst: &mut [u8]) {
        for chunk in dst.chunks_mut(8) {
            let v = self.next_u64().to_be_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

fn load(storage: &MemoryStorage) -> Identity {
    load_or_create(storage, 16, "", "").unwrap()
}

#[test]
fn identity_survives_restarts_and_generation_grows() {
    let storage = MemoryStorage::new();
    let first = load(&storage);
    assert_eq!(first.host_id.len(), 32);
    assert_eq!(first.tokens.len(), 16);
    assert_eq!(first.generation, 1);
    let second = load_or_create(&storage, 64, "", "").unwrap();
    assert_eq!((second.host_id.as_str(), &second.tokens), (first.host_id.as_str(), &first.tokens));
    assert_eq!(second.generation, 2);
}

#[test]
fn a_clean_stop_keeps_the_actor_and_a_crash_refreshes_it() {
    let storage = MemoryStorage::new();
    let first = load(&storage);
    assert_eq!(first.actor, ActorOrigin::NewDataDir);
    assert_ne!(first.node_id, 0);
    mark_clean_shutdown(&storage, first.node_id).unwrap();
    let clean = load(&storage);
    assert_eq!((clean.node_id, clean.actor), (first.node_id, ActorOrigin::Kept));
    // No clean stop this time: the start cleared the marker.
    let crashed = load(&storage);
    assert_eq!(crashed.actor, ActorOrigin::UncleanShutdown);
    assert_ne!(crashed.node_id, first.node_id);
    assert_eq!(crashed.host_id, first.host_id, "only the actor changes");
    // A marker naming another actor is not this incarnation's clean stop.
    mark_clean_shutdown(&storage, first.node_id).unwrap();
    let stale = load(&storage);
    assert_eq!(stale.actor, ActorOrigin::UncleanShutdown);
    assert!(![first.node_id, crashed.node_id].contains(&stale.node_id));
}

#[test]
fn a_replacement_never_keeps_an_actor() {
    let storage = MemoryStorage::new();
    assert!(is_fresh(&storage).unwrap());
    let host = "00112233445566778899aabbccddeeff";
    adopt(&storage, host, &[5, 9], 7).unwrap();
    assert!(!is_fresh(&storage).unwrap());
    let id = load(&storage);
    assert_eq!((id.host_id.as_str(), id.tokens.as_slice(), id.generation), (host, &[5u64, 9][..], 8));
    assert_eq!(id.actor, ActorOrigin::NewDataDir);
    assert_ne!(id.node_id, 0x0011_2233_4455_6677, "the dead node's host-id actor");
    // Even over a directory that had an actor and stopped cleanly.
    mark_clean_shutdown(&storage, id.node_id).unwrap();
    adopt(&storage, host, &[5, 9], 8).unwrap();
    let again = load(&storage);
    assert_eq!(again.actor, ActorOrigin::NewDataDir);
    assert_ne!(again.node_id, id.node_id);
}

#[test]
fn a_fresh_actor_is_never_zero_the_host_prefix_or_a_past_one() {
    let storage = MemoryStorage::new();
    let host = "00000000000000070000000000000000";
    adopt(&storage, host, &[1], 0).unwrap();
    let mut rng = Scripted { script: vec![0, 7, 42], next: 0 };
    let first = load_or_create_with(&storage, 4, "", "", &mut rng).unwrap();
    assert_eq!(first.node_id, 42, "0 and the host prefix 7 are skipped");
    // Unclean restart: 42 and 0 are known, 43 is new.
    let mut rng = Scripted { script: vec![42, 0, 43], next: 0 };
    assert_eq!(load_or_create_with(&storage, 4, "", "", &mut rng).unwrap().node_id, 43);
    let mut rng = Scripted { script: vec![42, 43, 44], next: 0 };
    assert_eq!(load_or_create_with(&storage, 4, "", "", &mut rng).unwrap().node_id, 44);
}

#[test]
fn seeded_ids_replay() {
    let a = load_or_create_with(&MemoryStorage::new(), 4, "", "", &mut StdRng::seed_from_u64(3)).unwrap();
    let b = load_or_create_with(&MemoryStorage::new(), 4, "", "", &mut StdRng::seed_from_u64(3)).unwrap();
    assert_eq!(a, b);
}
