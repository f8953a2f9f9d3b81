//! Conversions between the gossip messages and `ringkv.cluster.v1` gossip
//! protos (`gossip.proto`).
//!
//! Invariants: nothing from the network panics; a malformed field is a
//! [`ConvertError`] naming it; an application state this version does not
//! know (a newer peer's) is skipped, not refused, so states can be added.
//!
//! This module may call the generated protos and `peer::convert` (the member
//! conversions and `ConvertError` it shares with the peer layer) only: the
//! one membership file that knows the protos, because the saved membership
//! is stored in this format (an exception listed in `node/tests/deps.rs`).

use std::collections::BTreeMap;

use ringkv_proto::cluster::v1 as pb;

use crate::peer::ConvertError;
use crate::peer::convert::{parse_addr, status_from_proto, status_to_proto};

use super::MemberStatus;
use super::digest::{GossipAck, GossipAck2, GossipDigest, GossipPing, GossipSyn};
use super::endpoint::{AppValue, EndpointState, HeartbeatState, VersionedValue};

fn digest_to_proto(d: &GossipDigest) -> pb::GossipDigest {
    pb::GossipDigest { host_id: d.host_id.clone(), generation: d.generation, max_version: d.max_version }
}

fn digest_from_proto(d: pb::GossipDigest) -> GossipDigest {
    GossipDigest { host_id: d.host_id, generation: d.generation, max_version: d.max_version }
}

/// A probe for the wire.
pub fn ping_to_proto(ping: &GossipPing) -> pb::GossipPing {
    pb::GossipPing { from_host_id: ping.from.clone() }
}

/// A probe from the wire.
pub fn ping_from_proto(ping: pb::GossipPing) -> GossipPing {
    GossipPing { from: ping.from_host_id }
}

/// A SYN as its request.
pub fn syn_to_proto(syn: &GossipSyn) -> pb::GossipSynRequest {
    pb::GossipSynRequest { from_host_id: syn.from.clone(), digests: syn.digests.iter().map(digest_to_proto).collect() }
}

/// A SYN request as a SYN.
pub fn syn_from_proto(req: pb::GossipSynRequest) -> GossipSyn {
    GossipSyn { from: req.from_host_id, digests: req.digests.into_iter().map(digest_from_proto).collect() }
}

/// An ACK as its response.
pub fn ack_to_proto(ack: &GossipAck) -> pb::GossipAckResponse {
    pb::GossipAckResponse {
        from_host_id: ack.from.clone(),
        requests: ack.requests.iter().map(digest_to_proto).collect(),
        states: states_to_proto(&ack.states),
    }
}

/// An ACK response as an ACK.
pub fn ack_from_proto(resp: pb::GossipAckResponse) -> Result<GossipAck, ConvertError> {
    Ok(GossipAck {
        from: resp.from_host_id,
        requests: resp.requests.into_iter().map(digest_from_proto).collect(),
        states: states_from_proto(resp.states)?,
    })
}

/// An ACK2 as its request.
pub fn ack2_to_proto(ack2: &GossipAck2) -> pb::GossipAck2Request {
    pb::GossipAck2Request { from_host_id: ack2.from.clone(), states: states_to_proto(&ack2.states) }
}

/// An ACK2 request as an ACK2.
pub fn ack2_from_proto(req: pb::GossipAck2Request) -> Result<GossipAck2, ConvertError> {
    Ok(GossipAck2 { from: req.from_host_id, states: states_from_proto(req.states)? })
}

/// Endpoint states as bytes (what a node keeps of membership across restarts).
pub fn encode_states(states: &BTreeMap<String, EndpointState>) -> Vec<u8> {
    use prost::Message as _;
    pb::GossipAck2Request { from_host_id: String::new(), states: states_to_proto(states) }.encode_to_vec()
}

/// Endpoint states from [`encode_states`] bytes.
pub fn decode_states(bytes: &[u8]) -> Result<BTreeMap<String, EndpointState>, ConvertError> {
    use prost::Message as _;
    let decoded = pb::GossipAck2Request::decode(bytes)
        .map_err(|_| ConvertError::MissingField { message: "saved membership", field: "states" })?;
    states_from_proto(decoded.states)
}

fn states_to_proto(states: &BTreeMap<String, EndpointState>) -> Vec<pb::GossipEndpointState> {
    states
        .iter()
        .map(|(host, s)| pb::GossipEndpointState {
            host_id: host.clone(),
            generation: s.heartbeat.generation,
            heartbeat_version: s.heartbeat.version,
            app_states: s.app_states.values().map(app_to_proto).collect(),
        })
        .collect()
}

fn states_from_proto(states: Vec<pb::GossipEndpointState>) -> Result<BTreeMap<String, EndpointState>, ConvertError> {
    let mut out = BTreeMap::new();
    for s in states {
        if s.host_id.is_empty() {
            return Err(ConvertError::MissingField { message: "GossipEndpointState", field: "host_id" });
        }
        let mut state = EndpointState {
            heartbeat: HeartbeatState { generation: s.generation, version: s.heartbeat_version },
            app_states: BTreeMap::new(),
        };
        for app in s.app_states {
            if let Some(value) = app_from_proto(app.value)? {
                state.app_states.insert(value.key(), VersionedValue { version: app.version, value });
            }
        }
        out.insert(s.host_id, state);
    }
    Ok(out)
}

