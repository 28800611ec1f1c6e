//! Onboarding: FRESH → DOMAIN_SET → DNS_READY → PROVISIONING → COMPLETED.
//!
//! Domain validation and the DNS check live here; the panel only maps HTTP.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::Duration;

use rand::RngExt;
use serde::{Deserialize, Serialize};

use crate::model::FieldError;
use crate::store::{Store, StoreError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OnboardingState {
    Fresh,
    DomainSet,
    DnsReady,
    Provisioning,
    Completed,
}

impl OnboardingState {
    pub fn as_str(self) -> &'static str {
        match self {
            OnboardingState::Fresh => "FRESH",
            OnboardingState::DomainSet => "DOMAIN_SET",
            OnboardingState::DnsReady => "DNS_READY",
            OnboardingState::Provisioning => "PROVISIONING",
            OnboardingState::Completed => "COMPLETED",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Fresh, Self::DomainSet, Self::DnsReady, Self::Provisioning, Self::Completed]
            .into_iter()
            .find(|x| x.as_str() == s)
    }
}

/// Store keys of the onboarding rows.
pub mod keys {
    pub const STATE: &str = "onboarding.state";
    pub const DOMAIN: &str = "onboarding.domain";
    pub const EMAIL: &str = "onboarding.email";
}

/// Normalizes and checks an apex domain the operator owns: a real DNS name
/// with at least two labels, no IP address, no wildcard; Unicode names are
/// converted to punycode (`bücher.example` → `xn--bcher-kva.example`).
pub fn validate_domain(input: &str) -> Result<String, FieldError> {
    let err = |m: &str| FieldError::new("domain", m);
    let trimmed = input.trim().trim_end_matches('.');
    if trimmed.is_empty() {
        return Err(err("A domain is required"));
    }
    if trimmed.parse::<IpAddr>().is_ok() || trimmed.trim_matches(['[', ']']).parse::<IpAddr>().is_ok() {
        return Err(err("An IP address is not a domain; use a name you own, like example.com"));
    }
    if trimmed.contains(['/', ':', '@', '*', ' ', '\\']) {
        return Err(err("Give only the domain name, like example.com (no scheme, port, path or wildcard)"));
    }
    let ascii = idna::domain_to_ascii(trimmed).map_err(|_| err("This is not a valid domain name"))?;
    if ascii.len() > 253 - "panel.".len() {
        return Err(err("The domain is too long"));
    }
    let labels: Vec<&str> = ascii.split('.').collect();
    if labels.len() < 2 {
        return Err(err("Use a full domain with a dot, like example.com"));
    }
    for label in &labels {
        let ok = !label.is_empty()
            && label.len() <= 63
            && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-');
        if !ok {
            return Err(err(
                "each part of the domain must be 1–63 letters, digits or hyphens, not starting or ending with a hyphen",
            ));
        }
    }
    if labels.last().is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit())) {
        return Err(err("The last part of a domain cannot be numeric"));
    }
    Ok(ascii)
}

/// A deliberately small check: something@host.tld, no spaces, ≤ 254 chars.
pub fn validate_email(input: &str) -> Result<String, FieldError> {
    let err = |m: &str| FieldError::new("email", m);
    let email = input.trim();
    if email.is_empty() {
        return Err(err("An email address is required (Let's Encrypt sends expiry notices there)"));
    }
    let Some((local, host)) = email.rsplit_once('@') else {
        return Err(err("This is not an email address"));
    };
    if local.is_empty() || email.len() > 254 || email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(err("This is not an email address"));
    }
    validate_domain(host).map_err(|_| err("The part after @ must be a domain"))?;
    Ok(email.to_string())
}

/// Result of resolving one name during the DNS check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NameCheck {
    pub name: String,
    #[schema(value_type = Vec<String>)]
    pub addresses: Vec<IpAddr>,
    pub ok: bool,
    /// Set when the lookup failed or points elsewhere.
    pub message: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DnsReport {
    #[schema(value_type = String)]
    pub expected_ip: IpAddr,
    pub names: Vec<NameCheck>,
    pub ok: bool,
}

/// Names the DNS check resolves: the three service names plus a random name,
/// which proves the wildcard record that tunnels and sites need.
pub fn names_to_check(domain: &str) -> Vec<String> {
    let probe: String =
        rand::rng().sample_iter(rand::distr::Alphanumeric).take(10).map(|c| (c as char).to_ascii_lowercase()).collect();
    vec![
        format!("panel.{domain}"),
        format!("auth.{domain}"),
        format!("tunnel.{domain}"),
        format!("check-{probe}.{domain}"),
    ]
}

