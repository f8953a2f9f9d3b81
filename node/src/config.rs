//! Node configuration: one serde [`Config`] made of per-component sections.
//!
//! Loaded from TOML (`kvnode serve --config FILE`), overridden by command-line
//! flags, then checked by [`Config::validate`], which refuses nonsense with a
//! message that says how to fix it. Library code receives sections through
//! constructors and reads no environment variables.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::replication::ConsistencyLevel;
use crate::storage::SyncPolicy;
use crate::version::ConflictMode;

/// The whole node configuration.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Network listeners and request limits.
    pub server: ServerConfig,
    /// Local storage engine.
    pub storage: StorageConfig,
    /// Replication defaults.
    pub replication: ReplicationConfig,
    /// Placement on the ring.
    pub ring: RingConfig,
    /// How nodes find each other.
    pub membership: MembershipConfig,
    /// Hinted handoff.
    pub hints: HintsConfig,
    /// Merkle-tree anti-entropy (scheduled repair).
    pub antientropy: AntiEntropyConfig,
    /// Range streaming (join, decommission, replace, removenode).
    pub streaming: StreamingConfig,
    /// Node lifecycle.
    pub topology: TopologyConfig,
    /// `[auth]`: client authentication (off by default).
    pub auth: AuthConfig,
    /// Keyspaces besides `default` (which always exists).
    pub keyspaces: Vec<KeyspaceConfig>,
    /// TLS on the client-facing listeners (gRPC, HTTP, RESP); off by default.
    pub tls: TlsConfig,
    /// Mutual TLS between nodes (the cluster port); off by default.
    pub cluster_tls: ClusterTlsConfig,
}

/// Whether a TLS listener asks clients for a certificate.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum ClientAuth {
    /// No client certificates are requested.
    #[default]
    None,
    /// A client may present a certificate signed by `ca_file` (it then
    /// identifies the client); clients without one are accepted too.
    Optional,
    /// Every client must present a certificate signed by `ca_file`.
    Required,
}

/// `[tls]`: TLS on the client-facing listeners. Certificates are PEM files,
/// reloaded when they change on disk (a bad new file keeps the last good one).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// Serve TLS on the gRPC, HTTP and RESP listeners.
    pub enabled: bool,
    /// This node's certificate chain (PEM, leaf first).
    pub cert_file: PathBuf,
    /// The private key of `cert_file` (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
    /// CA certificates (PEM) that client certificates must chain to; needed
    /// when `client_auth` is `optional` or `required`.
    pub ca_file: Option<PathBuf>,
    /// Ask clients for certificates: `none` (default), `optional`, `required`.
    pub client_auth: ClientAuth,
    /// How often the files are checked for changes, in milliseconds.
    pub reload_interval_ms: u64,
}

impl Default for TlsConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            cert_file: PathBuf::new(),
            key_file: PathBuf::new(),
            ca_file: None,
            client_auth: ClientAuth::None,
            reload_interval_ms: 5000,
        }
    }
}

/// `[cluster_tls]`: mutual TLS between nodes. Both sides present a
/// certificate signed by the cluster CA (`ca_file`); a process without one
/// cannot connect to the cluster port. The same files are this node's
/// server and client identity.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterTlsConfig {
    /// Use mutual TLS between nodes.
    pub enabled: bool,
    /// This node's cluster certificate chain (PEM, leaf first).
    pub cert_file: PathBuf,
    /// The private key of `cert_file` (PEM).
    pub key_file: PathBuf,
    /// The cluster CA (PEM) every node's certificate must chain to.
    pub ca_file: PathBuf,
    /// How often the files are checked for changes, in milliseconds.
    pub reload_interval_ms: u64,
}

impl Default for ClusterTlsConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            cert_file: PathBuf::new(),
            key_file: PathBuf::new(),
            ca_file: PathBuf::new(),
            reload_interval_ms: 5000,
        }
    }
}

/// `[ring]`: this node's place on the token ring.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RingConfig {
    /// Tokens this node takes when it first starts (more = smoother ownership).
    pub vnodes: u32,
    /// Zone (datacenter) of this node; empty when the cluster has no zones.
    pub zone: String,
    /// Rack of this node.
    pub rack: String,
}

