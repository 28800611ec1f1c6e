//! Rows of runtime settings (`runtime_settings`), owned by the panel; authd
//! and the relay read them.

use rusqlite::params;
use time::OffsetDateTime;

use super::{Store, StoreError, to_unix};

impl Store {
    /// Every stored runtime setting: (field name, JSON value).
    pub async fn runtime_settings(&self) -> Result<Vec<(String, String)>, StoreError> {
        self.run(|c| {
            let mut stmt = c.prepare("SELECT key, value FROM runtime_settings ORDER BY key")?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await
    }

    /// Writes several runtime settings in one transaction.
    pub async fn put_runtime_settings(
        &self,
        rows: Vec<(String, String)>,
        at: OffsetDateTime,
        by: String,
    ) -> Result<(), StoreError> {
        self.run(move |c| {
            let tx = c.transaction()?;
            for (key, value) in &rows {
                tx.execute(
                    "INSERT INTO runtime_settings (key, value, updated_at, updated_by) VALUES (?1, ?2, ?3, ?4) \
                     ON CONFLICT(key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at, \
                     updated_by = excluded.updated_by",
                    params![key, value, to_unix(at), by],
                )?;
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }
}
