//! The cluster schema: keyspace definitions and users, as versioned entries
//! every node converges on.
//!
//! # Model
//! An [`Entry`] is keyed by ([`Kind`], name) and carries a [`Stamp`] (a
//! hybrid-logical time in microseconds plus the host id that made the
//! change: totally ordered) and a [`Body`]: a definition or a tombstone.
//! [`Schema::merge`] keeps, per key, the entry with the highest [`Version`]
//! (the stamp; ties, which a correct node never produces, break on a hash of
//! the body, so the summary exchange below sees them too), so
//! merge is commutative, associative and idempotent and two concurrent
//! conflicting alters resolve the same way on every node, in any order.
//! [`Stamp::next`] is above every stamp the node has seen, so a change made
//! after learning another one wins over it even if the local clock lags.
//!
//! # Exchange
//! Gossip carries [`Schema::digest`] (the `schema` app state). On mismatch,
//! a node sends its [`Schema::summary`] (per entry: key and version, no bodies);
//! the peer answers with [`Schema::newer_than`] that summary (the bodies the
//! asker lacks) and [`Schema::wanted_from`] it (the keys the peer wants back),
//! and both [`Schema::merge`] what they receive. Entries from peers are
//! checked ([`Entry::check`]) before they are merged.
//!
//! # Tombstones
//! A drop writes a tombstone and tombstones are kept for ever: the schema is
//! small (one entry per keyspace or user ever dropped), while purging one
//! would let a node that was down during the drop bring the keyspace back
//! through its older live entry. Re-creating a dropped name is a new entry
//! with a higher stamp, which wins.
//!
//! # Initial schema
//! Config-file keyspaces enter with [`Stamp::ZERO`] and only when the
//! schema has no entry of that name ([`Schema::seed_from_config`]): any
//! runtime change wins over them. `default` always exists and cannot be dropped.
//!
//! Pure except [`store`] (the meta partition of [`crate::storage::Storage`])
//! and [`live`] (the node's one live copy: change, merge, save, publish).
//! May call `config`, `replication` (types), `version`, `auth`, `storage`.

pub mod keyspace;
pub mod live;
pub mod ops;
pub mod store;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::auth::UserDef;

pub use keyspace::{KeyspaceDef, keyspaces_of, lookup_keyspace};
pub use live::SchemaHandle;

/// A totally ordered change time: hybrid-logical microseconds, then host id.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Stamp {
    /// Microseconds since the epoch, raised above every stamp seen (HLC).
    pub micros: u64,
    /// Host id of the node that made the change (`""` for the config's initial schema).
    pub host: String,
}

impl Stamp {
    /// The stamp of config-file entries: below any runtime change.
    pub const ZERO: Stamp = Stamp { micros: 0, host: String::new() };

    /// The stamp for a change made now on `host`: the wall clock, or one
    /// microsecond above the highest stamp in `schema` when that is later.
    pub fn next(now_micros: i64, host: &str, schema: &Schema) -> Self {
        let seen = schema.entries.values().map(|e| e.stamp.micros).max().unwrap_or(0);
        let now = u64::try_from(now_micros).unwrap_or(0);
        Self { micros: now.max(seen.saturating_add(1)), host: host.to_owned() }
    }
}

/// What an entry defines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Kind {
    /// A keyspace definition.
    Keyspace,
    /// A user.
    User,
}

/// The key of an entry.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct EntryKey {
    /// Keyspace or user.
    pub kind: Kind,
    /// Its name.
    pub name: String,
}

impl EntryKey {
    /// The key of keyspace `name`.
    pub fn keyspace(name: &str) -> Self {
        Self { kind: Kind::Keyspace, name: name.to_owned() }
    }

    /// The key of user `name`.
    pub fn user(name: &str) -> Self {
        Self { kind: Kind::User, name: name.to_owned() }
    }
}

/// A definition, or the tombstone of a dropped one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Body {
    /// A keyspace definition.
    Keyspace(KeyspaceDef),
    /// A user.
    User(UserDef),
    /// Dropped.
    Tombstone,
}

/// One versioned schema entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// What it defines.
    pub key: EntryKey,
    /// When, and by whom.
    pub stamp: Stamp,
    /// The definition or tombstone.
    pub body: Body,
}

