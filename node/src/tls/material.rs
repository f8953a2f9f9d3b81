//! [`TlsSettings`] (which files, which client-auth mode) and
//! [`TlsMaterial::load`]: read the PEM files, check that the key matches the
//! certificate and that the certificate is valid now, and build the rustls
//! server (and, with a CA, client) configurations.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ringkv_client::tls as pem;
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, ServerConfig};

use crate::config::{ClientAuth, ClusterTlsConfig, TlsConfig};

use super::TlsError;
use super::identity::CertificateInfo;

/// Which files a TLS listener (and, for the cluster, its client side) uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// `client` or `cluster`: the `listener` label of the TLS metrics.
    pub name: &'static str,
    /// Certificate chain (PEM, leaf first).
    pub cert_file: PathBuf,
    /// Private key (PEM).
    pub key_file: PathBuf,
    /// CA of client certificates (and, for the cluster, of servers).
    pub ca_file: Option<PathBuf>,
    /// Whether clients must present a certificate.
    pub client_auth: ClientAuth,
    /// How often the reloader checks the files.
    pub reload_interval: Duration,
}

impl TlsSettings {
    /// The client-facing settings; `None` when `[tls]` is off.
    pub fn client_facing(config: &TlsConfig) -> Option<Self> {
        config.enabled.then(|| Self {
            name: "client",
            cert_file: config.cert_file.clone(),
            key_file: config.key_file.clone(),
            ca_file: config.ca_file.clone(),
            client_auth: config.client_auth,
            reload_interval: Duration::from_millis(config.reload_interval_ms.max(1)),
        })
    }

    /// The node-to-node settings (mutual TLS, always required); `None` when
    /// `[cluster_tls]` is off.
    pub fn cluster(config: &ClusterTlsConfig) -> Option<Self> {
        config.enabled.then(|| Self {
            name: "cluster",
            cert_file: config.cert_file.clone(),
            key_file: config.key_file.clone(),
            ca_file: Some(config.ca_file.clone()),
            client_auth: ClientAuth::Required,
            reload_interval: Duration::from_millis(config.reload_interval_ms.max(1)),
        })
    }
}

/// Loaded, validated material: what the listeners and connectors use.
#[derive(Debug, Clone)]
pub struct TlsMaterial {
    /// Server configuration (no ALPN; each listener sets its own).
    pub server: Arc<ServerConfig>,
    /// Client configuration trusting the CA and presenting this node's
    /// certificate (ALPN `h2`); present when a CA is configured.
    pub client: Option<Arc<ClientConfig>>,
    /// The leaf certificate's identity and validity.
    pub certificate: CertificateInfo,
}

/// Now, in unix seconds.
pub fn unix_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

impl TlsMaterial {
    /// Loads and checks the files of `settings` at time `now` (unix seconds).
    pub fn load(settings: &TlsSettings, now: i64) -> Result<Self, TlsError> {
        let chain = pem::load_certificates(&settings.cert_file)?;
        let key = pem::load_private_key(&settings.key_file)?;
        let leaf =
            chain.first().ok_or_else(|| pem::TlsFileError::NoCertificate { path: settings.cert_file.clone() })?;
        let certificate = CertificateInfo::parse(leaf)
            .map_err(|reason| TlsError::BadCertificate { path: settings.cert_file.clone(), reason })?;
        if now < certificate.not_before {
            return Err(TlsError::NotYetValid { path: settings.cert_file.clone(), not_before: certificate.not_before });
        }
        if now > certificate.not_after {
            return Err(TlsError::Expired { path: settings.cert_file.clone(), not_after: certificate.not_after });
        }
        let provider = pem::provider();
        let signing = provider
            .key_provider
            .load_private_key(key.clone_key())
            .map_err(|e| TlsError::Config { what: "private key", reason: e.to_string() })?;
        let certified = CertifiedKey::new(chain.clone(), signing);
        match certified.keys_match() {
            Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {}
            Err(_) => {
                return Err(TlsError::KeyMismatch {
                    cert_file: settings.cert_file.clone(),
                    key_file: settings.key_file.clone(),
                });
            }
        }
        let roots = match &settings.ca_file {
            Some(ca) => Some(Arc::new(pem::load_roots(ca)?)),
            None => None,
        };
        let server = server_config(settings.client_auth, roots.clone(), Arc::new(certified))?;
        let client = match roots {
            Some(roots) => Some(Arc::new(pem::client_config((*roots).clone(), Some((chain, key)))?)),
            None => None,
        };
        Ok(Self { server: Arc::new(server), client, certificate })
    }
}

fn server_config(
    auth: ClientAuth,
    roots: Option<Arc<rustls::RootCertStore>>,
    certified: Arc<CertifiedKey>,
) -> Result<ServerConfig, TlsError> {
    let config_error = |what| move |e: rustls::Error| TlsError::Config { what, reason: e.to_string() };
    let provider = pem::provider();
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(config_error("protocol versions"))?;
    let builder = match (auth, roots) {
        (ClientAuth::None, _) => builder.with_no_client_auth(),
        (mode, Some(roots)) => {
            let verifier = WebPkiClientVerifier::builder_with_provider(roots, provider);
            let verifier = if mode == ClientAuth::Optional { verifier.allow_unauthenticated() } else { verifier };
            let verifier =
                verifier.build().map_err(|e| TlsError::Config { what: "client verifier", reason: e.to_string() })?;
            builder.with_client_cert_verifier(verifier)
        }
        (_, None) => {
            return Err(TlsError::Config { what: "client verifier", reason: "client_auth needs ca_file".into() });
        }
    };
    Ok(builder.with_cert_resolver(Arc::new(SingleCert(certified))))
}

/// Serves one certificate to every client.
#[derive(Debug)]
struct SingleCert(Arc<CertifiedKey>);

impl ResolvesServerCert for SingleCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(&self.0))
    }
}
