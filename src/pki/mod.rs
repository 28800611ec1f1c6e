//! Portico certificate authority: CA, admin client certificate, server
//! certificate, agent certificates.
//!
//! Everything lives under `<data_dir>/pki/`:
//!
//! | file | what |
//! |---|---|
//! | `ca.crt`, `ca.key` | the Portico CA (10 years, pathlen 0) |
//! | `admin.crt`, `admin.key` | admin client certificate (`CN=admin`, 2 years) |
//! | `admin.p12`, `admin.p12.password` | the same as a legacy PKCS#12 for browsers |
//! | `admin.hardware-bound` | present when `admin.crt` certifies a hardware key (then no `admin.key`, no `.p12`) |
//! | `server.crt`, `server.key` | server certificate for the by-IP panel vhost (:9292) |
//! | `agents/<label>-<serial>.crt` | every agent certificate issued |
//!
//! Keys are ECDSA P-256, written with mode 0600. All writes are atomic.

mod ca;
mod files;
mod hardware;
mod info;
mod init;
mod issue;
mod p12;
mod serial;
#[cfg(test)]
mod tests;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use time::OffsetDateTime;

pub use hardware::{AdminMode, Bound, Recovered};
pub use serial::{normalize_serial, validate_label};

const CA_CRT: &str = "ca.crt";
const CA_KEY: &str = "ca.key";
const ADMIN_CRT: &str = "admin.crt";
const ADMIN_KEY: &str = "admin.key";
const ADMIN_P12: &str = "admin.p12";
const ADMIN_P12_PASSWORD: &str = "admin.p12.password";
const SERVER_CRT: &str = "server.crt";
const SERVER_KEY: &str = "server.key";
const AGENTS_DIR: &str = "agents";

/// Errors of the PKI layer.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// A file operation failed; `context` names the operation and path.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, with the path.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Building, signing or parsing a certificate or bundle failed (internal).
    #[error("certificate error: {0}")]
    Cert(String),
    /// A certificate signing request was rejected; the text is safe to show
    /// to the client that sent it.
    #[error("invalid certificate request: {0}")]
    InvalidCsr(String),
    /// An agent label does not match `[a-z0-9-]{1,63}` without leading or
    /// trailing `-`.
    #[error("Invalid agent label: use 1-63 characters a-z, 0-9 and '-', not starting or ending with '-'")]
    InvalidLabel,
    /// The CA (or the admin certificate) does not exist yet; run `portico init`.
    #[error("the certificate authority is not initialized")]
    NotInitialized,
    /// The admin certificate's key lives in the operator's hardware key
    /// store: there is no `.p12` to give out and none to rotate.
    #[error(
        "The admin certificate is hardware-bound: its key never leaves your key store, so there is no .p12 to download or rotate. Bind another hardware key with a new CSR, or run `portico recover-admin` inside the container if the key is lost"
    )]
    HardwareBound,
    /// Files on disk contradict each other (for example a certificate whose
    /// key is missing) and fixing it would mean replacing existing material.
    #[error("inconsistent pki directory: {0}")]
    Inconsistent(String),
}

impl From<rcgen::Error> for PkiError {
    fn from(e: rcgen::Error) -> Self {
        PkiError::Cert(e.to_string())
    }
}

/// Summary of one certificate, for APIs and the audit log.
#[derive(Debug, Clone, serde::Serialize, PartialEq, Eq)]
pub struct CertInfo {
    /// First common name of the subject (`admin`, `agent:<label>`, `Portico CA`).
    pub subject_cn: String,
    /// Serial as [`normalize_serial`] prints it (uppercase hex, no leading zeros).
    pub serial: String,
    /// Start of validity.
    #[serde(with = "time::serde::rfc3339")]
    pub not_before: OffsetDateTime,
    /// End of validity.
    #[serde(with = "time::serde::rfc3339")]
    pub not_after: OffsetDateTime,
    /// SHA-256 of the DER certificate, uppercase hex with colons, as
    /// `openssl x509 -noout -fingerprint -sha256` prints it.
    pub sha256_fingerprint: String,
}

