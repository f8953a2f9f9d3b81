//! The RESP listener on a real socket over an in-memory coordinator: every
//! supported command, its argument errors and its storage errors, compared
//! byte for byte with the replies the listener has always given, one command
//! at a time (so that the transcript does not depend on pipelined commands
//! racing each other). Errors from the coordinator are compared whole:
//! their `RKV-*` code is what clients match on.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use crate::clock::SystemClock;
use crate::config::{Config, ServerConfig};
use crate::replication::{Coordinator, Keyspaces, Limits};
use crate::server::metrics::NodeMetrics;
use crate::storage::MemoryStorage;

use super::RespService;
use super::codec::tests::encode_command;

const MAX_VALUE: usize = 1024;

/// A listener on 127.0.0.1:0 over a fresh in-memory store, and a client connection to it.
async fn connect() -> (TcpStream, CancellationToken) {
    let (stream, shutdown, _) = connect_with_metrics().await;
    (stream, shutdown)
}

/// [`connect`], and the listener's metrics with the store they render.
async fn connect_with_metrics() -> (TcpStream, CancellationToken, (NodeMetrics, Arc<MemoryStorage>)) {
    let server = ServerConfig { max_value_bytes: MAX_VALUE, ..ServerConfig::default() };
    let storage = Arc::new(MemoryStorage::new());
    let coordinator = Coordinator::new(
        1,
        Arc::clone(&storage) as _,
        Keyspaces::from_config(&Config::default()),
        Arc::new(SystemClock),
        Limits::from(&server),
    );
    let metrics = NodeMetrics::new();
    let service = RespService::new(coordinator, metrics.clone(), server.max_key_bytes, MAX_VALUE);
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local addr");
    let shutdown = CancellationToken::new();
    tokio::spawn(service.serve(listener, shutdown.clone()));
    (TcpStream::connect(addr).await.expect("connect to the RESP listener"), shutdown, (metrics, storage))
}

/// Sends `wire` and reads exactly as many bytes as `expected` (within a
/// deadline), then checks that they are `expected`.
async fn exchange(stream: &mut TcpStream, wire: &[u8], expected: &[u8]) {
    stream.write_all(wire).await.expect("write a command");
    let mut got = vec![0; expected.len()];
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read_exact(&mut got)).await;
    let shown = String::from_utf8_lossy(wire);
    assert!(
        read.is_ok(),
        "no complete reply to {shown:?} within 10 s (expected {:?})",
        String::from_utf8_lossy(expected)
    );
    read.unwrap_or_else(|_| unreachable!()).expect("read a reply");
    assert_eq!(String::from_utf8_lossy(&got), String::from_utf8_lossy(expected), "reply to {shown:?}");
}

fn arity(name: &str) -> String {
    format!("-ERR wrong number of arguments for '{name}' command\r\n")
}

fn syntax(flag: &str) -> String {
    format!("-ERR syntax error: SET supports EX, PX and NX (got {flag}); XX, GET and KEEPTTL are not supported\r\n")
}

