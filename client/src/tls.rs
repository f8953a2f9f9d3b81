//! Client-side TLS: PEM loading, a rustls [`ClientConfig`] trusting one CA
//! (plus an optional client certificate for mutual TLS), and
//! [`TlsConnector`], a tonic connector (TCP + TLS with ALPN `h2`) for
//! `Endpoint::connect_with_connector`.
//!
//! Shared by kvctl, this crate's [`crate::Client`] users and the node's peer
//! pool (the node crate depends on this one, never the reverse). Only the
//! `ring` crypto provider is used. Errors carry stable `RKV-TLS-*` codes and
//! name the file, never its contents.

use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use hyper_util::rt::TokioIo;
use rustls::ClientConfig;
use rustls::crypto::CryptoProvider;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::net::TcpStream;
use tonic::codegen::http::Uri;

/// Why PEM material or a client TLS configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsFileError {
    /// The file could not be read.
    #[error("RKV-TLS-001: cannot read {path}: {source}; check that the file exists and this process may read it")]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// The file holds no PEM `CERTIFICATE` block.
    #[error("RKV-TLS-002: {path} holds no PEM certificate; give a file with a `-----BEGIN CERTIFICATE-----` block")]
    NoCertificate {
        /// The file.
        path: PathBuf,
    },
    /// The file holds no PEM private key.
    #[error("RKV-TLS-003: {path} holds no PEM private key; give a PKCS#8, PKCS#1 or SEC1 key file")]
    NoKey {
        /// The file.
        path: PathBuf,
    },
    /// The file is not valid PEM.
    #[error("RKV-TLS-004: {path} is not valid PEM ({reason}); replace it with the PEM file your CA issued")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What the PEM parser found wrong (no key material).
        reason: String,
    },
    /// rustls refused the material (a CA certificate it cannot use, a key
    /// type it does not support, a certificate that does not match its key).
    #[error("RKV-TLS-005: TLS material refused ({what}): {reason}; check the certificate and key files")]
    Refused {
        /// Which part was refused.
        what: &'static str,
        /// rustls' reason.
        reason: String,
    },
}

/// The crypto provider every RingKV TLS configuration uses (`ring`).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read(path: &Path) -> Result<Vec<u8>, TlsFileError> {
    std::fs::read(path).map_err(|source| TlsFileError::Unreadable { path: path.into(), source })
}

/// Every certificate of a PEM file, in order (a chain: leaf first).
pub fn load_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsFileError> {
    let bytes = read(path)?;
    let certs: Result<Vec<_>, _> = CertificateDer::pem_slice_iter(&bytes).collect();
    let certs = certs.map_err(|e| TlsFileError::Malformed { path: path.into(), reason: e.to_string() })?;
    if certs.is_empty() {
        return Err(TlsFileError::NoCertificate { path: path.into() });
    }
    Ok(certs)
}

/// The first private key of a PEM file.
pub fn load_private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsFileError> {
    let bytes = read(path)?;
    match PrivateKeyDer::from_pem_slice(&bytes) {
        Ok(key) => Ok(key),
        Err(rustls_pki_types::pem::Error::NoItemsFound) => Err(TlsFileError::NoKey { path: path.into() }),
        // The parser's message names the PEM structure, not the key bytes.
        Err(e) => Err(TlsFileError::Malformed { path: path.into(), reason: e.to_string() }),
    }
}

/// A root store holding every certificate of `ca_file`.
pub fn load_roots(ca_file: &Path) -> Result<rustls::RootCertStore, TlsFileError> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in load_certificates(ca_file)? {
        roots.add(cert).map_err(|e| TlsFileError::Refused { what: "CA certificate", reason: e.to_string() })?;
    }
    Ok(roots)
}

/// A client configuration trusting only `roots`, presenting `identity`
/// (certificate chain and key) when given, speaking ALPN `h2`.
pub fn client_config(
    roots: rustls::RootCertStore,
    identity: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
) -> Result<ClientConfig, TlsFileError> {
    let refused = |what| move |e: rustls::Error| TlsFileError::Refused { what, reason: e.to_string() };
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(refused("protocol versions"))?
        .with_root_certificates(roots);
    let mut config = match identity {
        Some((chain, key)) => builder.with_client_auth_cert(chain, key).map_err(refused("client certificate"))?,
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(config)
}

/// Files of a client TLS configuration (kvctl's `--tls-ca`, `--tls-cert`,
/// `--tls-key`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientTlsFiles {
    /// The CA that signed the servers' certificates.
    pub ca_file: PathBuf,
    /// This client's certificate chain, for mutual TLS.
    pub cert_file: Option<PathBuf>,
    /// The key of `cert_file`.
    pub key_file: Option<PathBuf>,
}

