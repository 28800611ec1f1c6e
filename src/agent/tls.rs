//! TLS for the agent: the panel pinned by certificate fingerprint (reached by
//! IP with its self-signed certificate) or verified against public roots, and
//! the relay with the agent's client certificate.

use std::io;
use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use sha2::{Digest, Sha256};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// Accepts exactly the server certificate with the pinned SHA-256.
#[derive(Debug)]
struct Pinned {
    sha256: [u8; 32],
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let got: [u8; 32] = Sha256::digest(end_entity.as_ref()).into();
        if subtle::ConstantTimeEq::ct_eq(&got[..], &self.sha256[..]).into() {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(format!(
                "the panel's certificate fingerprint is {}, not the one given with --fingerprint",
                hex::encode(got)
            )))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

fn tls_err(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}

/// A client config: pinned or public roots (plus `extra_ca_pem`), with an
/// optional client certificate.
pub fn client_config(
    pin: Option<[u8; 32]>,
    extra_ca_pem: Option<&str>,
    client: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
) -> io::Result<ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder =
        ClientConfig::builder_with_provider(provider.clone()).with_safe_default_protocol_versions().map_err(tls_err)?;
    let builder = match pin {
        Some(sha256) => builder.dangerous().with_custom_certificate_verifier(Arc::new(Pinned { sha256, provider })),
        None => {
            let mut roots = RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
            if let Some(pem) = extra_ca_pem {
                for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
                    roots.add(cert.map_err(tls_err)?).map_err(tls_err)?;
                }
            }
            builder.with_root_certificates(roots)
        }
    };
    match client {
        Some((chain, key)) => builder.with_client_auth_cert(chain, key).map_err(tls_err),
        None => Ok(builder.with_no_client_auth()),
    }
}

/// Extra trusted roots (PEM) in the agent's config directory, optional.
pub const EXTRA_CA_FILE: &str = "extra-ca.crt";

/// The relay client config from the agent's config directory.
pub fn relay_config(dir: &Path) -> io::Result<ClientConfig> {
    let chain = CertificateDer::pem_file_iter(dir.join("agent.crt"))
        .map_err(tls_err)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(tls_err)?;
    let key = PrivateKeyDer::from_pem_file(dir.join("agent.key")).map_err(tls_err)?;
    let extra = std::fs::read_to_string(dir.join(EXTRA_CA_FILE)).ok();
    client_config(None, extra.as_deref(), Some((chain, key)))
}

/// TLS to `host:port`, dialling `addr` instead when given (the name is
/// still `host`).
pub async fn connect(
    cfg: Arc<ClientConfig>,
    host: &str,
    port: u16,
    addr: Option<std::net::SocketAddr>,
) -> io::Result<TlsStream<TcpStream>> {
    let tcp = match addr {
        Some(a) => TcpStream::connect(a).await?,
        None => TcpStream::connect((host, port)).await?,
    };
    tcp.set_nodelay(true)?;
    let name = ServerName::try_from(host.to_string()).map_err(tls_err)?;
    TlsConnector::from(cfg).connect(name, tcp).await
}

#[cfg(test)]
mod tests {
    use crate::token::parse_fingerprint;

    #[test]
    fn fingerprints_parse_in_common_spellings() {
        let hexed = "ab".repeat(32);
        let colons = vec!["AB"; 32].join(":");
        assert_eq!(parse_fingerprint(&hexed), Some([0xab; 32]));
        assert_eq!(parse_fingerprint(&colons), Some([0xab; 32]));
        assert_eq!(parse_fingerprint(&format!("sha256:{hexed}")), Some([0xab; 32]));
        assert_eq!(parse_fingerprint("abcd"), None);
        assert_eq!(parse_fingerprint(&"zz".repeat(32)), None);
    }
}
