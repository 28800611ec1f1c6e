//! `panel.*`: the admin panel's loopback listener, request limits, cookie
//! secret, visitor counting and the agent downloads it serves.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{Secret, SettingsError};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct PanelSettings {
    /// Loopback listener nginx proxies to.
    pub listen: SocketAddr,
    /// Largest accepted JSON body, bytes.
    pub json_limit: usize,
    /// Key that signs panel cookies (2FA session, CSRF). Generated and kept in
    /// the data dir when unset. `PORTICO__PANEL__SECRET_FILE` reads it from a file.
    pub secret: Option<Secret>,
    pub secret_file: Option<PathBuf>,
    /// Loopback UDP port where the panel counts visitor requests: nginx's
    /// tunnel and site vhosts send it one syslog line per request. `0` turns
    /// the counting (and those log lines) off.
    pub visitor_log_port: u16,
    /// Agent binaries served at `/download/`, by fixed names
    /// (`portico-linux-amd64`, `portico-linux-arm64`, …); the image links
    /// its own binary here.
    pub downloads_dir: PathBuf,
}

impl Default for PanelSettings {
    fn default() -> Self {
        PanelSettings {
            listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 3100),
            json_limit: 256 * 1024,
            secret: None,
            secret_file: None,
            visitor_log_port: 3101,
            downloads_dir: PathBuf::from("/usr/local/share/portico/downloads"),
        }
    }
}

impl PanelSettings {
    /// Where nginx sends visitor log lines, unless turned off.
    pub fn visitor_log(&self) -> Option<SocketAddr> {
        (self.visitor_log_port != 0).then(|| SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), self.visitor_log_port))
    }

    pub(super) fn validate(&self) -> Result<(), SettingsError> {
        if self.json_limit < 1024 {
            return Err(SettingsError::invalid("panel.json_limit", "must be at least 1024 bytes"));
        }
        if let Some(secret) = &self.secret
            && secret.expose().len() < 32
        {
            return Err(SettingsError::invalid("panel.secret", "must be at least 32 characters"));
        }
        // The panel runs unprivileged in the image and cannot bind below 1024.
        if (1..1024).contains(&self.visitor_log_port) {
            return Err(SettingsError::invalid(
                "panel.visitor_log_port",
                "must be 0 (off) or between 1024 and 65535 (the panel cannot bind privileged ports)",
            ));
        }
        Ok(())
    }
}
