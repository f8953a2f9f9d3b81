//! [`Keyspaces`]: the keyspace definitions this node knows.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use crate::config::{Config, KeyspaceConfig};
use crate::error::KvError;
use crate::version::ConflictMode;

use super::ConsistencyLevel;

/// Settings of one keyspace, with the cluster defaults filled in.
#[derive(Debug, Clone, PartialEq)]
pub struct Keyspace {
    /// Name.
    pub name: String,
    /// Replicas per key.
    pub replication_factor: u32,
    /// Conflict resolution.
    pub conflict_mode: ConflictMode,
    /// Default read consistency.
    pub read_consistency: ConsistencyLevel,
    /// Default write consistency.
    pub write_consistency: ConsistencyLevel,
    /// TTL of writes that set none, in seconds.
    pub default_ttl_seconds: Option<u64>,
}

/// The registry of keyspaces; `default` always exists.
#[derive(Debug)]
pub struct Keyspaces {
    by_name: RwLock<BTreeMap<String, Arc<Keyspace>>>,
}

impl Keyspaces {
    /// Builds the registry from the configuration.
    pub fn from_config(config: &Config) -> Self {
        let r = &config.replication;
        let resolve = |k: &KeyspaceConfig| Keyspace {
            name: k.name.clone(),
            replication_factor: k.replication_factor.unwrap_or(r.replication_factor),
            conflict_mode: k.conflict_mode,
            read_consistency: k.read_consistency.unwrap_or(r.read_consistency),
            write_consistency: k.write_consistency.unwrap_or(r.write_consistency),
            default_ttl_seconds: k.default_ttl_seconds.filter(|t| *t > 0),
        };
        let default = KeyspaceConfig {
            name: crate::DEFAULT_KEYSPACE.to_owned(),
            replication_factor: None,
            conflict_mode: r.default_keyspace_conflict_mode,
            read_consistency: None,
            write_consistency: None,
            default_ttl_seconds: None,
        };
        let by_name = std::iter::once(&default)
            .chain(config.keyspaces.iter())
            .map(|k| (k.name.clone(), Arc::new(resolve(k))))
            .collect();
        Self { by_name: RwLock::new(by_name) }
    }

    /// The keyspace called `name`; an empty name means `default`.
    pub fn get(&self, name: &str) -> Result<Arc<Keyspace>, KvError> {
        let name = if name.is_empty() { crate::DEFAULT_KEYSPACE } else { name };
        let map = self.by_name.read().unwrap_or_else(|e| e.into_inner());
        map.get(name).cloned().ok_or_else(|| KvError::UnknownKeyspace { name: name.to_owned() })
    }

    /// Every keyspace, by name.
    pub fn list(&self) -> Vec<Arc<Keyspace>> {
        let map = self.by_name.read().unwrap_or_else(|e| e.into_inner());
        map.values().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_keyspace_takes_its_conflict_mode_from_the_replication_section() {
        let mut config: Config = toml::from_str("[replication]\ndefault_keyspace_conflict_mode = \"lww\"\n")
            .unwrap_or_else(|e| panic!("config: {e}"));
        config.keyspaces.push(KeyspaceConfig {
            name: "carts".into(),
            replication_factor: None,
            conflict_mode: ConflictMode::Siblings,
            read_consistency: None,
            write_consistency: None,
            default_ttl_seconds: None,
        });
        let keyspaces = Keyspaces::from_config(&config);
        let mode = |name: &str| keyspaces.get(name).map(|k| k.conflict_mode).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(mode(crate::DEFAULT_KEYSPACE), ConflictMode::Lww);
        assert_eq!(mode("carts"), ConflictMode::Siblings, "other keyspaces keep their own");
        assert_eq!(
            Keyspaces::from_config(&Config::default()).get(crate::DEFAULT_KEYSPACE).map(|k| k.conflict_mode).ok(),
            Some(ConflictMode::Siblings)
        );
    }
}
