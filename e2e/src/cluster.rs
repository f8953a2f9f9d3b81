//! [`Cluster`]: several real `kvnode` processes forming one cluster, and how
//! to watch and hurt it.
//!
//! Every node listens on port 0. Node 0 starts without seeds; the others get
//! `--seeds <node 0's gRPC address>` and learn the rest by gossip. A
//! restarted node comes back on new ports (and a new generation), so it is
//! seeded with a node that is running *now*; its peers learn its new address
//! by gossip. What the nodes believe is read through the real client
//! (`kvctl --json status`) and the real `/metrics` endpoint, always with
//! [`wait_until`] and a deadline.
//!
//! Built fluently: `Cluster::test().nodes(3).rf(3).start().await?`. The
//! cluster owns a temporary directory with one data dir per node; dropping it
//! SIGKILLs every node (see [`NodeProcess`]) before the directory goes.

use std::collections::BTreeMap;
use std::fmt;
use std::process::ExitStatus;
use std::time::Duration;

use anyhow::{Context as _, Result, bail, ensure};
use serde_json::Value;

use crate::kvctl::kvctl;
use crate::node::{NodeOptions, NodeProcess, SyncMode, killed_by_sigkill};
use crate::wait::wait_until;

/// How long a cluster may take to agree that every member is alive.
pub const CONVERGE_TIMEOUT: Duration = Duration::from_secs(30);

/// What one node says about one member in `kvctl --json status`.
#[derive(Debug, Clone, PartialEq)]
pub struct MemberStatus {
    /// The member's host id.
    pub host_id: String,
    /// The member's gRPC address as the answering node knows it.
    pub grpc_addr: String,
    /// `ALIVE`, `DOWN`, …
    pub liveness: String,
    /// Hints the answering node holds for this member.
    pub pending_hints: u64,
}

/// One node's `kvctl --json status`.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusView {
    /// Host id of the node that answered.
    pub answered_by: String,
    /// The members it knows, by host id.
    pub members: BTreeMap<String, MemberStatus>,
}

impl StatusView {
    /// Parses the one-line JSON object of `kvctl --json status`.
    pub fn parse(json: &str) -> Result<Self> {
        let value: Value =
            serde_json::from_str(json.trim()).with_context(|| format!("status is not JSON: {json:?}"))?;
        let text = |v: &Value, field: &str| -> Result<String> {
            v[field].as_str().map(str::to_owned).with_context(|| format!("status: no string {field:?} in {v}"))
        };
        let mut members = BTreeMap::new();
        for node in value["nodes"].as_array().with_context(|| format!("status: no \"nodes\" array in {value}"))? {
            let member = MemberStatus {
                host_id: text(node, "host_id")?,
                grpc_addr: text(node, "grpc_addr")?,
                liveness: text(node, "liveness")?,
                pending_hints: node["pending_hints"].as_u64().unwrap_or(0),
            };
            if members.insert(member.host_id.clone(), member).is_some() {
                bail!("status lists a member twice: {value}");
            }
        }
        Ok(Self { answered_by: text(&value, "answered_by")?, members })
    }

    /// The liveness this view gives `host_id`, if it knows the member.
    pub fn liveness_of(&self, host_id: &str) -> Option<&str> {
        self.members.get(host_id).map(|m| m.liveness.as_str())
    }
}

impl fmt::Display for StatusView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "status by {}:", self.answered_by)?;
        for m in self.members.values() {
            write!(f, " [{} {} {} hints={}]", m.host_id, m.grpc_addr, m.liveness, m.pending_hints)?;
        }
        Ok(())
    }
}

/// How to start a [`Cluster`]; see the module docs.
#[derive(Debug, Clone)]
pub struct ClusterBuilder {
    nodes: usize,
    replication_factor: u32,
    sync: Option<SyncMode>,
    extra_args: Vec<String>,
    env: Vec<(String, String)>,
    placements: Vec<Placement>,
}

/// Where node `i` of a cluster runs when not on `127.0.0.1:0`: inside a
/// network namespace, on fixed ports of an address there (see [`crate::netns`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// The network namespace (`ip netns exec NS`).
    pub netns: String,
    /// The node's address inside it; it listens on gRPC 7100 and HTTP 7180.
    pub ip: std::net::IpAddr,
}

