//! Do the nodes agree on the membership? Before a topology step the
//! operator asks every ready pod for its own view (ClusterStatus at the
//! pod's address), not one node's: a node that came back alone on a new IP
//! reports a ring of its own, and a step taken on its word can split the
//! cluster into two rings (issue 11, D3).
//!
//! Agreement: every view answered; all list the same non-LEFT host ids in
//! the same states; each sees every asked node ALIVE. Pure.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::{Liveness, NodeObserved, NodeState, Observed};

/// One ready pod's own view of the membership.
#[derive(Debug, Clone, PartialEq)]
pub struct MembershipView {
    /// The pod asked.
    pub pod: String,
    /// What it answered; None when it could not be asked (that counts as disagreement).
    pub nodes: Option<Vec<NodeObserved>>,
}

fn members(nodes: &[NodeObserved]) -> BTreeMap<&str, NodeState> {
    nodes.iter().filter(|n| n.state != NodeState::Left).map(|n| (n.host_id.as_str(), n.state)).collect()
}

fn ids(m: &BTreeMap<&str, NodeState>) -> String {
    let list: Vec<&str> = m.keys().copied().collect();
    format!("{{{}}}", list.join(", "))
}

/// Why the asked nodes do not agree on the membership (naming who), or None
/// when they do. `nodes` is the cluster's view mapped to pods (it tells which
/// host runs in which pod); the pod `except` (a node being replaced) is left out.
pub fn disagreement(obs: &Observed, nodes: &[NodeObserved], except: Option<&str>) -> Option<String> {
    let mut answered = Vec::new();
    for v in obs.views.iter().filter(|v| Some(v.pod.as_str()) != except) {
        match &v.nodes {
            Some(n) => answered.push((v.pod.as_str(), n.as_slice())),
            None => return Some(format!("pod {} cannot be asked for its view of the membership", v.pod)),
        }
    }
    let (first_pod, first) = *answered.first()?;
    let expected = members(first);
    for (pod, view) in &answered[1..] {
        let seen = members(view);
        if seen.keys().ne(expected.keys()) {
            return Some(format!("pod {first_pod} sees {} but pod {pod} sees {}", ids(&expected), ids(&seen)));
        }
        let mut differ = String::new();
        for (host, state) in seen.iter().filter(|(h, s)| expected.get(*h) != Some(s)) {
            let _ = write!(differ, "; node {host} is {} for pod {first_pod} but {state} for pod {pod}", expected[host]);
        }
        if !differ.is_empty() {
            return Some(differ.trim_start_matches("; ").to_string());
        }
    }
    // Each asked node must see every other asked node ALIVE.
    let host_of = |pod: &str| nodes.iter().find(|n| n.pod.as_deref() == Some(pod)).map(|n| n.host_id.as_str());
    for (pod, view) in &answered {
        for (other, host) in answered.iter().filter_map(|(q, _)| Some((*q, host_of(q)?))).filter(|(q, _)| q != pod) {
            let liveness = view.iter().find(|n| n.host_id == host).map(|n| n.liveness);
            if liveness != Some(Liveness::Alive) {
                let what = liveness.map_or_else(|| "does not know".to_string(), |l| format!("sees {l}"));
                return Some(format!("pod {pod} {what} node {host} (pod {other})"));
            }
        }
    }
    None
}
