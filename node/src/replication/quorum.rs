//! [`QuorumTracker`]: decides when a replicated request succeeded or failed (pure).
//!
//! A request goes to a set of replicas split into groups, each with its own
//! requirement: one group for ONE/QUORUM/ALL, the local zone's replicas for
//! LOCAL_QUORUM, one group per zone for EACH_QUORUM. The tracker is fed each
//! replica's answer and says, as soon as it is decided, whether every group
//! reached its requirement or some group no longer can — and why.
//!
//! Invariants: a replica counts once (duplicates are ignored); a decision,
//! once made, never changes. No I/O, no clocks: the shell applies timeouts by
//! reporting the missing replicas as failed.

use std::collections::BTreeMap;

/// One group of replicas and how many of them must acknowledge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumGroup<R> {
    /// Name for error messages (a zone, or "replicas").
    pub name: String,
    /// The replicas of the group.
    pub members: Vec<R>,
    /// Acknowledgements needed from them.
    pub required: u32,
}

/// Where a request stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QuorumOutcome {
    /// Not decided yet.
    Pending,
    /// Every group reached its requirement.
    Reached,
    /// Some group can no longer reach its requirement.
    Failed(QuorumFailure),
}

/// Why a quorum was not reached.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "quorum not reached in {group}: {required} acknowledgements required, {acked} acked, {failed} failed ({failures})"
)]
pub struct QuorumFailure {
    /// The group that failed.
    pub group: String,
    /// Acknowledgements it needed.
    pub required: u32,
    /// Acknowledgements it got.
    pub acked: u32,
    /// Replicas that failed.
    pub failed: u32,
    /// What the failures were, `replica: reason`, comma-separated.
    pub failures: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    Ack,
    Fail,
}

/// Tracks the answers of the replicas of one request.
#[derive(Debug, Clone)]
pub struct QuorumTracker<R: Ord + Clone + std::fmt::Display> {
    groups: Vec<QuorumGroup<R>>,
    answers: BTreeMap<R, Answer>,
    reasons: Vec<(R, String)>,
    decided: Option<QuorumOutcome>,
}

impl<R: Ord + Clone + std::fmt::Display> QuorumTracker<R> {
    /// A tracker over `groups`. A group that can never be satisfied (more
    /// required than members) fails at once.
    pub fn new(groups: Vec<QuorumGroup<R>>) -> Self {
        let mut t = Self { groups, answers: BTreeMap::new(), reasons: Vec::new(), decided: None };
        t.decide();
        t
    }

    /// A single group of `members` needing `required` acknowledgements.
    pub fn simple(members: Vec<R>, required: u32) -> Self {
        Self::new(vec![QuorumGroup { name: "replicas".into(), members, required }])
    }

    /// Records an acknowledgement from `replica`.
    pub fn ack(&mut self, replica: &R) -> QuorumOutcome {
        if self.answer(replica, Answer::Ack) {
            self.decide();
        }
        self.outcome()
    }

    /// Records a failure (error, timeout, known down) of `replica`.
    pub fn fail(&mut self, replica: &R, reason: impl Into<String>) -> QuorumOutcome {
        if self.answer(replica, Answer::Fail) {
            self.reasons.push((replica.clone(), reason.into()));
            self.decide();
        }
        self.outcome()
    }

    /// The decision so far.
    pub fn outcome(&self) -> QuorumOutcome {
        self.decided.clone().unwrap_or(QuorumOutcome::Pending)
    }

    /// Total acknowledgements so far, over all replicas.
    pub fn acked(&self) -> u32 {
        self.answers.values().filter(|a| **a == Answer::Ack).count() as u32
    }

    /// Replicas that have not answered yet.
    pub fn pending(&self) -> Vec<R> {
        let mut all: Vec<R> = self.groups.iter().flat_map(|g| g.members.iter().cloned()).collect();
        all.sort();
        all.dedup();
        all.retain(|r| !self.answers.contains_key(r));
        all
    }

