//! The gossip messages ([`GossipDigest`], [`GossipSyn`], [`GossipAck`],
//! [`GossipAck2`], and the failure detector's [`GossipPing`]) and the digest comparison of Cassandra's
//! `GossipDigestSynVerbHandler` ([`examine`]).
//!
//! A round is a three-way exchange: the initiator sends a SYN with one digest
//! (host, generation, max version) per endpoint it knows; the receiver
//! answers with an ACK holding what the initiator lacks and digests of what
//! it lacks itself; the initiator sends an ACK2 with those. After one round
//! both sides hold, for every endpoint either knew, the newer state.
//!
//! Pure: no I/O.

use std::collections::BTreeMap;

use super::endpoint::EndpointState;

/// A summary of one endpoint's state: enough to tell who is behind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GossipDigest {
    /// The endpoint's host id.
    pub host_id: String,
    /// Its generation, or rather its [`EndpointState::rank`] (the
    /// generation, plus a high bit once LEFT), so that a LEFT state always
    /// flows to a peer that still holds the node at a higher generation.
    pub generation: u64,
    /// Its largest version (heartbeat included); in a request, the version
    /// after which states are wanted (0 = everything).
    pub max_version: u64,
}

/// First message of a round: the initiator's digests.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GossipSyn {
    /// Host id of the initiator.
    pub from: String,
    /// One digest per endpoint the initiator knows.
    pub digests: Vec<GossipDigest>,
}

/// Answer to a SYN: what the initiator lacks, and what the receiver wants.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GossipAck {
    /// Host id of the receiver of the SYN.
    pub from: String,
    /// Digests of the states the receiver wants (versions after `max_version`).
    pub requests: Vec<GossipDigest>,
    /// States (deltas) the initiator lacks, by host id.
    pub states: BTreeMap<String, EndpointState>,
}

/// Last message of a round: the states the ACK asked for.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GossipAck2 {
    /// Host id of the initiator.
    pub from: String,
    /// The states (deltas) requested, by host id.
    pub states: BTreeMap<String, EndpointState>,
}

/// A direct liveness probe, and its answer (the same message from the other
/// side): proof that `from` was running when it sent it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GossipPing {
    /// Host id of the sender.
    pub from: String,
}

/// What the receiver of digests should request and send.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Examined {
    /// States to ask the sender for.
    pub requests: Vec<GossipDigest>,
    /// States to send (deltas).
    pub states: BTreeMap<String, EndpointState>,
}

/// Compares the sender's `digests` with `local` (Cassandra's rules):
/// - unknown here, or a newer generation there: request everything;
/// - a newer generation here: send everything;
/// - same generation: the side with the higher max version sends what is
///   after the other's.
///
/// Endpoints known here that the sender did not mention are sent whole, so
/// one round leaves both sides with the union (an extension of Cassandra,
/// which waits for the other side's own SYN).
pub fn examine(digests: &[GossipDigest], local: &BTreeMap<String, EndpointState>) -> Examined {
    let mut out = Examined::default();
    for d in digests {
        let Some(mine) = local.get(&d.host_id) else {
            out.requests.push(GossipDigest { host_id: d.host_id.clone(), generation: d.generation, max_version: 0 });
            continue;
        };
        let (my_gen, my_max) = (mine.rank(), mine.max_version());
        if d.generation > my_gen {
            out.requests.push(GossipDigest { host_id: d.host_id.clone(), generation: d.generation, max_version: 0 });
        } else if d.generation < my_gen {
            out.states.insert(d.host_id.clone(), mine.delta_after(0));
        } else if d.max_version > my_max {
            out.requests.push(GossipDigest {
                host_id: d.host_id.clone(),
                generation: d.generation,
                max_version: my_max,
            });
        } else if d.max_version < my_max {
            out.states.insert(d.host_id.clone(), mine.delta_after(d.max_version));
        }
    }
    let mentioned: std::collections::HashSet<&str> = digests.iter().map(|d| d.host_id.as_str()).collect();
    for (host, state) in local.iter().filter(|(h, _)| !mentioned.contains(h.as_str())) {
        out.states.insert(host.clone(), state.delta_after(0));
    }
    out
}

