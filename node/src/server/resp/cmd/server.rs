//! Connection and server commands: `PING`, `ECHO`, `SELECT`, `QUIT`, and
//! the handshake commands clients send on connecting (`CLIENT ...`,
//! `COMMAND ...`, `INFO ...`), answered so that clients proceed.
//!
//! None of them reaches the coordinator: `apply` is synchronous.

use bytes::Bytes;

use super::super::codec::Reply;
use super::super::error::RespError;
use super::args::Args;

/// `PING [message]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ping {
    pub(super) message: Option<Bytes>,
}

impl Ping {
    /// Parses the arguments after the name.
    pub fn parse(args: &mut Args) -> Result<Self, RespError> {
        args.arity(|n| n <= 1)?;
        Ok(Self { message: args.next_if_any() })
    }

    /// `PONG`, or the message.
    pub fn apply(self) -> Reply {
        self.message.map_or(Reply::Simple("PONG"), Reply::Bulk)
    }
}

/// `ECHO message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Echo {
    pub(super) message: Bytes,
}

impl Echo {
    /// Parses the arguments after the name.
    pub fn parse(args: &mut Args) -> Result<Self, RespError> {
        args.exactly(1)?;
        Ok(Self { message: args.next()? })
    }

    /// The message.
    pub fn apply(self) -> Reply {
        Reply::Bulk(self.message)
    }
}

/// `SELECT 0`: the one database is the `default` keyspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Select;

impl Select {
    /// Parses the arguments after the name; any database but `0` is refused.
    pub fn parse(args: &mut Args) -> Result<Self, RespError> {
        args.exactly(1)?;
        if &args.next()?[..] == b"0" { Ok(Self) } else { Err(RespError::OnlyDatabaseZero) }
    }

    /// `OK`.
    pub fn apply(self) -> Reply {
        Reply::Simple("OK")
    }
}

/// `CLIENT ...` (`SETNAME`, `SETINFO`, ...): accepted, ignored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client;

impl Client {
    /// Takes (and ignores) the arguments after the name.
    pub fn parse(args: &mut Args) -> Result<Self, RespError> {
        args.ignore_rest();
        Ok(Self)
    }

    /// `OK`.
    pub fn apply(self) -> Reply {
        Reply::Simple("OK")
    }
}

/// `COMMAND ...` (`DOCS`, `COUNT`, ...): an empty command table, which
/// clients take as "no details known".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandInfo;

impl CommandInfo {
    /// Takes (and ignores) the arguments after the name.
    pub fn parse(args: &mut Args) -> Result<Self, RespError> {
        args.ignore_rest();
        Ok(Self)
    }

    /// An empty array.
    pub fn apply(self) -> Reply {
        Reply::Array(Vec::new())
    }
}

/// `INFO [section ...]`: the server section, whatever is asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Info;

impl Info {
    /// Takes (and ignores) the arguments after the name.
    pub fn parse(args: &mut Args) -> Result<Self, RespError> {
        args.ignore_rest();
        Ok(Self)
    }

    /// The version and mode.
    pub fn apply(self) -> Reply {
        Reply::Bulk(Bytes::from(format!(
            "# Server\r\nringkv_version:{}\r\nredis_mode:standalone\r\n",
            env!("CARGO_PKG_VERSION")
        )))
    }
}

/// `QUIT`: `OK`, then the connection closes (arguments are ignored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quit;

impl Quit {
    /// Takes (and ignores) the arguments after the name.
    pub fn parse(args: &mut Args) -> Result<Self, RespError> {
        args.ignore_rest();
        Ok(Self)
    }

    /// `OK`.
    pub fn apply(self) -> Reply {
        Reply::Simple("OK")
    }
}
