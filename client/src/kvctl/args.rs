//! Command-line arguments of `kvctl` (clap derive). This is a contract that
//! scripts rely on: flags, names and defaults change only deliberately.

use std::time::Duration;

use bytes::Bytes;
use clap::{ArgGroup, Args, Parser, Subcommand};
use ringkv_client::proto::Consistency;
use ringkv_client::{CasExpectation, parse_consistency};

use super::encoding::parse_base64;

const AFTER_HELP: &str = "\
Keys and values are bytes; on the command line they are UTF-8 strings.
Causal contexts and cursors are opaque bytes written as standard base64
(alphabet A-Z a-z 0-9 + /, padded with =; padding is optional on input).
With --json, each output is one JSON object per line; a key or value that
is not valid UTF-8 appears as `<field>_base64` instead of `<field>`.

TLS and tokens: https://HOST:PORT endpoints need --tls-ca (RINGKV_TLS_CA);
--tls-cert/--tls-key (RINGKV_TLS_CERT/RINGKV_TLS_KEY) add a client
certificate. --token (RINGKV_TOKEN) or --token-file sends a bearer token.

Exit codes: 0 success; 1 key not found or write not applied; 2 invalid
usage or argument; 3 cluster unavailable, connection failed or timed out,
or repair incomplete (retrying may help); 4 any other error; 5 access
denied (no or bad token, missing role) or TLS handshake refused.";

/// Command-line client of RingKV.
#[derive(Debug, Parser)]
#[command(name = "kvctl", version, after_help = AFTER_HELP)]
pub struct Cli {
    /// Node to talk to: HOST:PORT or http://HOST:PORT (plaintext), or
    /// https://HOST:PORT (TLS: give --tls-ca).
    #[arg(long, global = true, env = "RINGKV_ENDPOINT", default_value = "127.0.0.1:7100", value_name = "HOST:PORT")]
    pub endpoint: String,
    /// Print one JSON object per line instead of human-readable text.
    #[arg(long, global = true)]
    pub json: bool,
    /// Keyspace of the keys.
    #[arg(long, global = true, default_value = "default", value_name = "NAME")]
    pub keyspace: String,
    /// ONE, TWO, THREE, QUORUM, ALL, LOCAL_QUORUM, EACH_QUORUM, ANY
    /// (case-insensitive), or explicit replica counts r=N / w=N, e.g.
    /// `r=2,w=2`. Default: the keyspace's.
    #[arg(long, global = true, value_name = "LEVEL", value_parser = parse_consistency)]
    pub consistency: Option<Consistency>,
    /// Timeout of each request in seconds (decimals allowed).
    #[arg(long, global = true, value_name = "SECS", default_value = "5", value_parser = parse_timeout)]
    pub timeout: Duration,
    /// TLS files and bearer token.
    #[command(flatten)]
    pub connection: super::connection::ConnectionArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write a value; prints OK.
    Put(PutArgs),
    /// Read a key; prints its value, or every sibling and the context.
    Get {
        /// The key.
        key: String,
    },
    /// Read many keys at once.
    BatchGet {
        /// The keys.
        #[arg(required = true)]
        keys: Vec<String>,
    },
    /// Delete a key.
    #[command(alias = "delete")]
    Del {
        /// The key.
        key: String,
        /// Causal context (base64) from a previous `get`, so that the delete
        /// supersedes exactly what was read.
        #[arg(long, value_name = "B64", value_parser = parse_base64)]
        context: Option<Bytes>,
    },
    /// List keys by prefix, in key order.
    List(ListArgs),
    /// Iterate over all keys of the keyspace, in token order.
    Scan(ScanArgs),
    /// Compare-and-set: write only if the key is as expected.
    Cas(CasArgs),
    /// Add to a counter (default 1; may be negative: `incr k -5`); prints the new value.
    Incr(IncrArgs),
    /// Set the TTL of an existing key in seconds; 0 removes the TTL.
    Ttl {
        /// The key.
        key: String,
        /// New TTL in seconds; 0 clears it.
        secs: u64,
    },
    /// Show the cluster's nodes: state, liveness, ownership, load.
    Status,
    /// Repair the ranges this node replicates with their other replicas
    /// (Merkle-tree anti-entropy), showing progress. Exits 3 when some range
    /// could not reach every replica.
    Repair(super::repair::RepairArgs),
    /// Show the token ring: every token with its owner.
    Ring,
    /// Decommission the node at --endpoint: its ranges stream to their new
    /// owners, then it leaves the ring and stops. Shows progress until it is LEFT.
    Decommission {
        /// Do not wait: return once the decommission has started.
        #[arg(long)]
        no_wait: bool,
    },
    /// Remove a dead node from the ring: its new owners stream its ranges
    /// from the surviving replicas. Shows progress until it is LEFT.
    Removenode {
        /// Host id of the dead node (see `kvctl status`).
        host_id: String,
        /// Do not wait: return once the removal has started.
        #[arg(long)]
        no_wait: bool,
    },
}

