//! `backup.*`: where backup archives go, the optional schedule and its
//! passphrase, and the largest archive a restore accepts.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{Secret, SettingsError};

/// Shortest accepted backup passphrase, characters.
pub const MIN_PASSPHRASE_CHARS: usize = 12;

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
    pub(super) fn validate(&self) -> Result<(), SettingsError> {
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
            && p.expose().chars().count() < MIN_PASSPHRASE_CHARS
        {
            return Err(SettingsError::invalid(
                "backup.passphrase",
                format!("must be at least {} characters", MIN_PASSPHRASE_CHARS),
            ));
        }
        Ok(())
    }
}