/// (command, reply) in the order they are sent.
fn transcript() -> Vec<(Vec<&'static [u8]>, String)> {
    let ok = "+OK\r\n".to_owned();
    let nil = "$-1\r\n".to_owned();
    let int = |n: i64| format!(":{n}\r\n");
    let info = format!("# Server\r\nringkv_version:{}\r\nredis_mode:standalone\r\n", env!("CARGO_PKG_VERSION"));
    let unknown = |name: &str| {
        format!(
            "-ERR unknown command '{name}'; RingKV's RESP listener supports GET SET SETEX MGET MSET DEL EXISTS INCR DECR INCRBY DECRBY EXPIRE PEXPIRE PERSIST TTL PTTL PING ECHO SELECT QUIT (use gRPC or HTTP for the rest)\r\n"
        )
    };
    vec![
        // Connection and server commands.
        (vec![b"PING"], "+PONG\r\n".into()),
        (vec![b"ping", b"hello"], "$5\r\nhello\r\n".into()),
        (vec![b"PING", b"a", b"b"], arity("ping")),
        (vec![b"ECHO", b"hi"], "$2\r\nhi\r\n".into()),
        (vec![b"echo"], arity("echo")),
        (vec![b"SELECT", b"0"], ok.clone()),
        (
            vec![b"select", b"1"],
            "-ERR RingKV's RESP listener serves one database (the `default` keyspace): SELECT 0 only\r\n".into(),
        ),
        (vec![b"SELECT", b"00"], "-ERR RingKV's RESP listener serves one database (the `default` keyspace): SELECT 0 only\r\n".into()),
        (vec![b"SELECT"], arity("select")),
        (vec![b"CLIENT", b"SETNAME", b"x"], ok.clone()),
        (vec![b"client"], ok.clone()),
        (vec![b"COMMAND", b"DOCS"], "*0\r\n".into()),
        (vec![b"INFO"], format!("${}\r\n{info}\r\n", info.len())),
        (vec![b"info", b"server", b"x"], format!("${}\r\n{info}\r\n", info.len())),
        (vec![b"HGETALL", b"x"], unknown("hgetall")),
        (vec![b"\xffoo"], unknown("\u{fffd}oo")),
        (vec![b"GETX", b"k"], unknown("getx")),
        // Strings.
        (vec![b"GET", b"k"], nil.clone()),
        (vec![b"SET", b"k", b"v"], ok.clone()),
        (vec![b"gEt", b"k"], "$1\r\nv\r\n".into()),
        (vec![b"GET"], arity("get")),
        (vec![b"GET", b"k", b"x"], arity("get")),
        (vec![b"SET", b"k"], arity("set")),
        (vec![b"SET", b"k", b"w", b"NX"], nil.clone()),
        (vec![b"SET", b"n", b"w", b"nx", b"NX"], ok.clone()),
        (vec![b"SET", b"k", b"v", b"XX"], syntax("XX")),
        (vec![b"SET", b"k", b"v", b"keepttl"], syntax("KEEPTTL")),
        (vec![b"SET", b"k", b"v", b"get"], syntax("GET")),
        (vec![b"SET", b"k", b"v", b"NX", b"XX"], syntax("XX")),
        (vec![b"SET", b"k", b"v", b"EX"], syntax("EX")),
        (vec![b"SET", b"k", b"v", b"EX", b"0"], "-ERR invalid expire time in 'set' command\r\n".into()),
        (vec![b"SET", b"k", b"v", b"px", b"-1"], "-ERR invalid expire time in 'set' command\r\n".into()),
        (vec![b"SET", b"k", b"v", b"EX", b"abc", b"XX"], "-ERR invalid expire time in 'set' command\r\n".into()),
        (vec![b"SET", b"k", b"v", b"\xff"], syntax("\u{fffd}")),
        (vec![b"SET", b"t", b"v", b"EX", b"10", b"px", b"2500"], ok.clone()),
        (vec![b"TTL", b"t"], int(3)),
        (vec![b"SET", b"", b"v"], "-ERR [RKV-EMPTY-KEY] key is empty; keys must be 1 to 1024 bytes\r\n".into()),
        (vec![b"GET", b""], "-ERR [RKV-EMPTY-KEY] key is empty; keys must be 1 to 1024 bytes\r\n".into()),
        (
            vec![b"SET", b"t", b"v", b"EX", b"99999999999"],
            format!("-ERR [RKV-TTL-RANGE] ttl of 99999999999 s is out of range; use 1 to {} seconds, or leave it out for the keyspace default\r\n", 20 * 365 * 24 * 3600),
        ),
        (vec![b"SETEX", b"s", b"0", b"v"], "-ERR invalid expire time in 'setex' command\r\n".into()),
        (vec![b"SETEX", b"s", b"x", b"v"], "-ERR invalid expire time in 'setex' command\r\n".into()),
        (vec![b"SETEX", b"s", b"10"], arity("setex")),
        (vec![b"setex", b"s", b"100", b"v"], ok.clone()),
        (vec![b"TTL", b"s"], int(100)),
        (vec![b"TTL", b"k"], int(-1)),
        (vec![b"PTTL", b"nope"], int(-2)),
        (vec![b"TTL"], arity("ttl")),
        (vec![b"PTTL", b"a", b"b"], arity("pttl")),
        (vec![b"MSET", b"a", b"1", b"b", b"2"], ok.clone()),
        (vec![b"MSET", b"a", b"1", b"b"], arity("mset")),
        (vec![b"MSET", b"a"], arity("mset")),
        (vec![b"MGET", b"a", b"x", b"b"], "*3\r\n$1\r\n1\r\n$-1\r\n$1\r\n2\r\n".into()),
        (vec![b"MGET"], arity("mget")),
        (vec![b"INCR", b"c"], int(1)),
        (vec![b"incrby", b"c", b"5"], int(6)),
        (vec![b"DECR", b"c"], int(5)),
        (vec![b"DECRBY", b"c", b"2"], int(3)),
        (vec![b"DECRBY", b"c", b"-3"], int(6)),
        (vec![b"INCRBY", b"c", b"x"], "-ERR value is not an integer or out of range\r\n".into()),
        (vec![b"INCRBY", b"c", b"99999999999999999999"], "-ERR value is not an integer or out of range\r\n".into()),
        (vec![b"DECRBY", b"c", b"-9223372036854775808"], "-ERR decrement would overflow\r\n".into()),
        (vec![b"INCR", b"c", b"1"], arity("incr")),
        (vec![b"INCRBY", b"c"], arity("incrby")),
        (vec![b"DECR"], arity("decr")),
        (vec![b"DECRBY", b"c", b"1", b"2"], arity("decrby")),
        (
            vec![b"INCR", b"k"],
            "-ERR [RKV-NOT-AN-INTEGER] value of key is not a decimal integer, cannot increment it; overwrite it or use another key\r\n".into(),
        ),
        (
            vec![b"INCRBY", b"c", b"9223372036854775807"],
            "-ERR [RKV-OVERFLOW] increment overflows a signed 64-bit counter (current 6, delta 9223372036854775807)\r\n".into(),
        ),
        // Keys.
        (vec![b"EXISTS", b"a", b"b", b"x", b"a"], int(3)),
        (vec![b"EXISTS"], arity("exists")),
        (vec![b"DEL", b"a", b"x"], int(1)),
        (vec![b"unlink", b"b", b"b"], int(1)),
        (vec![b"DEL"], arity("del")),
        (vec![b"UNLINK"], arity("unlink")),
        (vec![b"EXISTS", b"a", b"b"], int(0)),
        (vec![b"EXPIRE", b"a", b"100"], int(0)),
        (vec![b"EXPIRE", b"n", b"100"], int(1)),
        (vec![b"TTL", b"n"], int(100)),
        (vec![b"PEXPIRE", b"n", b"1500"], int(1)),
        (vec![b"TTL", b"n"], int(2)),
        (vec![b"EXPIRE", b"n", b"0"], "-ERR invalid expire time\r\n".into()),
        (vec![b"PEXPIRE", b"n", b"x"], "-ERR invalid expire time\r\n".into()),
        (vec![b"EXPIRE", b"n"], arity("expire")),
        (vec![b"PEXPIRE"], arity("pexpire")),
        (vec![b"PERSIST", b"n"], int(1)),
        (vec![b"TTL", b"n"], int(-1)),
        (vec![b"PERSIST", b"nope"], int(0)),
        (vec![b"PERSIST"], arity("persist")),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_command_answers_as_it_always_has() {
    let (mut stream, shutdown) = connect().await;
    for (args, expected) in transcript() {
        exchange(&mut stream, &encode_command(&args), expected.as_bytes()).await;
    }
    shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inline_commands_quit_and_oversized_values() {
    let (mut stream, shutdown) = connect().await;
    exchange(&mut stream, b"ping\r\n", b"+PONG\r\n").await;
    exchange(&mut stream, b"  set  k  v \n", b"+OK\r\n").await;
    let big = vec![b'x'; MAX_VALUE + 1];
    let too_large =
        "-ERR [RKV-VALUE-TOO-LARGE] value is 1025 bytes, over the limit of 1024 bytes (server.max_value_bytes)\r\n";
    exchange(&mut stream, &encode_command(&[b"SET", b"big", &big]), too_large.as_bytes()).await;
    exchange(&mut stream, &encode_command(&[b"GET", b"big"]), b"$-1\r\n").await;
    let mut rest = Vec::new();
    // QUIT answers OK whatever follows it, then the node closes the connection.
    stream.write_all(&encode_command(&[b"QUIT", b"now"])).await.expect("write QUIT");
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut rest)).await;
    assert!(matches!(read, Ok(Ok(_))), "the connection did not close after QUIT: {read:?}");
    let rest = String::from_utf8_lossy(&rest);
    assert_eq!(rest, "+OK\r\n", "after QUIT");
    shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_framing_error_is_answered_and_closes_the_connection() {
    let (mut stream, shutdown) = connect().await;
    stream.write_all(b"*1\r\n$4\r\nPING\r\n*1\r\n+oops\r\nPING\r\n").await.expect("write");
    let mut all = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut all)).await;
    assert!(matches!(read, Ok(Ok(_))), "the connection did not close after a framing error: {read:?}");
    assert_eq!(String::from_utf8_lossy(&all), "+PONG\r\n-ERR Protocol error: expected '$', got '+'\r\n");
    shutdown.cancel();
}

