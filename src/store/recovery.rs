//! Recovery codes of the panel's second factor: hashes only, one row per
//! unused code.

use rusqlite::params;
use time::OffsetDateTime;

use super::{Store, StoreError, to_unix};

impl Store {
    /// Replaces every recovery code with `hashes` (an empty list removes them).
    pub async fn replace_recovery_codes(&self, hashes: Vec<String>, now: OffsetDateTime) -> Result<(), StoreError> {
        self.run(move |c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            tx.execute("DELETE FROM panel_recovery_codes", [])?;
            for hash in &hashes {
                tx.execute(
                    "INSERT INTO panel_recovery_codes (hash, created_at) VALUES (?1, ?2)",
                    params![hash, to_unix(now)],
                )?;
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }

    /// `(id, hash)` of every unused recovery code.
    pub async fn recovery_code_hashes(&self) -> Result<Vec<(i64, String)>, StoreError> {
        self.run(|c| {
            let mut stmt = c.prepare("SELECT id, hash FROM panel_recovery_codes ORDER BY id")?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await
    }

    /// Spends the code `id`: `Some(remaining)` when this call spent it,
    /// `None` when it was spent (or replaced) meanwhile.
    pub async fn spend_recovery_code(&self, id: i64) -> Result<Option<u32>, StoreError> {
        self.run(move |c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            if tx.execute("DELETE FROM panel_recovery_codes WHERE id = ?1", [id])? == 0 {
                return Ok(None);
            }
            let remaining: u32 = tx.query_row("SELECT COUNT(*) FROM panel_recovery_codes", [], |r| r.get(0))?;
            tx.commit()?;
            Ok(Some(remaining))
        })
        .await
    }

    /// How many recovery codes are left.
    pub async fn recovery_codes_remaining(&self) -> Result<u32, StoreError> {
        self.run(|c| Ok(c.query_row("SELECT COUNT(*) FROM panel_recovery_codes", [], |r| r.get(0))?)).await
    }
}
