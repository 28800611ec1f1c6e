//! Bootstrap settings: read once at start, layered with the `config` crate.
//!
//! Layers, later wins: built-in defaults < `/etc/portico/config.yaml` <
//! `$PORTICO_CONFIG` < `/data/options.json` < environment `PORTICO__SECTION__KEY`.
//! Runtime state (domain, tunnels, users…) never lives here; it is in the store.
//!
//! Each section (`panel`, `authd`, `nginx`, `acme`, `backup`…) has its struct,
//! defaults and validation in a file of its own under `settings/`; this file
//! holds the top-level [`Settings`], the loading and the re-exports.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

mod acme;
mod addon;
mod audit;
mod auth;
mod authd;
mod backup;
mod dns;
mod listeners;
mod log;
mod nginx;
mod origin;
mod panel;
mod pki;
mod secret;
mod supervisor;
pub use acme::{AcmeSettings, LETS_ENCRYPT_DIRECTORY};
pub use addon::{AgentAddonSettings, Mode};
pub use audit::AuditSettings;
pub use auth::{AuthMode, AuthSettings, IngressSettings};
pub use authd::{AuthdMode, AuthdSettings, ExternalAuth};
pub use backup::{BackupSettings, MIN_PASSPHRASE_CHARS};
pub use dns::DnsSettings;
pub use listeners::RelaySettings;
pub use log::{LogFormat, LogSettings};
pub use nginx::NginxSettings;
pub use origin::{Origin, Origins};
pub use panel::PanelSettings;
pub use pki::PkiSettings;
pub use secret::Secret;
pub use supervisor::{SupervisorKind, SupervisorSettings};

/// Errors while loading or validating settings. Every message names the YAML
/// key and the environment variable that set it.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("cannot read settings file {path}: {reason}")]
    File { path: String, reason: String },
    #[error("invalid setting `{key}` (env {env}): {reason}")]
    Invalid { key: String, env: String, reason: String },
    #[error("invalid settings: {0}")]
    Other(String),
}

impl SettingsError {
    fn invalid(key: &str, reason: impl Into<String>) -> Self {
        SettingsError::Invalid { key: key.to_string(), env: env_name(key), reason: reason.into() }
    }
}

/// The environment variable that sets a dotted settings key.
pub fn env_name(key: &str) -> String {
    let key = key.split('[').next().unwrap_or(key);
    format!("PORTICO__{}", key.replace('.', "__").to_uppercase())
}

/// Every bootstrap setting, with defaults. Tests build it as
/// `Settings { data_dir, ..Default::default() }`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// The container's role: the whole appliance, or only the agent (the
    /// Home Assistant add-on's agent mode).
    pub mode: Mode,
    pub data_dir: PathBuf,
    /// The VPS's public address; shown in DNS instructions and put in the IP vhost certificate.
    pub public_ip: Option<IpAddr>,
    /// Peers whose `X-SSL-Client-*` headers are believed (nginx on loopback).
    pub trusted_proxies: Vec<IpAddr>,
    pub panel: PanelSettings,
    pub auth: AuthSettings,
    pub ingress: IngressSettings,
    pub dns: DnsSettings,
    pub audit: AuditSettings,
    pub pki: PkiSettings,
    pub log: LogSettings,
    pub supervisor: SupervisorSettings,
    pub authd: AuthdSettings,
    pub relay: RelaySettings,
    pub nginx: NginxSettings,
    pub acme: AcmeSettings,
    pub backup: BackupSettings,
    /// Enrollment of the agent-mode add-on.
    pub agent: AgentAddonSettings,
    /// Which keys the layers set explicitly (they win over runtime settings).
    #[serde(skip)]
    pub origins: Origins,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            mode: Mode::Appliance,
            data_dir: PathBuf::from("/data"),
            public_ip: None,
            trusted_proxies: vec![IpAddr::V4(Ipv4Addr::LOCALHOST), IpAddr::V6(Ipv6Addr::LOCALHOST)],
            panel: PanelSettings::default(),
            auth: AuthSettings::default(),
            ingress: IngressSettings::default(),
            dns: DnsSettings::default(),
            audit: AuditSettings::default(),
            pki: PkiSettings::default(),
            log: LogSettings::default(),
            supervisor: SupervisorSettings::default(),
            authd: AuthdSettings::default(),
            relay: RelaySettings::default(),
            nginx: NginxSettings::default(),
            acme: AcmeSettings::default(),
            backup: BackupSettings::default(),
            agent: AgentAddonSettings::default(),
            origins: Origins::default(),
        }
    }
}

