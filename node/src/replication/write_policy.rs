//! [`WritePolicy`]: what the write fan-out does next (pure).
//!
//! Given the write targets of a key (replicas, then pending owners), which of
//! them are alive, the quorum groups of the level and the hinted-handoff
//! policy, it says whom to send the record to, which replicas get a hint, and
//! when the client's answer is decided. Fed one reply at a time, it answers
//! with a [`Step`]. The decision ([`Next::Ack`] or [`Next::Fail`]) is given
//! exactly once; the fan-out keeps going after it until every target has the
//! record or a hint. The async shell (`write_path.rs`) only sends and collects.
//!
//! Rules: a target known down gets a hint at once and, unless hints count
//! (sloppy quorum, ANY), counts as failed; a failed direct write gets a hint
//! too; with hints counting, the hint's outcome is the target's answer.

use super::handoff::{HintFor, HintPolicy};
use super::{QuorumFailure, QuorumOutcome, QuorumTracker};

/// What the shell must do for one target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Action {
    /// Send the record to this replica.
    Send(String),
    /// Store a hint for a replica that missed the write.
    Hint(HintFor),
}

/// One reply the shell collected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum WriteReply {
    /// A direct write (or this node's own durability) finished.
    Direct { host: String, result: Result<(), String> },
    /// A hint for `host` finished; `Ok(true)` once durable somewhere.
    Hinted { host: String, result: Result<bool, String> },
}

/// Where the client's answer stands after a step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Next {
    /// Not decided (or already decided earlier): keep collecting.
    Wait,
    /// The write reached its level: acknowledge the client.
    Ack,
    /// The level can no longer be reached.
    Fail(QuorumFailure),
}

/// What to do after the start or one reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Step {
    /// Calls to start, in order.
    pub(super) actions: Vec<Action>,
    /// The client's answer, given once.
    pub(super) next: Next,
}

/// The write policy of one replicated write.
#[derive(Debug, Clone)]
pub(super) struct WritePolicy {
    tracker: QuorumTracker<String>,
    hints: HintPolicy,
    targets: Vec<String>,
    decided: bool,
}

impl WritePolicy {
    /// A policy over `targets` (every write target, this node included, in
    /// plan order) deciding with `tracker` and hinting with `hints`.
    pub(super) fn new(tracker: QuorumTracker<String>, hints: HintPolicy, targets: Vec<String>) -> Self {
        Self { tracker, hints, targets, decided: false }
    }

    /// The first step: send to every alive target other than `local`, hint the others.
    pub(super) fn start(&mut self, local: &str, alive: &dyn Fn(&str) -> bool) -> Step {
        let mut actions = Vec::new();
        for host in self.targets.clone().iter().filter(|h| *h != local) {
            if alive(host) {
                actions.push(Action::Send(host.clone()));
                continue;
            }
            if !self.hints.counts() {
                self.tracker.fail(host, "down");
            }
            actions.push(Action::Hint(self.hints.hint_for(host)));
        }
        let next = self.decide(self.tracker.outcome());
        Step { actions, next }
    }

    /// The step after one reply.
    pub(super) fn on_reply(&mut self, reply: WriteReply) -> Step {
        let counts = self.hints.counts();
        let mut actions = Vec::new();
        let outcome = match reply {
            WriteReply::Direct { host, result: Ok(()) } => self.tracker.ack(&host),
            WriteReply::Direct { host, result: Err(why) } => {
                if self.targets.contains(&host) {
                    actions.push(Action::Hint(self.hints.hint_for(&host)));
                }
                if counts { self.tracker.outcome() } else { self.tracker.fail(&host, why) }
            }
            WriteReply::Hinted { host, result: Ok(true) } if counts => self.tracker.ack(&host),
            WriteReply::Hinted { host, result: Err(why) } if counts => self.tracker.fail(&host, why),
            WriteReply::Hinted { .. } => self.tracker.outcome(),
        };
        Step { actions, next: self.decide(outcome) }
    }

    /// Every call has finished: fails a write still undecided.
    pub(super) fn on_all_replied(&mut self) -> Next {
        let failure = QuorumFailure {
            group: "replicas".into(),
            required: 0,
            acked: self.tracker.acked(),
            failed: 0,
            failures: "undecided after every replica answered".into(),
        };
        self.decide(QuorumOutcome::Failed(failure))
    }

    fn decide(&mut self, outcome: QuorumOutcome) -> Next {
        if self.decided {
            return Next::Wait;
        }
        let next = match outcome {
            QuorumOutcome::Pending => return Next::Wait,
            QuorumOutcome::Reached => Next::Ack,
            QuorumOutcome::Failed(f) => Next::Fail(f),
        };
        self.decided = true;
        next
    }
}

#[cfg(test)]
#[path = "write_policy_tests.rs"]
mod tests;
