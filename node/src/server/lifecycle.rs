//! Start-up glue between the node process and [`Topology`]: decide, before
//! the identity is loaded, how this node enters the ring (replace, resume a
//! join or a replacement, join or form a new cluster, or just restart), and
//! run that in the background (a [`Jobs`] task, owned by the node's
//! worker runner) once the servers are up.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use prometheus::Registry;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::membership::MemberStatus;
use crate::peer::GrpcStreamPeers;
use crate::replication::Coordinator;
use crate::ring::Token;
use crate::storage::Storage;
use crate::topology::{
    FRESH_STATE, STATE_KEY, StreamPeers, StreamProgress, StreamSettings, Topology, TopologyError, TopologySettings,
};
use crate::worker::Jobs;

use super::node::NodeError;

/// How this start enters the ring.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Start {
    /// A known node restarting: NORMAL with its tokens.
    Restart,
    /// A fresh node with seeds: undecided until it has heard its seeds
    /// (joins a cluster of at least RF nodes, else helps form a new one).
    Fresh,
    /// A join interrupted by a restart: stream the rest.
    ResumeJoin,
    /// Replacing a dead node (fresh, or resumed after a restart).
    Replace,
}

impl Start {
    /// The tokens announced at start: none while undecided.
    pub(super) fn initial_tokens(&self, persisted: &[Token]) -> Vec<Token> {
        if *self == Start::Fresh { Vec::new() } else { persisted.to_vec() }
    }

    /// The status announced at start.
    pub(super) fn initial_status(&self, host_id: &str) -> MemberStatus {
        match self {
            Start::Restart => MemberStatus::Normal,
            Start::Fresh | Start::ResumeJoin => MemberStatus::Joining,
            Start::Replace => MemberStatus::Replacing { old_host_id: host_id.to_owned() },
        }
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, crate::storage::StorageError> + Send + 'static,
) -> Result<T, NodeError> {
    let r = tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| NodeError::Serve { server: "storage", message: e.to_string() })?;
    Ok(r?)
}

/// Decides the start (and, for `--replace`, takes over the dead node's identity).
pub(super) async fn prepare(
    config: &Config,
    storage: &Arc<dyn Storage>,
    seeds: &[SocketAddr],
) -> Result<Start, NodeError> {
    let s = Arc::clone(storage);
    let fresh = blocking(move || super::bootstrap::is_fresh(s.as_ref())).await?;
    let s = Arc::clone(storage);
    let state = blocking(move || s.get_meta(STATE_KEY)).await?;
    let state = state.map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
    if let Some(dead) = &config.topology.replace_host_id {
        if !fresh {
            if state.starts_with("replacing:") {
                return Ok(Start::Replace);
            }
            return Err(TopologyError::Precondition {
                reason: format!(
                    "--replace needs an empty data directory, but {} already holds a node; wipe it or drop --replace",
                    config.storage.data_dir.display()
                ),
            }
            .into());
        }
        adopt(dead, storage, seeds).await?;
        return Ok(Start::Replace);
    }
    Ok(match state.as_str() {
        "joining" => Start::ResumeJoin,
        // Restarted before its turn to enter the ring came: still fresh.
        FRESH_STATE if !seeds.is_empty() => Start::Fresh,
        s if s.starts_with("replacing:") => Start::Replace,
        "left" => {
            return Err(TopologyError::Precondition {
                reason: "this node was decommissioned (LEFT); wipe its data directory to add it again".into(),
            }
            .into());
        }
        _ if fresh && !seeds.is_empty() => {
            // Persisted before the identity is, so that a restart before this
            // node entered the ring finds it fresh, never NORMAL.
            let s = Arc::clone(storage);
            blocking(move || s.put_meta(STATE_KEY, FRESH_STATE.as_bytes())).await?;
            Start::Fresh
        }
        _ => Start::Restart,
    })
}

