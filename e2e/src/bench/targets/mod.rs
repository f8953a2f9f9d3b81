//! Implementations of [`Target`](super::target::Target), one file per store.
//!
//! - [`ringkv_grpc`]: RingKV through `ringkv_client` (gRPC).
//! - [`ringkv_http`]: RingKV's HTTP API through reqwest, raw bodies.
//! - [`redis`]: Redis over RESP.
//! - [`etcd`]: etcd's v3 KV API over gRPC.

pub mod etcd;
pub mod redis;
pub mod ringkv_grpc;
pub mod ringkv_http;

pub use self::redis::Redis;
pub use etcd::Etcd;
pub use ringkv_grpc::RingKvGrpc;
pub use ringkv_http::RingKvHttp;
