//! How a home machine reaches this panel: its URL and the pins of the
//! certificate nginx serves there.

use std::net::IpAddr;

use base64::Engine;
use sha2::{Digest, Sha256};

use crate::settings::Settings;
use crate::store::{Store, StoreError};

/// The panel as a home machine should address it.
#[derive(Debug, Clone, PartialEq)]
pub struct PanelAddress {
    /// `https://panel.<d>` once its certificate exists, else `https://<ip>:<admin port>`.
    pub url: String,
    /// Reached by IP: the certificate is self-signed, only the pin vouches for it.
    pub by_ip: bool,
    /// SHA-256 of the served certificate, hex (`portico agent enroll --fingerprint`).
    pub fingerprint: Option<String>,
    /// `sha256//<base64>` of the served public key (`curl --pinnedpubkey`).
    pub pubkey_pin: Option<String>,
    /// `wss://tunnel.<d>/` once a domain is set.
    pub relay: Option<String>,
}

fn port_suffix(port: u16, default: u16) -> String {
    if port == default { String::new() } else { format!(":{port}") }
}

/// The panel's address for agents: by name when `panel.<d>` has a
/// certificate, else by `public_ip` on the admin port.
pub async fn panel_address(
    settings: &Settings,
    store: &Store,
    public_ip: Option<IpAddr>,
) -> Result<PanelAddress, StoreError> {
    let domain = store.setting(crate::onboarding::keys::DOMAIN).await?.filter(|d| !d.is_empty());
    let https = port_suffix(settings.nginx.https_port, 443);
    let relay = domain.as_ref().map(|d| format!("wss://tunnel.{d}{https}/"));
    let named = domain.as_ref().and_then(|d| {
        [format!("panel.{d}"), format!("*.{d}")].into_iter().find_map(|fqdn| {
            let paths = crate::nginx::state::cert_paths(&settings.data_dir, &fqdn);
            paths.fullchain.is_file().then(|| (format!("https://panel.{d}{https}"), paths.fullchain))
        })
    });
    let (url, by_ip, cert) = match (named, public_ip) {
        (Some((url, cert)), _) => (url, false, Some(cert)),
        (None, Some(ip)) => {
            let host = if ip.is_ipv6() { format!("[{ip}]") } else { ip.to_string() };
            let url = format!("https://{host}{}", port_suffix(settings.nginx.admin_port, 443));
            (url, true, Some(crate::pki::Pki::new(&settings.data_dir).server_cert_paths().0))
        }
        (None, None) => ("https://<server ip>:9292".to_string(), true, None),
    };
    let pins = match cert {
        Some(path) => tokio::fs::read(&path).await.ok().and_then(|pem| pins(&pem)),
        None => None,
    };
    let (fingerprint, pubkey_pin) = pins.unzip();
    Ok(PanelAddress { url, by_ip, fingerprint, pubkey_pin, relay })
}

/// The leaf certificate's SHA-256 (hex) and its public key's
/// (`sha256//<base64>`), from a PEM chain.
fn pins(pem: &[u8]) -> Option<(String, String)> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(pem).ok()?;
    let cert = pem.parse_x509().ok()?;
    let spki = Sha256::digest(cert.public_key().raw);
    let pin = format!("sha256//{}", base64::engine::general_purpose::STANDARD.encode(spki));
    Some((hex::encode(Sha256::digest(&pem.contents)), pin))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The pins are the SHA-256 of the certificate and of its public key.
    #[test]
    fn pins_hash_the_certificate_and_its_key() {
        use rcgen::PublicKeyData;
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["panel.example.test".into()]).unwrap().self_signed(&key).unwrap();
        let (fp, pin) = pins(cert.pem().as_bytes()).unwrap();
        assert_eq!(fp, hex::encode(Sha256::digest(cert.der())));
        let spki = Sha256::digest(key.subject_public_key_info());
        assert_eq!(pin, format!("sha256//{}", base64::engine::general_purpose::STANDARD.encode(spki)));
    }
}