/// Where the layers come from. `Sources::from_process()` reads the real
/// environment; tests build their own so they never touch process state.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    pub system_file: Option<PathBuf>,
    pub config_file: Option<PathBuf>,
    pub options_file: Option<PathBuf>,
    pub env: HashMap<String, String>,
}

/// Keys whose environment value is a comma-separated list.
const LIST_KEYS: &[&str] = &["trusted_proxies", "ingress.trusted_peers", "nginx.reload_command"];

impl Sources {
    pub fn from_process() -> Self {
        let env: HashMap<String, String> = std::env::vars().collect();
        Sources {
            system_file: Some(PathBuf::from("/etc/portico/config.yaml")),
            config_file: env.get("PORTICO_CONFIG").map(PathBuf::from),
            options_file: Some(
                env.get("PORTICO_OPTIONS").map(PathBuf::from).unwrap_or_else(|| "/data/options.json".into()),
            ),
            env,
        }
    }
}

/// Largest secret file read at start, bytes: a secret is a line, and a path
/// to something endless (`/dev/zero`) must not take the box's memory.
const MAX_SECRET_FILE: u64 = 64 * 1024;

/// The first line-trimmed text of a secret file named by `key`.
fn read_secret_file(key: &str, path: &Path) -> Result<Secret, SettingsError> {
    use std::io::Read;
    let invalid = |reason: String| SettingsError::invalid(key, format!("{}: {reason}", path.display()));
    let file = std::fs::File::open(path).map_err(|e| invalid(e.to_string()))?;
    let mut text = String::new();
    file.take(MAX_SECRET_FILE + 1).read_to_string(&mut text).map_err(|e| invalid(e.to_string()))?;
    if text.len() as u64 > MAX_SECRET_FILE {
        return Err(invalid(format!("larger than {MAX_SECRET_FILE} bytes; a secret file holds one line")));
    }
    Ok(Secret::new(text.trim_end()))
}

