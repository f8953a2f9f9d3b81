//! Conversions between the domain types of the replica transport (and the
//! records and members every cluster service carries) and the
//! `ringkv.cluster.v1` proto messages.
//!
//! Used by both ends of the wire: [`super::GrpcTransport`] (client) and
//! `server/replica.rs` (server), and by the other cluster clients and
//! services, so each mapping exists exactly once.
//!
//! Invariants: encoding never fails; decoding never panics: every malformed
//! message (missing field, unparsable address, undecodable record, unknown
//! consistency level, empty oneof) is a [`ConvertError`] naming the field.
//!
//! This module may call `version`, `membership`, `replication` and
//! `transport` types and the generated proto types only.

use std::net::SocketAddr;

use bytes::Bytes;
use ringkv_proto::cluster::v1 as pb;
use ringkv_proto::cluster::v1::cas_mutation::Expected;
use ringkv_proto::cluster::v1::mutation::Kind;

use crate::membership::{Member, MemberStatus};
use crate::replication::{CasExpectation, Consistency, ConsistencyLevel, Mutation, UnknownConsistency, WriteResult};
use crate::version::{CodecError, Record};

use crate::transport::{CoordinateCall, CoordinateReply, HintedWrite, PageItem, PageOrder, PageQuery, ReplicaWrite};

/// Why a proto message could not be turned into a domain value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConvertError {
    /// A field that must be set is absent (a proto3 message field or a oneof).
    #[error("{message}.{field} is missing")]
    MissingField {
        /// The proto message.
        message: &'static str,
        /// The field.
        field: &'static str,
    },
    /// An address field is not a `host:port` socket address.
    #[error("{field} {value:?} is not a socket address (ip:port): {reason}")]
    BadAddress {
        /// The field.
        field: &'static str,
        /// What was sent.
        value: String,
        /// The parser's complaint.
        reason: String,
    },
    /// An encoded record could not be decoded.
    #[error("{field} is not a valid record: {source}")]
    BadRecord {
        /// The field.
        field: &'static str,
        /// The decoder's error.
        source: CodecError,
    },
    /// An enum field holds a value this version does not know.
    #[error("{field}: enum value {value} is not known here; is the peer a newer version?")]
    UnknownEnum {
        /// The field.
        field: &'static str,
        /// The number sent.
        value: i32,
    },
    /// The consistency level name is not one of ours.
    #[error("level: {source}")]
    BadConsistency {
        /// The parser's error.
        source: UnknownConsistency,
    },
}

/// Encodes a record in the storage codec.
pub fn record_to_proto(record: &Record) -> pb::EncodedRecord {
    pb::EncodedRecord { bytes: Bytes::from(record.encode()) }
}

/// Decodes a record; `field` names it in errors.
pub fn record_from_proto(encoded: &pb::EncodedRecord, field: &'static str) -> Result<Record, ConvertError> {
    Record::decode(&encoded.bytes).map_err(|source| ConvertError::BadRecord { field, source })
}

/// Decodes a record that must be present in `message`.
pub fn required_record(
    encoded: Option<&pb::EncodedRecord>,
    message: &'static str,
    field: &'static str,
) -> Result<Record, ConvertError> {
    let encoded = encoded.ok_or(ConvertError::MissingField { message, field })?;
    record_from_proto(encoded, field)
}

/// A member as endpoint information.
pub fn member_to_proto(member: &Member) -> pb::EndpointInfo {
    pb::EndpointInfo {
        host_id: member.host_id.clone(),
        node_id: member.node_id,
        grpc_addr: member.grpc_addr.to_string(),
        http_addr: member.http_addr.to_string(),
        zone: member.zone.clone(),
        rack: member.rack.clone(),
        tokens: member.tokens.clone(),
        generation: member.generation,
        status: status_to_proto(&member.status) as i32,
        replacing_host_id: match &member.status {
            MemberStatus::Replacing { old_host_id } => old_host_id.clone(),
            _ => String::new(),
        },
    }
}

