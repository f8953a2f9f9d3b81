//! [`EndpointState`]: what gossip knows about one node (Cassandra's
//! `EndpointState`): a [`HeartbeatState`] and versioned application states.
//!
//! Every node owns one version counter (Cassandra's `VersionGenerator`),
//! bumped on every local change and every heartbeat, so the largest version
//! in an endpoint state tells how new the whole state is.
//!
//! Merge rules ([`EndpointState::merge`]): states are ordered by their
//! [`EndpointState::rank`]: LEFT first (a node that left or was removed
//! never comes back under its host id, whatever generation a stale copy or
//! a restarted old data directory claims), then the generation. A higher
//! rank replaces everything (the node restarted, or left); within a rank
//! each application state, and the heartbeat, keeps the higher version, and
//! on equal versions the greater value (so two nodes that wrote a removed
//! node's state on its behalf still agree); a lower rank is ignored. The
//! merge is commutative, associative and idempotent (a join semilattice).
//!
//! Pure: no I/O, no clock.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use crate::ring::Token;
use crate::version::NodeId;

use super::{Member, MemberStatus};

/// A node's incarnation and liveness counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct HeartbeatState {
    /// Start counter of the node: a restart bumps it.
    pub generation: u64,
    /// The node's version counter at its last heartbeat.
    pub version: u64,
}

/// Bit set in [`EndpointState::rank`] for a LEFT state (generations stay below it).
pub const LEFT_RANK: u64 = 1 << 63;

/// Which application state a [`VersionedValue`] holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum AppStateKey {
    /// Lifecycle status.
    Status,
    /// Ring tokens.
    Tokens,
    /// Zone and rack.
    Placement,
    /// Compact node id and addresses.
    Addresses,
    /// Bytes on disk.
    Load,
    /// Schema (keyspace definitions) version.
    Schema,
    /// The DNS name (`HOST:PORT`) the node's gRPC address is found by.
    HostName,
}

impl AppStateKey {
    /// Name for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Status => "status",
            Self::Tokens => "tokens",
            Self::Placement => "placement",
            Self::Addresses => "addresses",
            Self::Load => "load",
            Self::Schema => "schema",
            Self::HostName => "host_name",
        }
    }
}

/// The value of one application state (ordered only to break version ties
/// deterministically in [`EndpointState::merge`]).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
#[non_exhaustive]
pub enum AppValue {
    /// Lifecycle status.
    Status(MemberStatus),
    /// Ring tokens.
    Tokens(Vec<Token>),
    /// Zone and rack (empty when not set).
    Placement {
        /// Zone.
        zone: String,
        /// Rack.
        rack: String,
    },
    /// How to reach the node and its compact id.
    Addresses {
        /// Compact id used in version vectors.
        node_id: NodeId,
        /// gRPC address (node-to-node and clients).
        grpc_addr: SocketAddr,
        /// HTTP address.
        http_addr: SocketAddr,
    },
    /// Bytes the node stores on disk.
    Load(u64),
    /// Version (hash) of the node's keyspace definitions.
    Schema(String),
    /// The DNS name (`HOST:PORT`) peers re-resolve when the node's address
    /// stops answering (a restarted pod gets a new IP).
    HostName(String),
}

impl AppValue {
    /// The key this value is stored under.
    pub fn key(&self) -> AppStateKey {
        match self {
            Self::Status(_) => AppStateKey::Status,
            Self::Tokens(_) => AppStateKey::Tokens,
            Self::Placement { .. } => AppStateKey::Placement,
            Self::Addresses { .. } => AppStateKey::Addresses,
            Self::Load(_) => AppStateKey::Load,
            Self::Schema(_) => AppStateKey::Schema,
            Self::HostName(_) => AppStateKey::HostName,
        }
    }

    /// The application states describing `member` (everything but load and schema).
    pub fn of_member(member: &Member) -> [AppValue; 4] {
        [
            AppValue::Addresses { node_id: member.node_id, grpc_addr: member.grpc_addr, http_addr: member.http_addr },
            AppValue::Placement { zone: member.zone.clone(), rack: member.rack.clone() },
            AppValue::Tokens(member.tokens.clone()),
            AppValue::Status(member.status.clone()),
        ]
    }
}