impl Default for RingConfig {
    fn default() -> Self {
        Self { vnodes: 64, zone: String::new(), rack: String::new() }
    }
}

/// `[membership]`: gossip (how nodes find each other) and failure detection.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct MembershipConfig {
    /// gRPC addresses (`HOST:PORT`, DNS names allowed) of nodes to gossip
    /// with at start and now and then (`--seeds`). Every node of a cluster
    /// should list the same few seeds.
    pub seeds: Vec<String>,
    /// How often this node starts a gossip round and beats its heartbeat, in
    /// milliseconds (Cassandra: 1000). The older name `probe_interval_ms` is accepted.
    #[serde(alias = "probe_interval_ms")]
    pub gossip_interval_ms: u64,
    /// phi above which the failure detector convicts a peer (DOWN); above half
    /// of it the peer is SUSPECT (still used). 8 convicts a dead peer in
    /// about 6 to 9 s at a 1 s interval; higher is slower and surer.
    pub phi_convict_threshold: f64,
    /// Obsolete (static membership's fixed timeout): accepted so that older
    /// config files still load, ignored with a warning; the phi-accrual
    /// detector decides instead (`phi_convict_threshold`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub down_after_ms: Option<u64>,
    /// How often the seeds' names, and the names of peers that stopped
    /// answering, are looked up again (a restarted pod comes back on a new
    /// IP), in milliseconds.
    pub resolve_interval_ms: u64,
    /// The name (`HOST:PORT`) other nodes find this node's gRPC address by
    /// (`--advertise-name`; in Kubernetes the pod's stable DNS name), sent
    /// in gossip and looked up again by peers when the node stops answering
    /// at its address. Empty: none (peers know it by address only).
    pub advertise_name: String,
}

impl Default for MembershipConfig {
    fn default() -> Self {
        Self {
            seeds: Vec::new(),
            gossip_interval_ms: 1000,
            phi_convict_threshold: 8.0,
            down_after_ms: None,
            resolve_interval_ms: 5000,
            advertise_name: String::new(),
        }
    }
}

/// `[hints]`: hinted handoff for replicas that missed writes.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct HintsConfig {
    /// Hints older than this are dropped (repair restores what they carried), in seconds.
    pub max_hint_window_seconds: u64,
    /// Most hints replayed per second to one target (throttle).
    pub replay_rate_per_second: u32,
    /// How often pending hints are checked, in milliseconds.
    pub replay_interval_ms: u64,
}

impl Default for HintsConfig {
    fn default() -> Self {
        Self { max_hint_window_seconds: 3 * 3600, replay_rate_per_second: 5000, replay_interval_ms: 1000 }
    }
}

/// `[antientropy]`: Merkle-tree repair between replicas.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AntiEntropyConfig {
    /// Run a repair of every range this node replicates every `interval_secs`
    /// (`kvctl repair` works either way).
    pub enabled: bool,
    /// Time between scheduled repairs, in seconds.
    pub interval_secs: u64,
    /// Most MiB per second a repair reads to build trees and exchanges with peers.
    pub throughput_mb_per_s: f64,
    /// Depth of every Merkle tree: `2^depth` token buckets per range (0..=20).
    /// Must be the same on every node.
    pub depth: u32,
    /// Trees kept up to date on write are still rebuilt from a full scan when
    /// older than this before a repair compares them (catches what bypassed
    /// the write path, e.g. disk corruption), in seconds.
    pub tree_max_age_secs: u64,
    /// Serve the test hooks (direct local reads and writes bypassing
    /// versioning). Set only by `kvnode` from `RINGKV_TEST_HOOKS=1`; never from a file.
    #[serde(skip)]
    pub test_hooks: bool,
}

impl Default for AntiEntropyConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            interval_secs: 6 * 3600,
            throughput_mb_per_s: 16.0,
            depth: 10,
            tree_max_age_secs: 24 * 3600,
            test_hooks: false,
        }
    }
}

/// `[streaming]`: moving token ranges between nodes.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct StreamingConfig {
    /// Average rate of one incoming stream, in MB/s (0 = unlimited).
    pub throughput_mb_per_s: u64,
    /// Records per streamed page.
    pub page_records: u32,
}

