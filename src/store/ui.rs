//! Rows the web UI keeps in the settings table (its CSRF secret).

use rusqlite::params;

use super::{Store, StoreError};

impl Store {
    /// Returns the value of `key`, first storing `candidate` when the row is
    /// absent. Concurrent callers all get the value that won.
    pub async fn setting_or_insert(&self, key: &'static str, candidate: String) -> Result<String, StoreError> {
        self.run(move |c| {
            c.execute(
                "INSERT INTO settings (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO NOTHING",
                params![key, candidate],
            )?;
            Ok(c.query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| r.get(0))?)
        })
        .await
    }
}
