//! Membership: which nodes form the cluster, their tokens, and which are alive.
//!
//! [`ClusterView`] is the interface the coordinator reads: members, the ring
//! built from their tokens, and liveness. Today it is filled by static
//! membership ([`StaticMembership`]: seeds from config, a `Hello` exchange
//! every second that also spreads the members each node knows, and a peer is
//! DOWN when it has not answered for `down_after`). Gossip with a phi-accrual
//! detector replaces the shell later; the view stays.
//!
//! Invariants: the local member is always present and alive; the ring is
//! rebuilt whenever a member's tokens, zone or rack change; every liveness
//! change bumps the version seen by [`ClusterView::subscribe`].

mod prober;
mod view;

pub use prober::{InstantSource, StaticMembership};
pub use view::{ClusterView, Liveness, Member, MemberStatus};
