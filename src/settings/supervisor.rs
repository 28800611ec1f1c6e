//! `supervisor.*`: the process supervisor whose services the panel lists
//! and controls, and where their logs are kept.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

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
