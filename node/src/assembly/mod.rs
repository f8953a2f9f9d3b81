//! The one place a node is assembled from its [`Config`](crate::config::Config).
//!
//! Two levels, so the simulations build their nodes the way `kvnode` does:
//! - [`NodeCore`] (`core`): every part that does no I/O of its own, built from
//!   an already-open storage, a clock and the network ports ([`NodePorts`],
//!   the [`StreamPeers`](crate::topology::StreamPeers) of its topology, the
//!   [`GossipTransport`](crate::membership::GossipTransport) of its gossip):
//!   keyspaces, view, coordinator, hints, anti-entropy, topology, workers.
//! - [`Node`] (`node`): the process on top of it: fjall storage, the
//!   persistent identity, the gRPC peer layer, the listeners and servers
//!   (`servers`), how the node enters the ring (`entry`), graceful stop.
//!
//! It sits at the very top: it may call every module; only the binaries
//! (`main`, `dev`) and tests may call it (see `node/tests/deps.rs`).

mod core;
mod entry;
mod node;
mod servers;

pub use core::{CoreParts, NodeCore, NodePorts};
pub use node::{Node, NodeError};
