//! The version-vector actor over the real engine and the real node: a
//! clean stop (`Node::stopped`) keeps it, a stop without the clean-shutdown
//! marker (a crash) and a new data directory refresh it. The rule itself is
//! unit-tested in `topology::identity`; this proves the marker survives the
//! engine's shutdown and reopen, in the order `Node::stopped` writes it.

use ringkv_node::assembly::Node;
use ringkv_node::config::Config;
use ringkv_node::storage::FjallStorage;
use ringkv_node::topology::identity::{self, ActorOrigin};
use tokio_util::sync::CancellationToken;

fn config(dir: &std::path::Path) -> Config {
    let mut config = Config::default();
    config.storage.data_dir = dir.to_path_buf();
    config.server.grpc_addr = "127.0.0.1:0".parse().expect("addr");
    config.server.http_addr = "127.0.0.1:0".parse().expect("addr");
    config
}

fn load(config: &Config) -> identity::Identity {
    let storage = FjallStorage::open(&config.storage).expect("open");
    let id = identity::load_or_create(&storage, 16, "", "").expect("identity");
    storage.shutdown();
    id
}

#[test]
fn the_engine_keeps_the_clean_shutdown_marker_written_after_its_shutdown() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = config(dir.path());
    let first = load(&config);
    assert_eq!(first.actor, ActorOrigin::NewDataDir);
    // Stopped without the marker (a crash, for this rule).
    let crashed = load(&config);
    assert_eq!(crashed.actor, ActorOrigin::UncleanShutdown);
    assert_ne!(crashed.node_id, first.node_id);
    // Marked after the engine's final fsync, as Node::stopped does.
    let storage = FjallStorage::open(&config.storage).expect("open");
    let id = identity::load_or_create(&storage, 16, "", "").expect("identity");
    storage.shutdown();
    identity::mark_clean_shutdown(&storage, id.node_id).expect("marker");
    drop(storage);
    let kept = load(&config);
    assert_eq!((kept.node_id, kept.actor), (id.node_id, ActorOrigin::Kept));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_stopped_cleanly_keeps_its_actor() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = config(dir.path());
    let stop = CancellationToken::new();
    let node = Node::start(config.clone(), stop.clone()).await.expect("start");
    let actor = node.actor();
    let workers: Vec<_> = node.workers().iter().map(|w| w.name).collect();
    assert_eq!(
        workers,
        ["periodic-sync", "purge", "anti-entropy", "gossip", "hinted-handoff"],
        "the node runs and lists its workers"
    );
    stop.cancel();
    node.stopped().await.expect("stopped");
    let again = tokio::task::spawn_blocking(move || load(&config)).await.expect("load");
    assert_eq!((again.node_id, again.actor), (actor, ActorOrigin::Kept));
}