/// Asks the seeds about `dead` and takes over its identity when it is a known, dead member.
async fn adopt(dead: &str, storage: &Arc<dyn Storage>, seeds: &[SocketAddr]) -> Result<(), NodeError> {
    if dead.len() != 32 || !dead.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(TopologyError::UnknownHost { host_id: dead.to_owned() }.into());
    }
    let peers = GrpcStreamPeers::new(Duration::from_secs(5));
    let mut last = None;
    for seed in seeds {
        match peers.describe(*seed, dead).await.map(|d| d.member) {
            Ok(None) => return Err(TopologyError::UnknownHost { host_id: dead.to_owned() }.into()),
            Ok(Some(d)) if d.alive => {
                return Err(TopologyError::HostAlive { host_id: dead.to_owned(), what: "replaced" }.into());
            }
            Ok(Some(d)) if d.member.status == MemberStatus::Left => {
                return Err(TopologyError::AlreadyLeft { host_id: dead.to_owned() }.into());
            }
            Ok(Some(d)) => {
                let (tokens, generation) = (d.member.tokens.clone(), d.member.generation);
                if tokens.is_empty() {
                    return Err(TopologyError::Precondition {
                        reason: format!("node {dead} owns no tokens; remove it with kvctl removenode instead"),
                    }
                    .into());
                }
                let (s, host) = (Arc::clone(storage), dead.to_owned());
                blocking(move || super::bootstrap::adopt(s.as_ref(), &host, &tokens, generation)).await?;
                tracing::info!(host_id = dead, generation, "took over the identity of the dead node");
                return Ok(());
            }
            Err(e) => last = Some(e),
        }
    }
    Err(match last {
        Some(e) => e.into(),
        None => TopologyError::Precondition {
            reason: "--replace needs --seeds: the cluster to ask about the dead node".into(),
        }
        .into(),
    })
}

/// The node's [`Topology`].
pub(super) fn topology(
    config: &Config,
    coordinator: &Coordinator,
    node: &crate::replication::NodeParts,
    registry: &Registry,
    shutdown: CancellationToken,
) -> Topology {
    let settings = TopologySettings {
        stream: StreamSettings {
            throughput_mb_per_s: config.streaming.throughput_mb_per_s,
            page_records: config.streaming.page_records,
        },
        settle_timeout: Duration::from_millis(config.topology.settle_timeout_ms),
        vnodes: config.ring.vnodes,
    };
    let peers: Arc<dyn StreamPeers> = Arc::new(GrpcStreamPeers::new(Duration::from_secs(30)));
    Topology::new(coordinator.clone(), node.clone(), peers, StreamProgress::new(Some(registry)), settings, shutdown)
}

/// Runs the start's lifecycle step in the background, once the node has heard
/// its seeds; a step that cannot go on stops the node (a fresh node waiting
/// for its turn to join never does: it waits).
pub(super) fn spawn(
    start: Start,
    topology: Topology,
    seeded: Vec<Token>,
    seeds: Vec<SocketAddr>,
    config: &Config,
    jobs: &Jobs,
) {
    let discovery = Duration::from_millis(config.topology.discovery_timeout_ms);
    if seeds.is_empty() {
        // Nothing to hear: ready as soon as the ranges allow (before the first request can come).
        topology.set_discovered();
    }
    let job = async move {
        let result = match start {
            Start::Fresh => topology.enter(seeded, &seeds, discovery).await,
            Start::Restart => {
                topology.discover(&seeds, discovery).await;
                Ok(())
            }
            Start::ResumeJoin => {
                topology.discover(&seeds, discovery).await;
                topology.resume_join().await
            }
            Start::Replace => {
                topology.discover(&seeds, discovery).await;
                topology.replace().await
            }
        };
        match result {
            Ok(()) | Err(TopologyError::Stopped) => {}
            Err(e) => {
                tracing::error!(error = %e, code = e.code(), "cannot enter the ring; stopping");
                topology.stop();
            }
        }
    };
    if let Err(e) = jobs.spawn("enter-ring", job) {
        // Only once the node stops, when this step would end at once anyway.
        tracing::warn!(error = %e, "lifecycle step not started");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::MemoryStorage;

    #[tokio::test]
    async fn a_fresh_node_restarted_before_its_turn_is_still_fresh() {
        let storage: Arc<dyn Storage> = Arc::new(MemoryStorage::new());
        let (config, seeds) = (Config::default(), vec![SocketAddr::from(([127, 0, 0, 1], 7100))]);
        assert_eq!(prepare(&config, &storage, &seeds).await.unwrap(), Start::Fresh);
        // The identity is created, then the process dies while it waits for its turn.
        super::super::bootstrap::load_or_create(storage.as_ref(), 16, "", "").unwrap();
        assert_eq!(prepare(&config, &storage, &seeds).await.unwrap(), Start::Fresh, "not NORMAL with no data");
        storage.put_meta(STATE_KEY, b"normal").unwrap();
        assert_eq!(prepare(&config, &storage, &seeds).await.unwrap(), Start::Restart);
        let lone: Arc<dyn Storage> = Arc::new(MemoryStorage::new());
        assert_eq!(prepare(&config, &lone, &[]).await.unwrap(), Start::Restart, "no seeds: a cluster of its own");
    }
}