fn app_to_proto(v: &VersionedValue) -> pb::GossipAppState {
    use pb::gossip_app_state::Value;
    let value = match &v.value {
        AppValue::Status(status) => Value::Status(pb::GossipStatus {
            status: status_to_proto(status) as i32,
            replacing_host_id: match status {
                MemberStatus::Replacing { old_host_id } => old_host_id.clone(),
                _ => String::new(),
            },
        }),
        AppValue::Tokens(tokens) => Value::Tokens(pb::GossipTokens { tokens: tokens.clone() }),
        AppValue::Placement { zone, rack } => {
            Value::Placement(pb::GossipPlacement { zone: zone.clone(), rack: rack.clone() })
        }
        AppValue::Addresses { node_id, grpc_addr, http_addr } => Value::Addresses(pb::GossipAddresses {
            node_id: *node_id,
            grpc_addr: grpc_addr.to_string(),
            http_addr: http_addr.to_string(),
        }),
        AppValue::Load(bytes) => Value::LoadBytes(*bytes),
        AppValue::Schema(version) => Value::SchemaVersion(version.clone()),
        AppValue::HostName(name) => Value::HostName(name.clone()),
    };
    pb::GossipAppState { version: v.version, value: Some(value) }
}

/// The value, or `None` for a value this version does not know.
fn app_from_proto(value: Option<pb::gossip_app_state::Value>) -> Result<Option<AppValue>, ConvertError> {
    use pb::gossip_app_state::Value;
    Ok(Some(match value {
        None => return Ok(None),
        Some(Value::Status(s)) => AppValue::Status(status_from_proto("GossipStatus", s.status, s.replacing_host_id)?),
        Some(Value::Tokens(t)) => AppValue::Tokens(t.tokens),
        Some(Value::Placement(p)) => AppValue::Placement { zone: p.zone, rack: p.rack },
        Some(Value::Addresses(a)) => AppValue::Addresses {
            node_id: a.node_id,
            grpc_addr: parse_addr("GossipAddresses.grpc_addr", &a.grpc_addr)?,
            http_addr: parse_addr("GossipAddresses.http_addr", &a.http_addr)?,
        },
        Some(Value::LoadBytes(bytes)) => AppValue::Load(bytes),
        Some(Value::SchemaVersion(v)) => AppValue::Schema(v),
        Some(Value::HostName(name)) => AppValue::HostName(name),
    }))
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::*;

    fn full_state() -> EndpointState {
        let values = [
            AppValue::Status(MemberStatus::Replacing { old_host_id: "old".into() }),
            AppValue::Tokens(vec![1, 2, 3]),
            AppValue::Placement { zone: "z".into(), rack: "r".into() },
            AppValue::Addresses {
                node_id: 7,
                grpc_addr: SocketAddr::from(([127, 0, 0, 1], 7100)),
                http_addr: SocketAddr::from(([127, 0, 0, 1], 7180)),
            },
            AppValue::Load(99),
            AppValue::Schema("abc".into()),
            AppValue::HostName("node-a.example:7100".into()),
        ];
        EndpointState {
            heartbeat: HeartbeatState { generation: 3, version: 40 },
            app_states: values
                .into_iter()
                .enumerate()
                .map(|(i, value)| (value.key(), VersionedValue { version: i as u64 + 1, value }))
                .collect(),
        }
    }

    #[test]
    fn every_message_round_trips() {
        let states: BTreeMap<String, EndpointState> = [("h".to_owned(), full_state())].into_iter().collect();
        let digests = vec![GossipDigest { host_id: "h".into(), generation: 3, max_version: 40 }];
        let syn = GossipSyn { from: "a".into(), digests: digests.clone() };
        assert_eq!(syn_from_proto(syn_to_proto(&syn)), syn);
        let ack = GossipAck { from: "b".into(), requests: digests, states: states.clone() };
        assert_eq!(ack_from_proto(ack_to_proto(&ack)), Ok(ack));
        let ack2 = GossipAck2 { from: "a".into(), states };
        assert_eq!(ack2_from_proto(ack2_to_proto(&ack2)), Ok(ack2));
    }

    #[test]
    fn malformed_fields_are_errors_and_unknown_values_are_skipped() {
        let mut proto = ack2_to_proto(&GossipAck2 {
            from: "a".into(),
            states: [("h".to_owned(), full_state())].into_iter().collect(),
        });
        proto.states[0].app_states.push(pb::GossipAppState { version: 50, value: None });
        let decoded = ack2_from_proto(proto.clone()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(decoded.states["h"], full_state(), "the unknown value was skipped");

        let mut bad_addr = proto.clone();
        for app in &mut bad_addr.states[0].app_states {
            if let Some(pb::gossip_app_state::Value::Addresses(a)) = &mut app.value {
                a.grpc_addr = "not an address".into();
            }
        }
        assert!(matches!(ack2_from_proto(bad_addr), Err(ConvertError::BadAddress { .. })));
        let mut bad_status = proto.clone();
        for app in &mut bad_status.states[0].app_states {
            if let Some(pb::gossip_app_state::Value::Status(s)) = &mut app.value {
                s.status = 99;
            }
        }
        assert!(matches!(ack2_from_proto(bad_status), Err(ConvertError::UnknownEnum { .. })));
        let mut no_host = proto;
        no_host.states[0].host_id.clear();
        assert!(matches!(ack2_from_proto(no_host), Err(ConvertError::MissingField { .. })));
    }
}
