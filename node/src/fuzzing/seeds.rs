//! Seed inputs for every fuzz target, made by the node's real encoders (the
//! RESP encoder, `serde_json`, the record and context codecs, the gossip
//! core and the proto conversions), so the fuzzer starts from well-formed
//! messages. Written to `fuzz/corpus/<target>/` by
//! `cargo test -p ringkv-node --test fuzz_corpus -- --ignored write_seeds`.

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::{Bytes, BytesMut};
use prost::Message as _;
use rand::SeedableRng as _;
use serde_json::{Value, json};

use crate::membership::{GossipAck, GossipPing, wire};
use crate::peer::convert;
use crate::server::resp::Reply;
use crate::transport::{HintedWrite, ReplicaWrite};
use crate::version::{ConflictMode, NewWrite, Record, VersionVector};

/// `(target, input)` pairs; each target has several.
pub fn all() -> Vec<(&'static str, Vec<u8>)> {
    let mut out = Vec::new();
    out.extend(resp().into_iter().map(|s| ("resp", s)));
    out.extend(http().into_iter().map(|s| ("http", s)));
    out.extend(contexts().into_iter().map(|c| ("context", c.encode_context())));
    out.extend(records().into_iter().map(|r| ("record", r.encode())));
    out.extend(gossip().into_iter().map(|s| ("gossip", s)));
    out.extend(hints().into_iter().map(|s| ("hint", s)));
    out
}

fn command(args: &[&[u8]]) -> Vec<u8> {
    let mut out = BytesMut::new();
    Reply::Array(args.iter().map(|a| Reply::Bulk(Bytes::copy_from_slice(a))).collect()).encode(&mut out);
    out.to_vec()
}

fn resp() -> Vec<Vec<u8>> {
    let mut pipelined = command(&[b"SET", b"k", b"v\r\n"]);
    pipelined.extend(command(&[b"GET", b"k"]));
    pipelined.extend(command(&[b"INCRBY", b"n", b"-5"]));
    let incomplete = command(&[b"MSET", b"a", b"1", b"b", b"2"]);
    vec![
        command(&[b"SET", b"key", b"value", b"EX", b"10", b"NX"]),
        command(&[b"MGET", b"a", b"b", b"c"]),
        command(&[b"PING"]),
        command(&[b"ECHO", &[0, 255, 13, 10]]),
        pipelined,
        incomplete[..incomplete.len() - 3].to_vec(),
        b"PING\r\nGET  k\n\r\n".to_vec(),
        b"*1\r\n$-1\r\n".to_vec(),
        b"*0\r\n*-1\r\n".to_vec(),
        // Refused by the command parsers, not the framing.
        command(&[b"SET", b"k"]),
        command(&[b"SET", b"k", b"v", b"XX"]),
        command(&[b"INCRBY", b"n", b"abc"]),
        command(&[b"SELECT", b"1"]),
        command(&[b"EXPIRE", b"k", b"-1"]),
        command(&[b"no\r\nsuch"]),
        command(&[b"QUIT"]),
    ]
}

fn tagged(selector: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![selector];
    out.extend_from_slice(body);
    out
}

fn json_bytes(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).unwrap_or_default()
}

fn http() -> Vec<Vec<u8>> {
    let ctx = URL_SAFE_NO_PAD.encode(VersionVector::from_entries([(1, 3), (9, 1)]).encode_context());
    let bin = URL_SAFE_NO_PAD.encode([0u8, 0xff, 0x10]);
    let bodies: [(u8, Value); 10] = [
        (0, json!({"value": "v", "ttl": 60, "if_not_exists": true, "context": ctx})),
        (0, json!({"value_base64": bin})),
        (
            1,
            json!({"operations": [{"key": "a", "value": "1", "ttl": 5}, {"key": "b", "delete": true, "context": ctx}], "atomic": true}),
        ),
        (1, json!({"operations": [{"key": "c", "value_base64": bin}]})),
        (2, json!({"keys": ["a", "b", "ü"]})),
        (3, json!({"expected_version": 3, "new_value": "x", "ttl": 9})),
        (3, json!({"expected_context": ctx, "new_value_base64": bin})),
        (3, json!({"expect_absent": true, "new_value": "y"})),
        (4, json!({"delta": -4, "ttl": 30})),
        (4, json!({"ttl_seconds": 0})),
    ];
    let mut out: Vec<Vec<u8>> = bodies.iter().map(|(s, v)| tagged(*s, &json_bytes(v))).collect();
    for q in ["keyspace=ks&ttl=10&if_not_exists=true", "prefix=user%2F&limit=10&cursor=AAE&values=true", "count=5"] {
        out.push(tagged(5, q.as_bytes()));
    }
    for c in ["QUORUM", "r=1,w=2", "local_quorum, w=3"] {
        out.push(tagged(6, c.as_bytes()));
    }
    out.push(tagged(7, ctx.as_bytes()));
    out.push(tagged(7, b"+/8AEA=="));
    out
}

