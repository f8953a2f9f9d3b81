//! Key commands: `DEL`/`UNLINK`, `EXISTS`, `EXPIRE`/`PEXPIRE`, `PERSIST`,
//! `TTL`/`PTTL`.
//!
//! Parsed from their arguments, then applied with coordinator calls. Expiry
//! is kept in whole seconds (milliseconds round up), as everywhere in
//! RingKV; `DEL` counts the keys that held a live value at the coordinating
//! replica.

use bytes::Bytes;

use crate::error::KvError;
use crate::replication::{Consistency, Coordinator};

use super::super::codec::Reply;
use super::super::error::RespError;
use super::KEYSPACE;
use super::args::{Args, positive};

/// Seconds or milliseconds (`EXPIRE`/`PEXPIRE`, `TTL`/`PTTL`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Seconds.
    Seconds,
    /// Milliseconds.
    Millis,
}

/// `DEL key [key ...]` and `UNLINK key [key ...]` (the same here).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Del {
    pub(super) keys: Vec<Bytes>,
}

impl Del {
    /// Parses the arguments after the name.
    pub fn parse(args: &mut Args) -> Result<Self, RespError> {
        args.at_least(1)?;
        Ok(Self { keys: args.rest() })
    }

    /// How many of the keys held a live value (a key named twice counts once).
    pub async fn apply(self, c: &Coordinator) -> Result<Reply, KvError> {
        let mut removed = 0;
        for key in self.keys {
            if c.delete(KEYSPACE, key, Bytes::new(), Consistency::default()).await?.existed {
                removed += 1;
            }
        }
        Ok(Reply::Integer(removed))
    }
}

/// `EXISTS key [key ...]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exists {
    pub(super) keys: Vec<Bytes>,
}

impl Exists {
    /// Parses the arguments after the name.
    pub fn parse(args: &mut Args) -> Result<Self, RespError> {
        args.at_least(1)?;
        Ok(Self { keys: args.rest() })
    }

    /// How many of the keys hold a live value (a key named twice counts twice, as in Redis).
    pub async fn apply(self, c: &Coordinator) -> Result<Reply, KvError> {
        let rows = c.batch_get(KEYSPACE, self.keys, Consistency::default()).await?;
        Ok(Reply::Integer(rows.iter().filter(|(_, r)| r.found).count() as i64))
    }
}

/// `EXPIRE key seconds` and `PEXPIRE key milliseconds`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expire {
    pub(super) key: Bytes,
    /// Milliseconds rounded up to whole seconds.
    pub(super) ttl_seconds: u64,
}

impl Expire {
    /// Parses the arguments after the name, the amount in `unit`.
    pub fn parse(args: &mut Args, unit: Unit) -> Result<Self, RespError> {
        args.exactly(2)?;
        let key = args.next()?;
        let n = positive(&args.next()?).ok_or(RespError::InvalidExpire)?;
        let ttl_seconds = match unit {
            Unit::Seconds => n,
            Unit::Millis => n.div_ceil(1000),
        };
        Ok(Self { key, ttl_seconds })
    }

    /// 1 when the key held a live value (now expiring), else 0.
    pub async fn apply(self, c: &Coordinator) -> Result<Reply, KvError> {
        let touched = c.touch(KEYSPACE, self.key, self.ttl_seconds, Consistency::default()).await?;
        Ok(Reply::Integer(i64::from(touched.is_some())))
    }
}

/// `PERSIST key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Persist {
    pub(super) key: Bytes,
}

impl Persist {
    /// Parses the arguments after the name.
    pub fn parse(args: &mut Args) -> Result<Self, RespError> {
        args.exactly(1)?;
        Ok(Self { key: args.next()? })
    }

    /// 1 when the key held a live value (now without expiry), else 0.
    pub async fn apply(self, c: &Coordinator) -> Result<Reply, KvError> {
        let touched = c.touch(KEYSPACE, self.key, 0, Consistency::default()).await?;
        Ok(Reply::Integer(i64::from(touched.is_some())))
    }
}

/// `TTL key` and `PTTL key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ttl {
    pub(super) key: Bytes,
    pub(super) unit: Unit,
}

impl Ttl {
    /// Parses the arguments after the name; the answer is in `unit`.
    pub fn parse(args: &mut Args, unit: Unit) -> Result<Self, RespError> {
        args.exactly(1)?;
        Ok(Self { key: args.next()?, unit })
    }

    /// The time left (seconds round up), -1 without expiry, -2 for a missing key.
    pub async fn apply(self, c: &Coordinator) -> Result<Reply, KvError> {
        let r = c.get(KEYSPACE, self.key, Consistency::default()).await?;
        Ok(Reply::Integer(match (r.found, r.ttl_remaining_ms, self.unit) {
            (false, _, _) => -2,
            (true, None, _) => -1,
            (true, Some(ms), Unit::Seconds) => (ms.max(0) + 999) / 1000,
            (true, Some(ms), Unit::Millis) => ms.max(0),
        }))
    }
}
