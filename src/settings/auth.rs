//! `auth.*` and `ingress.*`: how admins prove who they are to the panel —
//! client certificates checked by nginx, or Home Assistant ingress with user
//! headers from the Supervisor on a listener of its own.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use serde::{Deserialize, Serialize};

use super::SettingsError;

/// How admins prove who they are to the panel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    /// Client certificates verified by nginx, passed as headers from a trusted proxy.
    Mtls,
    /// Home Assistant ingress: user headers from the Supervisor on a second listener.
    Ingress,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AuthSettings {
    pub mode: AuthMode,
}

impl Default for AuthSettings {
    fn default() -> Self {
        AuthSettings { mode: AuthMode::Mtls }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct IngressSettings {
    pub listen: SocketAddr,
    /// Only these peers may send `X-Remote-User-*` and `X-Ingress-Path`.
    pub trusted_peers: Vec<IpAddr>,
}

impl Default for IngressSettings {
    fn default() -> Self {
        IngressSettings {
            listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 8099),
            trusted_peers: vec![IpAddr::V4(Ipv4Addr::new(172, 30, 32, 2))],
        }
    }
}

impl IngressSettings {
    /// In ingress mode someone must be allowed to send the user headers.
    pub(super) fn validate(&self, mode: AuthMode) -> Result<(), SettingsError> {
        if mode == AuthMode::Ingress && self.trusted_peers.is_empty() {
            return Err(SettingsError::invalid("ingress.trusted_peers", "must not be empty in ingress mode"));
        }
        Ok(())
    }
}
