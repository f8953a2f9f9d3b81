//! Parsing of every command type from its frame, without a coordinator:
//! names in any case, arity, integers, options, and the error reply each
//! refusal becomes. The replies of applied commands are pinned by the
//! golden transcript in `resp/tests.rs`.

use bytes::Bytes;
use proptest::prelude::*;

use crate::error::KvError;

use super::super::codec::Reply;
use super::super::error::RespError;
use super::*;

fn frame(args: &[&[u8]]) -> Vec<Bytes> {
    args.iter().map(|a| Bytes::copy_from_slice(a)).collect()
}

fn parse(args: &[&[u8]]) -> Result<Command, RespError> {
    Request::parse(frame(args)).command
}

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

/// The error reply `args` is refused with.
fn refusal(args: &[&[u8]]) -> String {
    match parse(args) {
        Ok(command) => panic!("{args:?} parsed as {command:?}"),
        Err(e) => {
            let mut out = bytes::BytesMut::new();
            e.into_reply().encode(&mut out);
            String::from_utf8_lossy(&out).into_owned()
        }
    }
}

fn arity(name: &str) -> String {
    format!("-ERR wrong number of arguments for '{name}' command\r\n")
}

#[test]
fn names_are_matched_in_any_case_and_carry_their_metric_label() {
    for name in [&b"GET"[..], b"get", b"gEt"] {
        let request = Request::parse(frame(&[name, b"k"]));
        assert_eq!(request.op, Some("get"));
        assert_eq!(request.command.ok(), Some(Command::Get(Get { key: b("k") })));
    }
    let labels = [
        (&b"set"[..], Some("put")),
        (b"setex", Some("put")),
        (b"mset", Some("put")),
        (b"mget", Some("batch_get")),
        (b"exists", Some("batch_get")),
        (b"incr", Some("increment")),
        (b"decrby", Some("increment")),
        (b"del", Some("delete")),
        (b"unlink", Some("delete")),
        (b"expire", Some("touch")),
        (b"persist", Some("touch")),
        (b"ttl", Some("get")),
        (b"pttl", Some("get")),
        (b"ping", None),
        (b"quit", None),
        (b"nosuch", None),
    ];
    for (name, op) in labels {
        assert_eq!(Request::parse(frame(&[name])).op, op, "{}", String::from_utf8_lossy(name));
    }
}

#[test]
fn unknown_names_are_refused_with_the_supported_set() {
    let supported = "RingKV's RESP listener supports GET SET SETEX MGET MSET DEL EXISTS INCR DECR INCRBY DECRBY EXPIRE PEXPIRE PERSIST TTL PTTL PING ECHO SELECT QUIT (use gRPC or HTTP for the rest)";
    for (name, shown) in [
        (&b"HGETALL"[..], "hgetall"),
        (b"GETSETXYZ", "getsetxyz"),
        (b"SUBSCRIBE", "subscribe"),
        (b"\xffGET", "\u{fffd}get"),
        (b"", ""),
    ] {
        assert_eq!(refusal(&[name, b"x"]), format!("-ERR unknown command '{shown}'; {supported}\r\n"));
    }
    assert!(matches!(Request::parse(Vec::new()).command, Err(RespError::UnknownCommand { .. })));
}

