//! [`TlsError`] (loading, validating and generating TLS material) and
//! [`HandshakeRefusal`] (why a TLS handshake on a listener failed).

use std::path::PathBuf;

pub use ringkv_client::tls::TlsFileError;

/// Why TLS material was refused. Every message starts with a stable
/// `RKV-TLS-*` code, names the file and says what to fix; none holds key
/// material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A PEM file could not be read or parsed (`RKV-TLS-001`..`005`).
    #[error(transparent)]
    File(#[from] TlsFileError),
    /// The private key is not the key of the certificate.
    #[error(
        "RKV-TLS-006: the key in {key_file} does not match the certificate in {cert_file}; \
         give the key that was issued with this certificate"
    )]
    KeyMismatch {
        /// The certificate file.
        cert_file: PathBuf,
        /// The key file.
        key_file: PathBuf,
    },
    /// The certificate's validity ended.
    #[error("RKV-TLS-007: the certificate in {path} expired at {not_after} (unix seconds); renew it")]
    Expired {
        /// The certificate file.
        path: PathBuf,
        /// Its `notAfter`, in unix seconds.
        not_after: i64,
    },
    /// The certificate's validity has not begun.
    #[error(
        "RKV-TLS-008: the certificate in {path} is not valid before {not_before} (unix seconds); \
         check this machine's clock or use a certificate valid now"
    )]
    NotYetValid {
        /// The certificate file.
        path: PathBuf,
        /// Its `notBefore`, in unix seconds.
        not_before: i64,
    },
    /// The certificate is PEM but not a readable X.509 certificate.
    #[error("RKV-TLS-009: the certificate in {path} is not valid X.509 ({reason}); replace it")]
    BadCertificate {
        /// The certificate file.
        path: PathBuf,
        /// The parser's reason.
        reason: String,
    },
    /// rustls could not build a configuration from the material.
    #[error("RKV-TLS-010: cannot build the TLS configuration ({what}): {reason}; check the CA and certificate files")]
    Config {
        /// Which part failed.
        what: &'static str,
        /// rustls' reason.
        reason: String,
    },
    /// Generated certificates could not be written.
    #[error("RKV-TLS-011: cannot write {path}: {source}; check that the directory is writable")]
    Write {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// Certificates could not be generated.
    #[error("RKV-TLS-012: cannot generate certificates: {reason}")]
    Generate {
        /// rcgen's reason.
        reason: String,
    },
}

/// Why a TLS handshake on a listener failed, as logged and counted
/// (`ringkv_tls_handshake_failures_total{reason}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum HandshakeRefusal {
    /// The client did not speak TLS (e.g. plaintext HTTP or gRPC).
    NotTls,
    /// Mutual TLS: the client presented no certificate.
    NoCertificate,
    /// The client's certificate is not signed by the configured CA.
    WrongCa,
    /// The client's certificate has expired.
    Expired,
    /// The client's certificate is not valid yet.
    NotYetValid,
    /// The handshake did not finish in time.
    Timeout,
    /// The client closed the connection during the handshake.
    Closed,
    /// Any other TLS failure (unsupported versions, ciphers, ALPN, ...).
    Other,
}

impl HandshakeRefusal {
    /// Classifies the error of a failed `tokio_rustls` accept.
    pub fn classify(error: &std::io::Error) -> Self {
        use rustls::{CertificateError, Error};
        let Some(tls) = error.get_ref().and_then(|e| e.downcast_ref::<Error>()) else {
            return match error.kind() {
                std::io::ErrorKind::UnexpectedEof
                | std::io::ErrorKind::ConnectionReset
                | std::io::ErrorKind::BrokenPipe => Self::Closed,
                _ => Self::Other,
            };
        };
        match tls {
            Error::NoCertificatesPresented => Self::NoCertificate,
            Error::InvalidCertificate(c) => match c {
                CertificateError::UnknownIssuer | CertificateError::BadSignature => Self::WrongCa,
                CertificateError::Expired | CertificateError::ExpiredContext { .. } => Self::Expired,
                CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => Self::NotYetValid,
                _ => Self::Other,
            },
            Error::InvalidMessage(_) | Error::InappropriateMessage { .. } => Self::NotTls,
            _ => Self::Other,
        }
    }

    /// The stable code and the metric label.
    pub fn code(self) -> (&'static str, &'static str) {
        match self {
            Self::NotTls => ("RKV-TLS-020", "not_tls"),
            Self::NoCertificate => ("RKV-TLS-021", "no_certificate"),
            Self::WrongCa => ("RKV-TLS-022", "wrong_ca"),
            Self::Expired => ("RKV-TLS-023", "expired"),
            Self::NotYetValid => ("RKV-TLS-024", "not_yet_valid"),
            Self::Timeout => ("RKV-TLS-025", "timeout"),
            Self::Closed => ("RKV-TLS-026", "closed"),
            Self::Other => ("RKV-TLS-027", "other"),
        }
    }

    /// What the client should do, for the log line.
    pub fn advice(self) -> &'static str {
        match self {
            Self::NotTls => "the client spoke plaintext to a TLS port; connect with TLS (https://, --tls)",
            Self::NoCertificate => "this port needs a client certificate signed by the cluster CA",
            Self::WrongCa => "the client certificate is not signed by the configured CA",
            Self::Expired => "the client certificate has expired; renew it",
            Self::NotYetValid => "the client certificate is not valid yet; check the clocks",
            Self::Timeout => "the client did not finish the handshake in time",
            Self::Closed => "the client closed the connection during the handshake",
            Self::Other => "the TLS handshake failed",
        }
    }
}
