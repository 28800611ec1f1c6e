//! The ACME conversation: account, order, HTTP-01 challenge, finalize.
//! Failures become messages that say what to fix.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use instant_acme::{
    Account, AccountCredentials, AuthorizationStatus, BodyWrapper, ChallengeType, Identifier, NewAccount, NewOrder,
    OrderStatus, Problem, RetryPolicy,
};
use serde::{Deserialize, Serialize};

use super::AcmeError;
use super::files::challenges_dir;
use crate::settings::AcmeSettings;

/// How long the CA gets to validate a challenge and to issue, seconds.
const ORDER_TIMEOUT_SECS: u64 = 90;

/// The stored account: the directory it belongs to and its credentials.
#[derive(Serialize, Deserialize)]
struct StoredAccount {
    directory: String,
    credentials: AccountCredentials,
}

/// An issued chain and the private key made for it, both PEM.
pub struct Issued {
    pub fullchain: String,
    pub key: String,
}

/// The HTTPS client that talks to the directory: the public web roots plus
/// `acme.ca_bundle`, with ring as the only crypto provider.
fn http_client(bundle: Option<&Path>) -> Result<Box<dyn instant_acme::HttpClient>, AcmeError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    if let Some(path) = bundle {
        let bad = |e: String| AcmeError::Setup(format!("acme.ca_bundle {}: {e}", path.display()));
        for cert in CertificateDer::pem_file_iter(path).map_err(|e| bad(e.to_string()))? {
            roots.add(cert.map_err(|e| bad(e.to_string()))?).map_err(|e| bad(e.to_string()))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| AcmeError::Setup(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(tls).https_only().enable_http1().build();
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build::<_, BodyWrapper<bytes::Bytes>>(connector);
    Ok(Box::new(client))
}

/// One ACME account on the configured directory.
pub struct Client {
    settings: AcmeSettings,
    data_dir: PathBuf,
    account: tokio::sync::Mutex<Option<Account>>,
}

impl Client {
    pub fn new(settings: AcmeSettings, data_dir: PathBuf) -> Client {
        Client { settings, data_dir, account: tokio::sync::Mutex::new(None) }
    }

    fn account_path(&self) -> PathBuf {
        self.data_dir.join("acme/account.json")
    }

    /// The account, loaded from `<data_dir>/acme/account.json` or registered
    /// with `email` as contact (and saved 0600).
    async fn account(&self, email: &str) -> Result<Account, AcmeError> {
        let mut cached = self.account.lock().await;
        if let Some(a) = cached.as_ref() {
            return Ok(a.clone());
        }
        let directory = self.settings.directory.trim().to_string();
        let path = self.account_path();
        let stored: Option<StoredAccount> = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .filter(|s: &StoredAccount| s.directory == directory);
        let http = http_client(self.settings.ca_bundle.as_deref())?;
        let builder = Account::builder_with_http(http);
        let account = match stored {
            Some(s) => builder.from_credentials(s.credentials).await.map_err(|e| directory_error(&directory, e))?,
            None => {
                let contact = format!("mailto:{email}");
                let new =
                    NewAccount { contact: &[&contact], terms_of_service_agreed: true, only_return_existing: false };
                let (account, credentials) =
                    builder.create(&new, directory.clone(), None).await.map_err(|e| directory_error(&directory, e))?;
                let json = serde_json::to_vec(&StoredAccount { directory: directory.clone(), credentials })
                    .map_err(|e| AcmeError::Io(e.to_string()))?;
                write_secret(&path, &json).map_err(|e| AcmeError::Io(format!("{}: {e}", path.display())))?;
                tracing::info!(directory = %directory, "registered ACME account");
                account
            }
        };
        *cached = Some(account.clone());
        Ok(account)
    }

    /// Orders a certificate for `fqdn` and answers its HTTP-01 challenge
    /// through `<data_dir>/acme/challenges/`.
    pub async fn issue(&self, fqdn: &str, email: &str) -> Result<Issued, AcmeError> {
        let account = self.account(email).await?;
        let challenges = challenges_dir(&self.data_dir);
        std::fs::create_dir_all(&challenges).map_err(|e| AcmeError::Io(e.to_string()))?;
        let mut written = Vec::new();
        let result = self.order(&account, fqdn, &challenges, &mut written).await;
        for path in written {
            let _ = std::fs::remove_file(path);
        }
        result
    }

    async fn order(
        &self,
        account: &Account,
        fqdn: &str,
        challenges: &Path,
        written: &mut Vec<PathBuf>,
    ) -> Result<Issued, AcmeError> {
        let ca = |e: instant_acme::Error| ca_error(fqdn, e);
        let ids = [Identifier::Dns(fqdn.to_string())];
        let mut order = account.new_order(&NewOrder::new(&ids)).await.map_err(ca)?;
        let mut authorizations = order.authorizations();
        while let Some(authz) = authorizations.next().await {
            let mut authz = authz.map_err(ca)?;
            if authz.status == AuthorizationStatus::Valid {
                continue;
            }
            let mut challenge = authz
                .challenge(ChallengeType::Http01)
                .ok_or_else(|| AcmeError::Refused(format!("the CA offers no HTTP-01 challenge for {fqdn}")))?;
            let token = challenge.token.clone();
            if token.is_empty() || !token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
                return Err(AcmeError::Refused("the CA sent a malformed challenge token".into()));
            }
            let path = challenges.join(&token);
            std::fs::write(&path, challenge.key_authorization().as_str())
                .map_err(|e| AcmeError::Io(format!("{}: {e}", path.display())))?;
            written.push(path);
            challenge.set_ready().await.map_err(ca)?;
        }
        let retries = RetryPolicy::new().timeout(Duration::from_secs(ORDER_TIMEOUT_SECS));
        let status = order.poll_ready(&retries).await.map_err(ca)?;
        if status != OrderStatus::Ready {
            return Err(self.why_invalid(&mut order, fqdn).await);
        }
        let key = rcgen::KeyPair::generate().map_err(|e| AcmeError::Io(e.to_string()))?;
        let mut params =
            rcgen::CertificateParams::new(vec![fqdn.to_string()]).map_err(|e| AcmeError::Io(e.to_string()))?;
        params.distinguished_name = rcgen::DistinguishedName::new();
        let csr = params.serialize_request(&key).map_err(|e| AcmeError::Io(e.to_string()))?;
        order.finalize_csr(csr.der()).await.map_err(ca)?;
        let fullchain = order.poll_certificate(&retries).await.map_err(ca)?;
        Ok(Issued { fullchain, key: key.serialize_pem() })
    }

    /// The challenge error of an invalid order, as an actionable message.
    async fn why_invalid(&self, order: &mut instant_acme::Order, fqdn: &str) -> AcmeError {
        let mut authorizations = order.authorizations();
        while let Some(Ok(mut authz)) = authorizations.next().await {
            if let Ok(state) = authz.refresh().await
                && let Some(problem) = state.challenges.iter().find_map(|c| c.error.clone())
            {
                return problem_error(fqdn, &problem);
            }
        }
        AcmeError::Refused(format!("the CA marked the order for {fqdn} invalid without saying why"))
    }
}

fn write_secret(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension(format!("tmp-{}", crate::token::random_hex(4)));
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
    f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    f.write_all(data)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

fn directory_error(directory: &str, e: instant_acme::Error) -> AcmeError {
    match e {
        instant_acme::Error::Api(p) => problem_error("the account", &p),
        other => AcmeError::Unreachable(format!(
            "cannot use the ACME directory {directory} ({}); check acme.directory and the network",
            short(&other.to_string())
        )),
    }
}

fn ca_error(fqdn: &str, e: instant_acme::Error) -> AcmeError {
    match e {
        instant_acme::Error::Api(p) => problem_error(fqdn, &p),
        instant_acme::Error::Timeout(_) => AcmeError::Refused(format!(
            "the CA did not finish validating {fqdn} within {ORDER_TIMEOUT_SECS} s; try again later"
        )),
        other => {
            AcmeError::Unreachable(format!("talking to the CA about {fqdn} failed: {}", short(&other.to_string())))
        }
    }
}

/// The first 300 characters of a message.
fn short(s: &str) -> String {
    s.chars().take(300).collect()
}

/// Maps an RFC 8555 problem to what the operator should do.
fn problem_error(fqdn: &str, p: &Problem) -> AcmeError {
    let kind = p.r#type.as_deref().unwrap_or("").rsplit(':').next().unwrap_or("").to_string();
    let detail = short(p.detail.as_deref().unwrap_or("no detail"));
    match kind.as_str() {
        "dns" => AcmeError::Challenge(format!(
            "the CA cannot resolve {fqdn}: DNS does not point here yet; create an A record for it pointing at this server's public IP ({detail})"
        )),
        "connection" => AcmeError::Challenge(format!(
            "the CA could not connect to {fqdn} on port 80: check that DNS points at this server and that port 80 is open to the internet ({detail})"
        )),
        "unauthorized" | "incorrectResponse" => AcmeError::Challenge(format!(
            "the CA reached {fqdn} but not this server's challenge answer: DNS may point at another machine, or something in front of port 80 answers instead ({detail})"
        )),
        "caa" => AcmeError::Challenge(format!(
            "a CAA DNS record forbids this CA from issuing for {fqdn}; add the CA to the record or remove it ({detail})"
        )),
        "rateLimited" => AcmeError::RateLimited(format!("the CA rate-limits {fqdn}: {detail}")),
        "rejectedIdentifier" => AcmeError::Refused(format!("the CA will not issue for {fqdn}: {detail}")),
        _ => AcmeError::Refused(format!("the CA refused {fqdn}: {detail}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(kind: &str) -> Problem {
        serde_json::from_value(serde_json::json!({
            "type": format!("urn:ietf:params:acme:error:{kind}"),
            "detail": "details from the CA",
            "status": 400
        }))
        .unwrap()
    }

    #[test]
    fn problems_become_actionable_messages() {
        let msg = |k: &str| problem_error("panel.example.com", &problem(k)).to_string();
        assert!(msg("dns").contains("DNS does not point here"));
        assert!(msg("connection").contains("port 80"));
        assert!(msg("caa").contains("CAA"));
        assert!(msg("rateLimited").contains("rate-limits"));
        assert!(matches!(problem_error("x", &problem("rateLimited")), AcmeError::RateLimited(_)));
        assert!(msg("unauthorized").contains("another machine"));
        assert!(msg("serverInternal").contains("details from the CA"));
    }
}
