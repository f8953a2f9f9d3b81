//! Keyspace definitions as the schema stores them, their validation, and the
//! conversion to the [`Keyspace`] settings the coordinator uses.
//!
//! A definition leaves a setting unset (`None`) to follow the cluster
//! default of `[replication]`; [`KeyspaceDef::resolve`] fills them in.
//! Per-zone replication (`zone -> replicas`) must add up to the replication
//! factor, as in Cassandra's NetworkTopologyStrategy.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::config::{KeyspaceConfig, ReplicationConfig, valid_keyspace_name};
use crate::replication::{ConsistencyLevel, Keyspace};
use crate::version::ConflictMode;

use super::{Body, EntryKey, Schema, SchemaError};

/// The largest replication factor a keyspace may ask for.
pub const MAX_REPLICATION_FACTOR: u32 = 32;
/// The most zones a keyspace may name.
pub const MAX_ZONES: usize = 32;

/// A keyspace as stored in the schema.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyspaceDef {
    /// Name: 1–48 characters of `[A-Za-z0-9_-]`.
    pub name: String,
    /// Replicas per key; the cluster default when `None`.
    pub replication_factor: Option<u32>,
    /// Replicas per zone; empty: placement ignores zones. Adds up to the replication factor.
    #[serde(default)]
    pub zone_replication: BTreeMap<String, u32>,
    /// `siblings` or `lww`.
    pub conflict_mode: ConflictMode,
    /// Default read consistency; the cluster default when `None`.
    pub read_consistency: Option<ConsistencyLevel>,
    /// Default write consistency; the cluster default when `None`.
    pub write_consistency: Option<ConsistencyLevel>,
    /// TTL of writes that set none, in seconds; none when `None`.
    pub default_ttl_seconds: Option<u64>,
}

impl KeyspaceDef {
    /// A keyspace with every setting at the cluster default (siblings).
    pub fn named(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            replication_factor: None,
            zone_replication: BTreeMap::new(),
            conflict_mode: ConflictMode::Siblings,
            read_consistency: None,
            write_consistency: None,
            default_ttl_seconds: None,
        }
    }

    /// The definition of a config-file keyspace.
    pub fn from_config(k: &KeyspaceConfig) -> Self {
        Self {
            name: k.name.clone(),
            replication_factor: k.replication_factor,
            zone_replication: BTreeMap::new(),
            conflict_mode: k.conflict_mode,
            read_consistency: k.read_consistency,
            write_consistency: k.write_consistency,
            default_ttl_seconds: k.default_ttl_seconds.filter(|t| *t > 0),
        }
    }

    /// Refuses settings that cannot work, saying which field and how to fix it.
    pub fn validate(&self) -> Result<(), SchemaError> {
        let invalid = |field, problem: String, fix| {
            Err(SchemaError::InvalidKeyspace { name: self.name.chars().take(64).collect(), field, problem, fix })
        };
        if !valid_keyspace_name(&self.name) {
            return invalid("name", "is not a valid name".into(), "use 1-48 characters of A-Z a-z 0-9 _ -");
        }
        if let Some(rf) = self.replication_factor
            && !(1..=MAX_REPLICATION_FACTOR).contains(&rf)
        {
            return invalid("replication_factor", format!("= {rf} is out of range"), "use 1..=32 (3 is typical)");
        }
        self.validate_zones()?;
        self.validate_consistency()?;
        if self.default_ttl_seconds == Some(0) {
            return invalid("default_ttl_seconds", "= 0".into(), "leave it unset for no TTL, or use a positive number");
        }
        Ok(())
    }

    fn validate_zones(&self) -> Result<(), SchemaError> {
        let invalid = |field, problem: String, fix| {
            Err(SchemaError::InvalidKeyspace { name: self.name.clone(), field, problem, fix })
        };
        if self.zone_replication.is_empty() {
            return Ok(());
        }
        if self.zone_replication.len() > MAX_ZONES {
            return invalid(
                "zone_replication",
                "names more than 32 zones".into(),
                "list only the zones that hold replicas",
            );
        }
        if let Some((zone, count)) =
            self.zone_replication.iter().find(|(z, c)| z.is_empty() || z.len() > 64 || **c == 0)
        {
            let zone: String = zone.chars().take(64).collect();
            return invalid(
                "zone_replication",
                format!("{zone:?} = {count}"),
                "use zone names of 1-64 characters, each with at least 1 replica",
            );
        }
        let sum: u64 = self.zone_replication.values().map(|c| u64::from(*c)).sum();
        match self.replication_factor {
            None => invalid(
                "replication_factor",
                "is unset while zone_replication is set".into(),
                "set replication_factor to the sum of the zone counts",
            ),
            Some(rf) if u64::from(rf) != sum => invalid(
                "zone_replication",
                format!("adds up to {sum}, not the replication factor {rf}"),
                "make the zone counts add up to replication_factor",
            ),
            Some(_) => Ok(()),
        }
    }

    fn validate_consistency(&self) -> Result<(), SchemaError> {
        let invalid = |field, problem: String, fix| {
            Err(SchemaError::InvalidKeyspace { name: self.name.clone(), field, problem, fix })
        };
        if self.read_consistency == Some(ConsistencyLevel::Any) {
            return invalid("read_consistency", "= ANY".into(), "ANY is for writes only; use ONE, QUORUM or ALL");
        }
        let needs = |level: Option<ConsistencyLevel>| match level {
            Some(ConsistencyLevel::Two) => 2,
            Some(ConsistencyLevel::Three) => 3,
            _ => 0,
        };
        let rf = self.replication_factor.unwrap_or(u32::MAX);
        for (field, level) in
            [("read_consistency", self.read_consistency), ("write_consistency", self.write_consistency)]
        {
            if needs(level) > rf {
                let name = level.map_or("", ConsistencyLevel::name);
                return invalid(
                    field,
                    format!("= {name} needs more replicas than the factor {rf}"),
                    "use QUORUM or raise replication_factor",
                );
            }
        }
        Ok(())
    }

    /// The coordinator's settings, with the cluster defaults of `r` filled in.
    /// (Per-zone counts are not in [`Keyspace`] yet: placement is zone-aware but not per-keyspace.)
    pub fn resolve(&self, r: &ReplicationConfig) -> Keyspace {
        Keyspace {
            name: self.name.clone(),
            replication_factor: self.replication_factor.unwrap_or(r.replication_factor),
            conflict_mode: self.conflict_mode,
            read_consistency: self.read_consistency.unwrap_or(r.read_consistency),
            write_consistency: self.write_consistency.unwrap_or(r.write_consistency),
            default_ttl_seconds: self.default_ttl_seconds.filter(|t| *t > 0),
        }
    }
}

