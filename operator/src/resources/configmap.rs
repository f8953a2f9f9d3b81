//! The ConfigMaps: `node.toml` rendered from the node's own
//! [`ringkv_node::config::Config`] type (so the two cannot drift), and the
//! replace map (pod name → host id it replaces) read by the pod's start line.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;
use ringkv_node::config::Config;
use ringkv_node::replication::ConsistencyLevel;
use ringkv_node::version::ConflictMode;

use super::*;
use crate::crd::{ConflictModeSpec, ConsistencyLevelSpec};

/// Key of the rendered configuration in the ConfigMap.
pub const CONFIG_KEY: &str = "node.toml";

/// Why the node configuration could not be rendered.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RenderError {
    /// The rendered configuration fails the node's own validation.
    #[error("the node would refuse this configuration: {source}; fix the KVCluster spec")]
    Invalid {
        /// The node's complaint.
        source: ringkv_node::config::ConfigError,
    },
    /// TOML serialisation failed.
    #[error("cannot write node.toml: {source}")]
    Toml {
        /// The serialiser's error.
        source: toml::ser::Error,
    },
}

/// The node's level for a spec level (same names on both sides).
pub fn consistency(level: ConsistencyLevelSpec) -> ConsistencyLevel {
    match level {
        ConsistencyLevelSpec::One => ConsistencyLevel::One,
        ConsistencyLevelSpec::Two => ConsistencyLevel::Two,
        ConsistencyLevelSpec::Three => ConsistencyLevel::Three,
        ConsistencyLevelSpec::Quorum => ConsistencyLevel::Quorum,
        ConsistencyLevelSpec::All => ConsistencyLevel::All,
        ConsistencyLevelSpec::LocalQuorum => ConsistencyLevel::LocalQuorum,
        ConsistencyLevelSpec::EachQuorum => ConsistencyLevel::EachQuorum,
        ConsistencyLevelSpec::Any => ConsistencyLevel::Any,
    }
}

/// The node configuration every pod of the cluster shares. Per-pod values
/// (listen addresses, zone, rack, replace) come from flags in the pod spec.
pub fn node_config(kvc: &KVCluster) -> Config {
    let spec = &kvc.spec;
    let mut c = Config::default();
    c.server.grpc_addr = std::net::SocketAddr::from(([0, 0, 0, 0], GRPC_PORT as u16));
    c.server.http_addr = std::net::SocketAddr::from(([0, 0, 0, 0], HTTP_PORT as u16));
    c.storage.data_dir = DATA_DIR.into();
    c.replication.replication_factor = u32::try_from(spec.replication_factor).unwrap_or(1);
    c.replication.read_consistency = consistency(spec.consistency.read);
    c.replication.write_consistency = consistency(spec.consistency.write);
    c.replication.default_keyspace_conflict_mode = match spec.conflict_mode {
        ConflictModeSpec::Siblings => ConflictMode::Siblings,
        ConflictModeSpec::Lww => ConflictMode::Lww,
    };
    c.ring.vnodes = u32::try_from(spec.vnodes).unwrap_or(64);
    c.membership.seeds = seed_pods(kvc).iter().map(|pod| format!("{}:{GRPC_PORT}", pod_dns(kvc, pod))).collect();
    c
}

/// Seeds wanted when there are few racks.
const MIN_SEEDS: usize = 3;

/// The seed pods: the first pod of every rack, then the next ordinals of the
/// racks in turn until there are [`MIN_SEEDS`]. With one seed, a restarted
/// seed that came back on a new IP could start a ring of its own; with
/// several, every node keeps a way into the one ring. Independent of
/// `spec.nodes`, so that scaling never changes `node.toml` (and never rolls
/// the pods); a seed pod that does not exist (yet) is skipped by the nodes.
pub fn seed_pods(kvc: &KVCluster) -> Vec<String> {
    let racks = &kvc.spec.racks;
    let mut out: Vec<String> = racks.iter().map(|r| pod_name(kvc, &r.name, 0)).collect();
    let mut ordinal = 1;
    while !racks.is_empty() && out.len() < MIN_SEEDS {
        let wanted = MIN_SEEDS - out.len();
        out.extend(racks.iter().take(wanted).map(|r| pod_name(kvc, &r.name, ordinal)));
        ordinal += 1;
    }
    out
}

/// `node.toml` as text, checked by the node's own `validate()`.
pub fn render(kvc: &KVCluster) -> Result<String, RenderError> {
    let config = node_config(kvc);
    config.validate().map_err(|source| RenderError::Invalid { source })?;
    toml::to_string(&config).map_err(|source| RenderError::Toml { source })
}

/// The ConfigMap holding `node.toml`.
pub fn build(kvc: &KVCluster) -> Result<ConfigMap, RenderError> {
    Ok(ConfigMap {
        metadata: owned_meta(kvc, config_map_name(kvc)),
        data: Some(BTreeMap::from([(CONFIG_KEY.to_string(), render(kvc)?)])),
        ..ConfigMap::default()
    })
}

/// The replace map: for each pod being replaced, the host id it takes over.
pub fn build_replace_map(kvc: &KVCluster, entries: &BTreeMap<String, String>) -> ConfigMap {
    ConfigMap { metadata: owned_meta(kvc, replace_map_name(kvc)), data: Some(entries.clone()), ..ConfigMap::default() }
}
