//! [`ConnectionConfig`]: how a client reaches a node (endpoint, TLS files,
//! bearer token), shared by every client type and by kvctl and kvbench;
//! dialing (plaintext, or TLS through [`TlsConnector`] for `https://`); and
//! [`TlsProblem`], the classification of a failed handshake into an
//! `RKV-TLS-*` error that says what to fix.
//!
//! Invariant: the token is only ever handed to the [`Authorization`]
//! interceptor; `Debug` of everything here redacts it.

use std::error::Error as StdError;

use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};

use crate::auth::{Authorization, Token};
use crate::endpoint::ParsedEndpoint;
use crate::error::ClientError;
use crate::tls::{ClientTlsFiles, TlsConnector};

/// A channel whose every call carries the configured token.
pub(crate) type AuthChannel = InterceptedService<Channel, Authorization>;

/// Where and how to connect: one endpoint (`host:port`, `http://host:port`
/// or `https://host:port`), the TLS files for `https://` endpoints and an
/// optional bearer token. `Debug` shows the token's user only.
///
/// ```no_run
/// # async fn demo() -> Result<(), ringkv_client::ClientError> {
/// use ringkv_client::{ConnectionConfig, Token, tls::ClientTlsFiles};
///
/// let tls = ClientTlsFiles { ca_file: "ca.pem".into(), cert_file: None, key_file: None };
/// let token = Token::new("alice.c2VjcmV0")?;
/// let client = ConnectionConfig::new("https://node-1.ringkv:7100")
///     .with_tls(tls)
///     .with_token(token)
///     .builder()
///     .connect()
///     .await?;
/// # drop(client); Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionConfig {
    /// The node to talk to.
    pub endpoint: String,
    /// CA (and optional client certificate) for `https://` endpoints;
    /// ignored by plaintext ones.
    pub tls: Option<ClientTlsFiles>,
    /// Sent as `authorization: Bearer <token>` on every call.
    pub token: Option<Token>,
}

impl ConnectionConfig {
    /// A plaintext-or-TLS (by scheme) connection to `endpoint` without a token.
    pub fn new(endpoint: impl Into<String>) -> Self {
        Self { endpoint: endpoint.into(), tls: None, token: None }
    }

    /// With these TLS files.
    pub fn with_tls(mut self, tls: ClientTlsFiles) -> Self {
        self.tls = Some(tls);
        self
    }

    /// With this bearer token.
    pub fn with_token(mut self, token: Token) -> Self {
        self.token = Some(token);
        self
    }

    /// The same TLS files and token for another node: `address` is a
    /// `host:port` (as `kvctl status` shows) and gets this endpoint's scheme.
    pub fn for_node(&self, address: &str) -> Self {
        Self { endpoint: crate::endpoint::same_scheme(&self.endpoint, address), ..self.clone() }
    }

    /// A [`crate::ClientBuilder`] of this connection with the default settings.
    pub fn builder(&self) -> crate::ClientBuilder {
        crate::ClientBuilder::new(self.endpoint.clone()).connection(self.clone())
    }

    /// The rustls configuration of an `https://` endpoint.
    fn tls_config(&self, parsed: &ParsedEndpoint) -> Result<rustls::ClientConfig, ClientError> {
        let files =
            self.tls.as_ref().ok_or_else(|| ClientError::TlsNotConfigured { endpoint: parsed.authority.clone() })?;
        files.load().map_err(|source| ClientError::TlsFiles { source })
    }

    /// Opens the connection (TLS for `https://`) and
    /// wraps it in the token interceptor.
    pub(crate) async fn dial(&self, endpoint: Endpoint, parsed: &ParsedEndpoint) -> Result<AuthChannel, ClientError> {
        let failed = |source: tonic::transport::Error| match TlsProblem::find(&source) {
            Some(problem) => ClientError::Tls { endpoint: parsed.authority.clone(), problem },
            None => ClientError::Connect { endpoint: parsed.authority.clone(), tls: parsed.tls, source },
        };
        let channel = if parsed.tls {
            let connector = TlsConnector::new(self.tls_config(parsed)?);
            endpoint.connect_with_connector(connector).await.map_err(failed)?
        } else {
            endpoint.connect().await.map_err(failed)?
        };
        Ok(InterceptedService::new(channel, Authorization::new(self.token.as_ref())))
    }
}

/// Why a TLS connection failed, as the client saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TlsProblem {
    /// The node's certificate is not signed by the CA the client trusts.
    UnknownCa,
    /// The node's certificate does not name the host the client dialed.
    WrongName,
    /// The node's certificate has expired.
    Expired,
    /// The node's certificate is not valid yet.
    NotYetValid,
    /// The node requires a client certificate, or refused the one given.
    ClientCertificateRefused,
    /// The node did not answer in TLS (a plaintext port?).
    NotTls,
    /// Anything else the TLS layer reported.
    Other {
        /// rustls' description.
        reason: String,
    },
}

