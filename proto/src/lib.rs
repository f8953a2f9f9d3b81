//! Protocol definitions of RingKV, generated from `proto/` at build time.
//!
//! - [`v1`]: the client API (`ringkv.v1.KV`) and the administration API
//!   (`ringkv.v1.Admin`).
//! - [`cluster::v1`]: the node-to-node protocol (`ringkv.cluster.v1`).
//! - [`FILE_DESCRIPTOR_SET`]: the encoded descriptors, for gRPC reflection.
#![allow(missing_docs, missing_debug_implementations, clippy::all)]

/// The client and administration API.
pub mod v1 {
    tonic::include_proto!("ringkv.v1");
}

/// Node-to-node protocols.
pub mod cluster {
    /// Version 1 of the node-to-node protocol.
    pub mod v1 {
        tonic::include_proto!("ringkv.cluster.v1");
    }
}

/// Encoded `FileDescriptorSet` of every RingKV proto, for gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("ringkv_descriptor");