/// A lifecycle status on the wire (shared by endpoint information and gossip).
pub(crate) fn status_to_proto(status: &MemberStatus) -> pb::MemberStatus {
    match status {
        MemberStatus::Joining => pb::MemberStatus::Joining,
        MemberStatus::Normal => pb::MemberStatus::Normal,
        MemberStatus::Leaving => pb::MemberStatus::Leaving,
        MemberStatus::Left => pb::MemberStatus::Left,
        MemberStatus::Replacing { .. } => pb::MemberStatus::Replacing,
    }
}

/// A lifecycle status from the wire; `message` names the carrying message in errors.
pub(crate) fn status_from_proto(
    message: &'static str,
    status: i32,
    replacing_host_id: String,
) -> Result<MemberStatus, ConvertError> {
    Ok(match pb::MemberStatus::try_from(status) {
        Ok(pb::MemberStatus::Normal) => MemberStatus::Normal,
        Ok(pb::MemberStatus::Joining) => MemberStatus::Joining,
        Ok(pb::MemberStatus::Leaving) => MemberStatus::Leaving,
        Ok(pb::MemberStatus::Left) => MemberStatus::Left,
        Ok(pb::MemberStatus::Replacing) if !replacing_host_id.is_empty() => {
            MemberStatus::Replacing { old_host_id: replacing_host_id }
        }
        Ok(pb::MemberStatus::Replacing) => {
            return Err(ConvertError::MissingField { message, field: "replacing_host_id" });
        }
        Err(_) => return Err(ConvertError::UnknownEnum { field: message, value: status }),
    })
}

/// A `host:port` socket address; `field` names it in errors.
pub(crate) fn parse_addr(field: &'static str, value: &str) -> Result<SocketAddr, ConvertError> {
    value.parse().map_err(|e: std::net::AddrParseError| ConvertError::BadAddress {
        field,
        value: value.to_owned(),
        reason: e.to_string(),
    })
}

/// A member from endpoint information; addresses must parse.
pub fn member_from_proto(info: pb::EndpointInfo) -> Result<Member, ConvertError> {
    if info.host_id.is_empty() {
        return Err(ConvertError::MissingField { message: "EndpointInfo", field: "host_id" });
    }
    Ok(Member {
        grpc_addr: parse_addr("EndpointInfo.grpc_addr", &info.grpc_addr)?,
        http_addr: parse_addr("EndpointInfo.http_addr", &info.http_addr)?,
        host_id: info.host_id,
        node_id: info.node_id,
        zone: info.zone,
        rack: info.rack,
        tokens: info.tokens,
        generation: info.generation,
        status: status_from_proto("EndpointInfo", info.status, info.replacing_host_id)?,
    })
}

/// A mutation as its proto message.
pub fn mutation_to_proto(mutation: &Mutation) -> pb::Mutation {
    let kind = match mutation.clone() {
        Mutation::Put { value, context, ttl_seconds, if_absent } => {
            Kind::Put(pb::PutMutation { value, context, ttl_seconds, if_absent })
        }
        Mutation::Delete { context } => Kind::Delete(pb::DeleteMutation { context }),
        Mutation::Touch { ttl_seconds } => Kind::Touch(pb::TouchMutation { ttl_seconds }),
        Mutation::Increment { delta, ttl_seconds } => Kind::Increment(pb::IncrementMutation { delta, ttl_seconds }),
        Mutation::Cas { expected, new_value, ttl_seconds } => {
            let expected = match expected {
                CasExpectation::Version(v) => Expected::ExpectedVersion(v),
                CasExpectation::Context(c) => Expected::ExpectedContext(c),
                CasExpectation::Value(v) => Expected::ExpectedValue(v),
                CasExpectation::Absent => Expected::ExpectAbsent(true),
            };
            Kind::Cas(pb::CasMutation { expected: Some(expected), new_value, ttl_seconds })
        }
    };
    pb::Mutation { kind: Some(kind) }
}