/// The `default` keyspace when the schema has no live definition of it.
fn default_def(r: &ReplicationConfig) -> KeyspaceDef {
    KeyspaceDef { conflict_mode: r.default_keyspace_conflict_mode, ..KeyspaceDef::named(crate::DEFAULT_KEYSPACE) }
}

/// Every live keyspace of `schema` as the coordinator's settings, `default` always among them.
pub fn keyspaces_of(schema: &Schema, r: &ReplicationConfig) -> Vec<Keyspace> {
    let mut out: BTreeMap<String, Keyspace> = schema
        .entries()
        .filter_map(|e| match &e.body {
            Body::Keyspace(def) => Some((def.name.clone(), def.resolve(r))),
            _ => None,
        })
        .collect();
    out.entry(crate::DEFAULT_KEYSPACE.to_owned()).or_insert_with(|| default_def(r).resolve(r));
    out.into_values().collect()
}

/// The settings of keyspace `name` (empty: `default`), or why this node cannot serve it:
/// [`SchemaError::KeyspaceNotLearned`] (retryable) or [`SchemaError::KeyspaceDropped`].
pub fn lookup_keyspace(schema: &Schema, name: &str, r: &ReplicationConfig) -> Result<Keyspace, SchemaError> {
    let name = if name.is_empty() { crate::DEFAULT_KEYSPACE } else { name };
    match schema.entry(&EntryKey::keyspace(name)).map(|e| &e.body) {
        Some(Body::Keyspace(def)) => Ok(def.resolve(r)),
        _ if name == crate::DEFAULT_KEYSPACE => Ok(default_def(r).resolve(r)),
        Some(Body::Tombstone) => Err(SchemaError::KeyspaceDropped { name: name.to_owned() }),
        _ => Err(SchemaError::KeyspaceNotLearned { name: name.chars().take(64).collect() }),
    }
}
