//! Small key/value settings rows (onboarding state, domain, flags).

use rusqlite::{Connection, OptionalExtension, params};

use super::{Store, StoreError};

fn get(conn: &Connection, key: &str) -> Result<Option<String>, StoreError> {
    Ok(conn.query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| r.get(0)).optional()?)
}

fn put(conn: &Connection, key: &str, value: &str) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO settings (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        params![key, value],
    )?;
    Ok(())
}

impl Store {
    /// Reads one settings row.
    pub async fn setting(&self, key: &'static str) -> Result<Option<String>, StoreError> {
        self.run(move |c| get(c, key)).await
    }

    /// Reads several settings rows at once; missing keys are `None`.
    pub async fn settings(&self, keys: &'static [&'static str]) -> Result<Vec<Option<String>>, StoreError> {
        self.run(move |c| keys.iter().map(|k| get(c, k)).collect()).await
    }

    /// Writes several rows in one transaction.
    pub async fn put_settings(&self, rows: Vec<(&'static str, String)>) -> Result<(), StoreError> {
        self.run(move |c| {
            let tx = c.transaction()?;
            for (k, v) in &rows {
                put(&tx, k, v)?;
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }

    /// Atomically moves `key` from one of `from` (absent counts as `absent_as`)
    /// to `to`, writing `extra` rows in the same transaction. Returns the value
    /// found when the move is not allowed.
    pub async fn transition(
        &self,
        key: &'static str,
        absent_as: &'static str,
        from: &'static [&'static str],
        to: &'static str,
        extra: Vec<(&'static str, String)>,
    ) -> Result<Result<(), String>, StoreError> {
        self.run(move |c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let current = get(&tx, key)?.unwrap_or_else(|| absent_as.to_string());
            if !from.contains(&current.as_str()) {
                return Ok(Err(current));
            }
            put(&tx, key, to)?;
            for (k, v) in &extra {
                put(&tx, k, v)?;
            }
            tx.commit()?;
            Ok(Ok(()))
        })
        .await
    }
}