impl Default for StreamingConfig {
    fn default() -> Self {
        Self { throughput_mb_per_s: 64, page_records: 1000 }
    }
}

/// `[topology]`: how this node enters and leaves the ring.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct TopologyConfig {
    /// Host id of a dead node this (empty) node replaces (`kvnode serve --replace`).
    pub replace_host_id: Option<String>,
    /// How long a new node waits for its seeds to answer before deciding to join, in milliseconds.
    pub discovery_timeout_ms: u64,
    /// How long to wait for live peers to see a status change before streaming, in milliseconds.
    pub settle_timeout_ms: u64,
}

impl Default for TopologyConfig {
    fn default() -> Self {
        Self { replace_host_id: None, discovery_timeout_ms: 10_000, settle_timeout_ms: 10_000 }
    }
}

/// `[server]`: listeners and limits on client input.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// gRPC listen address (client, admin and node-to-node APIs).
    pub grpc_addr: SocketAddr,
    /// HTTP listen address (`/api/v1`, `/metrics`, `/healthz`, `/readyz`).
    pub http_addr: SocketAddr,
    /// RESP (Redis protocol) listen address for the `default` keyspace; off when absent.
    pub resp_addr: Option<SocketAddr>,
    /// Largest accepted key, in bytes.
    pub max_key_bytes: usize,
    /// Largest accepted value, in bytes.
    pub max_value_bytes: usize,
    /// Largest accepted TTL, in seconds (default 20 years, as Cassandra).
    pub max_ttl_seconds: u64,
    /// Largest number of keys in one batch request.
    pub max_batch_keys: usize,
    /// Deadline of one client request, in milliseconds.
    pub request_timeout_ms: u64,
    /// How long a graceful shutdown waits for in-flight requests, in milliseconds.
    pub shutdown_grace_ms: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            grpc_addr: SocketAddr::from(([127, 0, 0, 1], 7100)),
            http_addr: SocketAddr::from(([127, 0, 0, 1], 7180)),
            resp_addr: None,
            max_key_bytes: 1024,
            max_value_bytes: 1024 * 1024,
            max_ttl_seconds: 20 * 365 * 24 * 3600,
            max_batch_keys: 1000,
            request_timeout_ms: 5000,
            shutdown_grace_ms: 10_000,
        }
    }
}

/// `[storage]`: the local LSM engine and its durability.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// Directory holding this node's data (journal, SSTables, metadata).
    pub data_dir: PathBuf,
    /// When writes are fsynced: `always` (group commit), `periodic` or `none`.
    pub sync: SyncPolicy,
    /// fsync interval for `sync = "periodic"`, in milliseconds.
    pub sync_interval_ms: u64,
    /// Largest number of write batches one group commit (one fsync) may take.
    pub group_commit_max_batches: usize,
    /// Block cache size, in MiB.
    pub cache_size_mb: u64,
    /// How long tombstones are kept before they may be purged, in seconds (default 10 days).
    pub gc_grace_seconds: u64,
    /// How often expired records and old tombstones are purged, in seconds.
    pub purge_interval_seconds: u64,
    /// Run single-key storage operations (point reads, one key's write to the
    /// memtable and journal buffer) on the request's own thread instead of
    /// handing each one to the blocking pool. A memtable or block-cache hit
    /// takes a few microseconds, far less than the two thread wake-ups of the
    /// hand-off (measured: 1.9x RESP GET throughput). fsyncs never run
    /// inline (group commit and periodic sync have their own threads), nor do
    /// scans, purges and batches. A read that misses the cache waits for the
    /// disk on a runtime thread: set `false` when the data is much larger
    /// than RAM on slow disks.
    pub inline_point_ops: bool,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./data/node"),
            sync: SyncPolicy::Periodic,
            sync_interval_ms: 100,
            group_commit_max_batches: 1024,
            cache_size_mb: 64,
            gc_grace_seconds: 10 * 24 * 3600,
            purge_interval_seconds: 60,
            inline_point_ops: true,
        }
    }
}