/// An application state value with the owner's version counter at the change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionedValue {
    /// The owner's version counter when the value was set.
    pub version: u64,
    /// The value.
    pub value: AppValue,
}

/// What is known about one node.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EndpointState {
    /// Generation and heartbeat version.
    pub heartbeat: HeartbeatState,
    /// Application states by key (each value's [`AppValue::key`] is its key).
    pub app_states: BTreeMap<AppStateKey, VersionedValue>,
}

/// What [`EndpointState::merge`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MergeOutcome {
    /// The remote state had a higher generation and replaced ours.
    pub new_generation: bool,
    /// The heartbeat version grew (within the generation) or the generation changed.
    pub heartbeat_advanced: bool,
    /// At least one application state changed.
    pub app_changed: bool,
}

impl EndpointState {
    /// A state at `generation` with no application state yet.
    pub fn new(generation: u64) -> Self {
        Self { heartbeat: HeartbeatState { generation, version: 0 }, app_states: BTreeMap::new() }
    }

    /// The generation.
    pub fn generation(&self) -> u64 {
        self.heartbeat.generation
    }

    /// The largest version in this state (heartbeat and application states).
    pub fn max_version(&self) -> u64 {
        self.app_states.values().map(|v| v.version).fold(self.heartbeat.version, u64::max)
    }

    /// The largest application-state version (heartbeats excluded).
    pub fn max_app_version(&self) -> u64 {
        self.app_states.values().map(|v| v.version).max().unwrap_or(0)
    }

    /// The application state `key`, if known.
    pub fn get(&self, key: AppStateKey) -> Option<&AppValue> {
        self.app_states.get(&key).map(|v| &v.value)
    }

    /// Whether the node left the ring (decommissioned, or removed on its behalf).
    pub fn is_left(&self) -> bool {
        matches!(self.get(AppStateKey::Status), Some(AppValue::Status(MemberStatus::Left)))
    }

    /// The order of states in [`EndpointState::merge`] and in gossip digests:
    /// the generation, with [`LEFT_RANK`] added for a LEFT state.
    pub fn rank(&self) -> u64 {
        let generation = self.generation().min(LEFT_RANK - 1);
        if self.is_left() { LEFT_RANK | generation } else { generation }
    }

    /// The DNS name the node advertised, if any.
    pub fn host_name(&self) -> Option<&str> {
        match self.get(AppStateKey::HostName) {
            Some(AppValue::HostName(name)) => Some(name),
            _ => None,
        }
    }

    /// Only what is newer than `version`: the heartbeat and the application
    /// states with a higher version (what a peer at `version` is missing).
    pub fn delta_after(&self, version: u64) -> EndpointState {
        let app_states =
            self.app_states.iter().filter(|(_, v)| v.version > version).map(|(k, v)| (*k, v.clone())).collect();
        EndpointState { heartbeat: self.heartbeat, app_states }
    }

    /// Merges `remote` into `self` (see the module docs for the rules).
    pub fn merge(&mut self, remote: &EndpointState) -> MergeOutcome {
        let mut outcome = MergeOutcome::default();
        match remote.rank().cmp(&self.rank()) {
            std::cmp::Ordering::Greater => {
                let new_generation = remote.generation() > self.generation();
                *self = remote.clone();
                return MergeOutcome { new_generation, heartbeat_advanced: true, app_changed: true };
            }
            std::cmp::Ordering::Less => return outcome,
            std::cmp::Ordering::Equal => {}
        }
        if remote.heartbeat.version > self.heartbeat.version {
            self.heartbeat.version = remote.heartbeat.version;
            outcome.heartbeat_advanced = true;
        }
        for (key, value) in &remote.app_states {
            let newer =
                self.app_states.get(key).is_none_or(|mine| (value.version, &value.value) > (mine.version, &mine.value));
            if newer {
                self.app_states.insert(*key, value.clone());
                outcome.app_changed = true;
            }
        }
        outcome
    }

