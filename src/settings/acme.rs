//! `acme.*`: which certificate authority issues the appliance's
//! certificates, when the renewal check runs and how early it renews.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::SettingsError;

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

    pub(super) fn validate(&self) -> Result<(), SettingsError> {
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
