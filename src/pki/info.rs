//! Reading certificates back: summaries (`CertInfo`), PEM decoding, key matching.

use sha2::{Digest, Sha256};
use x509_parser::certificate::X509Certificate;
use x509_parser::pem::parse_x509_pem;

use super::{CertInfo, PkiError, normalize_serial};

/// Decodes the first PEM block of `pem`, requiring the `CERTIFICATE` label.
pub(crate) fn cert_pem_to_der(pem: &str) -> Result<Vec<u8>, PkiError> {
    let (_, block) = parse_x509_pem(pem.as_bytes()).map_err(|e| PkiError::Cert(format!("certificate PEM: {e}")))?;
    if block.label != "CERTIFICATE" {
        return Err(PkiError::Cert(format!("expected a CERTIFICATE PEM block, found {}", block.label)));
    }
    Ok(block.contents)
}

/// Parses a DER certificate.
pub(crate) fn parse_cert(der: &[u8]) -> Result<X509Certificate<'_>, PkiError> {
    let (_, cert) =
        x509_parser::parse_x509_certificate(der).map_err(|e| PkiError::Cert(format!("parse certificate: {e}")))?;
    Ok(cert)
}

/// Summarizes a DER certificate.
pub(crate) fn cert_info(der: &[u8]) -> Result<CertInfo, PkiError> {
    let cert = parse_cert(der)?;
    let subject_cn =
        cert.subject().iter_common_name().next().and_then(|cn| cn.as_str().ok()).unwrap_or_default().to_owned();
    Ok(CertInfo {
        subject_cn,
        serial: normalize_serial(&hex::encode_upper(cert.raw_serial())),
        not_before: cert.validity().not_before.to_datetime(),
        not_after: cert.validity().not_after.to_datetime(),
        sha256_fingerprint: fingerprint(der),
    })
}

/// Summarizes a PEM certificate.
pub(crate) fn cert_info_pem(pem: &str) -> Result<CertInfo, PkiError> {
    cert_info(&cert_pem_to_der(pem)?)
}

/// SHA-256 over the DER encoding, uppercase hex pairs joined by `:`, the same
/// text `openssl x509 -noout -fingerprint -sha256` prints after `=`.
pub(crate) fn fingerprint(der: &[u8]) -> String {
    let digest = Sha256::digest(der);
    digest.iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(":")
}

/// The DER SubjectPublicKeyInfo of a certificate, for comparing with a key.
pub(crate) fn cert_spki(der: &[u8]) -> Result<Vec<u8>, PkiError> {
    Ok(parse_cert(der)?.public_key().raw.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pki_fingerprint_format() {
        let fp = fingerprint(b"");
        assert!(fp.starts_with("E3:B0:C4:42:98:FC"));
        assert_eq!(fp.len(), 32 * 3 - 1);
    }

    #[test]
    fn pki_cert_pem_to_der_rejects_other_labels() {
        let pem = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
        assert!(matches!(cert_pem_to_der(pem), Err(PkiError::Cert(_))));
    }
}