/// A mutation from its proto message; an empty oneof is an error.
pub fn mutation_from_proto(mutation: pb::Mutation) -> Result<Mutation, ConvertError> {
    let kind = mutation.kind.ok_or(ConvertError::MissingField { message: "Mutation", field: "kind" })?;
    Ok(match kind {
        Kind::Put(p) => {
            Mutation::Put { value: p.value, context: p.context, ttl_seconds: p.ttl_seconds, if_absent: p.if_absent }
        }
        Kind::Delete(d) => Mutation::Delete { context: d.context },
        Kind::Touch(t) => Mutation::Touch { ttl_seconds: t.ttl_seconds },
        Kind::Increment(i) => Mutation::Increment { delta: i.delta, ttl_seconds: i.ttl_seconds },
        Kind::Cas(c) => {
            let expected = match c.expected {
                Some(Expected::ExpectedVersion(v)) => CasExpectation::Version(v),
                Some(Expected::ExpectedContext(ctx)) => CasExpectation::Context(ctx),
                Some(Expected::ExpectedValue(v)) => CasExpectation::Value(v),
                // `expect_absent = false` carries no meaning of its own; treat it as set.
                Some(Expected::ExpectAbsent(_)) => CasExpectation::Absent,
                None => return Err(ConvertError::MissingField { message: "CasMutation", field: "expected" }),
            };
            Mutation::Cas { expected, new_value: c.new_value, ttl_seconds: c.ttl_seconds }
        }
    })
}

/// A write's consistency as (`level` name, `w`); "" means the default level.
/// `r` is not carried: a coordinated call is always a write.
pub fn consistency_to_proto(consistency: Consistency) -> (String, Option<u32>) {
    (consistency.level.map(|l| l.name().to_owned()).unwrap_or_default(), consistency.w)
}

/// A write's consistency from (`level` name, `w`).
pub fn consistency_from_proto(level: &str, w: Option<u32>) -> Result<Consistency, ConvertError> {
    let level = if level.is_empty() {
        None
    } else {
        Some(level.parse::<ConsistencyLevel>().map_err(|source| ConvertError::BadConsistency { source })?)
    };
    Ok(Consistency { level, r: None, w })
}

/// A coordinated write as its request.
pub fn coordinate_call_to_proto(call: &CoordinateCall) -> pb::CoordinateRequest {
    let (level, w) = consistency_to_proto(call.consistency);
    pb::CoordinateRequest {
        keyspace: call.keyspace.clone(),
        key: call.key.clone(),
        mutation: Some(mutation_to_proto(&call.mutation)),
        level,
        w,
    }
}

/// A coordinated write from its request.
pub fn coordinate_call_from_proto(req: pb::CoordinateRequest) -> Result<CoordinateCall, ConvertError> {
    let mutation =
        req.mutation.ok_or(ConvertError::MissingField { message: "CoordinateRequest", field: "mutation" })?;
    Ok(CoordinateCall {
        mutation: mutation_from_proto(mutation)?,
        consistency: consistency_from_proto(&req.level, req.w)?,
        keyspace: req.keyspace,
        key: req.key,
    })
}

/// A coordinated write's reply as its response.
pub fn coordinate_reply_to_proto(reply: &CoordinateReply) -> pb::CoordinateResponse {
    let r = &reply.result;
    pb::CoordinateResponse {
        applied: r.applied,
        existed: r.existed,
        context: r.context.clone(),
        version: r.version,
        timestamp_micros: r.timestamp_micros,
        counter: reply.counter,
        current: reply.current.as_ref().map(record_to_proto),
    }
}

