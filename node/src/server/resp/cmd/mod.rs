//! One type per RESP command: parsed from the frame's arguments, then
//! applied (mini-redis's shape).
//!
//! [`Request::parse`] picks the type by the command's name
//! (case-insensitively, without allocating) and parses its arguments; every
//! argument error is found there, before anything reaches the coordinator.
//! [`Command::apply`] runs a parsed command against the [`Coordinator`].
//! Parsing is separate from applying so that a connection can parse every
//! complete command in its buffer and then execute them as one batch; the
//! listener (`super`) does that today by starting them all at once.
//!
//! Groups: `strings` (values and counters), `keys` (deletion, existence,
//! expiry), `server` (connection and handshake commands, which never reach
//! the coordinator). May call: the coordinator's public operations only.

mod args;
mod keys;
mod server;
mod strings;

#[cfg(test)]
mod tests;

use bytes::Bytes;

use crate::error::KvError;
use crate::replication::Coordinator;

use self::args::Args;
pub use self::keys::{Del, Exists, Expire, Persist, Ttl, Unit};
pub use self::server::{Client, CommandInfo, Echo, Info, Ping, Quit, Select};
pub use self::strings::{Get, Increment, MGet, MSet, Set, SetEx, Step};
use super::codec::Reply;
use super::error::RespError;

/// The keyspace RESP reads and writes.
const KEYSPACE: &str = crate::DEFAULT_KEYSPACE;

/// A parsed command, ready to apply.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Command {
    /// `GET`.
    Get(Get),
    /// `SET`.
    Set(Set),
    /// `SETEX`.
    SetEx(SetEx),
    /// `MGET`.
    MGet(MGet),
    /// `MSET`.
    MSet(MSet),
    /// `INCR`, `DECR`, `INCRBY`, `DECRBY`.
    Increment(Increment),
    /// `DEL`, `UNLINK`.
    Del(Del),
    /// `EXISTS`.
    Exists(Exists),
    /// `EXPIRE`, `PEXPIRE`.
    Expire(Expire),
    /// `PERSIST`.
    Persist(Persist),
    /// `TTL`, `PTTL`.
    Ttl(Ttl),
    /// `PING`.
    Ping(Ping),
    /// `ECHO`.
    Echo(Echo),
    /// `SELECT`.
    Select(Select),
    /// `CLIENT`.
    Client(Client),
    /// `COMMAND`.
    CommandInfo(CommandInfo),
    /// `INFO`.
    Info(Info),
    /// `QUIT`.
    Quit(Quit),
}

impl Command {
    /// Runs the command; the reply, or what the coordinator refused.
    pub async fn apply(self, c: &Coordinator) -> Result<Reply, KvError> {
        match self {
            Self::Get(cmd) => cmd.apply(c).await,
            Self::Set(cmd) => cmd.apply(c).await,
            Self::SetEx(cmd) => cmd.apply(c).await,
            Self::MGet(cmd) => cmd.apply(c).await,
            Self::MSet(cmd) => cmd.apply(c).await,
            Self::Increment(cmd) => cmd.apply(c).await,
            Self::Del(cmd) => cmd.apply(c).await,
            Self::Exists(cmd) => cmd.apply(c).await,
            Self::Expire(cmd) => cmd.apply(c).await,
            Self::Persist(cmd) => cmd.apply(c).await,
            Self::Ttl(cmd) => cmd.apply(c).await,
            Self::Ping(cmd) => Ok(cmd.apply()),
            Self::Echo(cmd) => Ok(cmd.apply()),
            Self::Select(cmd) => Ok(cmd.apply()),
            Self::Client(cmd) => Ok(cmd.apply()),
            Self::CommandInfo(cmd) => Ok(cmd.apply()),
            Self::Info(cmd) => Ok(cmd.apply()),
            Self::Quit(cmd) => Ok(cmd.apply()),
        }
    }
}

/// How one command's arguments are parsed.
type Parser = fn(&mut Args) -> Result<Command, RespError>;

/// One command off the wire: parsed (or refused), with the operation it
/// counts under in the request metrics (`None` for handshake commands).
#[derive(Debug)]
pub struct Request {
    /// The metric label (`get`, `put`, ...).
    pub op: Option<&'static str>,
    /// The command, or why it cannot run.
    pub command: Result<Command, RespError>,
}