impl Entry {
    /// Refuses an entry whose body does not match its key or does not validate
    /// (entries from peers are checked before they are merged).
    pub fn check(&self) -> Result<(), SchemaError> {
        let bad =
            |reason: String| Err(SchemaError::BadEntry { kind: self.key.kind, name: cut(&self.key.name), reason });
        match (&self.key.kind, &self.body) {
            (_, Body::Tombstone) if self.is_default_keyspace() => bad("`default` cannot be dropped".into()),
            (_, Body::Tombstone) => Ok(()),
            (Kind::Keyspace, Body::Keyspace(def)) if def.name == self.key.name => {
                def.validate().or_else(|e| bad(e.to_string()))
            }
            (Kind::User, Body::User(user)) if user.name == self.key.name && user.is_well_formed() => Ok(()),
            _ => bad("the body does not match the key or is malformed".into()),
        }
    }

    fn is_default_keyspace(&self) -> bool {
        self.key.kind == Kind::Keyspace && self.key.name == crate::DEFAULT_KEYSPACE
    }

    /// The entry's version: its stamp, then a hash of its body (the tie-break).
    pub fn version(&self) -> Version {
        Version { stamp: self.stamp.clone(), body_hash: xxhash_rust::xxh3::xxh3_64(&body_bytes(&self.body)) }
    }
}

fn body_bytes(body: &Body) -> Vec<u8> {
    serde_json::to_vec(body).unwrap_or_default()
}

/// What decides between two entries of one key: the higher stamp; on equal
/// stamps (which a correct node never produces) the higher body hash.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Version {
    /// The change's stamp.
    pub stamp: Stamp,
    /// xxh3 of the body's encoding.
    pub body_hash: u64,
}

/// Names in errors come from the network: keep them short.
fn cut(name: &str) -> String {
    name.chars().take(64).collect()
}

/// Per entry, its key and [`Version`]: what a node sends to find what it lacks.
pub type Summary = BTreeMap<EntryKey, Version>;

/// The schema: the winning entry per key.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Schema {
    entries: BTreeMap<EntryKey, Entry>,
}

impl Schema {
    /// An empty schema.
    pub fn new() -> Self {
        Self::default()
    }

    /// Merges one entry; returns true when it changed the schema.
    pub fn merge_entry(&mut self, entry: Entry) -> bool {
        match self.entries.get(&entry.key) {
            Some(current) if entry.version() <= current.version() => false,
            _ => {
                self.entries.insert(entry.key.clone(), entry);
                true
            }
        }
    }

    /// Merges every entry of `other`.
    pub fn merge(&mut self, other: &Schema) -> bool {
        other.entries.values().fold(false, |changed, e| self.merge_entry(e.clone()) | changed)
    }

    /// Merges entries from a peer, refusing those that do not [`Entry::check`];
    /// returns whether anything changed and the refusals (to log).
    pub fn merge_remote(&mut self, entries: Vec<Entry>) -> (bool, Vec<SchemaError>) {
        let (mut changed, mut refused) = (false, Vec::new());
        for entry in entries {
            match entry.check() {
                Ok(()) => changed |= self.merge_entry(entry),
                Err(e) => refused.push(e),
            }
        }
        (changed, refused)
    }

    /// The entry of `key`, tombstones included.
    pub fn entry(&self, key: &EntryKey) -> Option<&Entry> {
        self.entries.get(key)
    }

    /// Every entry, in key order.
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.entries.values()
    }

    /// The live (not dropped) keyspace `name`.
    pub fn keyspace(&self, name: &str) -> Option<&KeyspaceDef> {
        match self.entries.get(&EntryKey::keyspace(name)).map(|e| &e.body) {
            Some(Body::Keyspace(def)) => Some(def),
            _ => None,
        }
    }

    /// The live (not dropped) user `name`.
    pub fn user(&self, name: &str) -> Option<&UserDef> {
        match self.entries.get(&EntryKey::user(name)).map(|e| &e.body) {
            Some(Body::User(user)) => Some(user),
            _ => None,
        }
    }

    /// A stable digest of every entry (key, stamp, body): equal on two nodes
    /// exactly when they hold the same schema, whatever order they learned it in.
    /// Sent in gossip as 16 hex digits.
    pub fn digest(&self) -> String {
        let mut hasher = xxhash_rust::xxh3::Xxh3::new();
        for entry in self.entries.values() {
            hasher.update(&serde_json::to_vec(entry).unwrap_or_default());
            hasher.update(b"\n");
        }
        format!("{:016x}", hasher.digest())
    }

    /// Key and version of every entry.
    pub fn summary(&self) -> Summary {
        self.entries.iter().map(|(k, e)| (k.clone(), e.version())).collect()
    }

    /// The entries a peer with `summary` lacks or holds an older version of.
    pub fn newer_than(&self, summary: &Summary) -> Vec<Entry> {
        self.entries
            .values()
            .filter(|e| summary.get(&e.key).is_none_or(|theirs| e.version() > *theirs))
            .cloned()
            .collect()
    }

    /// The keys whose version in `summary` is newer than ours (or that we lack): what to pull.
    pub fn wanted_from(&self, summary: &Summary) -> Vec<EntryKey> {
        summary
            .iter()
            .filter(|(k, theirs)| self.entries.get(*k).is_none_or(|ours| **theirs > ours.version()))
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// The entries of `keys` we hold (the answer to a pull).
    pub fn entries_for(&self, keys: &[EntryKey]) -> Vec<Entry> {
        keys.iter().filter_map(|k| self.entries.get(k).cloned()).collect()
    }
}