impl ClientTlsFiles {
    /// Loads the files into a client configuration. A certificate without a
    /// key (or the reverse) is refused.
    pub fn load(&self) -> Result<ClientConfig, TlsFileError> {
        let roots = load_roots(&self.ca_file)?;
        let identity = match (&self.cert_file, &self.key_file) {
            (Some(cert), Some(key)) => Some((load_certificates(cert)?, load_private_key(key)?)),
            (None, None) => None,
            (Some(cert), None) => return Err(TlsFileError::NoKey { path: cert.clone() }),
            (None, Some(key)) => return Err(TlsFileError::NoCertificate { path: key.clone() }),
        };
        client_config(roots, identity)
    }
}

/// Where a [`TlsConnector`] takes its configuration from at each connect:
/// fixed, or a function (the node's reloaded cluster certificate).
#[derive(Clone)]
enum Source {
    Fixed(Arc<ClientConfig>),
    Dynamic(Arc<dyn Fn() -> Arc<ClientConfig> + Send + Sync>),
}

/// A tonic connector: TCP (no Nagle) then a TLS handshake with ALPN `h2`,
/// verifying the server's name against the URI's host (or a fixed name).
///
/// ```no_run
/// # async fn demo(config: rustls::ClientConfig) -> Result<(), tonic::transport::Error> {
/// let connector = ringkv_client::tls::TlsConnector::new(config);
/// let channel = tonic::transport::Endpoint::from_static("https://127.0.0.1:7100")
///     .connect_with_connector(connector)
///     .await?;
/// # drop(channel); Ok(()) }
/// ```
#[derive(Clone)]
pub struct TlsConnector {
    source: Source,
    server_name: Option<ServerName<'static>>,
}

impl std::fmt::Debug for TlsConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsConnector").field("server_name", &self.server_name).finish_non_exhaustive()
    }
}

impl TlsConnector {
    /// A connector with a fixed configuration.
    pub fn new(config: ClientConfig) -> Self {
        Self { source: Source::Fixed(Arc::new(config)), server_name: None }
    }

    /// A connector asking `current` for the configuration at each connect,
    /// so that a rotated client certificate is used by new connections.
    pub fn dynamic(current: Arc<dyn Fn() -> Arc<ClientConfig> + Send + Sync>) -> Self {
        Self { source: Source::Dynamic(current), server_name: None }
    }

    /// Verifies the server's certificate against `name` instead of the URI's host.
    pub fn with_server_name(mut self, name: ServerName<'static>) -> Self {
        self.server_name = Some(name);
        self
    }

    fn config(&self) -> Arc<ClientConfig> {
        match &self.source {
            Source::Fixed(config) => Arc::clone(config),
            Source::Dynamic(current) => current(),
        }
    }

    /// Connects to `host:port` and runs the TLS handshake.
    pub async fn connect(&self, host: &str, port: u16) -> io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
        let name = match &self.server_name {
            Some(name) => name.clone(),
            None => ServerName::try_from(host.trim_start_matches('[').trim_end_matches(']').to_owned())
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("bad TLS server name {host}: {e}")))?,
        };
        let tcp = TcpStream::connect((host.trim_start_matches('[').trim_end_matches(']'), port)).await?;
        tcp.set_nodelay(true)?;
        tokio_rustls::TlsConnector::from(self.config()).connect(name, tcp).await
    }
}

impl tower::Service<Uri> for TlsConnector {
    type Response = TokioIo<tokio_rustls::client::TlsStream<TcpStream>>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<Self::Response>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            let host =
                uri.host().ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, format!("no host in {uri}")))?;
            let port = uri.port_u16().unwrap_or(if uri.scheme_str() == Some("http") { 80 } else { 443 });
            this.connect(host, port).await.map(TokioIo::new)
        })
    }
}