/// `[replication]`: cluster-wide defaults.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ReplicationConfig {
    /// Replicas per key for keyspaces that do not set their own.
    pub replication_factor: u32,
    /// Default read consistency.
    pub read_consistency: ConsistencyLevel,
    /// Default write consistency.
    pub write_consistency: ConsistencyLevel,
    /// Whether hints stored on stand-ins count toward W (Dynamo's sloppy quorum).
    /// Off by default, so that R + W > N keeps meaning overlapping replicas.
    pub sloppy: bool,
    /// Deadline of one call to a replica, in milliseconds.
    pub replica_timeout_ms: u64,
    /// How the `default` keyspace resolves concurrent writes: `siblings`
    /// (default) or `lww`. Other keyspaces set their own.
    pub default_keyspace_conflict_mode: ConflictMode,
}

impl Default for ReplicationConfig {
    fn default() -> Self {
        Self {
            replication_factor: 1,
            read_consistency: ConsistencyLevel::Quorum,
            write_consistency: ConsistencyLevel::Quorum,
            sloppy: false,
            replica_timeout_ms: 2000,
            default_keyspace_conflict_mode: ConflictMode::Siblings,
        }
    }
}

// --- [auth] (issue 13, helper E) ---

/// `[auth]`: client authentication and authorization. Off by default: every
/// client may do everything, as before.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Require credentials (bearer token, RESP `AUTH`, or client certificate) on client requests.
    pub enabled: bool,
    /// File holding the bootstrap admin token (`<user>.<secret>`), used at first start to
    /// create that user with `admin` on `*` if the schema has no such user; the
    /// `RINGKV_ADMIN_TOKEN` environment variable is read when this is unset.
    pub admin_token_file: Option<PathBuf>,
    /// File holding the token `/metrics` requires (sent as `Authorization: Bearer ...`);
    /// `/metrics` stays open when unset. `/healthz` and `/readyz` are always open.
    pub metrics_token_file: Option<PathBuf>,
}

// --- end [auth] ---

/// `[[keyspaces]]`: one keyspace and its settings.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct KeyspaceConfig {
    /// Name: 1–48 characters of `[A-Za-z0-9_-]`.
    pub name: String,
    /// Replicas per key; the cluster default when absent.
    #[serde(default)]
    pub replication_factor: Option<u32>,
    /// `siblings` (default) or `lww`.
    #[serde(default)]
    pub conflict_mode: ConflictMode,
    /// Default read consistency; the cluster default when absent.
    #[serde(default)]
    pub read_consistency: Option<ConsistencyLevel>,
    /// Default write consistency; the cluster default when absent.
    #[serde(default)]
    pub write_consistency: Option<ConsistencyLevel>,
    /// TTL given to writes that set none, in seconds; none when absent.
    #[serde(default)]
    pub default_ttl_seconds: Option<u64>,
}

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is not valid TOML for [`Config`].
    #[error("config file {path} is invalid: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's error (names the line and field).
        source: Box<toml::de::Error>,
    },
    /// A value is out of range.
    #[error("config value {field} = {value} is invalid: {fix}")]
    Invalid {
        /// The field, as `section.name`.
        field: &'static str,
        /// The value given.
        value: String,
        /// How to fix it.
        fix: &'static str,
    },
}