    /// Returns true when the answer was new.
    fn answer(&mut self, replica: &R, answer: Answer) -> bool {
        if self.answers.contains_key(replica) {
            return false;
        }
        self.answers.insert(replica.clone(), answer);
        true
    }

    fn count(&self, group: &QuorumGroup<R>, answer: Answer) -> u32 {
        group.members.iter().filter(|m| self.answers.get(*m) == Some(&answer)).count() as u32
    }

    fn decide(&mut self) {
        if self.decided.is_some() {
            return;
        }
        let mut all_reached = true;
        for g in &self.groups {
            let acked = self.count(g, Answer::Ack);
            let failed = self.count(g, Answer::Fail);
            let possible = g.members.len() as u32 - failed;
            if possible < g.required {
                let failures = self
                    .reasons
                    .iter()
                    .filter(|(r, _)| g.members.contains(r))
                    .map(|(r, why)| format!("{r}: {why}"))
                    .collect::<Vec<_>>()
                    .join(", ");
                let failure = QuorumFailure { group: g.name.clone(), required: g.required, acked, failed, failures };
                self.decided = Some(QuorumOutcome::Failed(failure));
                return;
            }
            all_reached &= acked >= g.required;
        }
        if all_reached {
            self.decided = Some(QuorumOutcome::Reached);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quorum_of_three_reaches_on_two_acks() {
        let mut t = QuorumTracker::simple(vec![1, 2, 3], 2);
        assert_eq!(t.ack(&1), QuorumOutcome::Pending);
        assert_eq!(t.ack(&1), QuorumOutcome::Pending, "a duplicate ack counts once");
        assert_eq!(t.fail(&3, "timeout"), QuorumOutcome::Pending);
        assert_eq!(t.ack(&2), QuorumOutcome::Reached);
        assert_eq!(t.fail(&2, "late"), QuorumOutcome::Reached, "a decision never changes");
    }

    #[test]
    fn fails_as_soon_as_the_requirement_is_out_of_reach_and_says_why() {
        let mut t = QuorumTracker::simple(vec![1, 2, 3], 2);
        t.ack(&1);
        assert_eq!(t.fail(&2, "connection refused"), QuorumOutcome::Pending);
        let QuorumOutcome::Failed(f) = t.fail(&3, "timeout after 2000 ms") else { panic!("should fail") };
        assert_eq!((f.required, f.acked, f.failed), (2, 1, 2));
        assert!(f.to_string().contains("2: connection refused"), "{f}");
        assert!(f.to_string().contains("3: timeout"), "{f}");
    }

    #[test]
    fn each_quorum_needs_every_zone() {
        let g = |name: &str, members: Vec<u32>| QuorumGroup { name: name.into(), members, required: 2 };
        let mut t = QuorumTracker::new(vec![g("zone-a", vec![1, 2, 3]), g("zone-b", vec![4, 5, 6])]);
        t.ack(&1);
        t.ack(&2);
        assert_eq!(t.outcome(), QuorumOutcome::Pending, "zone-b has not answered");
        t.ack(&4);
        assert_eq!(t.ack(&5), QuorumOutcome::Reached);
        let mut t = QuorumTracker::new(vec![g("zone-a", vec![1, 2, 3]), g("zone-b", vec![4, 5, 6])]);
        t.fail(&4, "down");
        let QuorumOutcome::Failed(f) = t.fail(&5, "down") else { panic!("zone-b lost its quorum") };
        assert_eq!(f.group, "zone-b");
    }

    #[test]
    fn an_impossible_requirement_fails_at_once() {
        let t = QuorumTracker::simple(vec![1], 2);
        assert!(matches!(t.outcome(), QuorumOutcome::Failed(_)));
        assert_eq!(QuorumTracker::simple(vec![1, 2], 2).pending(), vec![1, 2]);
    }
}