#[test]
fn wrong_arity_is_refused_before_any_argument_is_read() {
    let cases: &[(&[&[u8]], &str)] = &[
        (&[b"GET"], "get"),
        (&[b"GET", b"k", b"x"], "get"),
        (&[b"SET", b"k"], "set"),
        (&[b"SETEX", b"k", b"notanumber"], "setex"),
        (&[b"SETEX", b"k", b"1", b"v", b"x"], "setex"),
        (&[b"MGET"], "mget"),
        (&[b"MSET"], "mset"),
        (&[b"MSET", b"k"], "mset"),
        (&[b"MSET", b"a", b"1", b"b"], "mset"),
        (&[b"INCR"], "incr"),
        (&[b"INCR", b"k", b"1"], "incr"),
        (&[b"DECR", b"k", b"x"], "decr"),
        (&[b"INCRBY", b"k"], "incrby"),
        (&[b"DECRBY", b"k", b"notanumber", b"x"], "decrby"),
        (&[b"DEL"], "del"),
        (&[b"UNLINK"], "unlink"),
        (&[b"EXISTS"], "exists"),
        (&[b"EXPIRE", b"k"], "expire"),
        (&[b"PEXPIRE", b"k", b"0", b"x"], "pexpire"),
        (&[b"PERSIST"], "persist"),
        (&[b"TTL", b"a", b"b"], "ttl"),
        (&[b"PTTL"], "pttl"),
        (&[b"PING", b"a", b"b"], "ping"),
        (&[b"ECHO"], "echo"),
        (&[b"SELECT"], "select"),
        (&[b"select", b"0", b"1"], "select"),
    ];
    for (args, name) in cases {
        assert_eq!(refusal(args), arity(name), "{args:?}");
    }
}

#[test]
fn set_options() {
    let set = |ttl_seconds, nx| Some(Command::Set(Set { key: b("k"), value: b("v"), ttl_seconds, nx }));
    assert_eq!(parse(&[b"SET", b"k", b"v"]).ok(), set(None, false));
    assert_eq!(parse(&[b"SET", b"k", b"v", b"EX", b"10"]).ok(), set(Some(10), false));
    assert_eq!(parse(&[b"SET", b"k", b"v", b"px", b"1500"]).ok(), set(Some(2), false), "PX rounds up");
    assert_eq!(parse(&[b"SET", b"k", b"v", b"PX", b"1"]).ok(), set(Some(1), false));
    assert_eq!(parse(&[b"SET", b"k", b"v", b"EX", b"10", b"PX", b"2500"]).ok(), set(Some(3), false), "the last wins");
    assert_eq!(parse(&[b"SET", b"k", b"v", b"nx", b"NX"]).ok(), set(None, true));
    assert_eq!(parse(&[b"SET", b"k", b"v", b"NX", b"EX", b"5"]).ok(), set(Some(5), true));
}

#[test]
fn set_refuses_unsupported_options_and_bad_expiry_in_order() {
    let syntax = |flag: &str| {
        format!("-ERR syntax error: SET supports EX, PX and NX (got {flag}); XX, GET and KEEPTTL are not supported\r\n")
    };
    let invalid = "-ERR invalid expire time in 'set' command\r\n";
    assert_eq!(refusal(&[b"SET", b"k", b"v", b"NX", b"XX"]), syntax("XX"), "NX and XX together");
    assert_eq!(refusal(&[b"SET", b"k", b"v", b"xx"]), syntax("XX"));
    assert_eq!(refusal(&[b"SET", b"k", b"v", b"GET"]), syntax("GET"));
    assert_eq!(refusal(&[b"SET", b"k", b"v", b"KeepTTL"]), syntax("KEEPTTL"));
    assert_eq!(refusal(&[b"SET", b"k", b"v", b"EXAT", b"1"]), syntax("EXAT"));
    assert_eq!(refusal(&[b"SET", b"k", b"v", b"EX"]), syntax("EX"), "EX without its value");
    assert_eq!(refusal(&[b"SET", b"k", b"v", b"NX", b"PX"]), syntax("PX"));
    assert_eq!(refusal(&[b"SET", b"k", b"v", b"\xfe"]), syntax("\u{fffd}"));
    for bad in [&b"0"[..], b"-1", b"abc", b"1.5", b"18446744073709551616", b""] {
        assert_eq!(refusal(&[b"SET", b"k", b"v", b"EX", bad]), invalid, "EX {bad:?}");
        assert_eq!(refusal(&[b"SET", b"k", b"v", b"PX", bad]), invalid, "PX {bad:?}");
    }
    assert_eq!(refusal(&[b"SET", b"k", b"v", b"EX", b"0", b"XX"]), invalid, "the first error is reported");
    assert_eq!(refusal(&[b"SET", b"k", b"v", b"XX", b"EX", b"0"]), syntax("XX"));
}