/// True when `name` is a valid keyspace name.
pub fn valid_keyspace_name(name: &str) -> bool {
    (1..=48).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

impl Config {
    /// Reads a TOML file.
    pub fn from_file(path: &std::path::Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.into(), source })?;
        toml::from_str(&text).map_err(|source| ConfigError::Parse { path: path.into(), source: Box::new(source) })
    }

    /// Refuses values that cannot work, saying how to fix them.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |field, value: String, fix| Err(ConfigError::Invalid { field, value, fix });
        let s = &self.server;
        if s.max_key_bytes == 0 || s.max_key_bytes > crate::storage::MAX_KEY_BYTES - 256 {
            return invalid(
                "server.max_key_bytes",
                s.max_key_bytes.to_string(),
                "use 1..=65000 (the engine's key limit, less room for the keyspace name)",
            );
        }
        if s.max_value_bytes == 0 || s.max_value_bytes > 64 * 1024 * 1024 {
            return invalid("server.max_value_bytes", s.max_value_bytes.to_string(), "use 1..=67108864 (64 MiB)");
        }
        if s.max_batch_keys == 0 {
            return invalid("server.max_batch_keys", "0".into(), "use at least 1");
        }
        if s.request_timeout_ms == 0 {
            return invalid("server.request_timeout_ms", "0".into(), "use a positive number of milliseconds");
        }
        if self.storage.sync == SyncPolicy::Periodic && self.storage.sync_interval_ms == 0 {
            return invalid("storage.sync_interval_ms", "0".into(), "use a positive interval, or sync = \"always\"");
        }
        if self.storage.group_commit_max_batches == 0 {
            return invalid("storage.group_commit_max_batches", "0".into(), "use at least 1");
        }
        if self.streaming.page_records == 0 {
            return invalid("streaming.page_records", "0".into(), "use at least 1 (1000 is typical)");
        }
        if self.replication.replication_factor == 0 {
            return invalid("replication.replication_factor", "0".into(), "use at least 1");
        }
        if self.ring.vnodes == 0 || self.ring.vnodes > 4096 {
            return invalid("ring.vnodes", self.ring.vnodes.to_string(), "use 1..=4096 (16 to 256 is typical)");
        }
        if self.replication.replica_timeout_ms == 0 {
            return invalid("replication.replica_timeout_ms", "0".into(), "use a positive number of milliseconds");
        }
        if self.membership.gossip_interval_ms == 0 || self.membership.gossip_interval_ms > 60_000 {
            return invalid(
                "membership.gossip_interval_ms",
                self.membership.gossip_interval_ms.to_string(),
                "use 1..=60000 milliseconds (1000 is typical)",
            );
        }
        if self.membership.resolve_interval_ms == 0 {
            return invalid(
                "membership.resolve_interval_ms",
                "0".into(),
                "use a positive number of milliseconds (5000 is typical)",
            );
        }
        let name = self.membership.advertise_name.trim();
        if !name.is_empty()
            && name.rsplit_once(':').is_none_or(|(host, port)| host.is_empty() || port.parse::<u16>().is_err())
        {
            return invalid(
                "membership.advertise_name",
                name.to_owned(),
                "use HOST:PORT, e.g. ringkv-0.ringkv.default.svc:7100",
            );
        }
        let phi = self.membership.phi_convict_threshold;
        if !(1.0..=64.0).contains(&phi) {
            return invalid(
                "membership.phi_convict_threshold",
                phi.to_string(),
                "use 1..=64 (8 is typical; 10-12 on noisy networks such as cloud VMs)",
            );
        }
        if self.hints.replay_rate_per_second == 0 {
            return invalid("hints.replay_rate_per_second", "0".into(), "use at least 1");
        }
        let ae = &self.antientropy;
        if ae.depth > crate::antientropy::merkle::MAX_DEPTH {
            return invalid("antientropy.depth", ae.depth.to_string(), "use 0..=20 (10 means 1024 buckets per range)");
        }
        if ae.interval_secs == 0 {
            return invalid("antientropy.interval_secs", "0".into(), "use a positive number of seconds");
        }
        if !(ae.throughput_mb_per_s.is_finite() && ae.throughput_mb_per_s > 0.0) {
            return invalid(
                "antientropy.throughput_mb_per_s",
                ae.throughput_mb_per_s.to_string(),
                "use a positive number of MiB per second",
            );
        }
        self.validate_tls()?;
        let mut seen = std::collections::HashSet::new();
        for ks in &self.keyspaces {
            if !valid_keyspace_name(&ks.name) {
                return invalid("keyspaces.name", ks.name.clone(), "use 1-48 characters of A-Z a-z 0-9 _ -");
            }
            if ks.name == crate::DEFAULT_KEYSPACE || !seen.insert(ks.name.clone()) {
                return invalid("keyspaces.name", ks.name.clone(), "each keyspace once; `default` always exists");
            }
            if ks.replication_factor == Some(0) {
                return invalid("keyspaces.replication_factor", "0".into(), "use at least 1");
            }
        }
        Ok(())
    }
}

