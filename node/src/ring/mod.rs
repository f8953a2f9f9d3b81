//! Ring: tokens and placement (pure, no I/O).
//!
//! A key's token is the xxh3 hash of `(keyspace, key)`; the 64-bit token space
//! is a ring. This module may call nothing but `std` and the hash function.

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_is_stable_and_separates_keyspace_from_key() {
        assert_eq!(token_of("default", b"k"), token_of("default", b"k"));
        assert_ne!(token_of("ab", b"c"), token_of("a", b"bc"));
        assert_ne!(token_of("default", b"k1"), token_of("default", b"k2"));
    }
}