/// Arguments of `put`.
#[derive(Debug, Args)]
pub struct PutArgs {
    /// The key.
    pub key: String,
    /// The value; `-` reads it from stdin, byte for byte.
    #[arg(allow_hyphen_values = true)]
    pub value: String,
    /// Time to live in seconds (default: the keyspace's).
    #[arg(long, value_name = "SECS")]
    pub ttl: Option<u64>,
    /// Write only if the key has no live value (else exit 1: not applied).
    #[arg(long)]
    pub if_absent: bool,
    /// Causal context (base64) from a previous `get`, so that the write
    /// supersedes exactly the siblings that were read.
    #[arg(long, value_name = "B64", value_parser = parse_base64)]
    pub context: Option<Bytes>,
}

/// Arguments of `list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Key prefix; `""` lists every key.
    pub prefix: String,
    /// Maximum number of keys (server default 100, at most 10000).
    #[arg(long, value_name = "N")]
    pub limit: Option<u32>,
    /// Cursor (base64) printed by a previous call.
    #[arg(long, value_name = "C", value_parser = parse_base64)]
    pub cursor: Option<Bytes>,
    /// Also print the values (`KEY<TAB>VALUE`).
    #[arg(long)]
    pub values: bool,
}

/// Arguments of `scan`.
#[derive(Debug, Args)]
pub struct ScanArgs {
    /// Cursor (base64) printed by a previous call.
    #[arg(long, value_name = "C", value_parser = parse_base64)]
    pub cursor: Option<Bytes>,
    /// Keys per page (server default 1000, at most 10000).
    #[arg(long, value_name = "N")]
    pub count: Option<u32>,
    /// Also print the values (`KEY<TAB>VALUE`).
    #[arg(long)]
    pub values: bool,
    /// Follow the cursors to the end of the keyspace.
    #[arg(long)]
    pub all: bool,
}

/// Arguments of `cas`.
#[derive(Debug, Args)]
#[command(group(
    ArgGroup::new("expectation")
        .required(true)
        .args(["expect_version", "expect_value", "expect_absent", "expect_context"])
))]
pub struct CasArgs {
    /// The key.
    pub key: String,
    /// The value to write; `-` reads it from stdin.
    #[arg(allow_hyphen_values = true)]
    pub new_value: String,
    /// Apply only if the key's version is N.
    #[arg(long, value_name = "N")]
    pub expect_version: Option<u64>,
    /// Apply only if the key's value is V.
    #[arg(long, value_name = "V")]
    pub expect_value: Option<String>,
    /// Apply only if the key has no live value.
    #[arg(long)]
    pub expect_absent: bool,
    /// Apply only if the key's causal context is B64 (from `get`).
    #[arg(long, value_name = "B64", value_parser = parse_base64)]
    pub expect_context: Option<Bytes>,
    /// Time to live of the new value in seconds.
    #[arg(long, value_name = "SECS")]
    pub ttl: Option<u64>,
}

impl CasArgs {
    /// The expectation chosen; clap guarantees exactly one was given.
    pub fn expectation(&self) -> CasExpectation {
        if let Some(version) = self.expect_version {
            CasExpectation::Version(version)
        } else if let Some(value) = &self.expect_value {
            CasExpectation::Value(Bytes::copy_from_slice(value.as_bytes()))
        } else if let Some(context) = &self.expect_context {
            CasExpectation::Context(context.clone())
        } else {
            CasExpectation::Absent
        }
    }
}

/// Arguments of `incr`.
#[derive(Debug, Args)]
pub struct IncrArgs {
    /// The counter's key.
    pub key: String,
    /// Amount to add; negative subtracts (default 1).
    #[arg(allow_negative_numbers = true, conflicts_with = "by")]
    pub delta: Option<i64>,
    /// Amount to add, as a flag (`--by -5`).
    #[arg(long, value_name = "DELTA", allow_negative_numbers = true)]
    pub by: Option<i64>,
    /// Time to live of the counter in seconds.
    #[arg(long, value_name = "SECS")]
    pub ttl: Option<u64>,
}

impl IncrArgs {
    /// The delta to apply.
    pub fn delta(&self) -> i64 {
        self.delta.or(self.by).unwrap_or(1)
    }
}

