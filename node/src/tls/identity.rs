//! What a certificate says about its holder: [`PeerIdentity`] (CN and SAN
//! names, for mapping a client certificate to a user) and
//! [`CertificateInfo`] (serial and validity, for checks and metrics).

use std::net::IpAddr;

use rustls_pki_types::CertificateDer;
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

/// The names a verified certificate carries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerIdentity {
    /// The subject's common name (CN), when it has one.
    pub common_name: Option<String>,
    /// The DNS names of the subject alternative name extension.
    pub dns_names: Vec<String>,
    /// The IP addresses of the subject alternative name extension.
    pub ip_addresses: Vec<IpAddr>,
    /// The serial number, as lower-case hex.
    pub serial: String,
}

/// A certificate's identity and validity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateInfo {
    /// Who it names.
    pub identity: PeerIdentity,
    /// Start of validity, unix seconds.
    pub not_before: i64,
    /// End of validity, unix seconds.
    pub not_after: i64,
}

impl CertificateInfo {
    /// Parses a DER certificate; the error is the parser's reason.
    pub fn parse(der: &CertificateDer<'_>) -> Result<Self, String> {
        let (_, cert) = X509Certificate::from_der(der.as_ref()).map_err(|e| e.to_string())?;
        let common_name = cert.subject().iter_common_name().next().and_then(|cn| cn.as_str().ok()).map(str::to_owned);
        let (mut dns_names, mut ip_addresses) = (Vec::new(), Vec::new());
        if let Ok(Some(san)) = cert.subject_alternative_name() {
            for name in &san.value.general_names {
                match name {
                    GeneralName::DNSName(dns) => dns_names.push((*dns).to_owned()),
                    GeneralName::IPAddress(bytes) => ip_addresses.extend(ip_from_bytes(bytes)),
                    _ => {}
                }
            }
        }
        let serial = cert.tbs_certificate.raw_serial().iter().map(|b| format!("{b:02x}")).collect();
        Ok(Self {
            identity: PeerIdentity { common_name, dns_names, ip_addresses, serial },
            not_before: cert.validity().not_before.timestamp(),
            not_after: cert.validity().not_after.timestamp(),
        })
    }
}

fn ip_from_bytes(bytes: &[u8]) -> Option<IpAddr> {
    match bytes.len() {
        4 => <[u8; 4]>::try_from(bytes).ok().map(IpAddr::from),
        16 => <[u8; 16]>::try_from(bytes).ok().map(IpAddr::from),
        _ => None,
    }
}
