//! The schema on disk, and the bootstrap admin credential.
//!
//! Where: the meta partition of [`Storage`] under [`SCHEMA_KEY`], one value
//! holding every entry. `put_meta` is atomic (one key of the LSM journal) and
//! fsynced before it returns, which gives what a temp-file-and-rename would,
//! inside the data directory the node already owns and backs up.
//!
//! Invariants: a value that does not decode, or holds an entry that does not
//! check, is [`SchemaError::Corrupt`]: the node must not start with an empty
//! schema, since that would forget drops (a dropped keyspace could come back).
//! Blocking: call off the async threads.

use serde::{Deserialize, Serialize};

use crate::auth::{AuthError, Credentials};
use crate::config::{AuthConfig, Config};
use crate::storage::Storage;

use super::{Entry, Schema, SchemaError};

/// Meta key of the saved schema.
pub const SCHEMA_KEY: &str = "schema.entries";
/// Version of the saved format.
const FORMAT: u32 = 1;

#[derive(Serialize, Deserialize)]
struct Saved {
    format: u32,
    entries: Vec<Entry>,
}

/// The saved schema, `None` on first start.
pub fn load(storage: &dyn Storage) -> Result<Option<Schema>, SchemaError> {
    let bytes = storage.get_meta(SCHEMA_KEY).map_err(|e| SchemaError::Storage { op: "load", reason: e.to_string() })?;
    let Some(bytes) = bytes else { return Ok(None) };
    decode(&bytes).map(Some)
}

/// Decodes a saved schema.
pub fn decode(bytes: &[u8]) -> Result<Schema, SchemaError> {
    let saved: Saved = serde_json::from_slice(bytes).map_err(|e| SchemaError::Corrupt { reason: e.to_string() })?;
    if saved.format != FORMAT {
        return Err(SchemaError::Corrupt {
            reason: format!("format {} is not {FORMAT}: written by another version of kvnode", saved.format),
        });
    }
    let mut schema = Schema::new();
    for entry in saved.entries {
        entry.check().map_err(|e| SchemaError::Corrupt { reason: e.to_string() })?;
        schema.merge_entry(entry);
    }
    Ok(schema)
}

/// The schema as saved.
pub fn encode(schema: &Schema) -> Vec<u8> {
    let saved = Saved { format: FORMAT, entries: schema.entries().cloned().collect() };
    serde_json::to_vec(&saved).unwrap_or_default()
}

/// Saves the schema durably.
pub fn save(storage: &dyn Storage, schema: &Schema) -> Result<(), SchemaError> {
    storage
        .put_meta(SCHEMA_KEY, &encode(schema))
        .map_err(|e| SchemaError::Storage { op: "save", reason: e.to_string() })
}

/// The schema at start: the saved one (or empty on first start), with the
/// config's keyspaces seeded where absent; saved again when seeding changed it.
pub fn open(storage: &dyn Storage, config: &Config) -> Result<Schema, SchemaError> {
    let saved = load(storage)?;
    let first_start = saved.is_none();
    let mut schema = saved.unwrap_or_default();
    let before = schema.digest();
    schema.seed_from_config(config);
    if first_start || schema.digest() != before {
        save(storage, &schema)?;
    }
    Ok(schema)
}

/// The bootstrap admin credentials: `auth.admin_token_file` if set (it must
/// be readable and hold one token), else `env_token` (the caller passes
/// `RINGKV_ADMIN_TOKEN`; library code reads no environment), else none.
pub fn bootstrap_credentials(config: &AuthConfig, env_token: Option<&str>) -> Result<Option<Credentials>, AuthError> {
    if let Some(path) = &config.admin_token_file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| AuthError::AdminTokenFile { path: path.display().to_string(), reason: e.to_string() })?;
        return Credentials::parse_token(&text).map(Some);
    }
    match env_token.map(str::trim) {
        Some(token) if !token.is_empty() => Credentials::parse_token(token).map(Some),
        _ => Ok(None),
    }
}
