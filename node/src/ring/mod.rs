//! Ring: tokens and placement (pure, no I/O).
//!
//! A key's token is the xxh3 hash of `(keyspace, key)`; the 64-bit token space
//! is a ring. This module may call nothing but `std` and the hash function.
//!
//! - `topology`: [`Ring`] (immutable, `Arc` inside), [`NodeInfo`], [`HostId`],
//!   [`RingBuilder`] from explicit (gossiped) tokens, [`RingError`].
//! - `allocation`: tokens for a joining node that keep ownership even
//!   ([`Ring::allocate_tokens`], [`Ring::with_node`], [`Ring::initial`]).
//! - `placement`: [`Ring::preference_list`] (zone-, then rack-diverse),
//!   [`Ring::stand_ins`], ownership, [`Ring::ranges_of`],
//!   [`Ring::moved_fraction`].

/// A position on the ring.
pub type Token = u64;

/// The token of `(keyspace, key)`: a stable, fast hash (xxh3-64) of both,
/// length-prefixed so that `("ab", "c")` and `("a", "bc")` differ.
pub fn token_of(keyspace: &str, key: &[u8]) -> Token {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    h.update(&(keyspace.len() as u32).to_be_bytes());
    h.update(keyspace.as_bytes());
    h.update(key);
    h.digest()
}

mod allocation;
mod placement;
mod topology;

pub use placement::StandIns;
pub use topology::{HostId, MAX_TOKENS_PER_NODE, NodeIdx, NodeInfo, Ring, RingBuilder, RingError, TokenRange};

#[cfg(test)]
mod tests;