/// Resolves each name through `resolver` (the system resolver when `None`)
/// and reports whether it points at `expected`.
pub async fn check_dns(resolver: Option<SocketAddr>, names: Vec<String>, expected: IpAddr) -> DnsReport {
    use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig};
    use hickory_resolver::{TokioResolver, net::runtime::TokioRuntimeProvider};

    let built = match resolver {
        Some(addr) => {
            let mut udp = ConnectionConfig::udp();
            udp.port = addr.port();
            let mut tcp = ConnectionConfig::tcp();
            tcp.port = addr.port();
            let config =
                ResolverConfig::from_name_servers(vec![NameServerConfig::new(addr.ip(), true, vec![udp, tcp])]);
            Ok(TokioResolver::builder_with_config(config, TokioRuntimeProvider::default()))
        }
        None => TokioResolver::builder_tokio(),
    };
    let resolver = built.and_then(|mut b| {
        let opts = b.options_mut();
        opts.cache_size = 0;
        opts.attempts = 2;
        opts.timeout = Duration::from_secs(3);
        b.build()
    });
    let mut checks = Vec::new();
    for name in names {
        let check = match &resolver {
            Err(e) => {
                NameCheck { name, addresses: vec![], ok: false, message: Some(format!("resolver unavailable: {e}")) }
            }
            Ok(r) => match r.lookup_ip(format!("{name}.")).await {
                Ok(found) => {
                    let addresses: Vec<IpAddr> = found.iter().map(|ip| ip.to_canonical()).collect();
                    let ok = addresses.contains(&expected.to_canonical());
                    let message = (!ok).then(|| format!("points to {} instead of {expected}", join_ips(&addresses)));
                    NameCheck { name, addresses, ok, message }
                }
                Err(e) if e.is_no_records_found() => NameCheck {
                    name,
                    addresses: vec![],
                    ok: false,
                    message: Some(format!("no A/AAAA record; create one pointing to {expected}")),
                },
                Err(e) => {
                    NameCheck { name, addresses: vec![], ok: false, message: Some(format!("lookup failed: {e}")) }
                }
            },
        };
        checks.push(check);
    }
    let ok = checks.iter().all(|c| c.ok);
    DnsReport { expected_ip: expected, names: checks, ok }
}

fn join_ips(ips: &[IpAddr]) -> String {
    ips.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
}

/// The address of the interface that holds the default route. On a VPS this
/// is the public address; behind NAT it is not, so operators set `public_ip`.
/// No packet is sent: connecting a UDP socket only picks a route.
pub fn detect_public_ip() -> Option<IpAddr> {
    let socket = UdpSocket::bind("0.0.0.0:0").ok()?;
    socket.connect("192.0.2.1:9").ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_unspecified() && !ip.is_loopback()).then_some(ip)
}

#[derive(Debug, thiserror::Error)]
pub enum OnboardingError {
    #[error("invalid input")]
    Invalid(Vec<FieldError>),
    #[error("Not allowed while onboarding is {0}")]
    WrongState(String),
    #[error("The public IP address is unknown; set public_ip (env PORTICO__PUBLIC_IP)")]
    NoPublicIp,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What `GET /api/onboarding/status` reports.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    pub status: OnboardingState,
    pub domain: Option<String>,
    pub email: Option<String>,
    #[schema(value_type = Option<String>)]
    pub public_ip: Option<IpAddr>,
}

pub async fn status(store: &Store, public_ip: Option<IpAddr>) -> Result<Status, StoreError> {
    let rows = store.settings(&[keys::STATE, keys::DOMAIN, keys::EMAIL]).await?;
    let status = rows[0].as_deref().and_then(OnboardingState::parse).unwrap_or(OnboardingState::Fresh);
    Ok(Status { status, domain: rows[1].clone(), email: rows[2].clone(), public_ip })
}

/// Records the domain and contact email. Allowed until provisioning starts;
/// changing the domain sends onboarding back to DOMAIN_SET.
pub async fn set_domain(store: &Store, domain: &str, email: &str) -> Result<OnboardingState, OnboardingError> {
    let mut errors = Vec::new();
    let domain = validate_domain(domain).map_err(|e| errors.push(e)).ok();
    let email = validate_email(email).map_err(|e| errors.push(e)).ok();
    let (Some(domain), Some(email)) = (domain, email) else {
        return Err(OnboardingError::Invalid(errors));
    };
    let from = &["FRESH", "DOMAIN_SET", "DNS_READY"];
    let extra = vec![(keys::DOMAIN, domain), (keys::EMAIL, email)];
    store.transition(keys::STATE, "FRESH", from, "DOMAIN_SET", extra).await?.map_err(OnboardingError::WrongState)?;
    Ok(OnboardingState::DomainSet)
}

/// Runs the DNS check for the recorded domain and moves to DNS_READY when
/// every name points here (back to DOMAIN_SET when not).
pub async fn verify_dns(
    store: &Store,
    resolver: Option<SocketAddr>,
    public_ip: Option<IpAddr>,
) -> Result<(DnsReport, OnboardingState), OnboardingError> {
    let current = status(store, None).await?;
    if !matches!(current.status, OnboardingState::DomainSet | OnboardingState::DnsReady) {
        return Err(OnboardingError::WrongState(current.status.as_str().to_string()));
    }
    let domain = current.domain.ok_or_else(|| OnboardingError::WrongState("FRESH".into()))?;
    let expected = public_ip.ok_or(OnboardingError::NoPublicIp)?;
    let report = check_dns(resolver, names_to_check(&domain), expected).await;
    let next = if report.ok { OnboardingState::DnsReady } else { OnboardingState::DomainSet };
    store
        .transition(keys::STATE, "FRESH", &["DOMAIN_SET", "DNS_READY"], next.as_str(), vec![])
        .await?
        .map_err(OnboardingError::WrongState)?;
    Ok((report, next))
}

#[cfg(test)]
mod tests;