/// Data commands are counted under their operation: answered ones as `ok`,
/// argument errors as `RKV-BAD-COMMAND`, coordinator errors under their
/// code; handshake commands are not counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_commands_are_counted_by_outcome() {
    let (mut stream, shutdown, (metrics, storage)) = connect_with_metrics().await;
    exchange(&mut stream, &encode_command(&[b"GET", b"k"]), b"$-1\r\n").await;
    exchange(&mut stream, &encode_command(&[b"SET", b"k", b"v"]), b"+OK\r\n").await;
    exchange(&mut stream, &encode_command(&[b"SET", b"k"]), arity("set").as_bytes()).await;
    exchange(&mut stream, &encode_command(&[b"TTL", b"k"]), b":-1\r\n").await;
    exchange(&mut stream, &encode_command(&[b"PING"]), b"+PONG\r\n").await;
    let not_int = b"-ERR [RKV-NOT-AN-INTEGER] value of key is not a decimal integer, cannot increment it; overwrite it or use another key\r\n";
    exchange(&mut stream, &encode_command(&[b"INCR", b"k"]), not_int).await;
    let text = metrics.render(storage.as_ref());
    let count = |labels: &str| {
        text.lines()
            .find(|l| l.contains("requests_total{") && l.contains(labels))
            .and_then(|l| l.rsplit(' ').next())
            .map(str::to_owned)
    };
    assert_eq!(count(r#"api="resp",op="get",outcome="ok""#).as_deref(), Some("2"), "{text}");
    assert_eq!(count(r#"api="resp",op="put",outcome="ok""#).as_deref(), Some("1"), "{text}");
    assert_eq!(count(r#"api="resp",op="put",outcome="RKV-BAD-COMMAND""#).as_deref(), Some("1"), "{text}");
    assert_eq!(count(r#"api="resp",op="increment",outcome="RKV-NOT-AN-INTEGER""#).as_deref(), Some("1"), "{text}");
    assert!(!text.contains(r#"op="ping""#) && !text.contains(r#"op="PING""#), "{text}");
    shutdown.cancel();
}
