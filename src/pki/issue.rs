//! Issuing after init: admin rotation, server-generated agent certificates,
//! and signing agent CSRs at enrollment.

use rcgen::{PublicKeyData, SubjectPublicKeyInfo};
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::pem::parse_x509_pem;
use x509_parser::prelude::FromDer;
use x509_parser::public_key::PublicKey;

use super::ca::{self, LoadedCa};
use super::files::{self, MODE_PUBLIC, MODE_SECRET};
use super::{
    ADMIN_CRT, ADMIN_KEY, ADMIN_P12, ADMIN_P12_PASSWORD, AGENTS_DIR, CA_CRT, CA_KEY, CertInfo, IssuedAgent, Pki,
    PkiError, info, p12, validate_label,
};

/// Subject key algorithms accepted in agent CSRs.
const AGENT_KEY_ALGS: &[&rcgen::SignatureAlgorithm] =
    &[&rcgen::PKCS_ECDSA_P256_SHA256, &rcgen::PKCS_ECDSA_P384_SHA384, &rcgen::PKCS_ED25519];

/// Subject key algorithms accepted for a hardware-bound admin certificate:
/// the agents' plus RSA, which smart cards, TPMs and older YubiKeys make.
pub(crate) const HARDWARE_KEY_ALGS: &[&rcgen::SignatureAlgorithm] =
    &[&rcgen::PKCS_ECDSA_P256_SHA256, &rcgen::PKCS_ECDSA_P384_SHA384, &rcgen::PKCS_ED25519, &rcgen::PKCS_RSA_SHA256];

/// The smallest RSA key accepted, bits.
const MIN_RSA_BITS: usize = 2048;

impl Pki {
    /// Replaces the admin client certificate: new key, new serial, new
    /// `admin.p12` with a new password. Returns `(old, new)`; the caller
    /// records `old.serial` as revoked.
    ///
    /// All four files are staged first and renamed in one go, so readers see
    /// either the old set or the new one (save for the rename instants).
    pub fn rotate_admin(&self) -> Result<(CertInfo, CertInfo), PkiError> {
        let _guard = self.lock();
        self.require_exportable()?;
        let old = self.admin_info()?;
        let (new, _password) = self.write_exportable_admin()?;
        Ok((old, new))
    }

    /// A new admin key, certificate, `admin.p12` and password, all four
    /// staged first and renamed in one go. Returns the certificate and the
    /// bundle's password. The caller holds the write lock.
    pub(crate) fn write_exportable_admin(&self) -> Result<(CertInfo, String), PkiError> {
        let ca = self.load_ca()?;
        let key = ca::generate_key()?;
        let cert = ca::admin_params().signed_by(&key, &ca.issuer)?;
        let password = p12::generate_password();
        let bundle = p12::build(p12::ADMIN_FRIENDLY_NAME, key.serialized_der(), cert.der(), &ca.der, &password)?;
        let new = info::cert_info(cert.der())?;
        files::commit(vec![
            files::stage(&self.path(ADMIN_KEY), key.serialize_pem().as_bytes(), MODE_SECRET)?,
            files::stage(&self.path(ADMIN_CRT), cert.pem().as_bytes(), MODE_PUBLIC)?,
            files::stage(&self.path(ADMIN_P12_PASSWORD), format!("{password}\n").as_bytes(), MODE_SECRET)?,
            files::stage(&self.path(ADMIN_P12), &bundle, MODE_SECRET)?,
        ])?;
        Ok((new, password))
    }

    /// Generates a key and certificate (`CN=agent:<label>`) for an agent, for
    /// the panel's "create agent certificate" action.
    ///
    /// Only the certificate is kept (`agents/<label>-<serial>.crt`); the key
    /// and bundle exist solely in the returned value, to be downloaded once.
    pub fn issue_agent(&self, label: &str) -> Result<IssuedAgent, PkiError> {
        validate_label(label)?;
        let ca = self.load_ca()?;
        let key = ca::generate_key()?;
        let cert = ca::agent_params(label, self.agent_validity).signed_by(&key, &ca.issuer)?;
        let password = p12::generate_password();
        let bundle =
            p12::build(&format!("Portico agent {label}"), key.serialized_der(), cert.der(), &ca.der, &password)?;
        let info = info::cert_info(cert.der())?;
        let cert_pem = cert.pem();
        self.store_agent_cert(label, &info, &cert_pem)?;
        Ok(IssuedAgent { cert_pem, key_pem: key.serialize_pem(), p12: bundle, p12_password: password, info })
    }