/// What [`Pki::init`] found or created.
#[derive(Debug, Clone, serde::Serialize)]
pub struct InitReport {
    /// File names (relative to the pki dir) created by this run; empty when
    /// everything already existed.
    pub created: Vec<&'static str>,
    /// The CA certificate.
    pub ca: CertInfo,
    /// The admin client certificate.
    pub admin: CertInfo,
    /// The server certificate for the by-IP vhost.
    pub server: CertInfo,
    /// Where the admin PKCS#12 bundle is.
    pub p12_path: PathBuf,
    /// Where the bundle's password is.
    pub p12_password_path: PathBuf,
    /// Whether the admin certificate is hardware-bound (then there is no
    /// bundle at the two paths above).
    pub admin_mode: AdminMode,
}

/// An agent certificate generated on the server, handed out once.
///
/// The private key is not kept on disk; `Debug` masks the key and password.
#[derive(Clone)]
pub struct IssuedAgent {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// The PKCS#8 private key, PEM.
    pub key_pem: String,
    /// Key, certificate and CA as a legacy PKCS#12 bundle.
    pub p12: Vec<u8>,
    /// Password of `p12`.
    pub p12_password: String,
    /// Summary of the certificate.
    pub info: CertInfo,
}

impl fmt::Debug for IssuedAgent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedAgent")
            .field("cert_pem", &self.cert_pem)
            .field("key_pem", &"***")
            .field("p12", &format_args!("<{} bytes>", self.p12.len()))
            .field("p12_password", &"***")
            .field("info", &self.info)
            .finish()
    }
}

/// The certificate authority stored under `<data_dir>/pki/`.
///
/// Cheap to clone; clones share one lock that serializes writes made through
/// this process (rotation, issuance), so concurrent panel requests cannot
/// interleave half-written sets of files.
#[derive(Debug, Clone)]
pub struct Pki {
    dir: PathBuf,
    agent_validity: time::Duration,
    write_lock: Arc<Mutex<()>>,
}

impl Pki {
    /// A handle on `data_dir/pki`; touches nothing on disk.
    pub fn new(data_dir: &Path) -> Pki {
        Pki { dir: data_dir.join("pki"), agent_validity: ca::AGENT_VALIDITY, write_lock: Arc::new(Mutex::new(())) }
    }

    /// Sets the validity of agent certificates (default 1 year).
    pub fn with_agent_validity(mut self, validity: time::Duration) -> Pki {
        self.agent_validity = validity;
        self
    }

    /// The pki directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Path of the CA certificate (for nginx `ssl_client_certificate`).
    pub fn ca_cert_path(&self) -> PathBuf {
        self.path(CA_CRT)
    }

    /// Paths of the server certificate and key for the :9292 vhost.
    pub fn server_cert_paths(&self) -> (PathBuf, PathBuf) {
        (self.path(SERVER_CRT), self.path(SERVER_KEY))
    }

    /// The CA certificate as PEM, for download and agent trust stores.
    pub fn ca_pem(&self) -> Result<String, PkiError> {
        files::read_required_string(&self.path(CA_CRT))
    }

    /// Summary of the CA certificate.
    pub fn ca_info(&self) -> Result<CertInfo, PkiError> {
        info::cert_info_pem(&self.ca_pem()?)
    }

    /// Summary of the current admin client certificate.
    pub fn admin_info(&self) -> Result<CertInfo, PkiError> {
        info::cert_info_pem(&files::read_required_string(&self.path(ADMIN_CRT))?)
    }

    /// The admin PKCS#12 bundle (`admin.p12`) bytes; none when the admin
    /// certificate is hardware-bound.
    pub fn admin_p12(&self) -> Result<Vec<u8>, PkiError> {
        self.require_exportable()?;
        files::read_required(&self.path(ADMIN_P12))
    }

    /// The password of the admin PKCS#12 bundle.
    pub fn admin_p12_password(&self) -> Result<String, PkiError> {
        self.require_exportable()?;
        let text = files::read_required_string(&self.path(ADMIN_P12_PASSWORD))?;
        Ok(text.trim_end().to_owned())
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn lock(&self) -> MutexGuard<'_, ()> {
        // The guarded data is `()`; a panic elsewhere cannot corrupt it.
        self.write_lock.lock().unwrap_or_else(|e| e.into_inner())
    }
}
