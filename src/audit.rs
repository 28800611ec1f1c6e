//! The audit log: every state change and every denied admin or agent request.

use serde::Serialize;
use time::OffsetDateTime;

use crate::store::{NewAuditEntry, Store};

/// How a recorded action ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Success,
    Failure,
    Denied,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Denied => "denied",
        }
    }
}

/// Writes an entry. An audit write that fails is logged, never fatal to the
/// request that caused it (the change itself already happened).
pub async fn record(
    store: &Store,
    actor: &str,
    action: &str,
    target: &str,
    outcome: Outcome,
    details: Option<serde_json::Value>,
) {
    let entry = NewAuditEntry {
        at: OffsetDateTime::now_utc(),
        actor: actor.to_string(),
        action: action.to_string(),
        target: target.to_string(),
        outcome: outcome.as_str().to_string(),
        details,
    };
    if let Err(err) = store.append_audit(entry).await {
        tracing::error!(%err, action, actor, "cannot write audit entry");
    }
}

/// Deletes entries past the retention period; runs as the `audit-retention` task.
pub async fn prune(store: &Store, retention_days: u32) -> Result<usize, crate::store::StoreError> {
    let before = OffsetDateTime::now_utc() - time::Duration::days(i64::from(retention_days));
    store.prune_audit(before).await
}
