//! The agent's config directory: `agent.json` (identity and relay URL),
//! `agent.key`, `agent.crt`, `ca.crt`, and `status.json` written by `run`.

use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::protocol::Route;

/// `agent.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AgentConfig {
    pub label: String,
    /// Certificate serial, uppercase hex.
    pub serial: String,
    /// `wss://tunnel.<domain>/`.
    pub relay: String,
    /// The panel it enrolled with.
    pub panel: String,
}

impl AgentConfig {
    pub fn load(dir: &Path) -> io::Result<AgentConfig> {
        let raw = std::fs::read(dir.join("agent.json"))?;
        serde_json::from_slice(&raw).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }

    pub fn save(&self, dir: &Path) -> io::Result<()> {
        std::fs::create_dir_all(dir)?;
        std::fs::write(dir.join("agent.json"), serde_json::to_vec_pretty(self)?)
    }
}

/// `~/.config/portico`, or `./portico` without a home directory.
pub fn default_dir() -> PathBuf {
    match std::env::var_os("XDG_CONFIG_HOME")
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".config").into()))
    {
        Some(base) => Path::new(&base).join("portico"),
        None => PathBuf::from("portico"),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AgentState {
    Connected,
    Reconnecting,
    Refused,
}

/// `status.json`: the agent's last connection state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    pub state: AgentState,
    pub relay: String,
    #[serde(with = "time::serde::rfc3339")]
    pub since: OffsetDateTime,
    pub detail: Option<String>,
    pub tunnels: Vec<Route>,
}

impl Status {
    pub fn write(&self, dir: &Path) -> io::Result<()> {
        std::fs::create_dir_all(dir)?;
        let tmp = dir.join("status.json.tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(self)?)?;
        std::fs::rename(tmp, dir.join("status.json"))
    }

    pub fn read(dir: &Path) -> io::Result<Status> {
        let raw = std::fs::read(dir.join("status.json"))?;
        serde_json::from_slice(&raw).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }

    /// What `portico agent status` prints.
    pub fn describe(&self) -> String {
        let state = match self.state {
            AgentState::Connected => "connected",
            AgentState::Reconnecting => "reconnecting",
            AgentState::Refused => "refused",
        };
        let mut out = format!("state: {state} (since {})\nrelay: {}\n", self.since, self.relay);
        if let Some(d) = &self.detail {
            out.push_str(&format!("detail: {d}\n"));
        }
        if self.tunnels.is_empty() {
            out.push_str("tunnels: none\n");
        } else {
            out.push_str("tunnels:\n");
            for t in &self.tunnels {
                out.push_str(&format!("  {} -> {}\n", t.name, t.target));
            }
        }
        out
    }
}
