//! What `/metrics` reads from the store in one go.

use super::{Store, StoreError, from_unix, to_unix};
use time::OffsetDateTime;

/// Counts and states for the metrics endpoint.
#[derive(Debug, Default)]
pub struct MetricsSnapshot {
    /// (tunnel, agent, enabled)
    pub tunnels: Vec<(String, String, bool)>,
    /// Audit entries per (action, outcome) for the actions metrics report.
    pub audit_counts: Vec<(String, String, u64)>,
    /// Valid client certificates: (name, not after).
    pub client_certs: Vec<(String, OffsetDateTime)>,
    /// Counters other processes publish: (process, name, labels, value).
    pub process_counters: Vec<ProcessCounter>,
}

/// One counter a process publishes (see `0007_ops.sql`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ProcessCounter {
    pub process: String,
    pub name: String,
    /// `key=value` pairs, comma separated; empty for none.
    pub labels: String,
    pub value: u64,
}

/// Audit actions counted in metrics (SQL `LIKE` patterns).
const COUNTED_ACTIONS: &[&str] = &["authd.%", "nginx.%", "acme.%", "backup.%", "service.%", "cert%renew%"];

impl Store {
    pub async fn metrics_snapshot(&self) -> Result<MetricsSnapshot, StoreError> {
        self.run(|c| {
            let tunnels = c
                .prepare("SELECT name, agent, enabled FROM tunnels ORDER BY name")?
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get::<_, i64>(2)? != 0)))?
                .collect::<Result<_, _>>()?;
            let mut audit_counts = Vec::new();
            let mut stmt = c.prepare(
                "SELECT action, outcome, COUNT(*) FROM audit_log WHERE action LIKE ?1 GROUP BY action, outcome ORDER BY action, outcome",
            )?;
            for pattern in COUNTED_ACTIONS {
                let rows = stmt.query_map([pattern], |r| Ok((r.get(0)?, r.get(1)?, r.get::<_, i64>(2)? as u64)))?;
                for row in rows {
                    audit_counts.push(row?);
                }
            }
            audit_counts.sort();
            audit_counts.dedup();
            let client_certs = c
                .prepare(
                    "SELECT CASE kind WHEN 'admin' THEN 'admin' ELSE 'agent:' || COALESCE(label, '') END, MAX(not_after)
                     FROM client_certs WHERE revoked_at IS NULL GROUP BY kind, label ORDER BY 1",
                )?
                .query_map([], |r| Ok((r.get(0)?, from_unix(r.get(1)?))))?
                .collect::<Result<_, _>>()?;
            let process_counters = c
                .prepare("SELECT process, name, labels, value FROM process_counters ORDER BY process, name, labels")?
                .query_map([], |r| {
                    Ok(ProcessCounter {
                        process: r.get(0)?,
                        name: r.get(1)?,
                        labels: r.get(2)?,
                        value: r.get::<_, i64>(3)?.max(0) as u64,
                    })
                })?
                .collect::<Result<_, _>>()?;
            Ok(MetricsSnapshot { tunnels, audit_counts, client_certs, process_counters })
        })
        .await
    }

    /// Replaces every counter row of `process` (one transaction).
    pub async fn put_process_counters(
        &self,
        process: &'static str,
        rows: Vec<ProcessCounter>,
    ) -> Result<(), StoreError> {
        self.run(move |c| {
            let tx = c.transaction()?;
            tx.execute("DELETE FROM process_counters WHERE process = ?1", [process])?;
            let now = to_unix(OffsetDateTime::now_utc());
            for r in rows {
                tx.execute(
                    "INSERT INTO process_counters (process, name, labels, value, updated_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                    rusqlite::params![process, r.name, r.labels, i64::try_from(r.value).unwrap_or(i64::MAX), now],
                )?;
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }
}