impl ClusterBuilder {
    /// Runs node `i` as `placements[i]` says (one per node).
    pub fn placements(mut self, placements: Vec<Placement>) -> Self {
        self.placements = placements;
        self
    }

    /// Number of nodes (default 3).
    pub fn nodes(mut self, n: usize) -> Self {
        self.nodes = n;
        self
    }

    /// `--replication-factor` of every node (default 3).
    pub fn rf(mut self, n: u32) -> Self {
        self.replication_factor = n;
        self
    }

    /// `--sync` of every node (default: the node's own).
    pub fn sync(mut self, sync: SyncMode) -> Self {
        self.sync = Some(sync);
        self
    }

    /// One more argument for every node's `kvnode serve`.
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.extra_args.push(arg.into());
        self
    }

    /// One more environment variable for every node.
    pub fn env(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((name.into(), value.into()));
        self
    }

    /// Starts the nodes one by one and waits (up to [`CONVERGE_TIMEOUT`])
    /// until every node lists every member, all `ALIVE`.
    pub async fn start(self) -> Result<Cluster> {
        ensure!(self.nodes > 0, "a cluster needs at least one node");
        let placed = self.placements.len();
        ensure!(placed == 0 || placed == self.nodes, "{placed} placements for {} nodes", self.nodes);
        let dir = tempfile::tempdir().context("create the cluster's temp dir")?;
        let mut cluster = Cluster { nodes: Vec::with_capacity(self.nodes), builder: self, dir };
        for i in 0..cluster.builder.nodes {
            let seeds = cluster.nodes.first().map(NodeProcess::grpc_addr);
            let node =
                NodeProcess::start(cluster.options_for(i, seeds)).await.with_context(|| format!("start node {i}"))?;
            cluster.nodes.push(node);
        }
        cluster.wait_all_alive().await?;
        cluster.wait_all_normal().await?;
        Ok(cluster)
    }
}

/// A running cluster of real `kvnode` processes; see the module docs.
#[derive(Debug)]
pub struct Cluster {
    // Declared before `dir`: the nodes are killed before their data goes.
    nodes: Vec<NodeProcess>,
    builder: ClusterBuilder,
    dir: tempfile::TempDir,
}

impl Cluster {
    /// A builder with the defaults: 3 nodes, replication factor 3.
    pub fn test() -> ClusterBuilder {
        ClusterBuilder {
            nodes: 3,
            replication_factor: 3,
            sync: None,
            extra_args: Vec::new(),
            env: Vec::new(),
            placements: Vec::new(),
        }
    }

    fn options_for(&self, i: usize, seed: Option<std::net::SocketAddr>) -> NodeOptions {
        let mut options = NodeOptions::new(self.dir.path().join(format!("node-{i}")))
            .seeds(seed)
            .replication_factor(self.builder.replication_factor);
        if let Some(sync) = self.builder.sync {
            options = options.sync(sync);
        }
        options.extra_args.extend(self.builder.extra_args.iter().cloned());
        options.env.extend(self.builder.env.iter().cloned());
        if let Some(place) = self.builder.placements.get(i) {
            let (grpc, http) = ((place.ip, 7100).into(), (place.ip, 7180).into());
            options = options.netns(place.netns.clone()).listen(grpc, http);
        }
        options
    }

    /// Number of nodes, running or not.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// False: a cluster has at least one node.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Node `i`.
    pub fn node(&self, i: usize) -> &NodeProcess {
        &self.nodes[i]
    }

    /// Node `i`, mutably (to kill or restart it by hand).
    pub fn node_mut(&mut self, i: usize) -> &mut NodeProcess {
        &mut self.nodes[i]
    }

    /// Host id of node `i` (stable across restarts).
    pub fn host_id(&self, i: usize) -> String {
        self.nodes[i].host_id().to_owned()
    }

    /// Indices of the nodes whose process is running.
    pub fn running(&mut self) -> Vec<usize> {
        (0..self.nodes.len()).filter(|&i| self.nodes[i].is_running()).collect()
    }

    /// SIGKILLs node `i` and fails unless it really died of that signal.
    pub fn kill9(&mut self, i: usize) -> Result<ExitStatus> {
        let status = self.nodes[i].kill9().with_context(|| format!("kill -9 node {i}"))?;
        ensure!(killed_by_sigkill(&status), "node {i} was not killed by SIGKILL: {status}");
        Ok(status)
    }

