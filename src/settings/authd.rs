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
        Ok(())
    }
}
