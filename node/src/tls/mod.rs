//! TLS for every listener and for node-to-node calls (issue 13), with rustls
//! and the `ring` provider.
//!
//! - [`TlsSettings`] (from `[tls]` / `[cluster_tls]`) and
//!   [`TlsMaterial::load`]: PEM files in, checked (key matches certificate,
//!   valid now) rustls configurations out.
//! - [`TlsState`] holds the current material behind a swap; [`TlsReloader`]
//!   (a [`crate::worker::Worker`]) polls the files and swaps in valid new
//!   material; [`TlsMetrics`] counts reload errors and handshake failures.
//! - [`TlsListener`] (handshakes in their own tasks, with a deadline) and
//!   [`MaybeTlsListener`] / [`MaybeTlsStream`] for tonic, axum and plain
//!   accept loops; [`PeerIdentity`] names a verified client certificate.
//! - The client side (configurations, the tonic connector) is
//!   `ringkv_client::tls`, shared with kvctl.
//! - [`certs`]: generated CA, node and client certificates (dev, tests).
//!
//! Invariants: new connections take the current material, open ones keep
//! theirs; a refused rotation keeps the last good material; no key material
//! or secret appears in a log line or error. May call `config`, `metrics`,
//! `worker` and tonic's `Connected` trait; nothing above it.

pub mod certs;
mod error;
mod identity;
mod listener;
mod material;
mod maybe;
mod reload;
#[cfg(test)]
mod tests;

pub use error::{HandshakeRefusal, TlsError, TlsFileError};
pub use identity::{CertificateInfo, PeerIdentity};
pub use listener::{Alpn, TlsAcceptor, TlsConnectInfo, TlsConnection, TlsListener};
pub use material::{TlsMaterial, TlsSettings, unix_now};
pub use maybe::{MaybeTlsConnectInfo, MaybeTlsListener, MaybeTlsStream};
pub use reload::{TlsMetrics, TlsReloader, TlsState};

/// Default deadline of one server-side handshake.
pub const HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
