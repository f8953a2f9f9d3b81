//! etcd's v3 KV API (`etcdserverpb.KV`: Range, Put, DeleteRange), generated
//! at build time by `e2e/build.rs` from the trimmed protos vendored in
//! `e2e/proto/etcd/` (Apache-2.0, from etcd via etcd-client 0.21.1).
//!
//! Only the client is generated. Byte fields are [`bytes::Bytes`], so a value
//! is not copied on its way into a request.
#![allow(missing_docs, missing_debug_implementations, clippy::all)]

/// The KV service, its requests and responses.
pub mod etcdserverpb {
    tonic::include_proto!("etcdserverpb");
}

/// The stored key-value pair (`mvccpb.KeyValue`).
pub mod mvccpb {
    tonic::include_proto!("mvccpb");
}

pub use etcdserverpb::kv_client::KvClient;
