//! The node's persistent identity: host id, ring tokens, generation, and the
//! version-vector actor of this incarnation.
//!
//! Created on first start and kept in the storage's metadata, so a restarted
//! node comes back as the same member with the same tokens (identity is never
//! an IP address). The generation grows by one at every start, so peers can
//! tell a restart from a pause.
//!
//! The actor (the [`NodeId`] that names this node's writes in dots and
//! version vectors) is *not* the host id. Invariant: no two writes anywhere
//! ever get the same dot. A node mints dot `(actor, clock[actor] + 1)` from
//! its local copy of the key, so an incarnation that may have lost some of
//! its own earlier writes (or never had them) must not reuse the actor:
//! a fresh random actor (never 0, never one this data directory or host id
//! used before) is taken and made durable before any write is coordinated
//! - when the data directory is new, including a replacement (`--replace`)
//!   that took over a dead node's host id and streams its data;
//! - when the previous incarnation did not stop cleanly (a crash, a power
//!   loss under `sync = periodic` that rolled counters back).
//!
//! A clean stop ([`mark_clean_shutdown`], after the final flush and fsync)
//! leaves a marker naming the actor; the next start clears it durably and
//! keeps the actor, so version vectors do not grow at every restart (Riak's
//! vnode epochs follow the same rule).
//!
//! Loaded by the node's assembly (`assembly`) before anything serves; the
//! topology saves new tokens through it. May call `storage` (metadata
//! only), `ring` and `version`.

use rand::Rng;

use crate::ring::{NodeInfo, Ring, Token};
use crate::storage::{Storage, StorageError};
use crate::version::NodeId;

const HOST_ID: &str = "host_id";
const TOKENS: &str = "tokens";
const GENERATION: &str = "generation";
/// The actor of the current incarnation (8 bytes, big endian).
const ACTOR: &str = "actor";
/// Actors this data directory used before (8 bytes each), newest last.
const PAST_ACTORS: &str = "actor.past";
/// The actor of an incarnation that stopped cleanly; empty while a node runs.
const CLEAN_SHUTDOWN: &str = "actor.clean_shutdown";
/// Past actors kept to avoid (a collision of random u64s is 2^-64 anyway).
const MAX_PAST_ACTORS: usize = 64;

/// What a node is, across restarts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// Host id, 32 hex characters.
    pub host_id: String,
    /// This incarnation's version-vector actor (see the module docs): kept
    /// across clean restarts, fresh after a crash or in a new data directory.
    pub node_id: NodeId,
    /// Why the actor is what it is.
    pub actor: ActorOrigin,
    /// Ring tokens.
    pub tokens: Vec<Token>,
    /// Start counter.
    pub generation: u64,
}

/// Why this incarnation has the actor it has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActorOrigin {
    /// The previous incarnation stopped cleanly: its actor is kept.
    Kept,
    /// No actor yet: a new data directory (a new node or a replacement), or one from before actors.
    NewDataDir,
    /// The previous incarnation did not stop cleanly: its writes may be lost.
    UncleanShutdown,
}

impl ActorOrigin {
    /// The name used in logs.
    pub fn as_str(self) -> &'static str {
        match self {
            ActorOrigin::Kept => "kept after a clean shutdown",
            ActorOrigin::NewDataDir => "fresh: new data directory",
            ActorOrigin::UncleanShutdown => "fresh: the previous run did not shut down cleanly",
        }
    }
}

/// Loads the identity, creating what is missing (`vnodes` tokens for a new node).
pub fn load_or_create(storage: &dyn Storage, vnodes: u32, zone: &str, rack: &str) -> Result<Identity, StorageError> {
    load_or_create_with(storage, vnodes, zone, rack, &mut rand::rng())
}

/// [`load_or_create`] drawing new ids from `rng` (a seeded one in simulations).
pub fn load_or_create_with(
    storage: &dyn Storage,
    vnodes: u32,
    zone: &str,
    rack: &str,
    rng: &mut impl Rng,
) -> Result<Identity, StorageError> {
    let id = match storage.get_meta(HOST_ID)? {
        Some(bytes) if bytes.len() == 16 => bytes.to_vec(),
        _ => {
            let id: [u8; 16] = rng.random();
            storage.put_meta(HOST_ID, &id)?;
            id.to_vec()
        }
    };
    let host_id: String = id.iter().map(|b| format!("{b:02x}")).collect();
    let tokens = load_tokens(storage, &host_id, vnodes, zone, rack)?;
    let generation = match storage.get_meta(GENERATION)? {
        Some(bytes) if bytes.len() == 8 => u64::from_be_bytes(bytes[..8].try_into().unwrap_or_default()) + 1,
        _ => 1,
    };
    storage.put_meta(GENERATION, &generation.to_be_bytes())?;
    let mut first = [0u8; 8];
    first.copy_from_slice(&id[..8]);
    let (node_id, actor) = take_actor(storage, u64::from_be_bytes(first), rng)?;
    tracing::info!(host_id = %host_id, actor = format!("{node_id:016x}"), origin = actor.as_str(), "version-vector actor");
    Ok(Identity { host_id, node_id, actor, tokens, generation })
}