impl Request {
    /// Parses a command from its frame (`frame[0]` is the name, any case).
    pub fn parse(frame: Vec<Bytes>) -> Self {
        let mut frame = frame.into_iter();
        let name = frame.next().unwrap_or_default();
        let Some((command, op, parse)) = lookup(&name) else {
            let name = String::from_utf8_lossy(&name).to_ascii_lowercase();
            return Self { op: None, command: Err(RespError::UnknownCommand { name }) };
        };
        Self { op, command: parse(&mut Args::new(command, frame)) }
    }

    /// A framing error, answered in order before the connection closes.
    pub fn refused(error: RespError) -> Self {
        Self { op: None, command: Err(error) }
    }

    /// True when the connection closes after this request's reply (`QUIT`, a framing error).
    pub fn closes_connection(&self) -> bool {
        match &self.command {
            Ok(command) => matches!(command, Command::Quit(_)),
            Err(e) => e.closes_connection(),
        }
    }
}

/// The command named `name` (any case): its lowercase name, metric label and parser.
fn lookup(name: &[u8]) -> Option<(&'static str, Option<&'static str>, Parser)> {
    // Uppercased on the stack: no command name is longer than 7 bytes.
    let mut upper = [0u8; 8];
    let upper = upper.get_mut(..name.len())?;
    upper.copy_from_slice(name);
    upper.make_ascii_uppercase();
    let found: (&'static str, Option<&'static str>, Parser) = match &*upper {
        b"GET" => ("get", Some("get"), |a| Get::parse(a).map(Command::Get)),
        b"SET" => ("set", Some("put"), |a| Set::parse(a).map(Command::Set)),
        b"SETEX" => ("setex", Some("put"), |a| SetEx::parse(a).map(Command::SetEx)),
        b"MGET" => ("mget", Some("batch_get"), |a| MGet::parse(a).map(Command::MGet)),
        b"MSET" => ("mset", Some("put"), |a| MSet::parse(a).map(Command::MSet)),
        b"INCR" => ("incr", Some("increment"), |a| Increment::parse(a, Step::Incr).map(Command::Increment)),
        b"DECR" => ("decr", Some("increment"), |a| Increment::parse(a, Step::Decr).map(Command::Increment)),
        b"INCRBY" => ("incrby", Some("increment"), |a| Increment::parse(a, Step::IncrBy).map(Command::Increment)),
        b"DECRBY" => ("decrby", Some("increment"), |a| Increment::parse(a, Step::DecrBy).map(Command::Increment)),
        b"DEL" => ("del", Some("delete"), |a| Del::parse(a).map(Command::Del)),
        b"UNLINK" => ("unlink", Some("delete"), |a| Del::parse(a).map(Command::Del)),
        b"EXISTS" => ("exists", Some("batch_get"), |a| Exists::parse(a).map(Command::Exists)),
        b"EXPIRE" => ("expire", Some("touch"), |a| Expire::parse(a, Unit::Seconds).map(Command::Expire)),
        b"PEXPIRE" => ("pexpire", Some("touch"), |a| Expire::parse(a, Unit::Millis).map(Command::Expire)),
        b"PERSIST" => ("persist", Some("touch"), |a| Persist::parse(a).map(Command::Persist)),
        b"TTL" => ("ttl", Some("get"), |a| Ttl::parse(a, Unit::Seconds).map(Command::Ttl)),
        b"PTTL" => ("pttl", Some("get"), |a| Ttl::parse(a, Unit::Millis).map(Command::Ttl)),
        b"PING" => ("ping", None, |a| Ping::parse(a).map(Command::Ping)),
        b"ECHO" => ("echo", None, |a| Echo::parse(a).map(Command::Echo)),
        b"SELECT" => ("select", None, |a| Select::parse(a).map(Command::Select)),
        b"CLIENT" => ("client", None, |a| Client::parse(a).map(Command::Client)),
        b"COMMAND" => ("command", None, |a| CommandInfo::parse(a).map(Command::CommandInfo)),
        b"INFO" => ("info", None, |a| Info::parse(a).map(Command::Info)),
        b"QUIT" => ("quit", None, |a| Quit::parse(a).map(Command::Quit)),
        _ => return None,
    };
    Some(found)
}