impl std::fmt::Display for TlsProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = match self {
            Self::UnknownCa => {
                "RKV-TLS-041: the node's certificate is signed by an unknown CA: pass --tls-ca with the cluster CA (RINGKV_TLS_CA)"
            }
            Self::WrongName => {
                "RKV-TLS-042: the node's certificate is not valid for this host name: connect with a name the certificate lists (its DNS name or IP address)"
            }
            Self::Expired => {
                "RKV-TLS-043: the node's certificate has expired: renew the node's certificate (or check this machine's clock)"
            }
            Self::NotYetValid => {
                "RKV-TLS-044: the node's certificate is not valid yet: check the clocks of this machine and the CA"
            }
            Self::ClientCertificateRefused => {
                "RKV-TLS-045: the node requires a client certificate or refused this one: pass --tls-cert and --tls-key with a certificate signed by the cluster's client CA"
            }
            Self::NotTls => {
                "RKV-TLS-046: the node did not answer in TLS: is TLS on there? use http://HOST:PORT (or a bare HOST:PORT) for a plaintext node"
            }
            Self::Other { reason } => {
                return write!(f, "RKV-TLS-047: TLS failed: {reason}; check the CA, certificate and key files");
            }
        };
        f.write_str(text)
    }
}

impl TlsProblem {
    /// The TLS problem somewhere in `error`'s chain of causes, if any.
    pub fn find(error: &(dyn StdError + 'static)) -> Option<Self> {
        let mut cause: Option<&(dyn StdError + 'static)> = Some(error);
        while let Some(current) = cause {
            if let Some(rustls) = as_rustls(current) {
                return Some(Self::classify(rustls));
            }
            cause = current.source();
        }
        None
    }

    fn classify(error: &rustls::Error) -> Self {
        use rustls::{AlertDescription as Alert, CertificateError as Cert, Error};
        match error {
            Error::InvalidCertificate(Cert::UnknownIssuer | Cert::BadSignature) => Self::UnknownCa,
            Error::InvalidCertificate(Cert::NotValidForName | Cert::NotValidForNameContext { .. }) => Self::WrongName,
            Error::InvalidCertificate(Cert::Expired | Cert::ExpiredContext { .. }) => Self::Expired,
            Error::InvalidCertificate(Cert::NotValidYet | Cert::NotValidYetContext { .. }) => Self::NotYetValid,
            Error::AlertReceived(
                Alert::CertificateRequired
                | Alert::BadCertificate
                | Alert::UnknownCA
                | Alert::CertificateUnknown
                | Alert::CertificateExpired
                | Alert::AccessDenied,
            ) => Self::ClientCertificateRefused,
            Error::InvalidMessage(_) | Error::InappropriateMessage { .. } => Self::NotTls,
            other => Self::Other { reason: other.to_string() },
        }
    }
}

/// `error` as a rustls error, looking inside an `io::Error` (whose
/// `source()` skips the error it wraps).
fn as_rustls<'a>(error: &'a (dyn StdError + 'static)) -> Option<&'a rustls::Error> {
    if let Some(rustls) = error.downcast_ref::<rustls::Error>() {
        return Some(rustls);
    }
    let inner = error.downcast_ref::<std::io::Error>()?.get_ref()?;
    inner.downcast_ref::<rustls::Error>()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handshake_failures_say_what_to_fix() {
        let io = |e: rustls::Error| std::io::Error::other(e);
        let unknown = io(rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer));
        assert_eq!(TlsProblem::find(&unknown), Some(TlsProblem::UnknownCa));
        assert!(TlsProblem::UnknownCa.to_string().contains("--tls-ca"));
        let required = io(rustls::Error::AlertReceived(rustls::AlertDescription::CertificateRequired));
        assert_eq!(TlsProblem::find(&required), Some(TlsProblem::ClientCertificateRefused));
        assert!(TlsProblem::ClientCertificateRefused.to_string().contains("--tls-cert"));
        let plain = io(rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType));
        assert_eq!(TlsProblem::find(&plain), Some(TlsProblem::NotTls));
        assert_eq!(TlsProblem::find(&std::io::Error::other("connection refused")), None);
    }

    #[test]
    fn debug_of_a_config_redacts_the_token() {
        let token = Token::new("alice.topsecret").unwrap_or_else(|e| panic!("{e}"));
        let config = ConnectionConfig::new("https://a:1").with_token(token);
        let text = format!("{config:?} {:?}", config.for_node("b:2"));
        assert!(!text.contains("topsecret") && text.contains("alice"), "{text}");
        assert_eq!(config.for_node("b:2").endpoint, "https://b:2");
    }
}