/// A coordinated write's reply from its response.
pub fn coordinate_reply_from_proto(resp: pb::CoordinateResponse) -> Result<CoordinateReply, ConvertError> {
    let current = resp.current.as_ref().map(|c| record_from_proto(c, "CoordinateResponse.current")).transpose()?;
    Ok(CoordinateReply {
        result: WriteResult {
            applied: resp.applied,
            existed: resp.existed,
            context: resp.context,
            version: resp.version,
            timestamp_micros: resp.timestamp_micros,
        },
        counter: resp.counter,
        current,
    })
}

/// A replica write as its request.
pub fn replica_write_to_proto(write: &ReplicaWrite) -> pb::ReplicaWriteRequest {
    pb::ReplicaWriteRequest {
        keyspace: write.keyspace.clone(),
        key: write.key.clone(),
        record: Some(record_to_proto(&write.record)),
        hint_for_host_id: write.hint_for.clone(),
    }
}

/// A replica write from its request.
pub fn replica_write_from_proto(req: pb::ReplicaWriteRequest) -> Result<ReplicaWrite, ConvertError> {
    Ok(ReplicaWrite {
        record: required_record(req.record.as_ref(), "ReplicaWriteRequest", "record")?,
        keyspace: req.keyspace,
        key: req.key,
        hint_for: req.hint_for_host_id,
    })
}

/// A hinted write as its proto message.
pub fn hint_to_proto(hint: &HintedWrite) -> pb::Hint {
    pb::Hint {
        keyspace: hint.keyspace.clone(),
        key: hint.key.clone(),
        record: Some(record_to_proto(&hint.record)),
        created_at_ms: hint.created_at_ms,
    }
}

/// A hinted write from its proto message.
pub fn hint_from_proto(hint: pb::Hint) -> Result<HintedWrite, ConvertError> {
    Ok(HintedWrite {
        record: required_record(hint.record.as_ref(), "Hint", "record")?,
        keyspace: hint.keyspace,
        key: hint.key,
        created_at_ms: hint.created_at_ms,
    })
}

/// A replica's answer to a read: `found` with its record, or not found.
pub fn read_response_to_proto(record: Option<&Record>) -> pb::ReplicaReadResponse {
    pb::ReplicaReadResponse { found: record.is_some(), record: record.map(record_to_proto), digest: Bytes::new() }
}

/// The record of a replica's answer to a read; `found` without a record is an error.
pub fn read_response_from_proto(resp: &pb::ReplicaReadResponse) -> Result<Option<Record>, ConvertError> {
    if !resp.found {
        return Ok(None);
    }
    required_record(resp.record.as_ref(), "ReplicaReadResponse", "record").map(Some)
}

/// A page query as sent to a peer.
pub fn page_query_to_proto(q: &PageQuery) -> pb::PageRequest {
    let (by_token, prefix, after_key, after_token) = match &q.order {
        PageOrder::ByKey { prefix, after } => (false, prefix.clone(), after.clone(), 0),
        PageOrder::ByToken { after } => {
            (true, Bytes::new(), after.as_ref().map(|(_, k)| k.clone()), after.as_ref().map_or(0, |(t, _)| *t))
        }
    };
    pb::PageRequest { keyspace: q.keyspace.clone(), by_token, prefix, after_key, after_token, limit: q.limit }
}

/// A page query as received from a peer.
pub fn page_query_from_proto(r: pb::PageRequest) -> PageQuery {
    let order = if r.by_token {
        PageOrder::ByToken { after: r.after_key.map(|k| (r.after_token, k)) }
    } else {
        PageOrder::ByKey { prefix: r.prefix, after: r.after_key }
    };
    PageQuery { keyspace: r.keyspace, order, limit: r.limit }
}

/// A page as sent back.
pub fn page_to_proto(items: &[PageItem]) -> pb::PageResponse {
    pb::PageResponse {
        items: items
            .iter()
            .map(|i| pb::PageItem { token: i.token, key: i.key.clone(), record: Some(record_to_proto(&i.record)) })
            .collect(),
    }
}