    /// Starts the stopped node `i` again on its data dir, seeded with a node
    /// that is running now (its old seed may be dead or on another port).
    pub async fn restart(&mut self, i: usize) -> Result<()> {
        let seed = self.running().into_iter().find(|&j| j != i).map(|j| self.nodes[j].grpc_addr());
        let options = self.options_for(i, seed);
        self.nodes[i].restart_with(options).await.with_context(|| format!("restart node {i}"))
    }

    /// Starts one more node, seeded with a running node, and returns its
    /// index. It joins (streams its ranges in) when the cluster already has
    /// RF nodes; this returns once its process is ready, not once it is NORMAL.
    pub async fn add_node(&mut self) -> Result<usize> {
        let seed = self.running().into_iter().next().map(|j| self.nodes[j].grpc_addr());
        let i = self.nodes.len();
        let node = NodeProcess::start(self.options_for(i, seed)).await.with_context(|| format!("start node {i}"))?;
        self.nodes.push(node);
        Ok(i)
    }

    /// Starts the stopped node `i` again with an empty data directory as the
    /// replacement of its old self (`kvnode serve --replace <its host id>`).
    pub async fn replace_wiped(&mut self, i: usize) -> Result<()> {
        ensure!(!self.nodes[i].is_running(), "replace_wiped({i}) of a running node; kill it first");
        let dir = self.nodes[i].data_dir().to_path_buf();
        std::fs::remove_dir_all(&dir).with_context(|| format!("wipe {}", dir.display()))?;
        std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
        let seed = self.running().into_iter().find(|&j| j != i).map(|j| self.nodes[j].grpc_addr());
        let host_id = self.host_id(i);
        let options = self.options_for(i, seed).arg("--replace").arg(host_id);
        self.nodes[i].restart_with(options).await.with_context(|| format!("replace node {i}"))
    }

    /// `kvctl --json status` of node `i`, as JSON (with states and streaming progress).
    pub async fn status_json(&self, i: usize) -> Result<Value> {
        let out = kvctl(self.nodes[i].grpc_addr(), &["--json", "status"]).await?;
        ensure!(out.success(), "status of node {i}: {out}");
        serde_json::from_str(out.stdout.trim()).with_context(|| format!("status of node {i}: {}", out.stdout))
    }

    /// `kvctl --json status` of node `i`, parsed.
    pub async fn status(&self, i: usize) -> Result<StatusView> {
        let out = kvctl(self.nodes[i].grpc_addr(), &["--json", "status"]).await?;
        ensure!(out.success(), "status of node {i}: {out}");
        StatusView::parse(&out.stdout).with_context(|| format!("status of node {i}"))
    }

    /// Waits (up to [`CONVERGE_TIMEOUT`]) until every running node lists
    /// exactly the cluster's members, each `ALIVE` at its current gRPC address.
    pub async fn wait_all_alive(&mut self) -> Result<()> {
        let running = self.running();
        ensure!(running.len() == self.nodes.len(), "wait_all_alive() with stopped nodes: only {running:?} run");
        let expected: BTreeMap<String, String> =
            self.nodes.iter().map(|n| (n.host_id().to_owned(), n.grpc_addr().to_string())).collect();
        let mut last = Vec::new();
        let waited = wait_until(CONVERGE_TIMEOUT, "every node sees every member ALIVE", async || {
            last.clear();
            let mut all = true;
            for i in 0..self.nodes.len() {
                let ok = match self.status(i).await {
                    Ok(view) => {
                        let ok = view.members.len() == expected.len()
                            && expected.iter().all(|(id, addr)| {
                                view.members.get(id).is_some_and(|m| m.liveness == "ALIVE" && &m.grpc_addr == addr)
                            });
                        last.push(format!("node {i}: {view}"));
                        ok
                    }
                    Err(e) => {
                        last.push(format!("node {i}: {e:#}"));
                        false
                    }
                };
                all &= ok;
            }
            all
        })
        .await;
        waited.with_context(|| format!("expected members {expected:?}; last seen:\n{}", last.join("\n")))
    }