/// The states answering `requests` from `local`: for each request of the
/// same or an older generation, what is after its version; for an older
/// one, everything. Requests for a newer generation than ours get nothing.
pub fn answer_requests(
    requests: &[GossipDigest],
    local: &BTreeMap<String, EndpointState>,
) -> BTreeMap<String, EndpointState> {
    let mut out = BTreeMap::new();
    for r in requests {
        let Some(mine) = local.get(&r.host_id) else { continue };
        let delta = match mine.rank().cmp(&r.generation) {
            std::cmp::Ordering::Greater => mine.delta_after(0),
            std::cmp::Ordering::Equal => mine.delta_after(r.max_version),
            std::cmp::Ordering::Less => continue,
        };
        out.insert(r.host_id.clone(), delta);
    }
    out
}

/// One digest per endpoint of `local`.
pub fn digests_of(local: &BTreeMap<String, EndpointState>) -> Vec<GossipDigest> {
    local
        .iter()
        .map(|(host, s)| GossipDigest { host_id: host.clone(), generation: s.rank(), max_version: s.max_version() })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::membership::endpoint::{AppValue, HeartbeatState, VersionedValue};

    fn state(generation: u64, versions: &[u64]) -> EndpointState {
        let mut s = EndpointState::new(generation);
        s.heartbeat = HeartbeatState { generation, version: versions.iter().copied().max().unwrap_or(0) };
        for (i, v) in versions.iter().enumerate() {
            let value = if i == 0 { AppValue::Load(*v) } else { AppValue::Schema(v.to_string()) };
            s.app_states.insert(value.key(), VersionedValue { version: *v, value });
        }
        s
    }

    fn digest(host: &str, generation: u64, max_version: u64) -> GossipDigest {
        GossipDigest { host_id: host.into(), generation, max_version }
    }

    #[test]
    fn examine_follows_the_generation_and_version_rules() {
        let local: BTreeMap<String, EndpointState> = [
            ("same".to_owned(), state(1, &[3, 5])),
            ("behind_here".to_owned(), state(1, &[2])),
            ("ahead_here".to_owned(), state(1, &[2, 9])),
            ("older_gen_here".to_owned(), state(1, &[4])),
            ("newer_gen_here".to_owned(), state(3, &[1])),
            ("unmentioned".to_owned(), state(2, &[1])),
        ]
        .into_iter()
        .collect();
        let digests = vec![
            digest("same", 1, 5),
            digest("behind_here", 1, 7),
            digest("ahead_here", 1, 4),
            digest("older_gen_here", 2, 1),
            digest("newer_gen_here", 2, 50),
            digest("unknown_here", 4, 4),
        ];
        let e = examine(&digests, &local);
        assert_eq!(
            e.requests,
            vec![digest("behind_here", 1, 2), digest("older_gen_here", 2, 0), digest("unknown_here", 4, 0)]
        );
        assert_eq!(
            e.states.keys().map(String::as_str).collect::<Vec<_>>(),
            ["ahead_here", "newer_gen_here", "unmentioned"]
        );
        let ahead = &e.states["ahead_here"];
        assert_eq!(ahead.app_states.len(), 1, "only the state after version 4: {ahead:?}");
        assert_eq!(e.states["newer_gen_here"], local["newer_gen_here"]);
    }

    #[test]
    fn answer_requests_sends_deltas_and_skips_newer_generations() {
        let local: BTreeMap<String, EndpointState> =
            [("a".to_owned(), state(2, &[3, 8])), ("b".to_owned(), state(1, &[1]))].into_iter().collect();
        let out = answer_requests(&[digest("a", 2, 4), digest("b", 5, 0), digest("zz", 1, 0)], &local);
        assert_eq!(out.keys().map(String::as_str).collect::<Vec<_>>(), ["a"]);
        assert_eq!(out["a"].app_states.len(), 1);
        let older = answer_requests(&[digest("a", 1, 99)], &local);
        assert_eq!(older["a"], local["a"], "a requester on an older generation gets everything");
    }
}
