//! `kvctl ring`, `decommission` and `removenode`: the topology commands.
//! The changes run on the cluster; kvctl starts them, then follows
//! `ClusterStatus` with a progress bar until the node is LEFT.

use std::fmt::Write as _;
use std::time::Duration;

use anyhow::{Context as _, bail};
use indicatif::{ProgressBar, ProgressStyle};
use ringkv_client::Client;
use ringkv_proto::v1::{ClusterStatusResponse, NodeState, TokenOwner};
use serde_json::json;

use super::human::node_state_name;
use super::run::Io;

/// `kvctl ring`.
pub(super) async fn ring(client: &Client, io: &mut Io<'_>) -> anyhow::Result<()> {
    let tokens = client.ring().await?;
    io.emit(|| ring_json(&tokens), || ring_human(&tokens))
}

fn ring_json(tokens: &[TokenOwner]) -> String {
    let list: Vec<_> = tokens.iter().map(|t| json!({"token": t.token.to_string(), "host_id": t.host_id})).collect();
    format!("{}\n", json!({ "tokens": list }))
}

fn ring_human(tokens: &[TokenOwner]) -> String {
    let mut out = format!("{} token(s)\n{:<20}  HOST ID\n", tokens.len(), "TOKEN");
    for t in tokens {
        let _ = writeln!(out, "{:<20}  {}", t.token, t.host_id);
    }
    out
}

fn bar(what: &str) -> ProgressBar {
    let bar = ProgressBar::new(100);
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:40}] {pos}% ({elapsed})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message(what.to_owned());
    bar
}

/// State of `host_id` and the mean streaming progress of the other nodes (0..1).
fn watch(status: &ClusterStatusResponse, host_id: &str) -> (Option<i32>, f64) {
    let state = status.nodes.iter().find(|n| n.host_id == host_id).map(|n| n.state);
    let progress: Vec<f64> =
        status.nodes.iter().filter(|n| n.host_id != host_id).filter_map(|n| n.streaming_progress).collect();
    let mean = if progress.is_empty() { 0.0 } else { progress.iter().sum::<f64>() / progress.len() as f64 };
    (state, mean)
}

/// Follows `host_id` through `watcher` until it is LEFT.
async fn follow(watcher: &Client, host_id: &str, what: &str) -> anyhow::Result<()> {
    let bar = bar(what);
    let mut failures = 0;
    loop {
        match watcher.cluster_status().await {
            Ok(status) => {
                failures = 0;
                let (state, progress) = watch(&status, host_id);
                bar.set_position((progress * 100.0) as u64);
                match state.and_then(|s| NodeState::try_from(s).ok()) {
                    Some(NodeState::Left) => {
                        bar.finish_with_message(format!("{what}: done"));
                        return Ok(());
                    }
                    Some(NodeState::Normal) => {
                        bar.abandon();
                        bail!("{what} of {host_id} failed: it is NORMAL again; see that node's log");
                    }
                    _ => {}
                }
            }
            Err(e) => {
                failures += 1;
                if failures > 20 {
                    bar.abandon();
                    return Err(e).context("cannot follow the topology change");
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// `kvctl decommission`: the node at the endpoint leaves.
pub(super) async fn decommission(
    client: &Client,
    io: &mut Io<'_>,
    no_wait: bool,
    timeout: Duration,
) -> anyhow::Result<()> {
    let before = client.cluster_status().await?;
    let host_id = before.answered_by.clone();
    // Follow through another live NORMAL node: the leaving one stops at the end.
    let watcher_addr = before
        .nodes
        .iter()
        .find(|n| {
            n.host_id != host_id
                && n.state == NodeState::Normal as i32
                && n.liveness == ringkv_proto::v1::Liveness::Alive as i32
        })
        .map(|n| n.grpc_addr.clone());
    let started = client.decommission(String::new()).await?;
    let state = node_state_name(started.state);
    if no_wait {
        return io.emit(
            || format!("{}\n", json!({"host_id": started.host_id, "state": state})),
            || format!("decommission of {} started ({state})\n", started.host_id),
        );
    }
    let addr = watcher_addr.context("no other live NORMAL node to follow the decommission through")?;
    let watcher = Client::builder(addr.clone()).timeout(timeout).connect_timeout(timeout).connect().await?;
    follow(&watcher, &host_id, "decommission").await?;
    io.emit(
        || format!("{}\n", json!({"host_id": host_id, "state": "LEFT"})),
        || format!("{host_id} decommissioned: LEFT\n"),
    )
}

/// `kvctl removenode HOST_ID`.
pub(super) async fn removenode(client: &Client, io: &mut Io<'_>, host_id: String, no_wait: bool) -> anyhow::Result<()> {
    client.remove_node(host_id.clone()).await?;
    if !no_wait {
        follow(client, &host_id, "removenode").await?;
    }
    let state = if no_wait { "LEAVING" } else { "LEFT" };
    io.emit(|| format!("{}\n", json!({"host_id": host_id, "state": state})), || format!("{host_id} removed: {state}\n"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringkv_proto::v1::NodeStatus;

    #[test]
    fn watch_reads_the_state_and_averages_the_streams_of_the_others() {
        let node = |id: &str, state: NodeState, p: Option<f64>| NodeStatus {
            host_id: id.into(),
            state: state as i32,
            streaming_progress: p,
            ..Default::default()
        };
        let status = ClusterStatusResponse {
            nodes: vec![
                node("a", NodeState::Leaving, Some(1.0)),
                node("b", NodeState::Normal, Some(0.5)),
                node("c", NodeState::Normal, Some(0.25)),
                node("d", NodeState::Normal, None),
            ],
            ..Default::default()
        };
        let (state, progress) = watch(&status, "a");
        assert_eq!(state, Some(NodeState::Leaving as i32));
        assert!((progress - 0.375).abs() < 1e-9);
        assert_eq!(watch(&status, "zz").0, None);
    }

    #[test]
    fn ring_renders_as_table_and_json() {
        let tokens = vec![TokenOwner { token: 7, host_id: "h".into() }];
        assert!(ring_human(&tokens).contains("7                     h"));
        assert_eq!(ring_json(&tokens), "{\"tokens\":[{\"host_id\":\"h\",\"token\":\"7\"}]}\n");
    }
}
