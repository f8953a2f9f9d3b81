//! The node's persistent identity: host id, ring tokens and generation.
//!
//! Created on first start and kept in the storage's metadata, so a restarted
//! node comes back as the same member with the same tokens (identity is never
//! an IP address). The generation grows by one at every start, so peers can
//! tell a restart from a pause.

use crate::ring::{NodeInfo, Ring, Token};
use crate::storage::{Storage, StorageError};
use crate::version::NodeId;

const HOST_ID: &str = "host_id";
const TOKENS: &str = "tokens";
const GENERATION: &str = "generation";

/// What a node is, across restarts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// Host id, 32 hex characters.
    pub host_id: String,
    /// Compact id for version vectors (first 8 bytes of the host id).
    pub node_id: NodeId,
    /// Ring tokens.
    pub tokens: Vec<Token>,
    /// Start counter.
    pub generation: u64,
}

/// Loads the identity, creating what is missing (`vnodes` tokens for a new node).
pub fn load_or_create(storage: &dyn Storage, vnodes: u32, zone: &str, rack: &str) -> Result<Identity, StorageError> {
    let id = match storage.get_meta(HOST_ID)? {
        Some(bytes) if bytes.len() == 16 => bytes.to_vec(),
        _ => {
            let id: [u8; 16] = rand::random();
            storage.put_meta(HOST_ID, &id)?;
            id.to_vec()
        }
    };
    let host_id: String = id.iter().map(|b| format!("{b:02x}")).collect();
    let mut first = [0u8; 8];
    first.copy_from_slice(&id[..8]);
    let node_id = u64::from_be_bytes(first);

    let tokens = match storage.get_meta(TOKENS)? {
        Some(bytes) if !bytes.is_empty() && bytes.len() % 8 == 0 => {
            bytes.chunks_exact(8).map(|c| u64::from_be_bytes(c.try_into().unwrap_or_default())).collect()
        }
        _ => {
            // Tokens seeded from the host id; a join into a known ring picks
            // balancing tokens instead once membership can tell us the ring.
            let tokens = Ring::empty()
                .allocate_tokens(&NodeInfo::new(host_id.clone(), zone, rack), vnodes)
                .unwrap_or_else(|_| (0..vnodes).map(|i| crate::ring::token_of(&host_id, &i.to_be_bytes())).collect());
            let bytes: Vec<u8> = tokens.iter().flat_map(|t: &Token| t.to_be_bytes()).collect();
            storage.put_meta(TOKENS, &bytes)?;
            tokens
        }
    };

    let generation = match storage.get_meta(GENERATION)? {
        Some(bytes) if bytes.len() == 8 => u64::from_be_bytes(bytes[..8].try_into().unwrap_or_default()) + 1,
        _ => 1,
    };
    storage.put_meta(GENERATION, &generation.to_be_bytes())?;
    Ok(Identity { host_id, node_id, tokens, generation })
}

/// True when this data directory has never held a node (no host id yet).
pub fn is_fresh(storage: &dyn Storage) -> Result<bool, StorageError> {
    Ok(storage.get_meta(HOST_ID)?.is_none())
}

/// Replaces the persisted tokens (a joining node takes balancing ones).
pub fn save_tokens(storage: &dyn Storage, tokens: &[Token]) -> Result<(), StorageError> {
    let bytes: Vec<u8> = tokens.iter().flat_map(|t| t.to_be_bytes()).collect();
    storage.put_meta(TOKENS, &bytes)
}

/// Takes over a dead node's identity (`kvnode serve --replace`): its host id
/// (32 hex characters) and tokens, with a generation above the dead node's so
/// that peers take this node's word over what they remember.
pub fn adopt(storage: &dyn Storage, host_id: &str, tokens: &[Token], generation: u64) -> Result<(), StorageError> {
    let id: Vec<u8> = (0..host_id.len() / 2)
        .filter_map(|i| host_id.get(2 * i..2 * i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
        .collect();
    storage.put_meta(HOST_ID, &id)?;
    save_tokens(storage, tokens)?;
    // load_or_create adds one at start.
    storage.put_meta(GENERATION, &generation.to_be_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::MemoryStorage;

    #[test]
    fn identity_survives_restarts_and_generation_grows() {
        let storage = MemoryStorage::new();
        let first = load_or_create(&storage, 16, "", "").unwrap();
        assert_eq!(first.host_id.len(), 32);
        assert_eq!(first.tokens.len(), 16);
        assert_eq!(first.generation, 1);
        let second = load_or_create(&storage, 64, "", "").unwrap();
        assert_eq!((second.host_id.as_str(), &second.tokens), (first.host_id.as_str(), &first.tokens));
        assert_eq!(second.generation, 2);
    }

    #[test]
    fn adopted_identity_is_loaded_with_a_higher_generation() {
        let storage = MemoryStorage::new();
        assert!(is_fresh(&storage).unwrap());
        let host = "00112233445566778899aabbccddeeff";
        adopt(&storage, host, &[5, 9], 7).unwrap();
        assert!(!is_fresh(&storage).unwrap());
        let id = load_or_create(&storage, 16, "", "").unwrap();
        assert_eq!((id.host_id.as_str(), id.tokens.as_slice(), id.generation), (host, &[5u64, 9][..], 8));
    }
}
