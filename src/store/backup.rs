//! Consistent copies of the database for backups.

use std::path::PathBuf;

use super::{Store, StoreError};

impl Store {
    /// Opens an existing database read-only and reads from it: the health
    /// check's "the store opens". Never creates or migrates anything.
    pub fn probe(path: &std::path::Path) -> Result<(), StoreError> {
        let conn = rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        conn.busy_timeout(std::time::Duration::from_millis(super::BUSY_TIMEOUT_MS))?;
        conn.query_row("SELECT COUNT(*) FROM schema_migrations", [], |r| r.get::<_, i64>(0))?;
        Ok(())
    }

    /// A trivial query through the pool: the panel's store is answering.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.run(|c| Ok(c.query_row("SELECT 1", [], |r| r.get::<_, i64>(0)).map(|_| ())?)).await
    }

    /// Writes a consistent, compacted copy of the whole database to `path`
    /// (`VACUUM INTO`: one read transaction, so writers carry on and the copy
    /// is a single point in time). `path` must not exist yet.
    pub async fn snapshot_to(&self, path: PathBuf) -> Result<(), StoreError> {
        self.run(move |c| {
            let target = path.to_str().ok_or_else(|| StoreError::Task("snapshot path is not UTF-8".into()))?;
            c.execute("VACUUM INTO ?1", [target])?;
            Ok(())
        })
        .await
    }

    /// Every row of every table as text, in a stable order: for comparing two
    /// databases (restore tests, diagnostics).
    pub fn dump(&self) -> Result<Vec<String>, StoreError> {
        self.blocking(|c| {
            let mut tables: Vec<String> = c
                .prepare(
                    "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
                )?
                .query_map([], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            tables.sort();
            let mut out = Vec::new();
            for table in tables {
                let mut stmt = c.prepare(&format!("SELECT * FROM \"{table}\""))?;
                let columns = stmt.column_count();
                let mut rows: Vec<String> = stmt
                    .query_map([], |r| {
                        let mut cells = Vec::with_capacity(columns);
                        for i in 0..columns {
                            let v: rusqlite::types::Value = r.get(i)?;
                            cells.push(format!("{v:?}"));
                        }
                        Ok(format!("{table}: {}", cells.join(" | ")))
                    })?
                    .collect::<Result<_, _>>()?;
                rows.sort();
                out.extend(rows);
            }
            Ok(out)
        })
    }
}