impl Settings {
    /// Loads every layer and validates the result.
    pub fn load(sources: &Sources) -> Result<Settings, SettingsError> {
        use config::{Config, Environment, File, FileFormat};
        let mut layers = Vec::new();
        for (path, format, required) in [
            (&sources.system_file, FileFormat::Yaml, false),
            (&sources.config_file, FileFormat::Yaml, true),
            (&sources.options_file, FileFormat::Json, false),
        ] {
            let Some(path) = path else { continue };
            if !required && !path.exists() {
                continue;
            }
            let text = std::fs::read_to_string(path)
                .map_err(|e| SettingsError::File { path: path.display().to_string(), reason: e.to_string() })?;
            layers.push(origin::FileLayer { path: path.clone(), format, text });
        }
        let mut builder = Config::builder();
        for layer in &layers {
            builder = builder.add_source(File::from_str(&layer.text, layer.format));
        }
        let env: HashMap<String, String> = sources
            .env
            .iter()
            .filter(|(k, _)| k.starts_with("PORTICO__"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let mut environment = Environment::with_prefix("PORTICO")
            .prefix_separator("__")
            .separator("__")
            .try_parsing(true)
            .list_separator(",")
            .source(Some(env));
        for key in LIST_KEYS {
            environment = environment.with_list_parse_key(key);
        }
        let merged = builder.add_source(environment).build().map_err(config_error)?;
        let mut settings: Settings = merged.try_deserialize().map_err(config_error)?;
        settings.origins = Origins::read(&layers, sources.options_file.as_ref(), &sources.env);
        settings.read_secret_files()?;
        settings.validate()?;
        Ok(settings)
    }

    fn read_secret_files(&mut self) -> Result<(), SettingsError> {
        if let Some(path) = &self.panel.secret_file {
            self.panel.secret = Some(read_secret_file("panel.secret_file", path)?);
        }
        if let Some(path) = &self.backup.passphrase_file {
            self.backup.passphrase = Some(read_secret_file("backup.passphrase_file", path)?);
        }
        Ok(())
    }

    /// Checks values that parse but make no sense.
    pub fn validate(&self) -> Result<(), SettingsError> {
        if !self.data_dir.is_absolute() {
            return Err(SettingsError::invalid("data_dir", "must be an absolute path"));
        }
        if self.trusted_proxies.is_empty() {
            return Err(SettingsError::invalid("trusted_proxies", "must list at least one address (nginx's)"));
        }
        self.ingress.validate(self.auth.mode)?;
        self.audit.validate()?;
        self.pki.validate()?;
        self.panel.validate()?;
        self.authd.validate()?;
        self.validate_listeners()?;
        self.acme.validate()?;
        self.backup.validate()?;
        self.agent.validate()?;
        self.log.validate()
    }

    /// The effective settings as YAML, secrets masked.
    pub fn to_yaml(&self) -> String {
        serde_yaml::to_string(self).unwrap_or_else(|e| format!("# cannot print settings: {e}\n"))
    }

    pub fn db_path(&self) -> PathBuf {
        self.data_dir.join("portico.db")
    }

    /// The live nginx tree (`nginx.live_dir`, else `<data_dir>/nginx/live`).
    pub fn nginx_live_dir(&self) -> PathBuf {
        self.nginx.live_dir.clone().unwrap_or_else(|| self.data_dir.join("nginx/live"))
    }

    /// Where backup archives go (`backup.dir`, else `<data_dir>/backups`).
    pub fn backup_dir(&self) -> PathBuf {
        self.backup.dir.clone().unwrap_or_else(|| self.data_dir.join("backups"))
    }

    pub fn pki_dir(&self) -> PathBuf {
        self.data_dir.join("pki")
    }

    pub fn is_trusted_proxy(&self, peer: IpAddr) -> bool {
        contains_ip(&self.trusted_proxies, peer)
    }

    pub fn is_ingress_peer(&self, peer: IpAddr) -> bool {
        contains_ip(&self.ingress.trusted_peers, peer)
    }
}

/// Compares addresses treating IPv4-mapped IPv6 (`::ffff:a.b.c.d`) as IPv4.
fn contains_ip(list: &[IpAddr], peer: IpAddr) -> bool {
    let peer = peer.to_canonical();
    list.iter().any(|ip| ip.to_canonical() == peer)
}

/// Turns a `config` error into one that names the key and the env var.
fn config_error(err: config::ConfigError) -> SettingsError {
    let text = err.to_string();
    let key = key_in_message(&text);
    match key {
        Some(key) => {
            let reason = text.split(" for key").next().unwrap_or(&text).to_string();
            SettingsError::invalid(&key, reason)
        }
        None => SettingsError::Other(text),
    }
}

/// Finds the setting a `config` error message is about: "… for key `panel.listen`"
/// or "unknown field `x`, expected …" (reported without its section by serde).
fn key_in_message(text: &str) -> Option<String> {
    let after = text.split("for key `").nth(1).or_else(|| text.split("unknown field `").nth(1))?;
    let key = after.split('`').next()?;
    Some(key.trim_start_matches('.').to_string())
}

#[cfg(test)]
mod tests;
