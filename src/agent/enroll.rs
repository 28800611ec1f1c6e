//! `portico agent enroll`: key generated here, CSR sent to `/api/enroll`
//! with the one-time token, certificate and CA stored in the config dir.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, bail};
use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::http::Uri;

use super::config::AgentConfig;
use super::tls;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Enrolled {
    label: String,
    cert_pem: String,
    ca_pem: String,
}

/// The relay URL that belongs to a panel URL: `https://panel.<d>` → `wss://tunnel.<d>/`.
pub fn relay_for(panel_host: &str) -> Option<String> {
    panel_host.strip_prefix("panel.").map(|d| format!("wss://tunnel.{d}/"))
}

fn write_private(path: &Path, data: &str) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)?;
    std::io::Write::write_all(&mut f, data.as_bytes())
}

pub async fn enroll(
    dir: &Path,
    panel: &str,
    token: &str,
    fingerprint: Option<&str>,
    relay: Option<String>,
) -> anyhow::Result<AgentConfig> {
    let uri: Uri = panel.parse().with_context(|| format!("while parsing --panel {panel}"))?;
    if uri.scheme_str() != Some("https") {
        bail!("--panel must be an https:// URL");
    }
    let host = uri.host().context("--panel has no host")?.trim_matches(['[', ']']).to_string();
    let port = uri.port_u16().unwrap_or(443);
    let relay = match relay.or_else(|| relay_for(&host)) {
        Some(r) => r,
        None => bail!("give --relay wss://tunnel.<domain>/ when the panel is reached by IP"),
    };
    let pin = match fingerprint {
        Some(f) => Some(crate::token::parse_fingerprint(f).context("--fingerprint must be a SHA-256 in hex")?),
        None if host.parse::<std::net::IpAddr>().is_ok() => {
            bail!("the panel is reached by IP: pin its certificate with --fingerprint <sha256>")
        }
        None => None,
    };
    let key = rcgen::KeyPair::generate().context("while generating the agent key")?;
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name.push(rcgen::DnType::CommonName, "portico-agent");
    let csr = params.serialize_request(&key)?.pem()?;

    // Extra roots (a private or test CA) placed beside the agent's files
    // are trusted for the panel as they are for the relay.
    let extra = std::fs::read_to_string(dir.join(tls::EXTRA_CA_FILE)).ok();
    let cfg = Arc::new(tls::client_config(pin, extra.as_deref(), None)?);
    let mut stream =
        tls::connect(cfg, &host, port, None).await.with_context(|| format!("while connecting to {panel}"))?;
    let body = serde_json::to_vec(&serde_json::json!({ "token": token, "csr": csr }))?;
    let head = format!(
        "POST /api/enroll HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(&body).await?;
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw).await;
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").context("the panel sent no HTTP response")? + 4;
    let status_line = String::from_utf8_lossy(&raw[..raw.iter().position(|b| *b == b'\r').unwrap_or(0)]).to_string();
    let body = &raw[split..];
    if !status_line.contains(" 200 ") && !status_line.contains(" 201 ") {
        bail!("enrollment refused: {} {}", status_line, String::from_utf8_lossy(body));
    }
    let enrolled: Enrolled = serde_json::from_slice(body).context("while reading the panel's answer")?;
    let (_, pem) = x509_parser::pem::parse_x509_pem(enrolled.cert_pem.as_bytes()).context("certificate PEM")?;
    let cert = pem.parse_x509().context("certificate")?;
    let serial = crate::pki::normalize_serial(&hex::encode(cert.raw_serial()));

    std::fs::create_dir_all(dir)?;
    write_private(&dir.join("agent.key"), &key.serialize_pem())?;
    std::fs::write(dir.join("agent.crt"), &enrolled.cert_pem)?;
    std::fs::write(dir.join("ca.crt"), &enrolled.ca_pem)?;
    let config = AgentConfig { label: enrolled.label, serial, relay, panel: panel.to_string() };
    config.save(dir)?;
    Ok(config)
}