fn parse_timeout(input: &str) -> Result<Duration, String> {
    match input.trim().parse::<f64>() {
        Ok(secs) if secs > 0.0 => Duration::try_from_secs_f64(secs).map_err(|err| err.to_string()),
        _ => Err(format!("{input:?} is not a positive number of seconds, e.g. 5 or 0.5")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory as _;
    use ringkv_client::proto::ConsistencyLevel;

    fn parse(args: &[&str]) -> Cli {
        let argv = std::iter::once("kvctl").chain(args.iter().copied());
        match Cli::try_parse_from(argv) {
            Ok(cli) => cli,
            Err(err) => panic!("{args:?}: {err}"),
        }
    }

    fn fails(args: &[&str]) -> clap::error::ErrorKind {
        let argv = std::iter::once("kvctl").chain(args.iter().copied());
        Cli::try_parse_from(argv).expect_err("should be rejected").kind()
    }

    #[test]
    fn the_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn global_flags_have_defaults_and_go_anywhere() {
        let cli = parse(&["get", "k"]);
        assert_eq!(cli.keyspace, "default");
        assert_eq!(cli.timeout, Duration::from_secs(5));
        assert!(!cli.json && cli.consistency.is_none());
        let cli = parse(&["get", "k", "--json", "--keyspace", "users", "--consistency", "quorum"]);
        assert!(cli.json);
        assert_eq!(cli.keyspace, "users");
        assert_eq!(cli.consistency.map(|c| c.level()), Some(ConsistencyLevel::Quorum));
        let cli = parse(&["--endpoint", "http://n1:7100", "--timeout", "0.5", "status"]);
        assert_eq!(cli.endpoint, "http://n1:7100");
        assert_eq!(cli.timeout, Duration::from_millis(500));
        assert!(matches!(cli.command, Command::Status));
    }

    #[test]
    fn rejects_bad_global_values() {
        assert_eq!(fails(&["--consistency", "most", "get", "k"]), clap::error::ErrorKind::ValueValidation);
        assert_eq!(fails(&["--timeout", "0", "get", "k"]), clap::error::ErrorKind::ValueValidation);
        assert_eq!(fails(&["del", "k", "--context", "!!"]), clap::error::ErrorKind::ValueValidation);
    }

    #[test]
    fn put_takes_options_and_stdin_marker() {
        let cli = parse(&["put", "k", "-", "--ttl", "60", "--if-absent", "--context", "AQI="]);
        let Command::Put(put) = cli.command else { panic!("not put") };
        assert_eq!((put.key.as_str(), put.value.as_str()), ("k", "-"));
        assert_eq!(put.ttl, Some(60));
        assert!(put.if_absent);
        assert_eq!(put.context.as_deref(), Some(&[1u8, 2][..]));
        let Command::Put(put) = parse(&["put", "k", "-5"]).command else { panic!("not put") };
        assert_eq!(put.value, "-5");
    }

    #[test]
    fn cas_needs_exactly_one_expectation() {
        let Command::Cas(cas) = parse(&["cas", "k", "v2", "--expect-version", "3"]).command else { panic!("not cas") };
        assert_eq!(cas.expectation(), CasExpectation::Version(3));
        let Command::Cas(cas) = parse(&["cas", "k", "v", "--expect-absent"]).command else { panic!("not cas") };
        assert_eq!(cas.expectation(), CasExpectation::Absent);
        let Command::Cas(cas) = parse(&["cas", "k", "v", "--expect-value", "old"]).command else { panic!("not cas") };
        assert_eq!(cas.expectation(), CasExpectation::Value(Bytes::from_static(b"old")));
        assert_eq!(fails(&["cas", "k", "v"]), clap::error::ErrorKind::MissingRequiredArgument);
        assert_eq!(
            fails(&["cas", "k", "v", "--expect-absent", "--expect-version", "1"]),
            clap::error::ErrorKind::ArgumentConflict
        );
    }

    #[test]
    fn incr_accepts_negative_deltas_three_ways() {
        let delta = |args: &[&str]| match parse(args).command {
            Command::Incr(incr) => incr.delta(),
            other => panic!("not incr: {other:?}"),
        };
        assert_eq!(delta(&["incr", "k"]), 1);
        assert_eq!(delta(&["incr", "k", "7"]), 7);
        assert_eq!(delta(&["incr", "k", "-5"]), -5);
        assert_eq!(delta(&["incr", "k", "--", "-5"]), -5);
        assert_eq!(delta(&["incr", "k", "--by", "-5"]), -5);
        assert_eq!(fails(&["incr", "k", "1", "--by", "2"]), clap::error::ErrorKind::ArgumentConflict);
    }

    #[test]
    fn list_scan_ttl_and_batch_get() {
        let Command::List(list) = parse(&["list", "user:", "--limit", "10", "--values"]).command else {
            panic!("not list")
        };
        assert_eq!((list.prefix.as_str(), list.limit, list.values), ("user:", Some(10), true));
        let Command::Scan(scan) = parse(&["scan", "--all", "--count", "50"]).command else { panic!("not scan") };
        assert!(scan.all && scan.count == Some(50) && scan.cursor.is_none());
        assert!(matches!(parse(&["ttl", "k", "0"]).command, Command::Ttl { secs: 0, .. }));
        let Command::BatchGet { keys } = parse(&["batch-get", "a", "b"]).command else { panic!("not batch-get") };
        assert_eq!(keys, ["a", "b"]);
        assert_eq!(fails(&["batch-get"]), clap::error::ErrorKind::MissingRequiredArgument);
    }
}
