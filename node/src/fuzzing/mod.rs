//! Fuzz target bodies: one function per target of `fuzz/` (cargo-fuzz,
//! libFuzzer), each taking arbitrary bytes as the network or the disk would
//! hand them to the node.
//!
//! The same functions run in two places: under libFuzzer
//! (`fuzz/fuzz_targets/<name>.rs`, see README "Fuzzing"), and in the ordinary
//! test `node/tests/fuzz_corpus.rs`, which replays every committed corpus
//! and regression file through them in `cargo test`. A function panics when a
//! property fails; besides "no panic" each checks what the decoder promises:
//! - [`resp`]: commands never exceed the [`Limits`]; an incomplete command
//!   consumes nothing; feeding the bytes in two pieces gives the same
//!   commands and the same error as feeding them at once; every command
//!   re-encodes and parses back to itself; and every command parses into
//!   its typed command or a typed refusal whose reply is one error line.
//! - [`http`]: see `server::http_api::fuzz` (bodies and query strings checked
//!   against an independent reading; only typed `RKV-*` errors).
//! - [`context`]: decode → encode → decode is the identity, the encoding is
//!   canonical and never longer than the input, and a write under a decoded
//!   context gets a dot the context does not already contain.
//! - [`record`]: the same round trip, the record invariants (siblings sorted
//!   by distinct dots, every dot in the clock), merge idempotent and
//!   commutative, and a new write under the record's own context supersedes
//!   every sibling.
//! - [`gossip`]: a decoded SYN/ACK/ACK2/ping or saved membership round-trips through its proto,
//!   and a live gossip core fed it never changes its own state from outside
//!   and answers with messages that round-trip too.
//! - [`hint`]: stored hints, `Hint` and `ReplicaWriteRequest` messages
//!   round-trip through their decoders.
//!
//! This module may call any decoder of the crate; it does no I/O.

pub mod seeds;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use prost::Message as _;
use rand::SeedableRng as _;
use ringkv_proto::cluster::v1 as pb;

use crate::membership::wire;
use crate::membership::{DetectorConfig, GossipAck2, Gossiper, Member, MemberStatus};
use crate::peer::convert;
use crate::server::resp::{Limits, ProtocolError, Request, RespError, parse_command};
use crate::version::{ConflictMode, Dot, NewWrite, Record, VersionVector};

/// Limits small enough for a fuzzer to reach, alongside the defaults.
pub const SMALL_RESP_LIMITS: Limits = Limits { max_bulk: 64, max_args: 8, max_inline: 48 };

/// The RESP command parser (`server/resp/codec.rs`) on a byte stream.
pub fn resp(data: &[u8]) {
    for limits in [SMALL_RESP_LIMITS, Limits::default()] {
        let whole = parse_stream(&[data], &limits);
        check_commands(&whole.0, &limits);
        let cut = data.first().map_or(0, |b| usize::from(*b) % (data.len() + 1));
        let split = parse_stream(&[&data[..cut], &data[cut..]], &limits);
        assert_eq!(whole.0, split.0, "feeding the bytes in two pieces (cut at {cut}) changed the commands");
        assert_eq!(whole.1.as_ref().map(error_class), split.1.as_ref().map(error_class), "cut at {cut}");
    }
}

type Parsed = (Vec<Vec<Bytes>>, Option<ProtocolError>);

/// Parses `pieces` as they arrive one after the other, as a connection does.
fn parse_stream(pieces: &[&[u8]], limits: &Limits) -> Parsed {
    let mut buf = BytesMut::new();
    let mut commands = Vec::new();
    for piece in pieces {
        buf.extend_from_slice(piece);
        loop {
            let before = buf.clone();
            match parse_command(&mut buf, limits) {
                Ok(Some(cmd)) => {
                    assert!(buf.len() < before.len(), "a command consumed nothing");
                    commands.push(cmd);
                }
                Ok(None) => {
                    assert_eq!(buf, before, "an incomplete command consumed bytes");
                    break;
                }
                Err(e) => {
                    assert!(e.to_string().starts_with("Protocol error"), "{e}");
                    return (commands, Some(e));
                }
            }
        }
    }
    (commands, None)
}

