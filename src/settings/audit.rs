//! `audit.*`: how long the audit log keeps its entries.

use serde::{Deserialize, Serialize};

use super::SettingsError;

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

impl AuditSettings {
    pub(super) fn validate(&self) -> Result<(), SettingsError> {
        if self.retention_days == 0 {
            return Err(SettingsError::invalid("audit.retention_days", "must be at least 1"));
        }
        Ok(())
    }
}
