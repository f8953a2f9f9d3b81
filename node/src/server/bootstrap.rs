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
}
