//! Certificates for `kvnode dev --secure` and tests, generated with rcgen:
//! a CA, node certificates (SANs `127.0.0.1`, `localhost` and given names,
//! usable as server and cluster client) and client certificates, written as
//! PEM files (keys `0600`).

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
};
use time::{Duration, OffsetDateTime};

use super::TlsError;

fn generate(e: rcgen::Error) -> TlsError {
    TlsError::Generate { reason: e.to_string() }
}

/// A generated certificate and its key, as PEM.
#[derive(Clone)]
pub struct IssuedCert {
    /// The certificate (PEM).
    pub cert_pem: String,
    /// The private key (PEM, PKCS#8).
    pub key_pem: String,
}

impl std::fmt::Debug for IssuedCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedCert").finish_non_exhaustive()
    }
}

impl IssuedCert {
    /// Writes `<stem>.pem` and `<stem>-key.pem` (mode 0600) into `dir`;
    /// returns the two paths.
    pub fn write(&self, dir: &Path, stem: &str) -> Result<(PathBuf, PathBuf), TlsError> {
        let cert = dir.join(format!("{stem}.pem"));
        let key = dir.join(format!("{stem}-key.pem"));
        write_file(&cert, &self.cert_pem, 0o644)?;
        write_file(&key, &self.key_pem, 0o600)?;
        Ok((cert, key))
    }
}

/// Writes through a temporary file and a rename, so a reloader never sees
/// half a file.
fn write_file(path: &Path, text: &str, mode: u32) -> Result<(), TlsError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let err = |source| TlsError::Write { path: path.into(), source };
    let tmp = path.with_extension("tmp");
    let mut file =
        std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(mode).open(&tmp).map_err(err)?;
    file.write_all(text.as_bytes()).map_err(err)?;
    file.sync_all().map_err(err)?;
    std::fs::rename(&tmp, path).map_err(err)
}

/// Validity of a generated certificate.
#[derive(Debug, Clone, Copy)]
pub struct Validity {
    /// Start.
    pub not_before: OffsetDateTime,
    /// End.
    pub not_after: OffsetDateTime,
}

impl Validity {
    /// From one hour ago for `days` days.
    pub fn days(days: i64) -> Self {
        let now = OffsetDateTime::now_utc();
        Self { not_before: now - Duration::hours(1), not_after: now + Duration::days(days) }
    }
}

/// A certificate authority that issues node and client certificates.
pub struct DevCa {
    issuer: Issuer<'static, KeyPair>,
    cert: IssuedCert,
}

impl std::fmt::Debug for DevCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevCa").finish_non_exhaustive()
    }
}

impl DevCa {
    /// A new self-signed CA named `common_name`, valid ten years.
    pub fn generate(common_name: &str) -> Result<Self, TlsError> {
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(generate)?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, common_name);
        params.key_usages =
            vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        let validity = Validity::days(3650);
        (params.not_before, params.not_after) = (validity.not_before, validity.not_after);
        let key = KeyPair::generate().map_err(generate)?;
        let cert = params.self_signed(&key).map_err(generate)?;
        let cert = IssuedCert { cert_pem: cert.pem(), key_pem: key.serialize_pem() };
        Ok(Self { issuer: Issuer::new(params, key), cert })
    }

    /// The CA certificate (its key is in `key_pem`; keep it secret).
    pub fn certificate(&self) -> &IssuedCert {
        &self.cert
    }

    /// A node certificate: SANs `127.0.0.1`, `localhost` and `names`, CN
    /// `common_name`, for server and client authentication.
    pub fn issue_node(&self, common_name: &str, names: &[String], validity: Validity) -> Result<IssuedCert, TlsError> {
        let mut sans = vec!["127.0.0.1".to_owned(), "localhost".to_owned()];
        sans.extend(names.iter().cloned());
        self.issue(common_name, sans, validity)
    }

    /// A client certificate with CN `user` (which auth maps to a user).
    pub fn issue_client(&self, user: &str, validity: Validity) -> Result<IssuedCert, TlsError> {
        self.issue(user, Vec::new(), validity)
    }

    fn issue(&self, common_name: &str, sans: Vec<String>, validity: Validity) -> Result<IssuedCert, TlsError> {
        let mut params = CertificateParams::new(sans).map_err(generate)?;
        params.distinguished_name.push(DnType::CommonName, common_name);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
        (params.not_before, params.not_after) = (validity.not_before, validity.not_after);
        let key = KeyPair::generate().map_err(generate)?;
        let cert = params.signed_by(&key, &self.issuer).map_err(generate)?;
        Ok(IssuedCert { cert_pem: cert.pem(), key_pem: key.serialize_pem() })
    }
}

/// The files [`write_dev_certs`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevCertFiles {
    /// `ca.pem`: the CA every node and client trusts.
    pub ca: PathBuf,
    /// `node.pem` / `node-key.pem`: every node's certificate (server and cluster client).
    pub node: (PathBuf, PathBuf),
    /// `client.pem` / `client-key.pem`: a client certificate with CN `admin`.
    pub client: (PathBuf, PathBuf),
}

/// Generates a CA, one node certificate (SANs `127.0.0.1`, `localhost` and
/// `names`) and an `admin` client certificate into `dir` (created if
/// missing). The CA key is not written: the dev cluster never issues more.
pub fn write_dev_certs(dir: &Path, names: &[String]) -> Result<DevCertFiles, TlsError> {
    std::fs::create_dir_all(dir).map_err(|source| TlsError::Write { path: dir.into(), source })?;
    let ca = DevCa::generate("RingKV dev CA")?;
    let ca_path = dir.join("ca.pem");
    write_file(&ca_path, &ca.certificate().cert_pem, 0o644)?;
    let node = ca.issue_node("ringkv-node", names, Validity::days(365))?.write(dir, "node")?;
    let client = ca.issue_client("admin", Validity::days(365))?.write(dir, "client")?;
    Ok(DevCertFiles { ca: ca_path, node, client })
}
