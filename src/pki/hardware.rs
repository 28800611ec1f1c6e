//! The hardware-bound admin certificate: the admin client certificate issued
//! for a key the operator made in a hardware key store (Secure Enclave, a
//! TPM, a smart card, a YubiKey's PIV slot), from that key's CSR. From then
//! on the appliance holds no admin key and no `.p12`, and makes none, until
//! `portico recover-admin`, run inside the container, goes back to an
//! exportable certificate.
//!
//! The mode is the marker file `admin.hardware-bound` (the binding's time)
//! beside an `admin.crt` whose key is not on disk. Each step is ordered so
//! that a crash leaves a state `Pki::init` settles: a marker whose
//! `admin.crt` still matches `admin.key` is an unfinished binding (or a
//! finished recovery) and is dropped; key and bundle files beside a bound
//! certificate are leftovers of a finished binding and are removed.

use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::ca;
use super::files::{self, MODE_PUBLIC};
use super::issue::{HARDWARE_KEY_ALGS, parse_csr};
use super::{ADMIN_CRT, ADMIN_KEY, ADMIN_P12, ADMIN_P12_PASSWORD, CertInfo, Pki, PkiError, info};

pub(crate) const ADMIN_HARDWARE: &str = "admin.hardware-bound";

/// How the admin client certificate's key is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum AdminMode {
    /// Made here and downloadable as `admin.p12` (the default).
    P12,
    /// Made in the operator's hardware key store; only its certificate is here.
    HardwareBound,
}

/// The admin certificate after a binding: the one it replaced and the new one.
#[derive(Debug)]
pub struct Bound {
    pub old: CertInfo,
    pub new: CertInfo,
    /// The new certificate, PEM, to import beside the hardware key.
    pub cert_pem: String,
}

/// The admin certificate after a recovery.
#[derive(Debug)]
pub struct Recovered {
    pub old: CertInfo,
    pub new: CertInfo,
    /// The new `admin.p12`'s password.
    pub p12_password: String,
}

impl Pki {
    /// Which kind of admin certificate is in force.
    pub fn admin_mode(&self) -> Result<AdminMode, PkiError> {
        Ok(if self.bound_since()?.is_some() { AdminMode::HardwareBound } else { AdminMode::P12 })
    }

    /// When the admin certificate was bound to a hardware key, if it is.
    pub fn bound_since(&self) -> Result<Option<OffsetDateTime>, PkiError> {
        let path = self.path(ADMIN_HARDWARE);
        if !files::exists(&path)? {
            return Ok(None);
        }
        let text = files::read_required_string(&path)?;
        // An unreadable time still means bound: the marker's presence decides.
        Ok(Some(OffsetDateTime::parse(text.trim(), &Rfc3339).unwrap_or(OffsetDateTime::UNIX_EPOCH)))
    }

    /// Refuses what needs an exportable admin key.
    pub(crate) fn require_exportable(&self) -> Result<(), PkiError> {
        match self.admin_mode()? {
            AdminMode::P12 => Ok(()),
            AdminMode::HardwareBound => Err(PkiError::HardwareBound),
        }
    }

    /// Issues the admin certificate for the key of `csr_pem` (ECDSA P-256 or
    /// P-384, Ed25519, or RSA of 2048 bits or more, the kinds hardware key
    /// stores make) and removes the exportable key, bundle and password.
    /// Only the CSR's key is used, as at agent enrollment: the certificate
    /// is `CN=admin,O=Portico`, clientAuth, whatever the CSR asked for. The
    /// caller revokes `old.serial` and records the new certificate.
    pub fn bind_admin_to_csr(&self, csr_pem: &str) -> Result<Bound, PkiError> {
        let _guard = self.lock();
        let public_key = parse_csr(csr_pem, HARDWARE_KEY_ALGS)?;
        let ca = self.load_ca()?;
        let old = self.admin_info()?;
        let cert = ca::admin_params().signed_by(&public_key, &ca.issuer)?;
        let new = info::cert_info(cert.der())?;
        let since = OffsetDateTime::now_utc().format(&Rfc3339).map_err(|e| PkiError::Cert(e.to_string()))?;
        // Marker first: a crash before the certificate lands leaves a marker
        // beside a matching key, which init drops.
        files::commit(vec![
            files::stage(&self.path(ADMIN_HARDWARE), format!("{since}\n").as_bytes(), MODE_PUBLIC)?,
            files::stage(&self.path(ADMIN_CRT), cert.pem().as_bytes(), MODE_PUBLIC)?,
        ])?;
        self.remove_exportable()?;
        Ok(Bound { old, new, cert_pem: cert.pem() })
    }

    /// Goes back to an exportable admin certificate: a new key, certificate,
    /// `admin.p12` and password, and no marker. The way back when the
    /// hardware key is lost; it needs the data directory, so only someone
    /// inside the container can run it. The caller revokes `old.serial`.
    pub fn recover_admin(&self) -> Result<Recovered, PkiError> {
        let _guard = self.lock();
        let old = self.admin_info()?;
        let (new, p12_password) = self.write_exportable_admin()?;
        files::remove(&self.path(ADMIN_HARDWARE))?;
        Ok(Recovered { old, new, p12_password })
    }

    /// At init: whether a bound admin certificate is in force, settling what
    /// a crash in a binding or a recovery left (see the module doc).
    pub(crate) fn settle_admin_mode(&self) -> Result<AdminMode, PkiError> {
        let marker = self.path(ADMIN_HARDWARE);
        if !files::exists(&marker)? {
            return Ok(AdminMode::P12);
        }
        let crt = self.path(ADMIN_CRT);
        let key = self.path(ADMIN_KEY);
        let matching = files::exists(&crt)?
            && files::exists(&key)?
            && rcgen::KeyPair::from_pem(&files::read_required_string(&key)?).is_ok_and(|k| {
                use rcgen::PublicKeyData;
                files::read_required_string(&crt)
                    .and_then(|pem| info::cert_pem_to_der(&pem))
                    .and_then(|der| info::cert_spki(&der))
                    .is_ok_and(|spki| spki == k.subject_public_key_info())
            });
        if matching || !files::exists(&crt)? {
            files::remove(&marker)?;
            return Ok(AdminMode::P12);
        }
        self.remove_exportable()?;
        Ok(AdminMode::HardwareBound)
    }

    fn remove_exportable(&self) -> Result<(), PkiError> {
        for name in [ADMIN_P12, ADMIN_P12_PASSWORD, ADMIN_KEY] {
            files::remove(&self.path(name))?;
        }
        Ok(())
    }
}