    /// Signs an agent's PEM CSR at enrollment.
    ///
    /// Only the CSR's public key is used, after its self-signature verifies.
    /// The requested subject and extensions are ignored: the certificate is
    /// always `CN=agent:<label>`, clientAuth, not a CA, valid for the agent
    /// validity (1 year by default). Anything unusable is
    /// [`PkiError::InvalidCsr`] with a reason fit for the client.
    pub fn sign_agent_csr(&self, label: &str, csr_pem: &str) -> Result<(String, CertInfo), PkiError> {
        validate_label(label)?;
        let public_key = parse_csr(csr_pem, AGENT_KEY_ALGS)?;
        let ca = self.load_ca()?;
        let cert = ca::agent_params(label, self.agent_validity).signed_by(&public_key, &ca.issuer)?;
        let info = info::cert_info(cert.der())?;
        let cert_pem = cert.pem();
        self.store_agent_cert(label, &info, &cert_pem)?;
        Ok((cert_pem, info))
    }

    /// Loads the CA certificate and key; `NotInitialized` if either is missing.
    pub(crate) fn load_ca(&self) -> Result<LoadedCa, PkiError> {
        let cert_pem = files::read_required_string(&self.path(CA_CRT))?;
        let key_pem = files::read_required_string(&self.path(CA_KEY))?;
        LoadedCa::from_pem(&cert_pem, &key_pem)
    }

    /// The PEM of an agent certificate issued earlier, by label and serial.
    pub fn agent_cert_pem(&self, label: &str, serial: &str) -> Result<String, PkiError> {
        validate_label(label)?;
        let serial = super::normalize_serial(serial);
        files::read_required_string(&self.path(AGENTS_DIR).join(format!("{label}-{serial}.crt")))
    }

    fn store_agent_cert(&self, label: &str, info: &CertInfo, pem: &str) -> Result<(), PkiError> {
        let dir = self.path(AGENTS_DIR);
        files::ensure_dir(&dir)?;
        let path = dir.join(format!("{label}-{}.crt", info.serial));
        files::write_atomic(&path, pem.as_bytes(), MODE_PUBLIC)
    }
}

fn invalid(reason: &str) -> PkiError {
    PkiError::InvalidCsr(reason.to_owned())
}

/// Decodes a PEM CSR, checks its key algorithm (one of `accepted`; RSA of
/// 2048 bits or more) and self-signature, and returns its public key.
pub(crate) fn parse_csr(
    csr_pem: &str,
    accepted: &[&rcgen::SignatureAlgorithm],
) -> Result<SubjectPublicKeyInfo, PkiError> {
    if csr_pem.trim().is_empty() {
        return Err(invalid("empty request"));
    }
    // Pasted or JSON-carried PEM often has CRLF endings or indentation.
    let normalized: String = csr_pem.lines().map(|l| format!("{}\n", l.trim())).collect();
    let (_, block) = parse_x509_pem(normalized.as_bytes())
        .map_err(|_| invalid("not PEM: expected a -----BEGIN CERTIFICATE REQUEST----- block"))?;
    if block.label != "CERTIFICATE REQUEST" && block.label != "NEW CERTIFICATE REQUEST" {
        return Err(PkiError::InvalidCsr(format!("expected a CERTIFICATE REQUEST PEM block, got {}", block.label)));
    }
    let (rest, csr) =
        X509CertificationRequest::from_der(&block.contents).map_err(|_| invalid("malformed certificate request"))?;
    if !rest.is_empty() {
        return Err(invalid("trailing data after the certificate request"));
    }
    let spki_der = csr.certification_request_info.subject_pki.raw;
    let rsa = accepted.contains(&&rcgen::PKCS_RSA_SHA256);
    let unsupported = if rsa {
        "unsupported key algorithm: use ECDSA P-256, P-384, Ed25519 or RSA (2048 bits or more)"
    } else {
        "unsupported key algorithm: use ECDSA P-256, P-384 or Ed25519"
    };
    let public_key = SubjectPublicKeyInfo::from_der(spki_der)
        .ok()
        .filter(|k| accepted.contains(&k.algorithm()))
        .ok_or_else(|| invalid(unsupported))?;
    if let Ok(PublicKey::RSA(key)) = csr.certification_request_info.subject_pki.parsed()
        && key.key_size() < MIN_RSA_BITS
    {
        return Err(PkiError::InvalidCsr(format!(
            "an RSA key of {} bits is too short: use {MIN_RSA_BITS} bits or more",
            key.key_size()
        )));
    }
    csr.verify_signature().map_err(|_| invalid("signature does not verify"))?;
    Ok(public_key)
}
