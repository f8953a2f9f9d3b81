//! Client library of RingKV, a Dynamo-style distributed key-value store.
//!
//! [`Client`] speaks the `ringkv.v1.KV` and `ringkv.v1.Admin` gRPC services
//! over one multiplexed HTTP/2 connection (a tonic `Channel`); clones share
//! that connection and are cheap.
//!
//! ```no_run
//! # async fn demo() -> Result<(), ringkv_client::ClientError> {
//! use ringkv_client::{Client, PutOptions};
//!
//! let client = Client::connect("127.0.0.1:7100").await?;
//! client.put("greeting", "hello", PutOptions::default()).await?;
//! if let Some(record) = client.get("greeting").await? {
//!     println!("{} sibling(s), version {}", record.siblings.len(), record.version);
//! }
//! # Ok(())
//! # }
//! ```
//!
//! With TLS and a token (the cluster's CA; a client certificate is optional):
//!
//! ```no_run
//! # async fn demo() -> Result<(), ringkv_client::ClientError> {
//! use ringkv_client::{Client, Token, tls::ClientTlsFiles};
//!
//! let client = Client::builder("https://node-1.ringkv:7100")
//!     .tls(ClientTlsFiles { ca_file: "ca.pem".into(), cert_file: None, key_file: None })
//!     .token(Token::new("alice.c2VjcmV0")?)
//!     .connect()
//!     .await?;
//! # drop(client); Ok(()) }
//! ```
//!
//! Every request has a timeout (5 s by default). Only idempotent reads
//! (get, batch get, list, scan and the admin queries) are retried, and only
//! when the node is unavailable or the connection failed; writes are never
//! retried because a retry could apply them twice.
//!
//! # Layout
//! - [`client`]: [`Client`], [`ClientBuilder`], request routing, timeouts and retries.
//! - `kv`: the typed methods of the KV service (get, put, delete, ...).
//! - `admin`: the typed methods of the Admin service.
//! - [`types`]: request options and results ([`PutOptions`], [`Record`], ...).
//! - [`consistency`]: parsing and printing consistency levels (`QUORUM`, `r=2`).
//! - [`connection`]: [`ConnectionConfig`] (endpoint, TLS files, token), dialing
//!   plaintext or TLS, and [`TlsProblem`] (what a failed handshake means).
//! - [`auth`]: [`Token`] (redacted in `Debug`) and the interceptor that sends it.
//! - [`endpoint`]: parsing `host:port` / `http://host:port` / `https://host:port` endpoints.
//! - [`retry`]: the retry policy and its backoff schedule.
//! - [`tls`]: PEM loading, rustls client configurations and the TLS connector
//!   (also used by the node's peer pool).
//! - [`error`]: [`ClientError`], one variant per failure a caller can act on.
#![warn(missing_docs)]

mod admin;
pub mod auth;
pub mod client;
pub mod connection;
pub mod consistency;
pub mod endpoint;
pub mod error;
mod kv;
pub mod retry;
pub mod tls;
pub mod types;

pub use admin::RepairStream;
pub use auth::{Token, TokenError};
pub use client::{Client, ClientBuilder};
pub use connection::{ConnectionConfig, TlsProblem};
pub use consistency::{ConsistencyParseError, format_consistency, parse_consistency};
pub use endpoint::DEFAULT_PORT;
pub use error::ClientError;
pub use retry::RetryPolicy;
pub use types::{BatchOp, CasExpectation, ListOptions, PutOptions, Record, ScanOptions};

/// The generated protobuf types of the RingKV API (`ringkv.v1`), re-exported
/// so that callers need no direct dependency on `ringkv-proto`.
pub use ringkv_proto::v1 as proto;