impl Config {
    /// The `[tls]` and `[cluster_tls]` checks that need no file access (the
    /// files themselves are checked when the TLS module loads them).
    fn validate_tls(&self) -> Result<(), ConfigError> {
        let invalid = |field, value: String, fix| Err(ConfigError::Invalid { field, value, fix });
        let t = &self.tls;
        if t.enabled {
            if t.cert_file.as_os_str().is_empty() || t.key_file.as_os_str().is_empty() {
                return invalid("tls.cert_file", String::new(), "set tls.cert_file and tls.key_file (PEM files)");
            }
            if t.client_auth != ClientAuth::None && t.ca_file.is_none() {
                return invalid(
                    "tls.ca_file",
                    String::new(),
                    "set tls.ca_file to the CA of client certificates, or client_auth = \"none\"",
                );
            }
            if t.reload_interval_ms == 0 {
                return invalid("tls.reload_interval_ms", "0".into(), "use a positive number of milliseconds");
            }
        }
        let c = &self.cluster_tls;
        if c.enabled {
            if [&c.cert_file, &c.key_file, &c.ca_file].iter().any(|p| p.as_os_str().is_empty()) {
                return invalid(
                    "cluster_tls.cert_file",
                    String::new(),
                    "set cluster_tls.cert_file, key_file and ca_file (mutual TLS needs all three)",
                );
            }
            if c.reload_interval_ms == 0 {
                return invalid("cluster_tls.reload_interval_ms", "0".into(), "use a positive number of milliseconds");
            }
        }
        // The TLS module exists but the listeners and the peer pool do not
        // use it yet (issue 13, next step): refuse rather than serve
        // plaintext to someone who asked for TLS. Remove when wired.
        if t.enabled || c.enabled {
            return invalid(
                if t.enabled { "tls.enabled" } else { "cluster_tls.enabled" },
                "true".into(),
                "this build does not serve TLS yet (issue 13); remove the setting or use a build that does",
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod membership_tests {
    use super::*;

    #[test]
    fn old_membership_fields_still_load_and_gossip_settings_are_validated() {
        let text = "[membership]\nseeds = [\"n0:7100\"]\nprobe_interval_ms = 500\ndown_after_ms = 3000\n";
        let old: Config = toml::from_str(text).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(old.membership.gossip_interval_ms, 500, "probe_interval_ms is read as the gossip interval");
        assert_eq!(old.membership.down_after_ms, Some(3000), "accepted, ignored with a warning at start");
        assert!(old.validate().is_ok());
        let defaults = MembershipConfig::default();
        assert_eq!((defaults.gossip_interval_ms, defaults.phi_convict_threshold), (1000, 8.0));

        for phi in [0.5, 65.0, f64::NAN] {
            let mut c = Config::default();
            c.membership.phi_convict_threshold = phi;
            let refused = c.validate();
            assert!(
                matches!(refused, Err(ConfigError::Invalid { field: "membership.phi_convict_threshold", .. })),
                "{phi}: {refused:?}"
            );
        }
        let mut c = Config::default();
        c.membership.gossip_interval_ms = 0;
        assert!(matches!(c.validate(), Err(ConfigError::Invalid { field: "membership.gossip_interval_ms", .. })));
    }

    #[test]
    fn tls_sections_default_off_and_refuse_missing_files() {
        let c: Config = toml::from_str("").unwrap_or_else(|e| panic!("{e}"));
        assert!(!c.tls.enabled && !c.cluster_tls.enabled);
        let on: Config = toml::from_str(
            "[tls]\nenabled = true\ncert_file = \"n.pem\"\nkey_file = \"n.key\"\nclient_auth = \"optional\"\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(on.validate(), Err(ConfigError::Invalid { field: "tls.ca_file", .. })));
        let mut c = Config::default();
        c.cluster_tls.enabled = true;
        c.cluster_tls.cert_file = "n.pem".into();
        c.cluster_tls.key_file = "n.key".into();
        assert!(matches!(c.validate(), Err(ConfigError::Invalid { field: "cluster_tls.cert_file", .. })));
        c.cluster_tls.ca_file = "ca.pem".into();
        let refused = c.validate();
        assert!(matches!(refused, Err(ConfigError::Invalid { field: "cluster_tls.enabled", .. })), "{refused:?}");
    }
}
