//! String commands: `GET`, `SET`, `SETEX`, `MGET`, `MSET` and the counters
//! `INCR`, `DECR`, `INCRBY`, `DECRBY`.
//!
//! Each type is parsed from its arguments (every argument error is found
//! here, before anything is sent to the coordinator) and applied with one
//! coordinator call per key. `GET` of a key with siblings returns the newest
//! one (the `lww` view), since RESP cannot carry several values.

use bytes::Bytes;

use crate::error::KvError;
use crate::replication::{Consistency, Coordinator, PutOptions};
use crate::version::Sibling;

use super::super::codec::Reply;
use super::super::error::RespError;
use super::KEYSPACE;
use super::args::{Args, integer, positive, upper};

/// `GET key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Get {
    pub(super) key: Bytes,
}

impl Get {
    /// Parses the arguments after the name.
    pub fn parse(args: &mut Args) -> Result<Self, RespError> {
        args.exactly(1)?;
        Ok(Self { key: args.next()? })
    }

    /// The newest live value, or nil.
    pub async fn apply(self, c: &Coordinator) -> Result<Reply, KvError> {
        let r = c.get(KEYSPACE, self.key, Consistency::default()).await?;
        Ok(newest(&r.siblings).map_or(Reply::Nil, Reply::Bulk))
    }
}

/// `SET key value [EX seconds | PX milliseconds] [NX]` (the last `EX`/`PX` wins).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Set {
    pub(super) key: Bytes,
    pub(super) value: Bytes,
    /// `PX` rounded up to whole seconds.
    pub(super) ttl_seconds: Option<u64>,
    pub(super) nx: bool,
}

impl Set {
    /// Parses the arguments after the name; options are read in order, so
    /// the first bad one is the one reported.
    pub fn parse(args: &mut Args) -> Result<Self, RespError> {
        args.at_least(2)?;
        let mut set = Self { key: args.next()?, value: args.next()?, ttl_seconds: None, nx: false };
        while let Some(flag) = args.next_if_any() {
            let option = upper(&flag);
            match option.as_str() {
                "NX" => set.nx = true,
                "EX" | "PX" if args.len() > 0 => {
                    let n = positive(&args.next()?).ok_or(RespError::InvalidExpireIn { command: "set" })?;
                    set.ttl_seconds = Some(if option == "EX" { n } else { n.div_ceil(1000) });
                }
                _ => return Err(RespError::UnsupportedSetOption { option }),
            }
        }
        Ok(set)
    }

    /// `OK`, or nil when `NX` found a live value.
    pub async fn apply(self, c: &Coordinator) -> Result<Reply, KvError> {
        let opts = PutOptions { ttl_seconds: self.ttl_seconds, if_absent: self.nx, ..PutOptions::default() };
        let r = c.put(KEYSPACE, self.key, self.value, opts).await?;
        Ok(if self.nx && !r.applied { Reply::Nil } else { Reply::Simple("OK") })
    }
}

/// `SETEX key seconds value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetEx {
    pub(super) key: Bytes,
    pub(super) ttl_seconds: u64,
    pub(super) value: Bytes,
}

impl SetEx {
    /// Parses the arguments after the name.
    pub fn parse(args: &mut Args) -> Result<Self, RespError> {
        args.exactly(3)?;
        let key = args.next()?;
        let ttl_seconds = positive(&args.next()?).ok_or(RespError::InvalidExpireIn { command: "setex" })?;
        Ok(Self { key, ttl_seconds, value: args.next()? })
    }

    /// `OK`.
    pub async fn apply(self, c: &Coordinator) -> Result<Reply, KvError> {
        let opts = PutOptions { ttl_seconds: Some(self.ttl_seconds), ..PutOptions::default() };
        c.put(KEYSPACE, self.key, self.value, opts).await?;
        Ok(Reply::Simple("OK"))
    }
}

/// `MGET key [key ...]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MGet {
    pub(super) keys: Vec<Bytes>,
}

impl MGet {
    /// Parses the arguments after the name.
    pub fn parse(args: &mut Args) -> Result<Self, RespError> {
        args.at_least(1)?;
        Ok(Self { keys: args.rest() })
    }

    /// One value or nil per key, in order (one batched read).
    pub async fn apply(self, c: &Coordinator) -> Result<Reply, KvError> {
        let rows = c.batch_get(KEYSPACE, self.keys, Consistency::default()).await?;
        Ok(Reply::Array(rows.into_iter().map(|(_, r)| newest(&r.siblings).map_or(Reply::Nil, Reply::Bulk)).collect()))
    }
}

/// `MSET key value [key value ...]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MSet {
    pub(super) pairs: Vec<(Bytes, Bytes)>,
}

impl MSet {
    /// Parses the arguments after the name.
    pub fn parse(args: &mut Args) -> Result<Self, RespError> {
        args.arity(|n| n >= 2 && n % 2 == 0)?;
        let mut pairs = Vec::with_capacity(args.len() / 2);
        while let Some(key) = args.next_if_any() {
            pairs.push((key, args.next()?));
        }
        Ok(Self { pairs })
    }

    /// `OK` once every pair is written (one write after another; not atomic).
    pub async fn apply(self, c: &Coordinator) -> Result<Reply, KvError> {
        for (key, value) in self.pairs {
            c.put(KEYSPACE, key, value, PutOptions::default()).await?;
        }
        Ok(Reply::Simple("OK"))
    }
}

/// Which counter command was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// `INCR key`: +1.
    Incr,
    /// `DECR key`: -1.
    Decr,
    /// `INCRBY key n`: +n.
    IncrBy,
    /// `DECRBY key n`: -n.
    DecrBy,
}

/// `INCR`, `DECR`, `INCRBY`, `DECRBY`: add a signed amount to a decimal counter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Increment {
    pub(super) key: Bytes,
    pub(super) delta: i64,
}

impl Increment {
    /// Parses the arguments after the name of `step`'s command.
    pub fn parse(args: &mut Args, step: Step) -> Result<Self, RespError> {
        let by = matches!(step, Step::IncrBy | Step::DecrBy);
        args.exactly(if by { 2 } else { 1 })?;
        let key = args.next()?;
        let amount = if by { integer(&args.next()?).ok_or(RespError::NotAnInteger)? } else { 1 };
        let delta = match step {
            Step::Incr | Step::IncrBy => amount,
            Step::Decr | Step::DecrBy => amount.checked_neg().ok_or(RespError::DecrementOverflow)?,
        };
        Ok(Self { key, delta })
    }

    /// The counter's new value.
    pub async fn apply(self, c: &Coordinator) -> Result<Reply, KvError> {
        let (value, _) = c.increment(KEYSPACE, self.key, self.delta, None, Consistency::default()).await?;
        Ok(Reply::Integer(value))
    }
}

/// The value of the newest live sibling (the `lww` view of a sibling set).
fn newest(siblings: &[Sibling]) -> Option<Bytes> {
    siblings.iter().filter(|s| s.value.is_some()).max_by_key(|s| s.lww_key()).and_then(|s| s.value.clone())
}