fn load_tokens(
    storage: &dyn Storage,
    host_id: &str,
    vnodes: u32,
    zone: &str,
    rack: &str,
) -> Result<Vec<Token>, StorageError> {
    if let Some(bytes) = storage.get_meta(TOKENS)?
        && !bytes.is_empty()
        && bytes.len() % 8 == 0
    {
        return Ok(bytes.chunks_exact(8).map(|c| u64::from_be_bytes(c.try_into().unwrap_or_default())).collect());
    }
    // Tokens seeded from the host id; a join into a known ring picks
    // balancing tokens instead once membership can tell us the ring.
    let tokens = Ring::empty()
        .allocate_tokens(&NodeInfo::new(host_id.to_owned(), zone, rack), vnodes)
        .unwrap_or_else(|_| (0..vnodes).map(|i| crate::ring::token_of(host_id, &i.to_be_bytes())).collect());
    save_tokens(storage, &tokens)?;
    Ok(tokens)
}

fn decode_actors(bytes: &[u8]) -> Vec<NodeId> {
    bytes.chunks_exact(8).map(|c| u64::from_be_bytes(c.try_into().unwrap_or_default())).collect()
}

/// Keeps the stored actor after a clean stop, else takes a fresh one; both
/// durable (and the clean marker cleared) before this returns.
fn take_actor(
    storage: &dyn Storage,
    host_prefix: NodeId,
    rng: &mut impl Rng,
) -> Result<(NodeId, ActorOrigin), StorageError> {
    let stored = storage.get_meta(ACTOR)?.filter(|b| b.len() == 8).map(|b| decode_actors(&b)[0]).filter(|a| *a != 0);
    let clean = storage.get_meta(CLEAN_SHUTDOWN)?;
    let origin = match stored {
        None => ActorOrigin::NewDataDir,
        Some(a) if clean.as_deref() == Some(&a.to_be_bytes()[..]) => ActorOrigin::Kept,
        Some(_) => ActorOrigin::UncleanShutdown,
    };
    let actor = match (origin, stored) {
        (ActorOrigin::Kept, Some(a)) => a,
        _ => {
            let mut past = storage.get_meta(PAST_ACTORS)?.map(|b| decode_actors(&b)).unwrap_or_default();
            past.extend(stored);
            // The host-id prefix was the actor before actors were separate (and a dead node's, if it ran that code).
            let fresh = loop {
                let a: NodeId = rng.random();
                if a != 0 && a != host_prefix && !past.contains(&a) {
                    break a;
                }
            };
            let keep_from = past.len().saturating_sub(MAX_PAST_ACTORS);
            let bytes: Vec<u8> = past[keep_from..].iter().flat_map(|a| a.to_be_bytes()).collect();
            storage.put_meta(PAST_ACTORS, &bytes)?;
            // put_meta is fsynced: the actor is durable before any write can use it.
            storage.put_meta(ACTOR, &fresh.to_be_bytes())?;
            fresh
        }
    };
    // From here until a clean stop, a crash must refresh the actor.
    storage.put_meta(CLEAN_SHUTDOWN, &[])?;
    Ok((actor, origin))
}

/// Records that the incarnation with actor `actor` stopped cleanly. Call it
/// after the storage stopped taking writes and its final flush: it fsyncs
/// once more and writes the marker only when that succeeds, so a marker is
/// never left behind writes that might not be durable.
pub fn mark_clean_shutdown(storage: &dyn Storage, actor: NodeId) -> Result<(), StorageError> {
    storage.sync()?;
    storage.put_meta(CLEAN_SHUTDOWN, &actor.to_be_bytes())
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
/// that peers take this node's word over what they remember. Not its actor:
/// the replacement starts without the dead node's writes, so
/// [`load_or_create`] gives it a fresh one.
pub fn adopt(storage: &dyn Storage, host_id: &str, tokens: &[Token], generation: u64) -> Result<(), StorageError> {
    let id: Vec<u8> = (0..host_id.len() / 2)
        .filter_map(|i| host_id.get(2 * i..2 * i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
        .collect();
    storage.put_meta(HOST_ID, &id)?;
    save_tokens(storage, tokens)?;
    // Whatever this directory held, a replacement never keeps an actor.
    storage.put_meta(ACTOR, &[])?;
    // load_or_create adds one at start.
    storage.put_meta(GENERATION, &generation.to_be_bytes())
}

#[cfg(test)]
mod tests;