/// Why a schema change or a schema load failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum SchemaError {
    /// A keyspace definition does not validate.
    #[error("RKV-INVALID-KEYSPACE: keyspace {name:?}: {field} {problem}; {fix}")]
    InvalidKeyspace {
        /// The keyspace.
        name: String,
        /// The field at fault.
        field: &'static str,
        /// What is wrong.
        problem: String,
        /// How to fix it.
        fix: &'static str,
    },
    /// Creating a keyspace that exists.
    #[error("RKV-KEYSPACE-EXISTS: keyspace {name:?} already exists; use alter to change it")]
    KeyspaceExists {
        /// The keyspace.
        name: String,
    },
    /// The keyspace is not in this node's schema (yet): retry, or check the name.
    #[error(
        "RKV-KEYSPACE-NOT-LEARNED: this node does not know keyspace {name:?} (yet); if it was just created, retry in a few seconds while the schema spreads, otherwise create it"
    )]
    KeyspaceNotLearned {
        /// The keyspace.
        name: String,
    },
    /// The keyspace was dropped.
    #[error("RKV-KEYSPACE-DROPPED: keyspace {name:?} was dropped; create it again to use the name")]
    KeyspaceDropped {
        /// The keyspace.
        name: String,
    },
    /// Dropping `default`.
    #[error("RKV-DEFAULT-KEYSPACE: the `default` keyspace always exists and cannot be dropped; alter it instead")]
    DefaultKeyspace,
    /// Creating a user that exists.
    #[error("RKV-USER-EXISTS: user {name:?} already exists; use rotate or grant to change it")]
    UserExists {
        /// The user.
        name: String,
    },
    /// The user is not in the schema.
    #[error("RKV-UNKNOWN-USER: user {name:?} does not exist; list users with `kvctl user list`")]
    UnknownUser {
        /// The user.
        name: String,
    },
    /// A grant names a keyspace that does not exist.
    #[error(
        "RKV-UNKNOWN-KEYSPACE: cannot grant on keyspace {name:?}: it does not exist; create it first or grant on `*`"
    )]
    GrantOnUnknownKeyspace {
        /// The keyspace.
        name: String,
    },
    /// An entry from a peer was refused.
    #[error("RKV-BAD-SCHEMA-ENTRY: refused schema entry {kind:?} {name:?} from a peer: {reason}")]
    BadEntry {
        /// Its kind.
        kind: Kind,
        /// Its name (cut to 64 characters).
        name: String,
        /// Why.
        reason: String,
    },
    /// The saved schema does not decode.
    #[error(
        "RKV-SCHEMA-CORRUPT: the saved schema in the data directory does not decode ({reason}); the node will not start with an empty schema (it would forget drops): restore the data directory from a backup, or move it aside and replace the node (`--replace-host-id`) so it relearns the schema from its peers"
    )]
    Corrupt {
        /// The decoder's error.
        reason: String,
    },
    /// The storage failed to read or write the schema.
    #[error("RKV-SCHEMA-STORAGE: cannot {op} the schema: {reason}; check the data directory's disk")]
    Storage {
        /// `load` or `save`.
        op: &'static str,
        /// The storage error.
        reason: String,
    },
}

impl SchemaError {
    /// True when retrying later may succeed (the schema is still spreading).
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::KeyspaceNotLearned { .. })
    }
}

#[cfg(test)]
mod tests;
