//! The network half of a probe: a TLS handshake with SNI against nginx's
//! public listener (recording the certificate actually served), one HTTP
//! request over it, and one request to the relay's visitor side. No
//! redirect is ever followed: only the status line is read.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

/// Most bytes of a response read: enough for the status line, headers and
/// the relay's short error page.
const READ_CAP: usize = 4096;

/// The certificate nginx served for a name.
#[derive(Debug, Clone)]
pub struct Served {
    /// DNS names of the leaf (SANs, else the CN), lowercase.
    pub names: Vec<String>,
    /// Unix seconds.
    pub not_after: i64,
    /// Certificates in the chain, leaf included.
    pub chain_len: usize,
    /// Each certificate's issuer equals the next one's subject.
    pub chain_linked: bool,
    /// The leaf's issuer common name.
    pub issuer: String,
}

/// Records, never judges: the probe decides what the certificate means.
#[derive(Debug)]
struct Record(Arc<CryptoProvider>);

impl ServerCertVerifier for Record {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// A client config that completes any handshake and lets the caller read
/// the served chain.
pub fn recording_config() -> Arc<ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(Record(provider)))
        .with_no_client_auth();
    Arc::new(config)
}

fn parse_chain(chain: &[CertificateDer<'_>]) -> Option<Served> {
    let certs: Vec<X509Certificate<'_>> =
        chain.iter().filter_map(|c| X509Certificate::from_der(c.as_ref()).ok().map(|(_, x)| x)).collect();
    let leaf = certs.first()?;
    let mut names: Vec<String> = leaf
        .subject_alternative_name()
        .ok()
        .flatten()
        .map(|san| {
            san.value
                .general_names
                .iter()
                .filter_map(|n| match n {
                    GeneralName::DNSName(d) => Some(d.to_ascii_lowercase()),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    if names.is_empty()
        && let Some(cn) = leaf.subject().iter_common_name().next().and_then(|c| c.as_str().ok())
    {
        names.push(cn.to_ascii_lowercase());
    }
    let issuer = leaf.issuer().iter_common_name().next().and_then(|c| c.as_str().ok()).unwrap_or_default().to_string();
    let chain_linked = certs.windows(2).all(|w| w[0].issuer() == w[1].subject());
    Some(Served {
        names,
        not_after: leaf.validity().not_after.timestamp(),
        chain_len: certs.len(),
        chain_linked,
        issuer,
    })
}

/// What one request through nginx saw.
#[derive(Debug)]
pub struct Https {
    pub cert: Option<Served>,
    /// `Err` says why no status line came back.
    pub status: Result<u16, String>,
}

/// Connects to `addr` (nginx's HTTPS listener), handshakes with SNI = `name`
/// and sends `GET /` with `Host: name`. `Err` when the handshake fails.
pub async fn https(addr: SocketAddr, name: &str, config: Arc<ClientConfig>) -> Result<Https, String> {
    let tcp =
        TcpStream::connect(addr).await.map_err(|e| format!("cannot connect to nginx on port {}: {e}", addr.port()))?;
    let server_name =
        ServerName::try_from(name.to_string()).map_err(|_| format!("{name} is not a valid TLS server name"))?;
    let tls = TlsConnector::from(config).connect(server_name, tcp).await.map_err(|e| handshake_error(name, e))?;
    let cert = tls.get_ref().1.peer_certificates().and_then(parse_chain);
    let mut tls = tls;
    let status = request(&mut tls, name).await.map(|(s, _)| s);
    Ok(Https { cert, status })
}

/// A failed handshake in plain words: nginx refuses the handshake for a name
/// it has no server block (no certificate) for.
fn handshake_error(name: &str, e: std::io::Error) -> String {
    let text = e.to_string();
    if text.contains("UnrecognisedName") || text.contains("unrecognised name") {
        format!("nginx has no certificate for {name} (it refused the TLS handshake for this name)")
    } else {
        format!("TLS handshake failed: {text}")
    }
}

/// What the relay's visitor side answered for a tunnel name.
#[derive(Debug)]
pub enum Relay {
    /// The agent opened a stream and the target answered with this status.
    Answered(u16),
    /// The relay has no route for the name.
    NoRoute,
    /// The tunnel's agent is not connected.
    AgentOffline,
    /// The agent is connected but the target refused the connection.
    TargetRefused,
    /// The agent's stream limit is reached (the tunnel works, it is busy).
    Busy,
    /// No answer at all.
    Failed(String),
}

/// Sends `GET /` with `Host: name` straight to the relay's visitor listener
/// and reads which of its answers came back.
pub async fn relay(addr: SocketAddr, name: &str) -> Relay {
    let mut tcp = match TcpStream::connect(addr).await {
        Ok(t) => t,
        Err(e) => return Relay::Failed(format!("the relay does not accept connections: {e}")),
    };
    match request(&mut tcp, name).await {
        Err(e) => Relay::Failed(e),
        // The relay's own pages (src/relay/visitor.rs) carry these titles.
        Ok((404, body)) if body.contains("No such app") => Relay::NoRoute,
        Ok((502, body)) if body.contains("This app is offline") => Relay::AgentOffline,
        Ok((502, body)) if body.contains("This app is not answering") => Relay::TargetRefused,
        Ok((503, body)) if body.contains("This app is busy") => Relay::Busy,
        Ok((status, _)) => Relay::Answered(status),
    }
}

/// One `GET /` with `Connection: close`; returns the status and the first
/// bytes of the response as text.
async fn request<S: AsyncRead + AsyncWrite + Unpin>(io: &mut S, host: &str) -> Result<(u16, String), String> {
    let req = format!(
        "GET / HTTP/1.1\r\nHost: {host}\r\nUser-Agent: {}\r\nAccept: */*\r\nConnection: close\r\n\r\n",
        super::USER_AGENT
    );
    io.write_all(req.as_bytes()).await.map_err(|e| format!("cannot send the request: {e}"))?;
    io.flush().await.map_err(|e| format!("cannot send the request: {e}"))?;
    let mut buf = vec![0u8; READ_CAP];
    let mut len = 0;
    while len < READ_CAP {
        match io.read(&mut buf[len..]).await {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if len == 0 => return Err(format!("no response: {e}")),
            Err(_) => break,
        }
        // Enough once the headers and a short page are in.
        if buf[..len].windows(4).any(|w| w == b"\r\n\r\n") && len >= 1024 {
            break;
        }
    }
    let text = String::from_utf8_lossy(&buf[..len]).into_owned();
    let status =
        text.strip_prefix("HTTP/1.").and_then(|rest| rest.get(2..5)).and_then(|s| s.parse::<u16>().ok()).ok_or_else(
            || {
                if len == 0 {
                    "the connection closed without a response".to_string()
                } else {
                    "not an HTTP response".to_string()
                }
            },
        )?;
    Ok((status, text))
}

/// A timeout around one step, with the step named in the error.
pub async fn within<T>(limit: Duration, what: &str, f: impl Future<Output = T>) -> Result<T, String> {
    tokio::time::timeout(limit, f).await.map_err(|_| format!("{what} timed out after {} ms", limit.as_millis()))
}

/// Sends `raw` (a whole request head) over TLS with SNI = `name` to `addr`
/// and returns the status of the answer.
pub async fn raw_tls_request(addr: SocketAddr, name: &str, raw: &str) -> Result<u16, String> {
    let tcp =
        TcpStream::connect(addr).await.map_err(|e| format!("cannot connect to nginx on port {}: {e}", addr.port()))?;
    let server_name =
        ServerName::try_from(name.to_string()).map_err(|_| format!("{name} is not a valid TLS server name"))?;
    let mut tls =
        TlsConnector::from(recording_config()).connect(server_name, tcp).await.map_err(|e| handshake_error(name, e))?;
    tls.write_all(raw.as_bytes()).await.map_err(|e| format!("cannot send the request: {e}"))?;
    let mut buf = vec![0u8; 512];
    let mut len = 0;
    while len < buf.len() && !buf[..len].windows(2).any(|w| w == b"\r\n") {
        match tls.read(&mut buf[len..]).await {
            Ok(0) | Err(_) => break,
            Ok(n) => len += n,
        }
    }
    let text = String::from_utf8_lossy(&buf[..len]);
    text.strip_prefix("HTTP/1.")
        .and_then(|rest| rest.get(2..5))
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| "no HTTP answer".to_string())
}
