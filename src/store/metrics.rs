//! What `/metrics` reads from the store in one go.

use super::{Store, StoreError, from_unix};
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
            Ok(MetricsSnapshot { tunnels, audit_counts, client_certs })
        })
        .await
    }
}
