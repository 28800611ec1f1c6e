//! Certificate profiles (CA, admin, server, agent) and loading the CA as an issuer.

use std::net::IpAddr;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, PublicKeyData, SanType, SerialNumber,
};
use time::{Duration, OffsetDateTime};

use super::PkiError;
use super::serial::random_serial;

/// Common name of the Portico certificate authority.
pub(crate) const CA_CN: &str = "Portico CA";
/// Organization set on the CA and admin certificates.
pub(crate) const ORG: &str = "Portico";
/// Common name of the admin client certificate; the panel maps it to the admin role.
pub(crate) const ADMIN_CN: &str = "admin";

/// CA validity: 10 years.
pub(crate) const CA_VALIDITY: Duration = Duration::days(3650);
/// Admin and server certificate validity: 2 years (under Apple's 825-day cap
/// for TLS server certificates).
pub(crate) const LEAF_VALIDITY: Duration = Duration::days(730);
/// Default agent certificate validity: 1 year.
pub(crate) const AGENT_VALIDITY: Duration = Duration::days(365);
/// Backdating of `notBefore` to tolerate clock skew between machines.
const BACKDATE: Duration = Duration::minutes(5);

/// The CA, loaded and ready to sign.
pub(crate) struct LoadedCa {
    pub(crate) der: Vec<u8>,
    pub(crate) issuer: Issuer<'static, KeyPair>,
}

impl LoadedCa {
    /// Builds an issuer from the CA certificate (DER) and its key.
    pub(crate) fn new(der: Vec<u8>, key: KeyPair) -> Result<LoadedCa, PkiError> {
        if super::info::cert_spki(&der)? != key.subject_public_key_info() {
            return Err(PkiError::Inconsistent("ca.crt does not belong to ca.key".to_owned()));
        }
        let issuer = Issuer::from_ca_cert_der(&der.as_slice().into(), key)?;
        Ok(LoadedCa { der, issuer })
    }

    /// Builds an issuer from the CA certificate and key PEMs.
    pub(crate) fn from_pem(cert_pem: &str, key_pem: &str) -> Result<LoadedCa, PkiError> {
        let key = KeyPair::from_pem(key_pem).map_err(|e| PkiError::Cert(format!("ca.key: {e}")))?;
        LoadedCa::new(super::info::cert_pem_to_der(cert_pem)?, key)
    }
}

/// Key pair algorithm for every key generated here: ECDSA P-256.
pub(crate) fn generate_key() -> Result<KeyPair, PkiError> {
    Ok(KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?)
}

/// Parameters shared by all profiles: random serial, validity from now.
fn base_params(validity: Duration) -> CertificateParams {
    let now = OffsetDateTime::now_utc();
    // X.509 times have one-second resolution; drop the fraction.
    let now = now - Duration::nanoseconds(i64::from(now.nanosecond()));
    let mut params = CertificateParams::default();
    params.serial_number = Some(SerialNumber::from_slice(&random_serial()));
    params.not_before = now - BACKDATE;
    params.not_after = now + validity;
    params.distinguished_name = DistinguishedName::new();
    params
}

/// The self-signed CA: basicConstraints CA:true pathlen 0, keyCertSign + cRLSign.
pub(crate) fn ca_params() -> CertificateParams {
    let mut params = base_params(CA_VALIDITY);
    params.distinguished_name.push(DnType::CommonName, CA_CN);
    params.distinguished_name.push(DnType::OrganizationName, ORG);
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params
}

/// An end-entity profile: not a CA, digitalSignature, one EKU, AKI set.
fn leaf_params(validity: Duration, eku: ExtendedKeyUsagePurpose) -> CertificateParams {
    let mut params = base_params(validity);
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![eku];
    params.use_authority_key_identifier_extension = true;
    params
}

/// The admin client certificate: CN=admin, O=Portico, clientAuth.
pub(crate) fn admin_params() -> CertificateParams {
    let mut params = leaf_params(LEAF_VALIDITY, ExtendedKeyUsagePurpose::ClientAuth);
    params.distinguished_name.push(DnType::CommonName, ADMIN_CN);
    params.distinguished_name.push(DnType::OrganizationName, ORG);
    params
}

/// The server certificate for the by-IP panel vhost: serverAuth, SAN = the
/// public IP (when known) and `localhost`.
pub(crate) fn server_params(server_ip: Option<IpAddr>) -> Result<CertificateParams, PkiError> {
    let mut params = leaf_params(LEAF_VALIDITY, ExtendedKeyUsagePurpose::ServerAuth);
    let cn = server_ip.map_or_else(|| "localhost".to_owned(), |ip| ip.to_string());
    params.distinguished_name.push(DnType::CommonName, cn);
    params.distinguished_name.push(DnType::OrganizationName, ORG);
    if let Some(ip) = server_ip {
        params.subject_alt_names.push(SanType::IpAddress(ip));
    }
    params.subject_alt_names.push(SanType::DnsName("localhost".try_into()?));
    Ok(params)
}

/// An agent client certificate: CN=agent:<label>, clientAuth. The label must
/// already be validated.
pub(crate) fn agent_params(label: &str, validity: Duration) -> CertificateParams {
    let mut params = leaf_params(validity, ExtendedKeyUsagePurpose::ClientAuth);
    params.distinguished_name.push(DnType::CommonName, format!("agent:{label}"));
    params
}