/// What an error decides, without the byte count a partial read can only bound.
fn error_class(e: &ProtocolError) -> (std::mem::Discriminant<ProtocolError>, &'static str, usize) {
    match e {
        ProtocolError::TooLarge { what, limit, .. } => (std::mem::discriminant(e), what, *limit),
        _ => (std::mem::discriminant(e), "", 0),
    }
}

fn check_commands(commands: &[Vec<Bytes>], limits: &Limits) {
    for cmd in commands {
        check_request(cmd);
        assert!(cmd.len() <= limits.max_args, "{} arguments over the limit of {}", cmd.len(), limits.max_args);
        for arg in cmd {
            assert!(arg.len() <= limits.max_bulk, "argument of {} bytes over {}", arg.len(), limits.max_bulk);
        }
        if cmd.is_empty() {
            continue;
        }
        let mut wire = BytesMut::from(format!("*{}\r\n", cmd.len()).as_bytes());
        for arg in cmd {
            wire.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
            wire.extend_from_slice(arg);
            wire.extend_from_slice(b"\r\n");
        }
        let again = parse_command(&mut wire, limits);
        assert_eq!(again, Ok(Some(cmd.clone())), "a parsed command does not parse back from its encoding");
        assert!(wire.is_empty());
    }
}

/// A parsed frame becomes a command or a typed refusal, never a panic; a
/// refusal's reply is one RESP error line, and only `QUIT` closes the
/// connection (a framing error is not a frame).
fn check_request(frame: &[Bytes]) {
    let request = Request::parse(frame.to_vec());
    let quit = frame.first().is_some_and(|name| name.eq_ignore_ascii_case(b"quit"));
    assert_eq!(request.closes_connection(), quit && request.command.is_ok(), "{frame:?}");
    if let Err(e) = request.command {
        assert!(!matches!(e, RespError::Protocol(_)), "a parsed frame refused as a framing error: {e}");
        let mut wire = BytesMut::new();
        e.into_reply().encode(&mut wire);
        assert!(wire.starts_with(b"-ERR "), "{wire:?}");
        let line_ends = wire.windows(2).filter(|w| w == b"\r\n").count();
        assert!(line_ends == 1 && wire.ends_with(b"\r\n") && !wire[..wire.len() - 2].contains(&b'\n'), "{wire:?}");
    }
}

/// The HTTP API's JSON bodies, query strings and headers (`server/http_api`).
pub fn http(data: &[u8]) {
    crate::server::http_api::fuzz::input(data);
}

/// The causal-context decoder (`version/codec.rs`), as clients reach it.
pub fn context(data: &[u8]) {
    let vv = match VersionVector::decode_context(data) {
        Ok(vv) => vv,
        Err(e) => return assert!(e.to_string().starts_with("causal context"), "{e}"),
    };
    let encoded = vv.encode_context();
    assert_eq!(VersionVector::decode_context(&encoded).as_ref(), Ok(&vv), "decode → encode → decode");
    let again = VersionVector::decode_context(&encoded).map(|v| v.encode_context());
    assert_eq!(again.as_ref(), Ok(&encoded), "the encoding is canonical");
    if !data.is_empty() {
        assert!(encoded.len() <= data.len(), "canonical form longer than the input");
    }
    let coordinators: Vec<u64> = vv.entries().map(|(node, _)| node).chain([0, 1, u64::MAX]).take(4).collect();
    for node in coordinators {
        let mut record = Record::default();
        let dot = record.apply_write(node, &vv, write(b"v"), ConflictMode::Siblings);
        assert!(!vv.contains(dot), "the new dot {dot:?} is already in the client's context");
        assert!(record.clock.descends(&vv) && record.clock.contains(dot));
        assert_eq!(record.siblings.len(), 1);
        check_record(&record);
    }
}