    /// The member this state describes, once it carries addresses.
    pub fn to_member(&self, host_id: &str) -> Option<Member> {
        let Some(AppValue::Addresses { node_id, grpc_addr, http_addr }) = self.get(AppStateKey::Addresses) else {
            return None;
        };
        let (zone, rack) = match self.get(AppStateKey::Placement) {
            Some(AppValue::Placement { zone, rack }) => (zone.clone(), rack.clone()),
            _ => (String::new(), String::new()),
        };
        let tokens = match self.get(AppStateKey::Tokens) {
            Some(AppValue::Tokens(tokens)) => tokens.clone(),
            _ => Vec::new(),
        };
        let status = match self.get(AppStateKey::Status) {
            Some(AppValue::Status(status)) => status.clone(),
            _ => MemberStatus::default(),
        };
        Some(Member {
            host_id: host_id.to_owned(),
            node_id: *node_id,
            grpc_addr: *grpc_addr,
            http_addr: *http_addr,
            zone,
            rack,
            tokens,
            generation: self.generation(),
            status,
        })
    }

    /// Bytes on disk the node last reported.
    pub fn load(&self) -> Option<u64> {
        match self.get(AppStateKey::Load) {
            Some(AppValue::Load(bytes)) => Some(*bytes),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vv(version: u64, value: AppValue) -> (AppStateKey, VersionedValue) {
        (value.key(), VersionedValue { version, value })
    }

    fn state(generation: u64, heartbeat: u64, apps: Vec<(AppStateKey, VersionedValue)>) -> EndpointState {
        EndpointState {
            heartbeat: HeartbeatState { generation, version: heartbeat },
            app_states: apps.into_iter().collect(),
        }
    }

    #[test]
    fn a_higher_generation_replaces_everything_and_a_lower_one_is_ignored() {
        let mut mine = state(1, 50, vec![vv(10, AppValue::Load(1)), vv(3, AppValue::Schema("a".into()))]);
        let restarted = state(2, 2, vec![vv(1, AppValue::Load(7))]);
        let outcome = mine.merge(&restarted);
        assert!(outcome.new_generation && outcome.app_changed && outcome.heartbeat_advanced);
        assert_eq!(mine, restarted, "the schema of the old generation is gone too");
        let old = state(1, 99, vec![vv(99, AppValue::Load(3))]);
        assert_eq!(mine.merge(&old), MergeOutcome::default());
        assert_eq!(mine, restarted);
    }

    #[test]
    fn within_a_generation_each_state_keeps_its_higher_version() {
        let mut mine = state(1, 5, vec![vv(4, AppValue::Load(1)), vv(2, AppValue::Schema("a".into()))]);
        let remote = state(1, 4, vec![vv(3, AppValue::Load(9)), vv(5, AppValue::Schema("b".into()))]);
        let outcome = mine.merge(&remote);
        assert_eq!(outcome, MergeOutcome { new_generation: false, heartbeat_advanced: false, app_changed: true });
        assert_eq!(mine.heartbeat.version, 5, "older heartbeat ignored");
        assert_eq!(mine.load(), Some(1), "older load ignored");
        assert_eq!(mine.get(AppStateKey::Schema), Some(&AppValue::Schema("b".into())));
        assert_eq!(mine.max_version(), 5);
        let again = mine.clone();
        assert_eq!(mine.merge(&again), MergeOutcome::default(), "idempotent");
    }

    #[test]
    fn merge_is_commutative_and_associative_on_examples() {
        let a = state(1, 3, vec![vv(2, AppValue::Load(1))]);
        let b = state(1, 7, vec![vv(6, AppValue::Schema("x".into()))]);
        let c = state(2, 1, vec![vv(1, AppValue::Load(5))]);
        let merged = |parts: &[&EndpointState]| {
            let mut s = EndpointState::default();
            parts.iter().for_each(|p| {
                s.merge(p);
            });
            s
        };
        assert_eq!(merged(&[&a, &b]), merged(&[&b, &a]));
        assert_eq!(merged(&[&a, &b, &c]), merged(&[&c, &b, &a]));
        assert_eq!(merged(&[&a, &b, &c]), c);
    }

    #[test]
    fn left_outranks_every_generation_and_ties_break_the_same_everywhere() {
        let normal_later = state(9, 3, vec![vv(2, AppValue::Status(MemberStatus::Normal))]);
        let left = state(5, 7, vec![vv(7, AppValue::Status(MemberStatus::Left)), vv(1, AppValue::Tokens(vec![4]))]);
        let mut a = normal_later.clone();
        assert!(a.merge(&left).app_changed, "a LEFT state replaces a later generation that is not LEFT");
        assert_eq!(a, left);
        let mut b = left.clone();
        assert_eq!(b.merge(&normal_later), MergeOutcome::default(), "and is never replaced by one");
        assert!(left.rank() > normal_later.rank() && left.is_left() && !normal_later.is_left());
        // Two nodes removing the same node at once: same generation and version, different values.
        let leaving = state(6, 8, vec![vv(8, AppValue::Status(MemberStatus::Leaving))]);
        let left_too = state(6, 8, vec![vv(8, AppValue::Status(MemberStatus::Left))]);
        let mut x = leaving.clone();
        x.merge(&left_too);
        let mut y = left_too.clone();
        y.merge(&leaving);
        assert_eq!(x, y, "the tie breaks the same way on both sides");
    }

    /// The merge is a join semilattice over random states of a small
    /// universe (generations, versions, values, LEFT or not): commutative,
    /// associative and idempotent, so replicas converge whatever the order.
    #[test]
    fn merge_is_a_semilattice_on_random_states() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(10);
        let statuses = [MemberStatus::Normal, MemberStatus::Leaving, MemberStatus::Left, MemberStatus::Joining];
        let random = |rng: &mut rand::rngs::StdRng| {
            let mut apps = Vec::new();
            if rng.random_bool(0.8) {
                apps.push(vv(rng.random_range(1..4), AppValue::Status(statuses[rng.random_range(0..4)].clone())));
            }
            if rng.random_bool(0.5) {
                apps.push(vv(rng.random_range(1..4), AppValue::Tokens(vec![rng.random_range(0..3)])));
            }
            if rng.random_bool(0.5) {
                apps.push(vv(rng.random_range(1..4), AppValue::Load(rng.random_range(0..3))));
            }
            state(rng.random_range(1..4), rng.random_range(0..4), apps)
        };
        let join = |a: &EndpointState, b: &EndpointState| {
            let mut m = a.clone();
            m.merge(b);
            m
        };
        for _ in 0..20_000 {
            let (a, b, c) = (random(&mut rng), random(&mut rng), random(&mut rng));
            assert_eq!(join(&a, &b), join(&b, &a), "commutative: {a:?} {b:?}");
            assert_eq!(join(&join(&a, &b), &c), join(&a, &join(&b, &c)), "associative: {a:?} {b:?} {c:?}");
            assert_eq!(join(&a, &a), a, "idempotent");
        }
    }

    #[test]
    fn delta_after_keeps_only_newer_states_and_the_heartbeat() {
        let s = state(3, 9, vec![vv(2, AppValue::Load(1)), vv(8, AppValue::Schema("s".into()))]);
        let delta = s.delta_after(5);
        assert_eq!(delta.heartbeat, s.heartbeat);
        assert_eq!(delta.app_states.keys().copied().collect::<Vec<_>>(), [AppStateKey::Schema]);
        assert_eq!(s.delta_after(0), s);
    }

    #[test]
    fn to_member_needs_addresses_and_fills_defaults() {
        let grpc_addr: SocketAddr = "127.0.0.1:1".parse().unwrap_or_else(|e| panic!("{e}"));
        let http_addr: SocketAddr = "127.0.0.1:2".parse().unwrap_or_else(|e| panic!("{e}"));
        let mut s = state(4, 1, vec![vv(1, AppValue::Tokens(vec![5, 6]))]);
        assert_eq!(s.to_member("h"), None);
        s.merge(&state(4, 2, vec![vv(2, AppValue::Addresses { node_id: 9, grpc_addr, http_addr })]));
        let m = s.to_member("h").unwrap_or_else(|| panic!("member expected"));
        assert_eq!((m.node_id, m.generation, m.tokens.as_slice()), (9, 4, &[5, 6][..]));
        assert_eq!(m.status, MemberStatus::Normal);
    }
}