#[test]
fn setex_mset_and_mget() {
    let setex = Command::SetEx(SetEx { key: b("k"), ttl_seconds: 30, value: b("v") });
    assert_eq!(parse(&[b"SETEX", b"k", b"30", b"v"]).ok(), Some(setex));
    for bad in [&b"0"[..], b"x", b"-3"] {
        assert_eq!(refusal(&[b"SETEX", b"k", bad, b"v"]), "-ERR invalid expire time in 'setex' command\r\n");
    }
    let pairs = vec![(b("a"), b("1")), (b("b"), b("2"))];
    assert_eq!(parse(&[b"MSET", b"a", b"1", b"b", b"2"]).ok(), Some(Command::MSet(MSet { pairs })));
    let keys = vec![b("a"), b("b"), b("a")];
    assert_eq!(parse(&[b"mget", b"a", b"b", b"a"]).ok(), Some(Command::MGet(MGet { keys })));
}

#[test]
fn counters_parse_their_amount_and_sign() {
    let inc = |delta| Some(Command::Increment(Increment { key: b("c"), delta }));
    assert_eq!(parse(&[b"INCR", b"c"]).ok(), inc(1));
    assert_eq!(parse(&[b"DECR", b"c"]).ok(), inc(-1));
    assert_eq!(parse(&[b"INCRBY", b"c", b"-7"]).ok(), inc(-7));
    assert_eq!(parse(&[b"DECRBY", b"c", b"7"]).ok(), inc(-7));
    assert_eq!(parse(&[b"DECRBY", b"c", b"-9223372036854775807"]).ok(), inc(i64::MAX));
    assert_eq!(parse(&[b"INCRBY", b"c", b"9223372036854775807"]).ok(), inc(i64::MAX));
    let not_int = "-ERR value is not an integer or out of range\r\n";
    for bad in [&b"x"[..], b"1.0", b"9223372036854775808", b"", b" 1"] {
        assert_eq!(refusal(&[b"INCRBY", b"c", bad]), not_int, "INCRBY {bad:?}");
        assert_eq!(refusal(&[b"DECRBY", b"c", bad]), not_int, "DECRBY {bad:?}");
    }
    assert_eq!(refusal(&[b"DECRBY", b"c", b"-9223372036854775808"]), "-ERR decrement would overflow\r\n");
    assert_eq!(parse(&[b"INCRBY", b"c", b"-9223372036854775808"]).ok(), inc(i64::MIN));
}

#[test]
fn key_commands() {
    let keys = vec![b("a"), b("b")];
    assert_eq!(parse(&[b"DEL", b"a", b"b"]).ok(), Some(Command::Del(Del { keys: keys.clone() })));
    assert_eq!(parse(&[b"UNLINK", b"a", b"b"]).ok(), Some(Command::Del(Del { keys: keys.clone() })));
    assert_eq!(parse(&[b"EXISTS", b"a", b"b"]).ok(), Some(Command::Exists(Exists { keys })));
    let expire = |ttl_seconds| Some(Command::Expire(Expire { key: b("k"), ttl_seconds }));
    assert_eq!(parse(&[b"EXPIRE", b"k", b"90"]).ok(), expire(90));
    assert_eq!(parse(&[b"PEXPIRE", b"k", b"1001"]).ok(), expire(2), "milliseconds round up");
    for bad in [&b"0"[..], b"-5", b"x"] {
        assert_eq!(refusal(&[b"EXPIRE", b"k", bad]), "-ERR invalid expire time\r\n");
        assert_eq!(refusal(&[b"PEXPIRE", b"k", bad]), "-ERR invalid expire time\r\n");
    }
    assert_eq!(parse(&[b"PERSIST", b"k"]).ok(), Some(Command::Persist(Persist { key: b("k") })));
    assert_eq!(parse(&[b"TTL", b"k"]).ok(), Some(Command::Ttl(Ttl { key: b("k"), unit: Unit::Seconds })));
    assert_eq!(parse(&[b"pttl", b"k"]).ok(), Some(Command::Ttl(Ttl { key: b("k"), unit: Unit::Millis })));
}

