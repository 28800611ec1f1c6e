//! Home Assistant add-on settings: which role the container plays (`mode`)
//! and, in agent mode, how the agent enrolls (`agent.*`). The add-on's
//! options (`/data/options.json`) are a settings layer, so these keys are the
//! option names themselves.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{Secret, SettingsError};

/// What the container runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// The whole appliance: nginx, panel, relay, authd.
    #[default]
    Appliance,
    /// Only `portico agent`, serving tunnels from this network through a
    /// relay elsewhere, with a read-only status page on the ingress port.
    Agent,
}

/// `agent.*`: the agent-mode add-on's enrollment and state.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AgentAddonSettings {
    /// The panel to enroll with: `https://panel.<domain>` or `https://<ip>:9292`.
    pub panel_url: Option<String>,
    /// One-time enrollment token from the panel; used once, on first start.
    pub token: Option<Secret>,
    /// SHA-256 of the panel's certificate, needed when `panel_url` is an IP.
    pub fingerprint: Option<String>,
    /// `wss://tunnel.<domain>/`; derived from `panel_url` when it is a name.
    pub relay: Option<String>,
    /// Where the agent keeps its key, certificates and `status.json`.
    pub config_dir: PathBuf,
}

impl Default for AgentAddonSettings {
    fn default() -> Self {
        AgentAddonSettings {
            panel_url: None,
            token: None,
            fingerprint: None,
            relay: None,
            config_dir: PathBuf::from("/data/agent"),
        }
    }
}

impl AgentAddonSettings {
    pub(super) fn validate(&self) -> Result<(), SettingsError> {
        if let Some(url) = &self.panel_url
            && (!url.starts_with("https://") || url.len() <= "https://".len())
        {
            return Err(SettingsError::invalid("agent.panel_url", "must be an https:// URL of the Portico panel"));
        }
        if let Some(relay) = &self.relay
            && (!relay.starts_with("wss://") || relay.len() <= "wss://".len())
        {
            return Err(SettingsError::invalid("agent.relay", "must be a wss:// URL, e.g. wss://tunnel.example.com/"));
        }
        if let Some(f) = &self.fingerprint
            && crate::token::parse_fingerprint(f).is_none()
        {
            return Err(SettingsError::invalid(
                "agent.fingerprint",
                "must be the panel certificate's SHA-256 in hex (64 digits, colons allowed)",
            ));
        }
        if !self.config_dir.is_absolute() {
            return Err(SettingsError::invalid("agent.config_dir", "must be an absolute path"));
        }
        Ok(())
    }
}