    /// Waits (up to [`CONVERGE_TIMEOUT`]) until every node reports every
    /// member NORMAL (a fresh node owns tokens only once it heard its seeds).
    pub async fn wait_all_normal(&self) -> Result<()> {
        let mut last = String::new();
        let waited = wait_until(CONVERGE_TIMEOUT, "every node sees every member NORMAL", async || {
            for i in 0..self.nodes.len() {
                let Ok(status) = self.status_json(i).await else { return false };
                let nodes = status["nodes"].as_array().cloned().unwrap_or_default();
                if nodes.len() != self.nodes.len() || nodes.iter().any(|n| n["state"] != "NORMAL") {
                    last = format!("node {i}: {status}");
                    return false;
                }
            }
            true
        })
        .await;
        waited.with_context(|| format!("last seen: {last}"))
    }

    /// Waits until each node in `observers` reports node `target` with
    /// `liveness` (`"ALIVE"` / `"DOWN"`).
    pub async fn wait_liveness(&self, observers: &[usize], target: usize, liveness: &str) -> Result<()> {
        let target_id = self.host_id(target);
        let mut last = Vec::new();
        let what = format!("nodes {observers:?} report node {target} {liveness}");
        let waited = wait_until(CONVERGE_TIMEOUT, &what, async || {
            last.clear();
            let mut all = true;
            for &i in observers {
                match self.status(i).await {
                    Ok(view) => {
                        all &= view.liveness_of(&target_id) == Some(liveness);
                        last.push(format!("node {i}: {view}"));
                    }
                    Err(e) => {
                        all = false;
                        last.push(format!("node {i}: {e:#}"));
                    }
                }
            }
            all
        })
        .await;
        waited.with_context(|| format!("last seen:\n{}", last.join("\n")))
    }

    /// Hints node `holder` holds for node `target`, per `holder`'s status.
    pub async fn pending_hints(&self, holder: usize, target: usize) -> Result<u64> {
        let view = self.status(holder).await?;
        let target_id = self.host_id(target);
        match view.members.get(&target_id) {
            Some(m) => Ok(m.pending_hints),
            None => bail!("node {holder} does not know node {target} ({target_id}): {view}"),
        }
    }

    /// The `/metrics` text of node `i`.
    pub async fn metrics(&self, i: usize) -> Result<String> {
        let url = format!("{}/metrics", self.nodes[i].http_base());
        let response = reqwest::get(&url).await.with_context(|| format!("GET {url}"))?;
        ensure!(response.status().is_success(), "GET {url}: {}", response.status());
        response.text().await.with_context(|| format!("GET {url} body"))
    }

    /// Sum over every label set of the metric `name` on node `i` (0 when absent).
    pub async fn metric_sum(&self, i: usize, name: &str) -> Result<f64> {
        Ok(metric_sum(&self.metrics(i).await?, name))
    }
}

/// Sum over every sample of metric `name` in a Prometheus text exposition.
pub fn metric_sum(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let rest = line.strip_prefix(name)?;
            // `name{…} v` or `name v`, not `name_suffix…`.
            let value = match rest.chars().next()? {
                '{' => rest.rsplit_once('}')?.1,
                ' ' => rest,
                _ => return None,
            };
            value.split_whitespace().next()?.parse::<f64>().ok()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_a_metric_over_its_labels() {
        let text = "# HELP ringkv_hints_replayed_total x\n\
                    ringkv_hints_replayed_total{target=\"a\"} 3\n\
                    ringkv_hints_replayed_total{target=\"b\"} 4\n\
                    ringkv_hints_replayed_total_other 100\n\
                    ringkv_hints_pending{target=\"a\"} 0\n";
        assert_eq!(metric_sum(text, "ringkv_hints_replayed_total"), 7.0);
        assert_eq!(metric_sum(text, "ringkv_hints_pending"), 0.0);
        assert_eq!(metric_sum(text, "ringkv_missing"), 0.0);
    }

    #[test]
    fn parses_status_json() {
        let json = r#"{"cluster_name":"c","replication_factor":3,"answered_by":"aa","nodes":[
            {"host_id":"aa","grpc_addr":"127.0.0.1:1","liveness":"ALIVE","pending_hints":0},
            {"host_id":"bb","grpc_addr":"127.0.0.1:2","liveness":"DOWN","pending_hints":7}]}"#;
        let view = StatusView::parse(&json.replace('\n', "")).unwrap_or_else(|e| panic!("{e:#}"));
        assert_eq!(view.answered_by, "aa");
        assert_eq!(view.liveness_of("bb"), Some("DOWN"));
        assert_eq!(view.members["bb"].pending_hints, 7);
        assert_eq!(view.liveness_of("cc"), None);
    }
}
