//! [`ReadPolicy`]: what a replicated read does next (pure).
//!
//! Given the replicas of a key (alive, serving reads), the quorum groups of
//! the level and the answers so far, it says whom to ask, whether to keep
//! waiting, and, once the level is satisfied, the answer: the merge of every
//! copy received, the replicas to repair ([`ReadRepair`]) and whether the
//! repair must finish before the client gets the answer. The async shell
//! (`read_path.rs`) only asks, collects and applies the deadline.
//!
//! Future read strategies plug in here: a digest read asks one replica for
//! the record and the others for a hash; a speculative retry asks one more
//! replica when the slowest is late. Each is a policy of its own over the
//! same shell.

use crate::version::{ConflictMode, Record};

use super::read_repair::ReadRepair;
use super::{QuorumFailure, QuorumGroup, QuorumOutcome, QuorumTracker};

/// One replica of the key, as the plan and the cluster view see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ReadTarget {
    /// The replica's host id.
    pub(super) host: String,
    /// Believed alive by the failure detector.
    pub(super) alive: bool,
    /// Not streaming its ranges in (a replacing node serves no reads).
    pub(super) serves_reads: bool,
}

/// The decided read: what to return and what to repair.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct ReadAnswer {
    /// The merge of every copy received (`None`: no replica has the key).
    pub(super) merged: Option<Record>,
    /// Replicas whose copy differs from `merged`.
    pub(super) stale: Vec<String>,
    /// Repair before answering (QUORUM and stronger: monotonic reads).
    pub(super) blocking: bool,
    /// Replicas that must hold `merged` for a blocking repair to succeed.
    pub(super) required: u32,
    /// Replicas that answered.
    pub(super) answered: usize,
}

/// Where a read stands.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum ReadNext {
    /// Keep waiting for answers.
    Wait,
    /// The level is satisfied: answer (and repair).
    Answer(ReadAnswer),
    /// The level can no longer be satisfied.
    Fail(QuorumFailure),
}

/// The read policy of one replicated read.
#[derive(Debug, Clone)]
pub(super) struct ReadPolicy {
    tracker: QuorumTracker<String>,
    mode: ConflictMode,
    required: u32,
    blocking: bool,
    answers: Vec<(String, Option<Record>)>,
    decided: bool,
}

impl ReadPolicy {
    /// A read needing `groups`; `blocking` repairs before answering.
    pub(super) fn new(groups: Vec<QuorumGroup<String>>, blocking: bool, mode: ConflictMode) -> Self {
        let required = groups.iter().map(|g| g.required).sum();
        let tracker = QuorumTracker::new(groups);
        Self { tracker, mode, required, blocking, answers: Vec::new(), decided: false }
    }

    /// Whom to ask (in order) and where the read stands before any answer.
    pub(super) fn start(&mut self, replicas: &[ReadTarget]) -> (Vec<String>, ReadNext) {
        let mut ask = Vec::new();
        for r in replicas {
            if !r.alive {
                self.tracker.fail(&r.host, "down");
            } else if !r.serves_reads {
                self.tracker.fail(&r.host, "still streaming its ranges in");
            } else {
                ask.push(r.host.clone());
            }
        }
        let outcome = self.tracker.outcome();
        (ask, self.decide(outcome))
    }

    /// Where the read stands after `host` answered (`Err`: why it failed).
    /// Answers after the decision are ignored (the shell repairs them late).
    pub(super) fn on_answer(&mut self, host: &str, answer: Result<Option<Record>, String>) -> ReadNext {
        if self.decided {
            return ReadNext::Wait;
        }
        let host = host.to_owned();
        let outcome = match answer {
            Ok(record) => {
                self.answers.push((host.clone(), record));
                self.tracker.ack(&host)
            }
            Err(why) => self.tracker.fail(&host, why),
        };
        self.decide(outcome)
    }

    /// Every asked replica answered without deciding: answer with what came in.
    pub(super) fn on_all_answered(&mut self) -> ReadNext {
        if self.decided {
            return ReadNext::Wait;
        }
        self.answer()
    }

    fn decide(&mut self, outcome: QuorumOutcome) -> ReadNext {
        match outcome {
            QuorumOutcome::Pending => ReadNext::Wait,
            QuorumOutcome::Reached => self.answer(),
            QuorumOutcome::Failed(f) => {
                self.decided = true;
                ReadNext::Fail(f)
            }
        }
    }

    fn answer(&mut self) -> ReadNext {
        self.decided = true;
        let merged = ReadRepair::merge(self.mode, self.answers.iter().map(|(_, r)| r));
        let stale = ReadRepair::stale(&merged, &self.answers);
        ReadNext::Answer(ReadAnswer {
            merged,
            stale,
            blocking: self.blocking,
            required: self.required,
            answered: self.answers.len(),
        })
    }
}

#[cfg(test)]
#[path = "read_policy_tests.rs"]
mod tests;
