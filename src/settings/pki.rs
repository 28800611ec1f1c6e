//! `pki.*`: how long agent certificates and enrollment tokens stay valid.

use serde::{Deserialize, Serialize};

use super::SettingsError;

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

impl PkiSettings {
    pub(super) fn validate(&self) -> Result<(), SettingsError> {
        if !(1..=3650).contains(&self.agent_cert_days) {
            return Err(SettingsError::invalid("pki.agent_cert_days", "must be between 1 and 3650"));
        }
        if !(1..=10080).contains(&self.enroll_token_minutes) {
            return Err(SettingsError::invalid("pki.enroll_token_minutes", "must be between 1 and 10080 (7 days)"));
        }
        Ok(())
    }
}
