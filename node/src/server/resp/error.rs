//! What can go wrong with one RESP command, and the one place where it
//! becomes an error reply.
//!
//! Every variant's text is the reply a client sees after `-ERR `; they are
//! kept byte for byte as clients have always received them (the golden
//! transcript in `tests.rs` pins them). Only [`RespError::Protocol`] closes
//! the connection: after a framing error the stream cannot be resynchronised.

use crate::error::KvError;
use crate::server::status::classify;

use super::codec::{ProtocolError, Reply};

/// A RESP command that cannot be answered with data.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RespError {
    /// The bytes are not RESP; the connection closes after the reply.
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    /// A command name RingKV does not serve.
    #[error(
        "unknown command '{name}'; RingKV's RESP listener supports GET SET SETEX MGET MSET DEL EXISTS INCR DECR INCRBY DECRBY EXPIRE PEXPIRE PERSIST TTL PTTL PING ECHO SELECT QUIT (use gRPC or HTTP for the rest)"
    )]
    UnknownCommand {
        /// The name as sent, lowercased (invalid UTF-8 replaced).
        name: String,
    },
    /// Too few or too many arguments.
    #[error("wrong number of arguments for '{command}' command")]
    WrongArity {
        /// The command, lowercased.
        command: &'static str,
    },
    /// A `SET` option RingKV does not implement, or one without its value.
    #[error("syntax error: SET supports EX, PX and NX (got {option}); XX, GET and KEEPTTL are not supported")]
    UnsupportedSetOption {
        /// The option as sent, uppercased.
        option: String,
    },
    /// A `SET`/`SETEX` expiry that is not a positive integer.
    #[error("invalid expire time in '{command}' command")]
    InvalidExpireIn {
        /// The command, lowercased.
        command: &'static str,
    },
    /// An `EXPIRE`/`PEXPIRE` expiry that is not a positive integer.
    #[error("invalid expire time")]
    InvalidExpire,
    /// An `INCRBY`/`DECRBY` amount that is not a signed 64-bit integer.
    #[error("value is not an integer or out of range")]
    NotAnInteger,
    /// `DECRBY` of the one amount whose negation does not fit in 64 bits.
    #[error("decrement would overflow")]
    DecrementOverflow,
    /// `SELECT` of a database other than 0.
    #[error("RingKV's RESP listener serves one database (the `default` keyspace): SELECT 0 only")]
    OnlyDatabaseZero,
    /// The coordinator refused or failed the command; the reply carries its `RKV-*` code.
    #[error("[{code}] {source}", code = classify(.source).code)]
    Kv {
        /// What the coordinator said.
        #[from]
        source: KvError,
    },
}

impl RespError {
    /// True when the connection must close after this error's reply.
    pub fn closes_connection(&self) -> bool {
        matches!(self, Self::Protocol(_))
    }

    /// The error reply (`-ERR ...`).
    pub fn into_reply(self) -> Reply {
        Reply::err(self)
    }

    /// The outcome label of the request metric: a coordinator error's code;
    /// `RKV-BAD-COMMAND` for a command refused before it reached the
    /// coordinator (unknown command, wrong arguments), so an error rate never
    /// hides in the `ok` series; `RKV-PROTOCOL` for bytes that are not RESP.
    pub fn metric_outcome(&self) -> &'static str {
        match self {
            Self::Kv { source } => classify(source).code,
            Self::Protocol(_) => "RKV-PROTOCOL",
            _ => "RKV-BAD-COMMAND",
        }
    }
}
