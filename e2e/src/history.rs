//! A history of writes and a checker of what survived them.
//!
//! The workload this checks: every key has one writer, which does
//! read-modify-write (read at QUORUM, then write a value unique to that
//! attempt with the causal context of the read). The [`History`] records,
//! for every write attempt, the key, the value, the values its read
//! returned (`observed`: the siblings its context supersedes) and its
//! outcome. After the faults are healed and the cluster repaired, the test
//! reads every node's own copy of every key and hands them to [`check`].
//!
//! What "superseded" means here: a write with context C replaces exactly the
//! siblings C covers, i.e. what its read observed and, transitively, what
//! those had replaced. So a value `v` is superseded by `x` when `v` is in the
//! observed closure of `x`. The rules, each sound for siblings:
//! - **no invented value**: every value a node holds was attempted;
//! - **no lost write**: every acknowledged value is still held, or is in the
//!   observed closure of a held value (a later write replaced it knowingly);
//! - **superseded values gone**: no held value is in the observed closure of
//!   an acknowledged write or of another held value;
//! - **identical copies**: every node holds the same record, byte for byte.
//!
//! Attempts that failed or timed out may or may not have been applied, so
//! they may survive or vanish; only what they observed counts against
//! others. A blind write (empty context) replaces whatever its coordinator
//! holds, observed or not, so only the first write of a key may be blind:
//! the workload seeds each key once and then always writes with a context.
//!
//! Pure: no I/O, no clock; the recorder is a `Mutex` shared by the writers.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

/// How a write attempt ended, as the client saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The node acknowledged the write at the requested level.
    Ok,
    /// The node answered with an error (may still have been applied on some replicas).
    Failed(String),
    /// No answer (timeout, connection lost): applied or not, nobody knows.
    Unknown(String),
}

/// One write attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// The key written.
    pub key: String,
    /// The value written, unique to this attempt.
    pub value: String,
    /// The sibling values the read before it returned (its context covers them).
    pub observed: Vec<String>,
    /// How it ended.
    pub outcome: Outcome,
    /// Which fault phase it ran in (for the report).
    pub phase: String,
    /// Which node it was sent through.
    pub via: usize,
    /// The consistency level it asked for (`QUORUM`, `ONE`, …).
    pub level: String,
}

/// Every write attempt of a run; cheap to clone and share between writers.
#[derive(Debug, Clone, Default)]
pub struct History {
    attempts: Arc<Mutex<Vec<Attempt>>>,
}

impl History {
    /// An empty history.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records one attempt (after it ended).
    pub fn record(&self, attempt: Attempt) {
        self.attempts.lock().unwrap_or_else(PoisonError::into_inner).push(attempt);
    }

    /// A copy of every attempt so far, in the order they were recorded.
    pub fn attempts(&self) -> Vec<Attempt> {
        self.attempts.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Counts of (ok, failed, unknown) attempts, optionally only through `via` and in `phase`.
    pub fn counts(&self, via: Option<usize>, phase: Option<&str>) -> OutcomeCounts {
        self.count(|a| via.is_none_or(|v| v == a.via) && phase.is_none_or(|p| p == a.phase))
    }

    /// Counts of (ok, failed, unknown) attempts that pass `filter`.
    pub fn count(&self, filter: impl Fn(&Attempt) -> bool) -> OutcomeCounts {
        let mut counts = OutcomeCounts::default();
        for a in self.attempts().iter().filter(|a| filter(a)) {
            match a.outcome {
                Outcome::Ok => counts.ok += 1,
                Outcome::Failed(_) => counts.failed += 1,
                Outcome::Unknown(_) => counts.unknown += 1,
            }
        }
        counts
    }
}

/// How many attempts ended which way.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutcomeCounts {
    /// Acknowledged.
    pub ok: usize,
    /// Refused with an error.
    pub failed: usize,
    /// Timed out or lost.
    pub unknown: usize,
}

impl fmt::Display for OutcomeCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ok, {} failed, {} unknown", self.ok, self.failed, self.unknown)
    }
}

/// One node's own copy of a key after repair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalCopy {
    /// Which node (for messages).
    pub node: String,
    /// The stored record as the node encodes it; `None` when it has none.
    pub encoded: Option<Vec<u8>>,
    /// The live sibling values of that record.
    pub values: BTreeSet<String>,
}

