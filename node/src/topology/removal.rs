//! removenode: the lifecycle's half of removing a dead node (see the
//! module docs of `lifecycle.rs`). The dead node becomes LEAVING, written
//! into gossip on its behalf (a newer generation of its state) and pushed to
//! every live peer; the new owners pull its ranges from the surviving
//! replicas; then it becomes LEFT the same way. Gossip carries the LEFT
//! state to nodes that were down or start later, and every node saves it.
//!
//! Calls the [`Topology`] shell, the node's gossip handle and the peers'
//! `DescribeMember` / `SetMemberStatus`.

use std::sync::Arc;

use crate::membership::{Member, MemberStatus};

use super::lifecycle::Reservation;
use super::{Topology, TopologyError};

impl Topology {
    /// Checks what removing the dead node `host_id` needs, without changing anything.
    pub fn check_remove(&self, host_id: &str) -> Result<Arc<Member>, TopologyError> {
        let view = self.view();
        let member = view.member(host_id).ok_or_else(|| TopologyError::UnknownHost { host_id: host_id.to_owned() })?;
        if host_id == view.local_host_id() || view.is_alive(host_id) {
            return Err(TopologyError::HostAlive { host_id: host_id.to_owned(), what: "removed" });
        }
        if member.status == MemberStatus::Left {
            return Err(TopologyError::AlreadyLeft { host_id: host_id.to_owned() });
        }
        self.check_idle(&[host_id])?;
        // Not `normal_count() - 1`: a removal that failed half way left the node LEAVING, and a retry must pass.
        let members = self.view().members();
        let others = members.iter().filter(|m| m.host_id != host_id);
        let remaining = others.filter(|m| m.status == MemberStatus::Normal && !m.tokens.is_empty()).count();
        let rf = self.max_rf();
        if remaining < rf {
            return Err(TopologyError::TooFewNodes { what: "remove the node", remaining, rf: rf as u32 });
        }
        Ok(member)
    }

    /// [`Topology::check_remove`], and every live peer must see the node
    /// DOWN too: removing a node part of the cluster still reaches would cut
    /// it off while it serves.
    pub async fn check_remove_everywhere(&self, host_id: &str) -> Result<Arc<Member>, TopologyError> {
        let member = self.check_remove(host_id)?;
        for peer in self.live_peers().into_iter().filter(|p| p.host_id != host_id) {
            if let Ok(Some(d)) = self.peers().describe(peer.grpc_addr, host_id).await.map(|d| d.member)
                && d.alive
            {
                tracing::warn!(host_id, peer = %peer.host_id, "removenode refused: a peer still reaches the node");
                return Err(TopologyError::HostAlive { host_id: host_id.to_owned(), what: "removed" });
            }
        }
        Ok(member)
    }

    /// Removes the dead node `host_id`: LEAVING everywhere, new owners stream
    /// from the surviving replicas, then LEFT everywhere.
    pub async fn remove_node(&self, host_id: &str, _reserved: Reservation) -> Result<(), TopologyError> {
        let member = self.check_remove(host_id)?;
        self.broadcast_status(&member, MemberStatus::Leaving).await?;
        self.drive_pending(None).await?;
        self.broadcast_status(&member, MemberStatus::Left).await?;
        tracing::info!(host_id, "node removed: LEFT");
        Ok(())
    }

    /// Sets `member`'s status here and in every live peer's view.
    async fn broadcast_status(&self, member: &Member, status: MemberStatus) -> Result<(), TopologyError> {
        self.set_member_status(&member.host_id, status.clone())?;
        for peer in self.live_peers().into_iter().filter(|p| p.host_id != member.host_id) {
            self.peers().set_status(peer.grpc_addr, &member.host_id, status.clone()).await?;
        }
        Ok(())
    }

    /// Sets another member's status (removenode): written into gossip on
    /// its behalf, so that it reaches every node and outlives restarts;
    /// without gossip (a bare lifecycle in tests), into this view only.
    pub fn set_member_status(&self, host_id: &str, status: MemberStatus) -> Result<(), TopologyError> {
        let view = self.view();
        if host_id == view.local_host_id() {
            return Err(TopologyError::Precondition { reason: "a node's own status is changed by itself only".into() });
        }
        let current = view.member(host_id).ok_or_else(|| TopologyError::UnknownHost { host_id: host_id.to_owned() })?;
        if let Some(gossip) = self.gossip() {
            gossip.advertise_removal(host_id, status);
            return Ok(());
        }
        let mut m = Member::clone(&current);
        m.status = status;
        view.upsert(m);
        Ok(())
    }
}
