//! [`NetLab`]: a private network of Linux network namespaces for partition
//! tests, and the nemesis that cuts it with nftables.
//!
//! Layout: one "hub" namespace holds a bridge; every node and one client get
//! a namespace of their own, joined to the bridge by a veth pair created
//! directly between the hub and that namespace. Nothing is ever added to the
//! root namespace (no interface, no address, no route, no rule), and the
//! addresses (`10.213.0.0/24`) exist only inside the lab's namespaces, so
//! the lab cannot reach, shadow or route to any other address; two labs (two
//! test processes) are disjoint networks with the same addresses.
//!
//! Invariants:
//! - Namespace names are `ringkv-part-<pid>-<n>-<role>`: unique per lab, and
//!   a lab left behind by a process that died is recognised by its dead pid
//!   and removed (with the processes inside it) by the next [`NetLab::create`].
//!   Namespaces of live processes and of any other name are never touched.
//! - Faults are nftables rules in one table (`inet ringkv_nemesis`) inside a
//!   node's namespace, each with a counter; [`NetLab::heal`] reads the
//!   counters (so a test can assert the fault dropped packets) and flushes
//!   the rules. Dropping the lab deletes its namespaces, and with them every
//!   interface and rule it made.
//!
//! Calls `ip` and `nft` (needs root); [`prerequisites`] says why a host
//! cannot run the lab, for the test to print as its skip reason.

use std::fs::File;
use std::net::Ipv4Addr;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::{Context as _, Result, bail, ensure};
use serde_json::Value;

/// Prefix of every namespace a lab creates.
pub const NAMESPACE_PREFIX: &str = "ringkv-part-";
/// The nftables table of the nemesis inside each node's namespace.
const TABLE: &str = "ringkv_nemesis";
/// The interface name of the lab link inside each node's and the client's namespace.
const LINK: &str = "eth0";

/// Why this host cannot run a [`NetLab`], or `None` when it can: the test
/// must be root and have `ip` (iproute2) and `nft` (nftables).
pub fn prerequisites() -> Option<String> {
    if !is_root() {
        return Some("not running as root (network namespaces and nftables need CAP_NET_ADMIN)".into());
    }
    // Root in an unprivileged container lacks them: `ip netns add` would fail.
    for (bit, name) in [(12, "CAP_NET_ADMIN"), (21, "CAP_SYS_ADMIN")] {
        if effective_capabilities().is_some_and(|caps| caps & (1 << bit) == 0) {
            return Some(format!("root without {name} (an unprivileged container?)"));
        }
    }
    for (tool, package) in [("ip", "iproute2"), ("nft", "nftables")] {
        let works = Command::new(tool).arg("-V").output().is_ok_and(|o| o.status.success());
        if !works {
            return Some(format!(
                "`{tool}` not found or not working (install {package}, e.g. `apt-get install {package}`)"
            ));
        }
    }
    None
}

/// The `CapEff` mask of this process, when `/proc` tells.
fn effective_capabilities() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let hex = status.lines().find_map(|l| l.strip_prefix("CapEff:"))?.trim();
    u64::from_str_radix(hex, 16).ok()
}

fn is_root() -> bool {
    // The effective uid is the 2nd field of the `Uid:` line.
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let uid = status.lines().find_map(|l| l.strip_prefix("Uid:")).and_then(|l| l.split_whitespace().nth(1));
    uid == Some("0")
}

/// A lab network; see the module docs. Dropping it deletes every namespace it created.
#[derive(Debug)]
pub struct NetLab {
    prefix: String,
    nodes: usize,
    /// Every namespace created so far (deleted on drop, in reverse).
    created: Vec<String>,
}

impl NetLab {
    /// Creates the hub, `nodes` node namespaces and the client namespace,
    /// after removing the labs of dead processes.
    pub fn create(nodes: usize) -> Result<Self> {
        ensure!((1..=200).contains(&nodes), "a lab has 1 to 200 nodes, not {nodes}");
        remove_stale_labs()?;
        static LABS: AtomicU32 = AtomicU32::new(0);
        let prefix = format!("{NAMESPACE_PREFIX}{}-{}", std::process::id(), LABS.fetch_add(1, Ordering::Relaxed));
        let mut lab = Self { prefix, nodes, created: Vec::new() };
        lab.build().with_context(|| format!("create the lab network {}", lab.prefix))?;
        Ok(lab)
    }

