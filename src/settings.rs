//! Bootstrap settings: read once at start, layered with the `config` crate.
//!
//! Layers, later wins: built-in defaults < `/etc/portico/config.yaml` <
//! `$PORTICO_CONFIG` < `/data/options.json` < environment `PORTICO__SECTION__KEY`.
//! Runtime state (domain, tunnels, users…) never lives here; it is in the store.

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

mod addon;
mod listeners;
mod origin;
pub use addon::{AgentAddonSettings, Mode};
pub use listeners::RelaySettings;
pub use origin::{Origin, Origins};

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

/// A secret value: prints as `***` in `Debug`, `Display` and `print-config`.
#[derive(Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("***")
    }
}

/// How admins prove who they are to the panel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    /// Client certificates verified by nginx, passed as headers from a trusted proxy.
    Mtls,
    /// Home Assistant ingress: user headers from the Supervisor on a second listener.
    Ingress,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

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

    fn validate(&self) -> Result<(), SettingsError> {
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

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(default, deny_unknown_fields)]
pub struct DnsSettings {
    /// Resolver for the onboarding DNS check; the system resolver when unset.
    pub resolver: Option<SocketAddr>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AuditSettings {
    /// Entries older than this are deleted, days.
    pub retention_days: u32,
}

impl Default for AuditSettings {
    fn default() -> Self {
        AuditSettings { retention_days: 90 }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct LogSettings {
    pub format: LogFormat,
    /// A `tracing` filter such as `info` or `portico=debug,actix_web=warn`.
    pub level: String,
}

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings { format: LogFormat::Text, level: "info".into() }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct PkiSettings {
    /// Validity of agent certificates, days.
    pub agent_cert_days: u32,
    /// Validity of enrollment tokens, minutes.
    pub enroll_token_minutes: u32,
}

impl Default for PkiSettings {
    fn default() -> Self {
        PkiSettings { agent_cert_days: 365, enroll_token_minutes: 60 }
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SupervisorKind {
    /// s6, as in the container.
    S6,
    /// No supervisor: services cannot be listed or controlled.
    None,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct SupervisorSettings {
    pub kind: SupervisorKind,
    /// s6's scan directory, one subdirectory per service.
    pub service_dir: PathBuf,
    /// Where `s6-log` keeps each service's logs (`<log_dir>/<service>/current`
    /// and its rotated files); the live-logs API reads them.
    pub log_dir: PathBuf,
}

impl Default for SupervisorSettings {
    fn default() -> Self {
        SupervisorSettings {
            kind: SupervisorKind::None,
            service_dir: PathBuf::from("/run/s6/services"),
            log_dir: PathBuf::from("/var/log/portico"),
        }
    }
}

/// Backups: where archives go, and the optional schedule.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct BackupSettings {
    /// Directory of backup archives; `<data_dir>/backups` when unset (never
    /// itself part of a backup).
    pub dir: Option<PathBuf>,
    /// Cron expression (seconds first, e.g. `0 30 3 * * *`) for scheduled
    /// backups; none when unset. Needs `backup.passphrase` or `passphrase_file`.
    pub schedule: Option<String>,
    /// How many scheduled backups stay in `dir`; older ones are deleted.
    pub keep: u32,
    /// Passphrase that encrypts scheduled backups.
    pub passphrase: Option<Secret>,
    pub passphrase_file: Option<PathBuf>,
    /// Largest archive the panel accepts for a restore upload, bytes.
    pub restore_max_bytes: u64,
}

impl Default for BackupSettings {
    fn default() -> Self {
        BackupSettings {
            dir: None,
            schedule: None,
            keep: 7,
            passphrase: None,
            passphrase_file: None,
            restore_max_bytes: 2 * 1024 * 1024 * 1024,
        }
    }
}

impl BackupSettings {
    fn validate(&self) -> Result<(), SettingsError> {
        if !(1..=1000).contains(&self.keep) {
            return Err(SettingsError::invalid("backup.keep", "must be between 1 and 1000"));
        }
        if self.restore_max_bytes < 1024 {
            return Err(SettingsError::invalid("backup.restore_max_bytes", "must be at least 1024 bytes"));
        }
        if let Some(dir) = &self.dir
            && !dir.is_absolute()
        {
            return Err(SettingsError::invalid("backup.dir", "must be an absolute path"));
        }
        if let Some(expr) = &self.schedule {
            expr.parse::<cron::Schedule>()
                .map_err(|e| SettingsError::invalid("backup.schedule", format!("not a cron expression: {e}")))?;
            if self.passphrase.is_none() {
                return Err(SettingsError::invalid(
                    "backup.passphrase",
                    "scheduled backups need a passphrase (or backup.passphrase_file)",
                ));
            }
        }
        if let Some(p) = &self.passphrase
            && p.expose().chars().count() < crate::backup::MIN_PASSPHRASE_CHARS
        {
            return Err(SettingsError::invalid(
                "backup.passphrase",
                format!("must be at least {} characters", crate::backup::MIN_PASSPHRASE_CHARS),
            ));
        }
        Ok(())
    }
}

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

/// nginx: where the live tree is, how to validate and reload it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct NginxSettings {
    /// When false the panel never renders or reloads nginx (tests, dev runs).
    pub enabled: bool,
    /// The nginx binary, for `nginx -t` and the default reload.
    pub bin: PathBuf,
    /// The live tree nginx is started with; `<data_dir>/nginx/live` when unset.
    pub live_dir: Option<PathBuf>,
    /// Pid file and temp dirs of nginx.
    pub run_dir: PathBuf,
    /// Reload command as an argv list, e.g. `["s6-svc", "-h", "/run/s6/services/nginx"]`;
    /// `nginx -s reload` when empty.
    pub reload_command: Vec<String>,
    /// How many snapshots of replaced trees stay.
    pub keep_snapshots: usize,
    /// The nginx `user` directive; none when unset.
    pub user: Option<String>,
    /// Address every public `listen` binds.
    pub bind: IpAddr,
    /// Plain HTTP port (ACME challenges, redirects).
    pub http_port: u16,
    /// HTTPS port of the name-based vhosts.
    pub https_port: u16,
    /// Port of the admin-by-IP vhost.
    pub admin_port: u16,
}

impl Default for NginxSettings {
    fn default() -> Self {
        NginxSettings {
            enabled: true,
            bin: PathBuf::from("/usr/sbin/nginx"),
            live_dir: None,
            run_dir: PathBuf::from("/run/nginx"),
            reload_command: Vec::new(),
            keep_snapshots: 10,
            user: None,
            bind: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            http_port: 80,
            https_port: 443,
            admin_port: 9292,
        }
    }
}

impl AuthdSettings {
    fn validate(&self) -> Result<(), SettingsError> {
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

/// ACME certificates: which CA, how often renewal runs, how early it renews.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AcmeSettings {
    /// ACME directory URL: Let's Encrypt production by default; staging or a
    /// test server (pebble) for testing.
    pub directory: String,
    /// PEM file of extra roots trusted for the directory's TLS (test servers).
    pub ca_bundle: Option<PathBuf>,
    /// When the renewal check runs: a cron expression with seconds
    /// (`sec min hour day-of-month month day-of-week`), UTC.
    pub renew_schedule: String,
    /// Renew when fewer than this many days remain.
    pub renew_days: u32,
}

/// Let's Encrypt's production directory.
pub const LETS_ENCRYPT_DIRECTORY: &str = "https://acme-v02.api.letsencrypt.org/directory";

impl Default for AcmeSettings {
    fn default() -> Self {
        AcmeSettings {
            directory: LETS_ENCRYPT_DIRECTORY.into(),
            ca_bundle: None,
            // Mondays and Thursdays at 03:17 UTC.
            renew_schedule: "0 17 3 * * Mon,Thu".into(),
            renew_days: 30,
        }
    }
}

impl AcmeSettings {
    /// The parsed renewal schedule.
    pub fn schedule(&self) -> Result<cron::Schedule, SettingsError> {
        use std::str::FromStr;
        cron::Schedule::from_str(self.renew_schedule.trim()).map_err(|e| {
            SettingsError::invalid(
                "acme.renew_schedule",
                format!(
                    "`{}` is not a cron expression ({e}); use six fields `sec min hour day month weekday`, e.g. `0 17 3 * * Mon,Thu`",
                    self.renew_schedule
                ),
            )
        })
    }

    fn validate(&self) -> Result<(), SettingsError> {
        self.schedule()?;
        if !(1..=89).contains(&self.renew_days) {
            return Err(SettingsError::invalid("acme.renew_days", "must be between 1 and 89"));
        }
        let url = self.directory.trim();
        if !url.starts_with("https://") || url.len() < 10 {
            return Err(SettingsError::invalid("acme.directory", "must be an https:// URL of an ACME directory"));
        }
        if let Some(path) = &self.ca_bundle
            && !path.is_absolute()
        {
            // Read when the directory is first used, so it may appear after start.
            return Err(SettingsError::invalid("acme.ca_bundle", "must be an absolute path"));
        }
        Ok(())
    }
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
            let text = std::fs::read_to_string(path)
                .map_err(|e| SettingsError::invalid("panel.secret_file", format!("{}: {e}", path.display())))?;
            self.panel.secret = Some(Secret::new(text.trim_end()));
        }
        if let Some(path) = &self.backup.passphrase_file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| SettingsError::invalid("backup.passphrase_file", format!("{}: {e}", path.display())))?;
            self.backup.passphrase = Some(Secret::new(text.trim_end()));
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
        if self.auth.mode == AuthMode::Ingress && self.ingress.trusted_peers.is_empty() {
            return Err(SettingsError::invalid("ingress.trusted_peers", "must not be empty in ingress mode"));
        }
        if self.audit.retention_days == 0 {
            return Err(SettingsError::invalid("audit.retention_days", "must be at least 1"));
        }
        if !(1..=3650).contains(&self.pki.agent_cert_days) {
            return Err(SettingsError::invalid("pki.agent_cert_days", "must be between 1 and 3650"));
        }
        if !(1..=10080).contains(&self.pki.enroll_token_minutes) {
            return Err(SettingsError::invalid("pki.enroll_token_minutes", "must be between 1 and 10080 (7 days)"));
        }
        self.panel.validate()?;
        self.authd.validate()?;
        self.validate_listeners()?;
        self.acme.validate()?;
        self.backup.validate()?;
        self.agent.validate()?;
        tracing_subscriber::EnvFilter::try_new(&self.log.level)
            .map_err(|e| SettingsError::invalid("log.level", e.to_string()))?;
        Ok(())
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