fn contexts() -> Vec<VersionVector> {
    vec![
        VersionVector::new(),
        VersionVector::from_entries([(1, 1)]),
        VersionVector::from_entries([(1, 5), (2, 300), (0x0123_4567_89ab_cdef, 1 << 40)]),
    ]
}

fn records() -> Vec<Record> {
    let w = |value: Option<&'static [u8]>, expires_at_ms| NewWrite {
        value: value.map(Bytes::from_static),
        timestamp_micros: 1_700_000_000_000_000,
        expires_at_ms,
    };
    let mut single = Record::default();
    single.apply_write(1, &VersionVector::new(), w(Some(b"v"), None), ConflictMode::Siblings);
    let mut siblings = single.clone();
    siblings.apply_write(2, &VersionVector::new(), w(None, None), ConflictMode::Siblings);
    siblings.apply_write(
        3,
        &VersionVector::new(),
        w(Some(b"expiring"), Some(1_700_000_100_000)),
        ConflictMode::Siblings,
    );
    let mut superseded = siblings.clone();
    let context = siblings.clock.clone();
    superseded.apply_write(2, &context, w(Some(&[0, 1, 2]), None), ConflictMode::Siblings);
    vec![Record::default(), single, siblings, superseded]
}

fn gossip() -> Vec<Vec<u8>> {
    let mut core = super::gossip_core();
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    let now = Duration::from_secs(101);
    let Some(syn) = core.on_tick(now, &mut rng).into_iter().next().map(|o| o.syn) else { return Vec::new() };
    let mut other = super::gossip_core();
    let ack: GossipAck = other.on_syn(now, &syn);
    let full_ack = GossipAck { states: core.endpoints().clone(), ..ack.clone() };
    let ack2 = core.on_ack(now, &full_ack);
    let ping = GossipPing { from: super::peer_id() };
    vec![
        tagged(0, &wire::ping_to_proto(&ping).encode_to_vec()),
        tagged(1, &wire::syn_to_proto(&syn).encode_to_vec()),
        tagged(2, &wire::ack_to_proto(&ack).encode_to_vec()),
        tagged(2, &wire::ack_to_proto(&full_ack).encode_to_vec()),
        tagged(3, &wire::ack2_to_proto(&ack2).encode_to_vec()),
        tagged(
            3,
            &wire::ack2_to_proto(&crate::membership::GossipAck2 { from: "x".into(), states: full_ack.states })
                .encode_to_vec(),
        ),
        tagged(
            3,
            &wire::ack2_to_proto(&crate::membership::GossipAck2 { from: "y".into(), states: BTreeMap::new() })
                .encode_to_vec(),
        ),
        tagged(4, &wire::encode_states(core.endpoints())),
    ]
}

fn hints() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for record in records().into_iter().skip(1) {
        let hint = HintedWrite {
            keyspace: "default".into(),
            key: Bytes::from_static(b"user/1"),
            record: record.clone(),
            created_at_ms: 1_700_000_000_000,
        };
        out.push(tagged(0, &crate::hints::encode_hint(&hint)));
        out.push(tagged(1, &convert::hint_to_proto(&hint).encode_to_vec()));
        let write = ReplicaWrite {
            keyspace: "ks".into(),
            key: Bytes::from_static(&[0, 1]),
            record,
            hint_for: Some("00000000000000bb".into()),
        };
        out.push(tagged(2, &convert::replica_write_to_proto(&write).encode_to_vec()));
    }
    out
}