    fn build(&mut self) -> Result<()> {
        let hub = self.hub();
        self.add_namespace(&hub)?;
        ip(&["-n", &hub, "link", "add", "br0", "type", "bridge"])?;
        ip(&["-n", &hub, "link", "set", "br0", "up"])?;
        let mut members: Vec<(String, Ipv4Addr)> =
            (0..self.nodes).map(|i| (self.node_ns(i), self.node_ip(i))).collect();
        members.push((self.client_ns(), self.client_ip()));
        for (port, (ns, addr)) in members.iter().enumerate() {
            self.add_namespace(ns)?;
            let hub_end = format!("p{port}");
            ip(&["-n", &hub, "link", "add", &hub_end, "type", "veth", "peer", "name", LINK, "netns", ns])?;
            ip(&["-n", &hub, "link", "set", &hub_end, "master", "br0", "up"])?;
            ip(&["-n", ns, "addr", "add", &format!("{addr}/24"), "dev", LINK])?;
            ip(&["-n", ns, "link", "set", LINK, "up"])?;
            ip(&["-n", ns, "link", "set", "lo", "up"])?;
        }
        for i in 0..self.nodes {
            let ns = self.node_ns(i);
            nft(&ns, &["add", "table", "inet", TABLE])?;
            for (chain, hook) in [("input", "input"), ("output", "output")] {
                let spec = format!("{{ type filter hook {hook} priority 0; policy accept; }}");
                nft(&ns, &["add", "chain", "inet", TABLE, chain, &spec])?;
            }
        }
        Ok(())
    }

    fn add_namespace(&mut self, name: &str) -> Result<()> {
        ip(&["netns", "add", name])?;
        self.created.push(name.to_owned());
        Ok(())
    }

    fn hub(&self) -> String {
        format!("{}-hub", self.prefix)
    }

    /// The namespace of node `i`.
    pub fn node_ns(&self, i: usize) -> String {
        format!("{}-n{i}", self.prefix)
    }

    /// The namespace of the test's clients.
    pub fn client_ns(&self) -> String {
        format!("{}-client", self.prefix)
    }

    /// The address of node `i` (inside the lab only).
    pub fn node_ip(&self, i: usize) -> Ipv4Addr {
        Ipv4Addr::new(10, 213, 0, 11 + i as u8)
    }

    /// The address of the client namespace.
    pub fn client_ip(&self) -> Ipv4Addr {
        Ipv4Addr::new(10, 213, 0, 2)
    }

    /// Moves the calling thread into the client namespace: its sockets, and
    /// the processes it spawns, are in the lab from then on. Threads it
    /// spawns later (e.g. a tokio runtime's workers) inherit that.
    pub fn enter_client_ns(&self) -> Result<()> {
        let path = format!("/run/netns/{}", self.client_ns());
        let file = File::open(&path).with_context(|| format!("open {path}"))?;
        rustix::thread::move_into_link_name_space(
            std::os::fd::AsFd::as_fd(&file),
            Some(rustix::thread::LinkNameSpaceType::Network),
        )
        .with_context(|| format!("setns into {path}"))
    }

    /// Drops all traffic between nodes `a` and `b` (both directions, on both ends).
    pub fn cut(&self, a: usize, b: usize) -> Result<()> {
        ensure!(a != b && a < self.nodes && b < self.nodes, "cut({a}, {b}) in a lab of {} nodes", self.nodes);
        for (me, peer) in [(a, b), (b, a)] {
            let (ns, peer_ip) = (self.node_ns(me), self.node_ip(peer).to_string());
            nft(&ns, &["add", "rule", "inet", TABLE, "input", "ip", "saddr", &peer_ip, "counter", "drop"])?;
            nft(&ns, &["add", "rule", "inet", TABLE, "output", "ip", "daddr", &peer_ip, "counter", "drop"])?;
        }
        Ok(())
    }

    /// Cuts node `i` from every other node; the client still reaches it,
    /// so writes through it are answered (and refused) by the node itself.
    pub fn isolate(&self, i: usize) -> Result<()> {
        (0..self.nodes).filter(|&j| j != i).try_for_each(|j| self.cut(i, j))
    }

