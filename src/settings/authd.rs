//! `authd.*`: the visitor forward-auth service — its loopback listener,
//! session lifetimes, login regulation and how many password checks run at
//! once. Several of these can be changed at runtime in the panel.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use serde::{Deserialize, Serialize};

use super::SettingsError;

/// `portico authd`: visitor sessions and login regulation.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AuthdSettings {
    /// Loopback listener nginx's `auth_request` and the portal use.
    pub listen: SocketAddr,
    /// Absolute session lifetime, hours.
    pub session_hours: u32,
    /// A session unused this long ends, minutes ("remember me" sessions excepted).
    pub inactivity_minutes: u32,
    /// Lifetime of a "remember me" session, days.
    pub remember_days: u32,
    /// Failed attempts within `failure_window_secs` that ban one (user,
    /// client) pair for `ban_secs`; twice as many ban the client for every
    /// user. A user with this many failures from anywhere is slowed down,
    /// never locked out. A client is an IPv4 address or an IPv6 /64.
    pub max_failures: u32,
    pub failure_window_secs: u32,
    pub ban_secs: u32,
    /// Longest delay the per-user slow-down adds to an attempt, milliseconds.
    pub slowdown_max_ms: u32,
    /// Password checks (bcrypt) that may run at once.
    pub password_checks: u32,
    /// How long an attempt waits for a free password check before a 429,
    /// milliseconds. A client that failed within the window does not wait.
    pub password_wait_ms: u32,
    /// Who decides for visitors: `builtin` (`portico authd`) or `external`
    /// (a forward-auth service with Authelia's nginx contract, `authd.external`).
    pub mode: AuthdMode,
    /// The external service, with `mode: external`.
    pub external: ExternalAuth,
}

/// `authd.mode`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthdMode {
    #[default]
    Builtin,
    External,
}

/// `authd.external`: a forward-auth service with Authelia's nginx contract
/// (Authelia itself, or anything answering the same way).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExternalAuth {
    /// The verify endpoint nginx's `auth_request` asks, as nginx reaches it
    /// (Authelia: `http://authelia:9091/api/verify`). It gets
    /// `X-Original-URL` and `X-Forwarded-*`; 200 lets the visitor in with its
    /// `Remote-User`, `Remote-Groups`, `Remote-Name` and `Remote-Email`, 401
    /// sends them to `portal_url`, 403 refuses them.
    pub verify_url: Option<String>,
    /// The sign-in page visitors are sent to, with `?rd=<the URL they asked
    /// for>` (Authelia: `https://auth.example.org/`). When its host is
    /// `auth.<domain>`, nginx proxies that name to the service.
    pub portal_url: Option<String>,
}

impl ExternalAuth {
    /// Both URLs, checked, when the mode is external.
    pub fn urls(&self) -> Option<(url::Url, url::Url)> {
        let verify = url::Url::parse(self.verify_url.as_deref()?).ok()?;
        let portal = url::Url::parse(self.portal_url.as_deref()?).ok()?;
        Some((verify, portal))
    }
}

/// A URL fit for nginx's config: absolute, `schemes` only, a host, no
/// credentials, query or fragment, and nothing nginx would read as syntax or
/// a variable (`$`, `;`, quotes, braces, spaces).
fn check_url(key: &str, raw: Option<&str>, schemes: &[&str]) -> Result<url::Url, SettingsError> {
    let raw = raw.ok_or_else(|| SettingsError::invalid(key, "is required when authd.mode is external"))?;
    let url =
        url::Url::parse(raw.trim()).map_err(|e| SettingsError::invalid(key, format!("{raw:?} is not a URL: {e}")))?;
    let why = if !schemes.contains(&url.scheme()) {
        Some(format!("must start with {}", schemes.iter().map(|s| format!("{s}://")).collect::<Vec<_>>().join(" or ")))
    } else if url.host_str().is_none_or(str::is_empty) {
        Some("needs a host".to_string())
    } else if !url.username().is_empty() || url.password().is_some() {
        Some("must not carry credentials".to_string())
    } else if url.query().is_some() || url.fragment().is_some() {
        Some("must not have a query or fragment".to_string())
    } else if url.as_str().chars().any(|c| !(c.is_ascii_graphic()) || "$;{}\"'\\`".contains(c)) {
        Some("must not contain $ ; { } quotes, backslashes or spaces".to_string())
    } else {
        None
    };
    match why {
        Some(why) => Err(SettingsError::invalid(key, format!("{raw:?} {why}"))),
        None => Ok(url),
    }
}

impl Default for AuthdSettings {
    fn default() -> Self {
        AuthdSettings {
            listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 9091),
            session_hours: 12,
            inactivity_minutes: 120,
            remember_days: 30,
            max_failures: 5,
            failure_window_secs: 120,
            ban_secs: 300,
            slowdown_max_ms: 2_000,
            password_checks: 2,
            password_wait_ms: 1_500,
            mode: AuthdMode::Builtin,
            external: ExternalAuth::default(),
        }
    }
}

impl AuthdSettings {
    pub(super) fn validate(&self) -> Result<(), SettingsError> {
        let checks = [
            ("authd.session_hours", self.session_hours, 1, 24 * 30),
            ("authd.inactivity_minutes", self.inactivity_minutes, 1, 60 * 24 * 30),
            ("authd.remember_days", self.remember_days, 1, 365),
            ("authd.max_failures", self.max_failures, 1, 100),
            ("authd.failure_window_secs", self.failure_window_secs, 1, 86_400),
            ("authd.ban_secs", self.ban_secs, 1, 86_400),
            ("authd.slowdown_max_ms", self.slowdown_max_ms, 0, 30_000),
            ("authd.password_checks", self.password_checks, 1, 16),
            ("authd.password_wait_ms", self.password_wait_ms, 0, 30_000),
        ];
        for (key, value, min, max) in checks {
            if !(min..=max).contains(&value) {
                return Err(SettingsError::invalid(key, format!("must be between {min} and {max}")));
            }
        }
        if self.mode == AuthdMode::External {
            check_url("authd.external.verify_url", self.external.verify_url.as_deref(), &["http", "https"])?;
            check_url("authd.external.portal_url", self.external.portal_url.as_deref(), &["https"])?;
        }
        Ok(())
    }
}
