//! [`PortBlock`]: fixed ports for nodes that must know each other's
//! addresses before any of them starts (every node seeding every other, all
//! started at once), where port 0 cannot work.
//!
//! No bind-and-release probing (another process can take a port between the
//! probe and the node's bind): a block is picked at random below Linux's
//! ephemeral range (so outgoing connections never take its ports), and a
//! node that fails to bind tells the caller to start over with another block
//! ([`is_port_conflict`]).

use std::net::SocketAddr;

/// Lowest and highest first port of a block: below the ephemeral range (32768..).
const RANGE: (u16, u16) = (20_000, 32_000);

/// `2 × nodes` consecutive ports on 127.0.0.1: node `i` gets gRPC `first + 2i`, HTTP `first + 2i + 1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortBlock {
    first: u16,
    nodes: u16,
}

impl PortBlock {
    /// A random block for `nodes` nodes.
    pub fn pick(nodes: usize) -> Self {
        let nodes = nodes as u16;
        let first = rand::random_range(RANGE.0..RANGE.1 - 2 * nodes);
        Self { first, nodes }
    }

    /// gRPC and HTTP addresses of node `i`.
    pub fn addrs(&self, i: usize) -> (SocketAddr, SocketAddr) {
        assert!(i < usize::from(self.nodes), "node {i} is outside a block of {} nodes", self.nodes);
        let port = self.first + 2 * i as u16;
        (SocketAddr::from(([127, 0, 0, 1], port)), SocketAddr::from(([127, 0, 0, 1], port + 1)))
    }

    /// The gRPC addresses of every node but `i` (its seeds).
    pub fn seeds_of(&self, i: usize) -> Vec<SocketAddr> {
        (0..usize::from(self.nodes)).filter(|&j| j != i).map(|j| self.addrs(j).0).collect()
    }
}

/// True when a node's start failed because one of its ports was taken.
pub fn is_port_conflict(error: &anyhow::Error) -> bool {
    let text = format!("{error:#}");
    text.contains("cannot listen on") || text.contains("Address already in use")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_block_gives_each_node_two_ports_and_the_others_as_seeds() {
        let block = PortBlock { first: 21_000, nodes: 3 };
        assert_eq!(block.addrs(1), ("127.0.0.1:21002".parse().unwrap(), "127.0.0.1:21003".parse().unwrap()));
        assert_eq!(block.seeds_of(1), vec!["127.0.0.1:21000".parse().unwrap(), "127.0.0.1:21004".parse().unwrap()]);
        for _ in 0..100 {
            let b = PortBlock::pick(5);
            assert!(b.first >= RANGE.0 && b.first + 10 <= RANGE.1, "{b:?}");
        }
    }

    #[test]
    fn a_bind_failure_is_told_from_other_start_failures() {
        let bind = anyhow::anyhow!("Error: cannot listen on 127.0.0.1:21000: Address already in use (os error 98)");
        assert!(is_port_conflict(&bind.context("start node 1")));
        assert!(!is_port_conflict(&anyhow::anyhow!("no RINGKV_READY line within 30s")));
    }
}