    /// Drops `percent` % of the packets node `i` receives on the lab link, at random.
    pub fn lose(&self, i: usize, percent: u32) -> Result<()> {
        ensure!(percent <= 100 && i < self.nodes, "lose({i}, {percent}) in a lab of {} nodes", self.nodes);
        let (ns, below) = (self.node_ns(i), percent.to_string());
        let rule = ["add", "rule", "inet", TABLE, "input", "iifname", LINK, "numgen", "random", "mod", "100", "<"];
        nft(&ns, &[&rule[..], &[below.as_str(), "counter", "drop"]].concat())
    }

    /// Packets the rules of node `i` dropped so far (since they were added).
    pub fn dropped(&self, i: usize) -> Result<u64> {
        let out = nft_output(&self.node_ns(i), &["-j", "list", "table", "inet", TABLE])?;
        let json: Value = serde_json::from_str(&out).with_context(|| format!("nft -j output is not JSON: {out}"))?;
        Ok(counter_packets(&json))
    }

    /// Removes every fault and returns the packets each node's rules dropped.
    pub fn heal(&self) -> Result<Vec<u64>> {
        let mut dropped = Vec::with_capacity(self.nodes);
        for i in 0..self.nodes {
            dropped.push(self.dropped(i)?);
            for chain in ["input", "output"] {
                nft(&self.node_ns(i), &["flush", "chain", "inet", TABLE, chain])?;
            }
        }
        Ok(dropped)
    }
}

impl Drop for NetLab {
    fn drop(&mut self) {
        for ns in self.created.iter().rev() {
            if let Err(e) = delete_namespace(ns) {
                eprintln!("warning: could not delete network namespace {ns}: {e:#}");
            }
        }
    }
}

/// Sum of `packets` over every counter in `nft -j list` output.
pub fn counter_packets(json: &Value) -> u64 {
    let rules = json["nftables"].as_array().into_iter().flatten().filter_map(|item| item["rule"]["expr"].as_array());
    rules.flatten().filter_map(|expr| expr["counter"]["packets"].as_u64()).sum()
}

/// Deletes the namespaces of labs whose process is gone, killing what still runs in them.
fn remove_stale_labs() -> Result<()> {
    let out = Command::new("ip").args(["netns", "list"]).output().context("run `ip netns list`")?;
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Some(name) = line.split_whitespace().next() else { continue };
        let Some(pid) = name.strip_prefix(NAMESPACE_PREFIX).and_then(|rest| rest.split('-').next()) else {
            continue;
        };
        let Ok(pid) = pid.parse::<u32>() else { continue };
        if std::path::Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        eprintln!("removing network namespace {name} left behind by process {pid}");
        delete_namespace(name)?;
    }
    Ok(())
}

/// Kills the processes inside namespace `name` (by pid, as `ip netns pids` lists them), then deletes it.
fn delete_namespace(name: &str) -> Result<()> {
    let pids = Command::new("ip").args(["netns", "pids", name]).output().context("run `ip netns pids`")?;
    for pid in String::from_utf8_lossy(&pids.stdout).split_whitespace() {
        let _ = Command::new("kill").args(["-KILL", pid]).status();
    }
    ip(&["netns", "delete", name])
}

fn ip(args: &[&str]) -> Result<()> {
    run("ip", args).map(drop)
}

fn nft(ns: &str, args: &[&str]) -> Result<()> {
    nft_output(ns, args).map(drop)
}

fn nft_output(ns: &str, args: &[&str]) -> Result<String> {
    run("ip", &[&["netns", "exec", ns, "nft"][..], args].concat())
}

fn run(program: &str, args: &[&str]) -> Result<String> {
    let out = Command::new(program).args(args).output().with_context(|| format!("run {program} {args:?}"))?;
    if !out.status.success() {
        bail!(
            "`{program} {}` failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_the_counters_of_nft_json() {
        let json: Value = serde_json::from_str(
            r#"{"nftables": [{"metainfo": {"version": "1.0.6"}},
            {"table": {"family": "inet", "name": "ringkv_nemesis", "handle": 1}},
            {"rule": {"chain": "input", "expr": [{"match": {}}, {"counter": {"packets": 3, "bytes": 180}}, {"drop": null}]}},
            {"rule": {"chain": "output", "expr": [{"counter": {"packets": 4, "bytes": 240}}, {"drop": null}]}}]}"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(counter_packets(&json), 7);
        assert_eq!(counter_packets(&Value::Null), 0);
    }
}
