//! The arguments of one command, taken front to back by its parser.
//!
//! Arity is checked before any argument is read, so that a command with the
//! wrong number of arguments is refused as such whatever its arguments hold
//! (as Redis does). Reading past the end is an error, never a panic.

use bytes::Bytes;

use super::super::error::RespError;

/// The arguments after a command's name.
#[derive(Debug)]
pub struct Args {
    command: &'static str,
    rest: std::vec::IntoIter<Bytes>,
}

impl Args {
    /// The arguments of `command` (its lowercase name, for error replies).
    pub fn new(command: &'static str, rest: std::vec::IntoIter<Bytes>) -> Self {
        Self { command, rest }
    }

    /// The command's lowercase name.
    pub fn command(&self) -> &'static str {
        self.command
    }

    /// How many arguments are left.
    pub fn len(&self) -> usize {
        self.rest.len()
    }

    /// Refuses unless `ok(number of arguments left)`.
    pub fn arity(&self, ok: impl FnOnce(usize) -> bool) -> Result<(), RespError> {
        if ok(self.len()) { Ok(()) } else { Err(self.wrong_arity()) }
    }

    /// Refuses unless exactly `n` arguments are left.
    pub fn exactly(&self, n: usize) -> Result<(), RespError> {
        self.arity(|len| len == n)
    }

    /// Refuses unless at least `n` arguments are left.
    pub fn at_least(&self, n: usize) -> Result<(), RespError> {
        self.arity(|len| len >= n)
    }

    /// The next argument.
    pub fn next(&mut self) -> Result<Bytes, RespError> {
        self.rest.next().ok_or_else(|| self.wrong_arity())
    }

    /// The next argument, if any.
    pub fn next_if_any(&mut self) -> Option<Bytes> {
        self.rest.next()
    }

    /// Every argument left.
    pub fn rest(&mut self) -> Vec<Bytes> {
        self.rest.by_ref().collect()
    }

    /// Drops every argument left (for commands that take any).
    pub fn ignore_rest(&mut self) {
        self.rest.by_ref().for_each(drop);
    }

    fn wrong_arity(&self) -> RespError {
        RespError::WrongArity { command: self.command }
    }
}

/// A strictly positive decimal integer.
pub fn positive(arg: &[u8]) -> Option<u64> {
    std::str::from_utf8(arg).ok()?.parse::<u64>().ok().filter(|n| *n > 0)
}

/// A signed 64-bit decimal integer.
pub fn integer(arg: &[u8]) -> Option<i64> {
    std::str::from_utf8(arg).ok()?.parse::<i64>().ok()
}

/// An argument as text, uppercased (invalid UTF-8 replaced), for options and error replies.
pub fn upper(arg: &[u8]) -> String {
    String::from_utf8_lossy(arg).to_ascii_uppercase()
}
