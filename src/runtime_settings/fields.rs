//! The editable fields: API name, bootstrap key, what they mean, their
//! range, and when a change takes effect.

use serde_json::Value;

use crate::settings::Settings;

/// Levels a runtime log level may take (a bootstrap `log.level` may be a
/// whole `tracing` filter; the panel offers only these).
pub const LEVELS: [&str; 5] = ["error", "warn", "info", "debug", "trace"];
/// Longest accepted cron expression, characters.
const MAX_SCHEDULE: usize = 100;
/// Scheduled backups run at most this often, seconds.
const MIN_BACKUP_GAP: i64 = 15 * 60;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A whole number within `min..=max`, in `unit`.
    Number { min: u32, max: u32, unit: &'static str },
    /// A cron expression with seconds; empty turns it off.
    Schedule,
    /// One of [`LEVELS`].
    Level,
}

/// One runtime setting.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    /// The API's (and the form's) name.
    pub name: &'static str,
    /// The bootstrap key in config.yaml (`PORTICO__…` in the environment).
    pub key: &'static str,
    pub section: &'static str,
    pub label: &'static str,
    pub help: &'static str,
    pub kind: Kind,
    /// When a change takes effect, as the page says it.
    pub effect: &'static str,
}

const fn number(min: u32, max: u32, unit: &'static str) -> Kind {
    Kind::Number { min, max, unit }
}

const SESSIONS: &str = "Visitor sessions";
const REGULATION: &str = "Sign-in regulation";
const BACKUPS: &str = "Backups";
const CERTIFICATES: &str = "Certificates";
const LOGGING: &str = "Logging";

/// Every runtime setting, in page order. Names match [`super::Values`]' fields.
pub const FIELDS: &[Field] = &[
    Field {
        name: "sessionHours",
        key: "authd.session_hours",
        section: SESSIONS,
        label: "Session lifetime",
        help: "How long a visitor stays signed in, at most.",
        kind: number(1, 720, "hours"),
        effect: "at the next sign-in (sessions keep the lifetime they started with)",
    },
    Field {
        name: "inactivityMinutes",
        key: "authd.inactivity_minutes",
        section: SESSIONS,
        label: "Sign out after inactivity",
        help: "A session unused this long ends (\"remember me\" sessions excepted).",
        kind: number(1, 43_200, "minutes"),
        effect: "within seconds, for every session",
    },
    Field {
        name: "rememberDays",
        key: "authd.remember_days",
        section: SESSIONS,
        label: "\"Remember me\" lifetime",
        help: "How long a remembered session lasts.",
        kind: number(1, 365, "days"),
        effect: "at the next sign-in (sessions keep the lifetime they started with)",
    },
    Field {
        name: "maxFailures",
        key: "authd.max_failures",
        section: REGULATION,
        label: "Failures before a ban",
        help: "Failed attempts of one user from one client within the window that ban that pair; twice as many ban the client.",
        kind: number(1, 100, "attempts"),
        effect: "within seconds",
    },
    Field {
        name: "failureWindowSecs",
        key: "authd.failure_window_secs",
        section: REGULATION,
        label: "Failure window",
        help: "How far back failed attempts count.",
        kind: number(1, 86_400, "seconds"),
        effect: "within seconds",
    },
    Field {
        name: "banSecs",
        key: "authd.ban_secs",
        section: REGULATION,
        label: "Ban length",
        help: "How long a ban refuses attempts.",
        kind: number(1, 86_400, "seconds"),
        effect: "within seconds, for new bans",
    },
    Field {
        name: "backupSchedule",
        key: "backup.schedule",
        section: BACKUPS,
        label: "Backup schedule",
        help: "Cron expression with seconds first, UTC, e.g. 0 30 3 * * * for 03:30 daily; empty for no scheduled backups. Needs backup.passphrase.",
        kind: Kind::Schedule,
        effect: "now (the next backup is planned again)",
    },
    Field {
        name: "backupKeep",
        key: "backup.keep",
        section: BACKUPS,
        label: "Backups kept",
        help: "Older archives are deleted after each scheduled backup.",
        kind: number(1, 1000, "backups"),
        effect: "at the next scheduled backup",
    },
    Field {
        name: "renewDays",
        key: "acme.renew_days",
        section: CERTIFICATES,
        label: "Renew before expiry",
        help: "Certificates with fewer days left are renewed.",
        kind: number(1, 89, "days"),
        effect: "at the next renewal check",
    },
    Field {
        name: "panelLogLevel",
        key: "log.level",
        section: LOGGING,
        label: "Panel log level",
        help: "What portico serve writes to its log.",
        kind: Kind::Level,
        effect: "now",
    },
    Field {
        name: "authdLogLevel",
        key: "log.level",
        section: LOGGING,
        label: "Login portal (authd) log level",
        help: "What portico authd writes to its log.",
        kind: Kind::Level,
        effect: "within seconds",
    },
    Field {
        name: "relayLogLevel",
        key: "log.level",
        section: LOGGING,
        label: "Relay log level",
        help: "What portico relay writes to its log.",
        kind: Kind::Level,
        effect: "after restarting relay (Services page)",
    },
];

/// The field called `name`.
pub fn field(name: &str) -> Option<&'static Field> {
    FIELDS.iter().find(|f| f.name == name)
}

impl Field {
    /// The message for a number out of range (or not a number).
    pub fn range_message(&self) -> String {
        match self.kind {
            Kind::Number { min, max, unit } => format!("must be a whole number from {min} to {max} ({unit})"),
            Kind::Schedule => "must be a cron expression, or empty".into(),
            Kind::Level => format!("must be one of {}", LEVELS.join(", ")),
        }
    }

    /// Checks a value for this field; `settings` answers cross-checks (a
    /// backup schedule needs the bootstrap passphrase).
    pub fn check(&self, value: &Value, settings: &Settings) -> Result<(), String> {
        match self.kind {
            Kind::Number { min, max, .. } => match value.as_u64() {
                Some(n) if (u64::from(min)..=u64::from(max)).contains(&n) => Ok(()),
                _ => Err(self.range_message()),
            },
            Kind::Level => match value.as_str() {
                Some(level) if LEVELS.contains(&level) => Ok(()),
                _ => Err(self.range_message()),
            },
            Kind::Schedule => check_schedule(value.as_str().ok_or_else(|| self.range_message())?, settings),
        }
    }
}

fn check_schedule(expr: &str, settings: &Settings) -> Result<(), String> {
    let expr = expr.trim();
    if expr.is_empty() {
        return Ok(());
    }
    if expr.len() > MAX_SCHEDULE || expr.chars().any(char::is_control) {
        return Err(format!("must be a cron expression of at most {MAX_SCHEDULE} characters"));
    }
    let schedule: cron::Schedule = expr.parse().map_err(|e| {
        format!("`{expr}` is not a cron expression ({e}); use six fields `sec min hour day month weekday`, e.g. `0 30 3 * * *`")
    })?;
    let upcoming: Vec<_> = schedule.upcoming(chrono::Utc).take(50).collect();
    if upcoming.is_empty() {
        return Err("never runs again; pick a schedule with future times".into());
    }
    if upcoming.windows(2).any(|w| (w[1] - w[0]).num_seconds() < MIN_BACKUP_GAP) {
        return Err(format!("runs more often than every {} minutes", MIN_BACKUP_GAP / 60));
    }
    if settings.backup.passphrase.is_none() {
        return Err("scheduled backups need a passphrase: set backup.passphrase or backup.passphrase_file \
                    (PORTICO__BACKUP__PASSPHRASE_FILE) first"
            .into());
    }
    Ok(())
}
