//! `kvctl ring`, `decommission` and `removenode`: the topology commands.
//! The changes run on the cluster; kvctl starts them, then follows
//! `ClusterStatus` with a progress bar until the node is LEFT.

use std::fmt::Write as _;
use std::time::Duration;

use anyhow::{Context as _, bail};
use indicatif::{ProgressBar, ProgressStyle};
use ringkv_client::{Client, ConnectionConfig};
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

/// How long a started change may take to show on the node that runs it
/// (the change is started in the background), and how long peers may take
/// to learn the outcome by gossip once that node has stopped.
const SETTLE: Duration = Duration::from_secs(60);

/// What one look at the node being changed says, given what the looks before it saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Still under way (or not yet visible: the change starts in the background).
    Going,
    /// LEFT.
    Done,
    /// It went back to NORMAL after it was seen leaving: the change failed.
    Failed,
}

/// The verdict of one observed `state`, once `seen_leaving` is known. A
/// NORMAL before any LEAVING was seen is a view that has not caught up yet
/// (gossip, or the background start), never a failure.
fn step(state: Option<NodeState>, seen_leaving: &mut bool) -> Step {
    match state {
        Some(NodeState::Left) => Step::Done,
        Some(NodeState::Leaving) => {
            *seen_leaving = true;
            Step::Going
        }
        Some(NodeState::Normal) if *seen_leaving => Step::Failed,
        _ => Step::Going,
    }
}

/// Follows `host_id` through `observer`'s cluster status until it is LEFT;
/// fails when it goes back to NORMAL after it was seen LEAVING, or when it is
/// not seen LEAVING within [`SETTLE`], or `observer` stops answering.
async fn follow(observer: &Client, host_id: &str, what: &str, mut seen_leaving: bool) -> anyhow::Result<()> {
    let bar = bar(what);
    let (started, mut failures) = (tokio::time::Instant::now(), 0);
    loop {
        match observer.cluster_status().await {
            Ok(status) => {
                failures = 0;
                let (state, progress) = watch(&status, host_id);
                bar.set_position((progress * 100.0) as u64);
                match step(state.and_then(|s| NodeState::try_from(s).ok()), &mut seen_leaving) {
                    Step::Done => {
                        bar.finish_with_message(format!("{what}: done"));
                        return Ok(());
                    }
                    Step::Failed => {
                        bar.abandon();
                        bail!(
                            "{what} of {host_id} failed: it was LEAVING and is NORMAL again; see the log of the node that ran it"
                        );
                    }
                    Step::Going if !seen_leaving && started.elapsed() > SETTLE => {
                        bar.abandon();
                        bail!(
                            "{what} of {host_id} did not start within {SETTLE:?}: it is still not LEAVING; see the node's log"
                        );
                    }
                    Step::Going => {}
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

/// Follows a decommission on the leaving node itself, whose own answer is
/// authoritative (a peer's view lags by gossip), until it is LEFT or stops
/// answering (it stops once LEFT); then confirms LEFT through `watcher`.
async fn follow_decommission(leaving: &Client, watcher: &Client, host_id: &str) -> anyhow::Result<()> {
    let bar = bar("decommission");
    let (started, mut seen_leaving, mut uptime) = (tokio::time::Instant::now(), false, 0);
    loop {
        let Ok(info) = leaving.node_info().await else { break };
        if info.host_id != host_id || info.uptime_seconds < uptime {
            bar.abandon();
            bail!(
                "decommission of {host_id}: the node restarted (or another answers) while leaving; see its log and kvctl status"
            );
        }
        uptime = info.uptime_seconds;
        if let Ok(status) = watcher.cluster_status().await {
            bar.set_position((watch(&status, host_id).1 * 100.0) as u64);
        }
        match step(NodeState::try_from(info.state).ok(), &mut seen_leaving) {
            Step::Done => break,
            Step::Failed => {
                bar.abandon();
                bail!("decommission of {host_id} failed: it was LEAVING and is NORMAL again; see that node's log");
            }
            Step::Going if !seen_leaving && started.elapsed() > SETTLE => {
                bar.abandon();
                bail!("decommission of {host_id} did not start within {SETTLE:?}; see that node's log");
            }
            Step::Going => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
    bar.finish_and_clear();
    // The node has stopped (or says LEFT): its peers must know it left.
    let deadline = tokio::time::Instant::now() + SETTLE;
    let mut last = None;
    while tokio::time::Instant::now() < deadline {
        if let Ok(status) = watcher.cluster_status().await {
            last = watch(&status, host_id).0.and_then(|s| NodeState::try_from(s).ok());
            if last == Some(NodeState::Left) {
                return Ok(());
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let seen = last.map_or("unknown", |s| s.as_str_name());
    bail!(
        "decommission of {host_id}: the node stopped answering, but after {SETTLE:?} its peers still see it {seen}, not LEFT; check kvctl status"
    )
}

/// `kvctl decommission`: the node at the endpoint leaves.
pub(super) async fn decommission(
    client: &Client,
    connection: &ConnectionConfig,
    io: &mut Io<'_>,
    no_wait: bool,
    timeout: Duration,
) -> anyhow::Result<()> {
    let before = client.cluster_status().await?;
    let host_id = before.answered_by.clone();
    // Confirm LEFT through another live NORMAL node: the leaving one stops at the end.
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
    // Same TLS files, token and scheme as the leaving node's connection.
    let watcher = connection.for_node(&addr).builder().timeout(timeout).connect_timeout(timeout).connect().await?;
    follow_decommission(client, &watcher, &host_id).await?;
    io.emit(
        || format!("{}\n", json!({"host_id": host_id, "state": "LEFT"})),
        || format!("{host_id} decommissioned: LEFT\n"),
    )
}

/// `kvctl removenode HOST_ID`.
pub(super) async fn removenode(client: &Client, io: &mut Io<'_>, host_id: String, no_wait: bool) -> anyhow::Result<()> {
    client.remove_node(host_id.clone()).await?;
    if !no_wait {
        follow(client, &host_id, "removenode", false).await?;
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
    fn normal_is_a_failure_only_after_leaving_was_seen() {
        let mut seen = false;
        // The view has not caught up with the change yet: not a failure.
        assert_eq!(step(Some(NodeState::Normal), &mut seen), Step::Going);
        assert_eq!(step(None, &mut seen), Step::Going);
        assert!(!seen);
        assert_eq!(step(Some(NodeState::Leaving), &mut seen), Step::Going);
        assert!(seen);
        assert_eq!(step(Some(NodeState::Normal), &mut seen), Step::Failed, "back to NORMAL: it failed");
        assert_eq!(step(Some(NodeState::Left), &mut false), Step::Done);
    }

    #[test]
    fn ring_renders_as_table_and_json() {
        let tokens = vec![TokenOwner { token: 7, host_id: "h".into() }];
        assert!(ring_human(&tokens).contains("7                     h"));
        assert_eq!(ring_json(&tokens), "{\"tokens\":[{\"host_id\":\"h\",\"token\":\"7\"}]}\n");
    }
}
