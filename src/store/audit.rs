//! The audit log table.

use rusqlite::params_from_iter;
use rusqlite::types::Value;
use serde::Serialize;
use time::OffsetDateTime;

use super::{Store, StoreError};

#[derive(Debug, Clone)]
pub struct NewAuditEntry {
    pub at: OffsetDateTime,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub outcome: String,
    pub details: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntry {
    pub id: i64,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub at: OffsetDateTime,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub outcome: String,
    #[schema(value_type = Option<Object>)]
    pub details: Option<serde_json::Value>,
}

/// Filters for listing; every field optional. Newest first.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub actor: Option<String>,
    pub action: Option<String>,
    pub since: Option<OffsetDateTime>,
    pub until: Option<OffsetDateTime>,
    pub limit: u32,
    pub offset: u32,
}

fn millis(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

fn from_millis(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

impl Store {
    pub async fn append_audit(&self, entry: NewAuditEntry) -> Result<(), StoreError> {
        self.run(move |c| {
            c.execute(
                "INSERT INTO audit_log (at, actor, action, target, outcome, details) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                rusqlite::params![
                    millis(entry.at),
                    entry.actor,
                    entry.action,
                    entry.target,
                    entry.outcome,
                    entry.details.map(|d| d.to_string())
                ],
            )?;
            Ok(())
        })
        .await
    }

    /// Matching entries (newest first) and the total that match.
    pub async fn audit_entries(&self, q: AuditQuery) -> Result<(Vec<AuditEntry>, u64), StoreError> {
        self.run(move |c| {
            let mut clauses = Vec::new();
            let mut args: Vec<Value> = Vec::new();
            if let Some(actor) = q.actor {
                clauses.push("actor = ?");
                args.push(actor.into());
            }
            if let Some(action) = q.action {
                clauses.push("action = ?");
                args.push(action.into());
            }
            if let Some(since) = q.since {
                clauses.push("at >= ?");
                args.push(millis(since).into());
            }
            if let Some(until) = q.until {
                clauses.push("at < ?");
                args.push(millis(until).into());
            }
            let filter = if clauses.is_empty() { String::new() } else { format!("WHERE {}", clauses.join(" AND ")) };
            let total: i64 =
                c.query_row(&format!("SELECT COUNT(*) FROM audit_log {filter}"), params_from_iter(args.iter()), |r| r.get(0))?;
            args.push(i64::from(q.limit).into());
            args.push(i64::from(q.offset).into());
            let mut stmt = c.prepare(&format!(
                "SELECT id, at, actor, action, target, outcome, details FROM audit_log {filter} ORDER BY at DESC, id DESC LIMIT ? OFFSET ?"
            ))?;
            let rows = stmt
                .query_map(params_from_iter(args.iter()), |r| {
                    Ok(AuditEntry {
                        id: r.get(0)?,
                        at: from_millis(r.get(1)?),
                        actor: r.get(2)?,
                        action: r.get(3)?,
                        target: r.get(4)?,
                        outcome: r.get(5)?,
                        details: r.get::<_, Option<String>>(6)?.and_then(|d| serde_json::from_str(&d).ok()),
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok((rows, total as u64))
        })
        .await
    }

    /// Deletes entries older than `before`; returns how many.
    pub async fn prune_audit(&self, before: OffsetDateTime) -> Result<usize, StoreError> {
        self.run(move |c| Ok(c.execute("DELETE FROM audit_log WHERE at < ?1", [millis(before)])?)).await
    }
}