fn write(value: &'static [u8]) -> NewWrite {
    NewWrite { value: Some(Bytes::from_static(value)), timestamp_micros: 1_700_000_000_000_000, expires_at_ms: None }
}

/// The stored record codec (`version/codec.rs`), as disk and peers reach it.
pub fn record(data: &[u8]) {
    let Ok(r) = Record::decode(&Bytes::copy_from_slice(data)) else { return };
    check_record(&r);
    // Another replica's copy: a write `r` has not seen (its dot is fresh), so
    // dots stay unique across the two records, as merge requires.
    const OTHER: u64 = 0xfeed;
    let mut other = Record::default();
    let seen = VersionVector::from_entries([(OTHER, r.clock.get(OTHER))]);
    other.apply_write(OTHER, &seen, write(b"other"), ConflictMode::Siblings);
    for mode in [ConflictMode::Siblings, ConflictMode::Lww] {
        let mut twice = r.clone();
        twice.merge(&r, mode);
        if mode == ConflictMode::Siblings {
            assert_eq!(twice, r, "merge with itself changed the record");
        }
        let (mut ab, mut ba) = (r.clone(), other.clone());
        ab.merge(&other, mode);
        ba.merge(&r, mode);
        assert_eq!(ab, ba, "merge is not commutative ({mode:?})");
        check_record(&ab);
    }
    let now_ms = 1_700_000_000_000;
    let _ = (r.version(), r.is_live(now_ms), r.newest_live(now_ms), r.is_dead(now_ms));
    let node = r.siblings.first().map_or(7, |s| s.dot.node);
    let mut next = r.clone();
    let context = r.clock.clone();
    let dot = next.apply_write(node, &context, write(b"next"), ConflictMode::Siblings);
    assert_eq!(next.siblings.iter().map(|s| s.dot).collect::<Vec<_>>(), vec![dot], "the context covers every sibling");
    // Only a record already at the cap (corrupt, or a hostile peer's: writes
    // cannot get there) gives one that no longer decodes.
    if context.get(node) < crate::version::MAX_COUNTER {
        check_record(&next);
    }
}

/// Round trip and invariants of a decoded record.
fn check_record(r: &Record) {
    let encoded = Bytes::from(r.encode());
    let back = Record::decode(&encoded);
    assert_eq!(back.as_ref(), Ok(r), "decode → encode → decode");
    let dots: Vec<Dot> = r.siblings.iter().map(|s| s.dot).collect();
    assert!(dots.windows(2).all(|w| w[0] < w[1]), "siblings not sorted by distinct dots: {dots:?}");
    assert!(dots.iter().all(|d| r.clock.contains(*d)), "a sibling's dot is not in the clock");
}

