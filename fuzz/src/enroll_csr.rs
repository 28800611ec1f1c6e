//! The CSR an agent sends at enrollment. Only its key is ever used: a signed
//! certificate is always `CN=agent:<label>` for the label the token was for,
//! a client-auth leaf (never a CA) certifying exactly the CSR's key,
//! whatever subject, extensions or attributes the CSR asked for.

use std::sync::OnceLock;

use portico::pki::Pki;
use x509_parser::prelude::*;

use crate::split_mode;

const LABEL: &str = "fuzz-home";

fn pki() -> &'static Pki {
    static PKI: OnceLock<(tempfile::TempDir, Pki)> = OnceLock::new();
    &PKI.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let pki = Pki::new(dir.path());
        pki.init(None).expect("a CA");
        (dir, pki)
    })
    .1
}

fn pem(der: &[u8]) -> String {
    let block = ::pem::Pem::new("CERTIFICATE REQUEST", der.to_vec());
    ::pem::encode(&block)
}

pub fn run(data: &[u8]) {
    let (mode, rest) = split_mode(data);
    // DER wrapped as PEM (what mutations reach), or the text as sent.
    let text = if mode & 1 == 0 { pem(rest) } else { String::from_utf8_lossy(rest).into_owned() };
    let Ok((cert_pem, info)) = pki().sign_agent_csr(LABEL, &text) else { return };
    let (_, csr_pem) = x509_parser::pem::parse_x509_pem(text.as_bytes()).ok().filter(|_| mode & 1 == 0).unzip();
    let (_, block) = x509_parser::pem::parse_x509_pem(cert_pem.as_bytes()).expect("the certificate is PEM");
    let cert = block.parse_x509().expect("the certificate parses");
    let cns: Vec<_> = cert.subject().iter_common_name().map(|c| c.as_str().unwrap_or("?").to_string()).collect();
    assert_eq!(cns, vec![format!("agent:{LABEL}")]);
    assert_eq!(info.subject_cn, format!("agent:{LABEL}"));
    assert_eq!(cert.subject().iter().count(), 1, "subject {}", cert.subject());
    assert!(!cert.is_ca(), "signed a CA");
    let eku = cert.extended_key_usage().expect("one EKU").expect("an EKU");
    assert!(eku.value.client_auth && !eku.value.server_auth && !eku.value.any, "{:?}", eku.value);
    if let Some(csr) = csr_pem {
        let (_, req) = X509CertificationRequest::from_der(&csr.contents).expect("the CSR parsed when signed");
        assert_eq!(cert.public_key().raw, req.certification_request_info.subject_pki.raw, "another key certified");
    }
    let _ = std::fs::remove_dir_all(pki().dir().join("agents"));
}