#[test]
fn server_commands() {
    assert_eq!(parse(&[b"PING"]).ok(), Some(Command::Ping(Ping { message: None })));
    assert_eq!(parse(&[b"PING", b"hi"]).ok(), Some(Command::Ping(Ping { message: Some(b("hi")) })));
    assert_eq!(parse(&[b"ECHO", b"hi"]).ok(), Some(Command::Echo(Echo { message: b("hi") })));
    assert_eq!(parse(&[b"SELECT", b"0"]).ok(), Some(Command::Select(Select)));
    let only_zero = "-ERR RingKV's RESP listener serves one database (the `default` keyspace): SELECT 0 only\r\n";
    for bad in [&b"1"[..], b"00", b"-0", b""] {
        assert_eq!(refusal(&[b"SELECT", bad]), only_zero, "SELECT {bad:?}");
    }
    assert_eq!(parse(&[b"CLIENT", b"SETINFO", b"lib-name", b"x"]).ok(), Some(Command::Client(Client)));
    assert_eq!(parse(&[b"COMMAND"]).ok(), Some(Command::CommandInfo(CommandInfo)));
    assert_eq!(parse(&[b"INFO", b"everything"]).ok(), Some(Command::Info(Info)));
    assert_eq!(parse(&[b"QUIT", b"x"]).ok(), Some(Command::Quit(Quit)));
}

#[test]
fn only_quit_and_framing_errors_close_the_connection() {
    assert!(Request::parse(frame(&[b"quit"])).closes_connection());
    let framing = super::super::codec::ProtocolError::MissingCrlf;
    assert!(Request::refused(framing.into()).closes_connection());
    for args in [&[&b"PING"[..]][..], &[b"GET"], &[b"NOSUCH"], &[b"SET", b"k", b"v", b"XX"]] {
        assert!(!Request::parse(frame(args)).closes_connection(), "{args:?}");
    }
}

#[test]
fn coordinator_errors_carry_their_code() {
    let reply = RespError::from(KvError::EmptyKey { max: 8 }).into_reply();
    assert_eq!(reply, Reply::Error("ERR [RKV-EMPTY-KEY] key is empty; keys must be 1 to 8 bytes".into()));
    assert_eq!(RespError::from(KvError::NotAnInteger).metric_outcome(), "RKV-NOT-AN-INTEGER");
    assert_eq!(RespError::WrongArity { command: "get" }.metric_outcome(), "RKV-BAD-COMMAND");
    assert_eq!(RespError::UnknownCommand { name: "flushall".into() }.metric_outcome(), "RKV-BAD-COMMAND");
}

const NAMES: &[&str] = &[
    "GET", "SET", "SETEX", "MGET", "MSET", "INCR", "DECR", "INCRBY", "DECRBY", "DEL", "UNLINK", "EXISTS", "EXPIRE",
    "PEXPIRE", "PERSIST", "TTL", "PTTL", "PING", "ECHO", "SELECT", "CLIENT", "COMMAND", "INFO", "QUIT", "NOSUCH",
];

proptest! {
    /// Whatever the arguments, parsing a known (or unknown) command answers: it never panics.
    #[test]
    fn any_arguments_parse_or_are_refused(
        name in proptest::sample::select(NAMES),
        args in proptest::collection::vec(
            prop_oneof![
                proptest::collection::vec(any::<u8>(), 0..12),
                proptest::sample::select(vec!["EX", "PX", "NX", "XX", "0", "1", "-1", "9223372036854775808"])
                    .prop_map(|s| s.as_bytes().to_vec()),
            ],
            0..6,
        ),
    ) {
        let mut frame = vec![Bytes::copy_from_slice(name.to_ascii_lowercase().as_bytes())];
        frame.extend(args.into_iter().map(Bytes::from));
        if let Err(e) = Request::parse(frame).command {
            prop_assert!(!e.closes_connection());
            let mut out = bytes::BytesMut::new();
            e.into_reply().encode(&mut out);
            prop_assert!(out.starts_with(b"-ERR ") && out.ends_with(b"\r\n"));
        }
    }
}