/// A page as received.
pub fn page_from_proto(resp: pb::PageResponse) -> Result<Vec<PageItem>, ConvertError> {
    resp.items
        .into_iter()
        .map(|i| {
            let record = required_record(i.record.as_ref(), "PageItem", "record")?;
            Ok(PageItem { token: i.token, key: i.key, record })
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::version::{ConflictMode, NewWrite, VersionVector};

    /// A record with one live sibling and one tombstone (concurrent writes).
    pub(crate) fn sample_record() -> Record {
        let mut r = Record::default();
        let ctx = VersionVector::new();
        let w = |value: Option<&'static [u8]>| NewWrite {
            value: value.map(Bytes::from_static),
            timestamp_micros: 1_700_000_000_000_000,
            expires_at_ms: Some(1_700_000_100_000),
        };
        r.apply_write(1, &ctx, w(Some(b"v1")), ConflictMode::Siblings);
        r.apply_write(2, &ctx, w(None), ConflictMode::Siblings);
        r
    }

    pub(crate) fn sample_member(host_id: &str, port: u16) -> Member {
        Member {
            host_id: host_id.to_owned(),
            node_id: 42,
            grpc_addr: SocketAddr::from(([127, 0, 0, 1], port)),
            http_addr: "[::1]:8080".parse().unwrap(),
            zone: "z1".into(),
            rack: "r1".into(),
            tokens: vec![1, u64::MAX, 77],
            generation: 3,
            status: crate::membership::MemberStatus::Replacing { old_host_id: "dead".into() },
        }
    }

    fn every_mutation() -> Vec<Mutation> {
        let b = Bytes::from_static;
        let cas = |expected| Mutation::Cas { expected, new_value: b(b"new"), ttl_seconds: Some(5) };
        vec![
            Mutation::Put { value: b(b"v"), context: b(b"ctx"), ttl_seconds: Some(10), if_absent: true },
            Mutation::Put { value: Bytes::new(), context: Bytes::new(), ttl_seconds: None, if_absent: false },
            Mutation::Delete { context: b(b"ctx") },
            Mutation::Touch { ttl_seconds: 0 },
            Mutation::Increment { delta: -7, ttl_seconds: None },
            Mutation::Increment { delta: i64::MAX, ttl_seconds: Some(1) },
            cas(CasExpectation::Version(0)),
            cas(CasExpectation::Version(9)),
            cas(CasExpectation::Context(b(b"c"))),
            cas(CasExpectation::Value(Bytes::new())),
            cas(CasExpectation::Absent),
        ]
    }

    #[test]
    fn records_round_trip_and_garbage_is_an_error() {
        let r = sample_record();
        assert_eq!(record_from_proto(&record_to_proto(&r), "f"), Ok(r));
        let garbage = pb::EncodedRecord { bytes: Bytes::from_static(&[0xff, 0x01]) };
        assert!(matches!(record_from_proto(&garbage, "f"), Err(ConvertError::BadRecord { field: "f", .. })));
        assert_eq!(
            required_record(None, "M", "record"),
            Err(ConvertError::MissingField { message: "M", field: "record" })
        );
    }

    #[test]
    fn members_round_trip_and_bad_addresses_are_errors() {
        let m = sample_member("aabbccddeeff", 7000);
        assert_eq!(member_from_proto(member_to_proto(&m)), Ok(m.clone()));
        let bad = pb::EndpointInfo { grpc_addr: "node-1:7000".into(), ..member_to_proto(&m) };
        let err = member_from_proto(bad).unwrap_err();
        assert!(matches!(err, ConvertError::BadAddress { field: "EndpointInfo.grpc_addr", .. }), "{err}");
        assert!(err.to_string().contains("node-1:7000"));
        let bad_http = pb::EndpointInfo { http_addr: String::new(), ..member_to_proto(&m) };
        assert!(member_from_proto(bad_http).is_err());
        let anonymous = pb::EndpointInfo { host_id: String::new(), ..member_to_proto(&m) };
        assert!(matches!(member_from_proto(anonymous), Err(ConvertError::MissingField { field: "host_id", .. })));
    }

    #[test]
    fn every_mutation_round_trips() {
        for m in every_mutation() {
            assert_eq!(mutation_from_proto(mutation_to_proto(&m)), Ok(m.clone()), "{m:?}");
        }
    }

    #[test]
    fn empty_oneofs_are_errors() {
        assert!(matches!(mutation_from_proto(pb::Mutation { kind: None }), Err(ConvertError::MissingField { .. })));
        let cas = pb::CasMutation { expected: None, new_value: Bytes::new(), ttl_seconds: None };
        let err = mutation_from_proto(pb::Mutation { kind: Some(Kind::Cas(cas)) }).unwrap_err();
        assert_eq!(err, ConvertError::MissingField { message: "CasMutation", field: "expected" });
    }

    #[test]
    fn consistency_round_trips_and_unknown_levels_are_errors() {
        assert_eq!(consistency_from_proto("", None), Ok(Consistency::default()));
        for level in ConsistencyLevel::ALL_LEVELS {
            let c = Consistency { level: Some(level), r: None, w: Some(2) };
            let (name, w) = consistency_to_proto(c);
            assert_eq!(consistency_from_proto(&name, w), Ok(c));
        }
        assert!(matches!(consistency_from_proto("EVENTUAL", None), Err(ConvertError::BadConsistency { .. })));
    }

    #[test]
    fn coordinate_calls_and_replies_round_trip() {
        for mutation in every_mutation() {
            let call = CoordinateCall {
                keyspace: "ks".into(),
                key: Bytes::from_static(b"k"),
                mutation,
                consistency: Consistency { level: Some(ConsistencyLevel::Quorum), r: None, w: None },
            };
            assert_eq!(coordinate_call_from_proto(coordinate_call_to_proto(&call)), Ok(call));
        }
        let missing = pb::CoordinateRequest { mutation: None, ..Default::default() };
        assert!(coordinate_call_from_proto(missing).is_err());
        let reply = CoordinateReply {
            result: WriteResult {
                applied: false,
                existed: true,
                context: Bytes::from_static(b"ctx"),
                version: 4,
                timestamp_micros: -1,
            },
            counter: 12,
            current: Some(sample_record()),
        };
        assert_eq!(coordinate_reply_from_proto(coordinate_reply_to_proto(&reply)), Ok(reply));
        let default = CoordinateReply::default();
        assert_eq!(coordinate_reply_from_proto(coordinate_reply_to_proto(&default)), Ok(default));
        let corrupt = pb::CoordinateResponse {
            current: Some(pb::EncodedRecord { bytes: Bytes::from_static(b"x") }),
            ..Default::default()
        };
        assert!(coordinate_reply_from_proto(corrupt).is_err());
    }

    #[test]
    fn writes_hints_and_reads_round_trip() {
        let key = Bytes::from_static(b"k");
        let write = ReplicaWrite {
            keyspace: "ks".into(),
            key: key.clone(),
            record: sample_record(),
            hint_for: Some("h".into()),
        };
        assert_eq!(replica_write_from_proto(replica_write_to_proto(&write)), Ok(write));
        assert!(replica_write_from_proto(pb::ReplicaWriteRequest::default()).is_err());
        let hint = HintedWrite { keyspace: "ks".into(), key, record: sample_record(), created_at_ms: 99 };
        assert_eq!(hint_from_proto(hint_to_proto(&hint)), Ok(hint));
        assert!(hint_from_proto(pb::Hint::default()).is_err());
        let r = sample_record();
        assert_eq!(read_response_from_proto(&read_response_to_proto(Some(&r))), Ok(Some(r)));
        assert_eq!(read_response_from_proto(&read_response_to_proto(None)), Ok(None));
        let found_without_record = pb::ReplicaReadResponse { found: true, ..Default::default() };
        assert!(read_response_from_proto(&found_without_record).is_err());
    }
}