/// The gossip wire decoders (`membership/wire.rs`) and the gossip core they feed.
pub fn gossip(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else { return };
    let mut core = gossip_core();
    let local_before = core.endpoint(LOCAL).cloned();
    let now = Duration::from_secs(100);
    match selector % 5 {
        0 => {
            let Ok(p) = pb::GossipPing::decode(rest) else { return };
            let ping = wire::ping_from_proto(p.clone());
            assert_eq!(wire::ping_to_proto(&ping), p);
            let pong = core.on_ping(now, &ping);
            core.on_pong(now, &pong);
        }
        1 => {
            let Ok(p) = pb::GossipSynRequest::decode(rest) else { return };
            let syn = wire::syn_from_proto(p);
            assert_eq!(wire::syn_from_proto(wire::syn_to_proto(&syn)), syn);
            let ack = core.on_syn(now, &syn);
            assert_eq!(wire::ack_from_proto(wire::ack_to_proto(&ack)).as_ref(), Ok(&ack), "our ACK");
        }
        2 => {
            let Ok(p) = pb::GossipAckResponse::decode(rest) else { return };
            let Ok(ack) = wire::ack_from_proto(p) else { return };
            assert_eq!(wire::ack_from_proto(wire::ack_to_proto(&ack)).as_ref(), Ok(&ack));
            let ack2 = core.on_ack(now, &ack);
            assert_eq!(wire::ack2_from_proto(wire::ack2_to_proto(&ack2)).as_ref(), Ok(&ack2), "our ACK2");
        }
        3 => {
            let Ok(p) = pb::GossipAck2Request::decode(rest) else { return };
            let Ok(ack2) = wire::ack2_from_proto(p) else { return };
            assert_eq!(wire::ack2_from_proto(wire::ack2_to_proto(&ack2)).as_ref(), Ok(&ack2));
            core.on_ack2(now, &ack2);
        }
        _ => {
            // The membership a node saved before a restart, read back from disk.
            let Ok(states) = wire::decode_states(rest) else { return };
            assert_eq!(wire::decode_states(&wire::encode_states(&states)).as_ref(), Ok(&states), "saved states");
            core.on_ack2(now, &GossipAck2 { from: peer_id(), states });
        }
    }
    assert_eq!(core.endpoint(LOCAL).cloned(), local_before, "a peer's message changed the local state");
    let _ = core.take_events();
    let mut rng = rand::rngs::StdRng::seed_from_u64(u64::from(selector));
    for out in core.on_tick(now + Duration::from_secs(1), &mut rng) {
        assert_eq!(wire::syn_from_proto(wire::syn_to_proto(&out.syn)), out.syn, "our SYN");
    }
    let _ = core.probes();
}

const LOCAL: &str = "00000000000000aa";

/// A gossip core that already knows one peer, so merges are exercised.
fn gossip_core() -> Gossiper {
    let addr = |port| SocketAddr::from(([127, 0, 0, 1], port));
    let member = |host_id: &str, node_id, port| Member {
        host_id: host_id.to_owned(),
        node_id,
        grpc_addr: addr(port),
        http_addr: addr(port + 1),
        zone: "z1".into(),
        rack: "r1".into(),
        tokens: vec![node_id * 1000, u64::MAX - node_id],
        generation: 5,
        status: MemberStatus::Normal,
    };
    let mut core = Gossiper::new(&member(LOCAL, 1, 7100), vec![addr(7100), addr(7200)], DetectorConfig::default());
    let peer = Gossiper::new(&member("00000000000000bb", 2, 7200), vec![], DetectorConfig::default());
    let states: BTreeMap<_, _> = peer.endpoints().clone();
    core.on_ack2(Duration::from_secs(99), &GossipAck2 { from: peer_id(), states });
    let _ = core.take_events();
    core
}

fn peer_id() -> String {
    "00000000000000bb".to_owned()
}

/// Hint decoders: the stored hint (`hints/store.rs`), and the `Hint` and
/// `ReplicaWriteRequest` messages (`transport/convert.rs`).
pub fn hint(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else { return };
    match selector % 3 {
        0 => {
            let Some(h) = crate::hints::decode_hint(&Bytes::copy_from_slice(rest)) else { return };
            check_record(&h.record);
            let again = crate::hints::decode_hint(&crate::hints::encode_hint(&h));
            assert_eq!(again.as_ref(), Some(&h), "stored hint decode → encode → decode");
        }
        1 => {
            let Ok(p) = pb::Hint::decode(rest) else { return };
            let Ok(h) = convert::hint_from_proto(p) else { return };
            check_record(&h.record);
            assert_eq!(convert::hint_from_proto(convert::hint_to_proto(&h)).as_ref(), Ok(&h));
        }
        _ => {
            let Ok(p) = pb::ReplicaWriteRequest::decode(rest) else { return };
            let Ok(w) = convert::replica_write_from_proto(p) else { return };
            check_record(&w.record);
            assert_eq!(convert::replica_write_from_proto(convert::replica_write_to_proto(&w)).as_ref(), Ok(&w));
        }
    }
}