/// What the checker found wrong; empty when the run was correct.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Violation {
    /// An acknowledged write is neither held nor replaced by a held value.
    LostWrite {
        /// The key.
        key: String,
        /// The acknowledged value that is gone.
        value: String,
    },
    /// A node holds a value no one ever tried to write.
    InventedValue {
        /// The key.
        key: String,
        /// The value.
        value: String,
        /// The node holding it.
        node: String,
    },
    /// A value survives although a write that knew it replaced it.
    StaleSiblingKept {
        /// The key.
        key: String,
        /// The value that should be gone.
        value: String,
        /// The acknowledged or surviving write whose context covered it.
        superseded_by: String,
    },
    /// The workload wrote one value twice to a key: the checker needs unique values.
    DuplicateValue {
        /// The key.
        key: String,
        /// The value written more than once.
        value: String,
    },
    /// Nodes hold different records for the key after repair.
    DivergentCopies {
        /// The key.
        key: String,
        /// Each node and the values it holds.
        copies: Vec<(String, Option<BTreeSet<String>>)>,
    },
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::LostWrite { key, value } => write!(f, "lost write: {key}={value} was acknowledged and is gone"),
            Self::InventedValue { key, value, node } => {
                write!(f, "invented value: {node} holds {key}={value}, which was never written")
            }
            Self::StaleSiblingKept { key, value, superseded_by } => {
                write!(f, "stale sibling kept: {key}={value} survives although {superseded_by} replaced it")
            }
            Self::DuplicateValue { key, value } => {
                write!(f, "duplicate value: {key}={value} was attempted twice (a workload bug, not a store bug)")
            }
            Self::DivergentCopies { key, copies } => write!(f, "divergent copies of {key}: {copies:?}"),
        }
    }
}

/// What one key's writes look like to the checker.
struct KeyHistory<'a> {
    attempts: BTreeMap<&'a str, &'a Attempt>,
}

impl<'a> KeyHistory<'a> {
    /// Every value the writes of `replacers` replaced, transitively (through
    /// what the replaced writes had observed), each with the replacer that
    /// reached it first. One walk over the observed graph: linear in its size.
    fn replaced_by<'b>(&self, replacers: impl IntoIterator<Item = &'b str>) -> BTreeMap<&'a str, &'b str>
    where
        'a: 'b,
    {
        let mut replaced = BTreeMap::new();
        for replacer in replacers {
            let mut todo: Vec<&str> = self.observed(replacer);
            while let Some(value) = todo.pop() {
                let Some((&value, _)) = self.attempts.get_key_value(value) else { continue };
                if replaced.contains_key(value) {
                    continue;
                }
                replaced.insert(value, replacer);
                todo.extend(self.observed(value));
            }
        }
        replaced
    }

    fn observed(&self, value: &str) -> Vec<&'a str> {
        self.attempts.get(value).map(|a| a.observed.iter().map(String::as_str).collect()).unwrap_or_default()
    }
}

/// Checks `finals` (per key, every node's own copy) against `attempts`.
/// Keys that were never attempted but are held are reported too.
pub fn check(attempts: &[Attempt], finals: &BTreeMap<String, Vec<LocalCopy>>) -> Vec<Violation> {
    let mut by_key: BTreeMap<&str, KeyHistory<'_>> = BTreeMap::new();
    let mut violations = Vec::new();
    for a in attempts {
        let history = by_key.entry(a.key.as_str()).or_insert_with(|| KeyHistory { attempts: BTreeMap::new() });
        if history.attempts.insert(&a.value, a).is_some() {
            violations.push(Violation::DuplicateValue { key: a.key.clone(), value: a.value.clone() });
        }
    }
    let empty = KeyHistory { attempts: BTreeMap::new() };
    let no_copies = Vec::new();
    let keys: BTreeSet<&str> = by_key.keys().copied().chain(finals.keys().map(String::as_str)).collect();
    for key in keys {
        let history = by_key.get(key).unwrap_or(&empty);
        let copies = finals.get(key).unwrap_or(&no_copies);
        check_key(key, history, copies, &mut violations);
    }
    violations
}

fn check_key(key: &str, history: &KeyHistory<'_>, copies: &[LocalCopy], out: &mut Vec<Violation>) {
    if copies.windows(2).any(|w| w[0].encoded != w[1].encoded || w[0].values != w[1].values) {
        let copies = copies.iter().map(|c| (c.node.clone(), c.encoded.as_ref().map(|_| c.values.clone()))).collect();
        out.push(Violation::DivergentCopies { key: key.to_owned(), copies });
    }
    let mut held: BTreeSet<&str> = BTreeSet::new();
    for copy in copies {
        for value in &copy.values {
            if history.attempts.contains_key(value.as_str()) {
                held.insert(value);
            } else {
                let (key, value, node) = (key.to_owned(), value.clone(), copy.node.clone());
                out.push(Violation::InventedValue { key, value, node });
            }
        }
    }
    let replaced_by_held = history.replaced_by(held.iter().copied());
    for (value, attempt) in &history.attempts {
        if attempt.outcome == Outcome::Ok && !held.contains(value) && !replaced_by_held.contains_key(value) {
            out.push(Violation::LostWrite { key: key.to_owned(), value: (*value).to_owned() });
        }
    }
    // Acknowledged writes reached a quorum and held ones reached everyone
    // after repair: what either replaced must be gone everywhere.
    let replacers = history.attempts.iter().filter(|(v, a)| a.outcome == Outcome::Ok || held.contains(*v));
    for (value, by) in history.replaced_by(replacers.map(|(v, _)| *v)) {
        if held.contains(&value) {
            let (key, value, superseded_by) = (key.to_owned(), value.to_owned(), by.to_owned());
            out.push(Violation::StaleSiblingKept { key, value, superseded_by });
        }
    }
}

#[cfg(test)]
mod tests;
