//! Runtime settings: the few bootstrap settings an operator tunes while
//! Portico runs (visitor session lifetimes, sign-in regulation, the backup
//! schedule and how many backups stay, how early certificates renew, log
//! levels), editable in the panel and stored in SQLite.
//!
//! Precedence, per key: a value set in a settings file or the environment
//! wins (the panel shows it read-only and refuses to change it), then a
//! value stored here, then the built-in default.

mod fields;
mod resolve;

use serde::{Deserialize, Serialize};

use crate::model::FieldError;
use crate::settings::{AuthdSettings, Settings};
use crate::store::StoreError;

pub use fields::{FIELDS, Field, Kind, LEVELS};
pub use resolve::{Cached, Change, FieldView, Live, RuntimeView, Source, load, update};

#[derive(Debug, thiserror::Error)]
pub enum RuntimeSettingsError {
    #[error("invalid input")]
    Invalid(Vec<FieldError>),
    /// A field the request changes is set in config.yaml or the environment.
    #[error("{0}")]
    Locked(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The effective value of every runtime setting. Serialised with the API's
/// field names (the audit log's before/after uses the same).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Values {
    /// Lifetime of a visitor session, hours (`authd.session_hours`).
    pub session_hours: u32,
    /// A session unused this long ends, minutes (`authd.inactivity_minutes`).
    pub inactivity_minutes: u32,
    /// Lifetime of a "remember me" session, days (`authd.remember_days`).
    pub remember_days: u32,
    /// Failures within the window that ban a user and client pair (`authd.max_failures`).
    pub max_failures: u32,
    /// Seconds (`authd.failure_window_secs`).
    pub failure_window_secs: u32,
    /// Seconds (`authd.ban_secs`).
    pub ban_secs: u32,
    /// Cron expression with seconds (`backup.schedule`); empty: no scheduled backups.
    pub backup_schedule: String,
    /// Scheduled backups kept (`backup.keep`).
    pub backup_keep: u32,
    /// Renew certificates with fewer days left than this (`acme.renew_days`).
    pub renew_days: u32,
    /// Log level of `portico serve` (`log.level`).
    pub panel_log_level: String,
    /// Log level of `portico authd` (`log.level`).
    pub authd_log_level: String,
    /// Log level of `portico relay` (`log.level`).
    pub relay_log_level: String,
}

impl Values {
    /// The values the bootstrap settings hold (explicit or default).
    pub fn from_settings(s: &Settings) -> Values {
        Values {
            session_hours: s.authd.session_hours,
            inactivity_minutes: s.authd.inactivity_minutes,
            remember_days: s.authd.remember_days,
            max_failures: s.authd.max_failures,
            failure_window_secs: s.authd.failure_window_secs,
            ban_secs: s.authd.ban_secs,
            backup_schedule: s.backup.schedule.clone().unwrap_or_default(),
            backup_keep: s.backup.keep,
            renew_days: s.acme.renew_days,
            panel_log_level: s.log.level.clone(),
            authd_log_level: s.log.level.clone(),
            relay_log_level: s.log.level.clone(),
        }
    }

    /// authd's settings with these values in place of `base`'s.
    pub fn authd(&self, base: &AuthdSettings) -> AuthdSettings {
        AuthdSettings {
            session_hours: self.session_hours,
            inactivity_minutes: self.inactivity_minutes,
            remember_days: self.remember_days,
            max_failures: self.max_failures,
            failure_window_secs: self.failure_window_secs,
            ban_secs: self.ban_secs,
            ..base.clone()
        }
    }

    /// The parsed backup schedule; `None` when scheduled backups are off.
    pub fn backup_schedule(&self) -> Option<cron::Schedule> {
        let expr = self.backup_schedule.trim();
        if expr.is_empty() { None } else { expr.parse().ok() }
    }

    fn to_map(&self) -> serde_json::Map<String, serde_json::Value> {
        match serde_json::to_value(self) {
            Ok(serde_json::Value::Object(map)) => map,
            _ => serde_json::Map::new(),
        }
    }
}

/// A partial change: only the fields present are changed, all or nothing.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Patch {
    #[schema(minimum = 1, maximum = 720)]
    pub session_hours: Option<u32>,
    #[schema(minimum = 1, maximum = 43200)]
    pub inactivity_minutes: Option<u32>,
    #[schema(minimum = 1, maximum = 365)]
    pub remember_days: Option<u32>,
    #[schema(minimum = 1, maximum = 100)]
    pub max_failures: Option<u32>,
    #[schema(minimum = 1, maximum = 86400)]
    pub failure_window_secs: Option<u32>,
    #[schema(minimum = 1, maximum = 86400)]
    pub ban_secs: Option<u32>,
    /// Cron expression with seconds (`0 30 3 * * *`); empty turns scheduled backups off.
    pub backup_schedule: Option<String>,
    #[schema(minimum = 1, maximum = 1000)]
    pub backup_keep: Option<u32>,
    #[schema(minimum = 1, maximum = 89)]
    pub renew_days: Option<u32>,
    /// `error`, `warn`, `info`, `debug` or `trace`.
    pub panel_log_level: Option<String>,
    pub authd_log_level: Option<String>,
    pub relay_log_level: Option<String>,
}

impl Patch {
    /// The fields this patch sets, by API name, as JSON.
    pub fn changes(self) -> Vec<(&'static str, serde_json::Value)> {
        use serde_json::Value as J;
        let Patch {
            session_hours,
            inactivity_minutes,
            remember_days,
            max_failures,
            failure_window_secs,
            ban_secs,
            backup_schedule,
            backup_keep,
            renew_days,
            panel_log_level,
            authd_log_level,
            relay_log_level,
        } = self;
        let n = |v: Option<u32>| v.map(J::from);
        let t = |v: Option<String>| v.map(J::from);
        [
            ("sessionHours", n(session_hours)),
            ("inactivityMinutes", n(inactivity_minutes)),
            ("rememberDays", n(remember_days)),
            ("maxFailures", n(max_failures)),
            ("failureWindowSecs", n(failure_window_secs)),
            ("banSecs", n(ban_secs)),
            ("backupSchedule", t(backup_schedule)),
            ("backupKeep", n(backup_keep)),
            ("renewDays", n(renew_days)),
            ("panelLogLevel", t(panel_log_level)),
            ("authdLogLevel", t(authd_log_level)),
            ("relayLogLevel", t(relay_log_level)),
        ]
        .into_iter()
        .filter_map(|(name, value)| value.map(|v| (name, v)))
        .collect()
    }

    /// A patch from a form's text fields (`sent(name)` is `None` for a field
    /// the form did not send): numbers are parsed here, with field errors.
    pub fn from_form<'a>(sent: impl Fn(&str) -> Option<&'a str>) -> Result<Patch, Vec<FieldError>> {
        let mut map = serde_json::Map::new();
        let mut errors = Vec::new();
        for field in FIELDS {
            let Some(text) = sent(field.name) else { continue };
            match field.kind {
                Kind::Number { .. } => match text.trim().parse::<u32>() {
                    Ok(n) => {
                        map.insert(field.name.into(), n.into());
                    }
                    Err(_) => errors.push(FieldError::new(field.name, field.range_message())),
                },
                Kind::Schedule | Kind::Level => {
                    map.insert(field.name.into(), text.trim().into());
                }
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        serde_json::from_value(serde_json::Value::Object(map))
            .map_err(|e| vec![FieldError::new("body", format!("cannot read the form: {e}"))])
    }
}

#[cfg(test)]
mod tests;
