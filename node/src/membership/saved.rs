//! What a node keeps of membership across restarts: its peers' endpoint
//! states ([`super::Gossiper::saved_states`]: status, tokens, placement,
//! addresses, DNS name), in the meta partition under [`SAVED_KEY`], encoded
//! with the gossip wire format (`wire::encode_states`).
//!
//! Why: a node that restarts must know the whole ring before it serves
//! (else it claims its peers' ranges), and must never bring back a host id
//! that left or was removed while the peers that told it are down.
//!
//! Invariants: a value that does not decode is reported and ignored (gossip
//! refills it), never fatal; saving is idempotent. Blocking (storage calls):
//! run off the async threads. May call `storage` and `membership::wire`.

use std::collections::BTreeMap;

use crate::storage::{Storage, StorageError};

use super::endpoint::EndpointState;
use super::wire;

/// Meta key of the saved peer states.
pub const SAVED_KEY: &str = "membership.peers";

/// The peer states saved by [`save`], empty when none (or unreadable, with a warning).
pub fn load(storage: &dyn Storage) -> Result<BTreeMap<String, EndpointState>, StorageError> {
    let Some(bytes) = storage.get_meta(SAVED_KEY)? else { return Ok(BTreeMap::new()) };
    match wire::decode_states(&bytes) {
        Ok(states) => Ok(states),
        Err(e) => {
            tracing::warn!(key = SAVED_KEY, error = %e, "saved membership does not decode; relearning it from gossip");
            Ok(BTreeMap::new())
        }
    }
}

/// `states` as saved.
pub fn encode(states: &BTreeMap<String, EndpointState>) -> Vec<u8> {
    wire::encode_states(states)
}

/// Saves states [`encode`]d (durably: meta writes are fsynced).
pub fn save_encoded(storage: &dyn Storage, encoded: &[u8]) -> Result<(), StorageError> {
    storage.put_meta(SAVED_KEY, encoded)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::membership::MemberStatus;
    use crate::membership::endpoint::{AppValue, HeartbeatState, VersionedValue};
    use crate::storage::MemoryStorage;

    #[test]
    fn saved_states_come_back_and_garbage_is_ignored() {
        let storage = MemoryStorage::new();
        assert!(load(&storage).unwrap().is_empty(), "nothing saved yet");
        let value = AppValue::Status(MemberStatus::Left);
        let state = EndpointState {
            heartbeat: HeartbeatState { generation: 4, version: 9 },
            app_states: [(value.key(), VersionedValue { version: 9, value })].into_iter().collect(),
        };
        let states: BTreeMap<String, EndpointState> = [("gone".to_owned(), state)].into_iter().collect();
        save_encoded(&storage, &encode(&states)).unwrap();
        assert_eq!(load(&storage).unwrap(), states);
        storage.put_meta(SAVED_KEY, b"\xff\xff not a message").unwrap();
        assert!(load(&storage).unwrap().is_empty(), "an unreadable value is ignored, not fatal");
    }
}
