//! The SQLite store: the only module that touches `rusqlite`.
//!
//! Each connection runs in WAL mode with a busy timeout and foreign keys on.
//! Queries run on the blocking pool through [`Store::run`], never on the async
//! executor. Migrations are numbered SQL files embedded in the binary and
//! applied at open, tracked with `PRAGMA user_version`.

mod agents;
mod audit;
mod backup;
mod certs;
mod invitations;
mod keys;
mod kv;
mod metrics;
mod recovery;
mod relay;
mod runtime_settings;
mod sites;
mod tunnels;
mod ui;
mod users;
mod visitor_sessions;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::Connection;
use scheduled_thread_pool::ScheduledThreadPool;
use time::OffsetDateTime;

pub use agents::{Agent, ClientCert, EnrollmentToken, NewEnrollmentToken};
pub use audit::{AuditEntry, AuditQuery, NewAuditEntry};
pub use certs::{AcmeRun, CertFailure, CertRecord};
pub use invitations::{Invitation, NewInvitation};
pub use keys::{ApiKeyRecord, NewApiKey};
pub use metrics::{MetricsSnapshot, ProcessCounter};
pub use relay::{AgentContact, AgentStatus, ChangeWatcher};
pub use sites::{Site, SiteFields};
pub use tunnels::{Tunnel, TunnelFields};
pub use users::{Group, NewUserRow, Policy, User, UserUpdate};
pub use visitor_sessions::VisitorSession;

/// Migrations by name, applied in name order, each once. Every module that
/// owns tables adds its own numbered file; `schema_migrations` records which
/// ran, so files added in parallel never collide on a version number.
const MIGRATIONS: &[(&str, &str)] = &[
    ("0001_init", include_str!("migrations/0001_init.sql")),
    ("0002_tunnels", include_str!("migrations/0002_tunnels.sql")),
    ("0003_sites", include_str!("migrations/0003_sites.sql")),
    ("0004_users", include_str!("migrations/0004_users.sql")),
    ("0005_certificates", include_str!("migrations/0005_certificates.sql")),
    ("0006_relay_status", include_str!("migrations/0006_relay_status.sql")),
    ("0007_ops", include_str!("migrations/0007_ops.sql")),
    ("0008_agent_link", include_str!("migrations/0008_agent_link.sql")),
    ("0009_recovery_codes", include_str!("migrations/0009_recovery_codes.sql")),
    ("0010_runtime_settings", include_str!("migrations/0010_runtime_settings.sql")),
];

/// How long a writer waits for a lock before giving up, milliseconds.
const BUSY_TIMEOUT_MS: u64 = 5_000;
/// Connections per process. The pool's housekeeping (opening connections up
/// to `min_idle`, reaping) runs on one thread instead of r2d2's default three.
pub const POOL_SIZE: u32 = 4;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database pool: {0}")]
    Pool(#[from] r2d2::Error),
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("migration {name} failed: {source}")]
    Migration { name: &'static str, source: rusqlite::Error },
    #[error("database has migration {0}, which this binary does not know (a newer version wrote it)")]
    TooNew(String),
    #[error("database task failed: {0}")]
    Task(String),
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    Conflict(String),
    /// The data volume has no room left; the write was rolled back.
    #[error("the data volume is full")]
    StorageFull,
}

impl StoreError {
    /// SQLite's "database or disk is full" as [`StoreError::StorageFull`].
    fn classify(self) -> StoreError {
        match &self {
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(e, _)) if e.code == rusqlite::ErrorCode::DiskFull => {
                StoreError::StorageFull
            }
            _ => self,
        }
    }

    /// Maps a unique-constraint failure to `Conflict(message)`.
    fn conflict_on_unique(err: rusqlite::Error, message: &str) -> StoreError {
        match &err {
            rusqlite::Error::SqliteFailure(e, _) if e.code == rusqlite::ErrorCode::ConstraintViolation => {
                StoreError::Conflict(message.to_string())
            }
            _ => StoreError::Sqlite(err),
        }
    }
}

type Pool = r2d2::Pool<SqliteConnectionManager>;

/// A pool of connections to `portico.db`. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    pool: Pool,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

fn configure(conn: &mut Connection) -> Result<(), rusqlite::Error> {
    conn.busy_timeout(Duration::from_millis(BUSY_TIMEOUT_MS))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(())
}

/// Creates the database file readable by its owner only (0600) when it does
/// not exist yet: it holds the install's HMAC root secret and every user's
/// TOTP secret. SQLite gives its `-wal` and `-shm` files the database
/// file's mode.
/// An existing file keeps its mode (the start-up check in [`crate::init`]
/// tightens it); any other failure is left for SQLite to report with the path.
fn create_private(path: &Path) {
    use std::os::unix::fs::OpenOptionsExt;
    let _ = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path);
}

impl Store {
    /// Opens (creating if needed) the database and applies pending migrations.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        create_private(path);
        let manager = SqliteConnectionManager::file(path).with_init(configure);
        let pool = r2d2::Pool::builder()
            .max_size(POOL_SIZE)
            .min_idle(Some(1))
            .thread_pool(Arc::new(ScheduledThreadPool::builder().num_threads(1).thread_name_pattern("r2d2-{}").build()))
            .build(manager)?;
        let store = Store { pool };
        store.migrate()?;
        Ok(store)
    }

    fn migrate(&self) -> Result<(), StoreError> {
        migrate(&mut *self.pool.get()?)
    }

    /// Applies pending migrations to the database file at `path` and checks
    /// its integrity on one plain connection, closed before this returns — so
    /// no pooled connection is left to checkpoint or delete `-wal`/`-shm`
    /// files afterwards (a restore moves the file right after this).
    pub fn check_file(path: &Path) -> Result<(), StoreError> {
        let mut conn = Connection::open(path)?;
        configure(&mut conn)?;
        migrate(&mut conn)?;
        integrity_check(&conn)?;
        conn.close().map_err(|(_, e)| StoreError::Sqlite(e))
    }

    /// Names of the applied migrations, in order.
    pub fn migrations(&self) -> Result<Vec<String>, StoreError> {
        self.blocking(|c| applied_migrations(c))
    }

    /// Runs `f` on a pooled connection on the blocking thread pool.
    async fn run<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let pool = self.pool.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = pool.get()?;
            f(&mut conn).map_err(StoreError::classify)
        })
        .await
        .map_err(|e| StoreError::Task(e.to_string()))?
    }

    /// Runs `f` on the calling thread; for the CLI and start-up only.
    fn blocking<T>(&self, f: impl FnOnce(&mut Connection) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let mut conn = self.pool.get()?;
        f(&mut conn).map_err(StoreError::classify)
    }

    /// `PRAGMA integrity_check`; `Ok(())` when the database is sound.
    pub fn integrity_check(&self) -> Result<(), StoreError> {
        self.blocking(|c| integrity_check(c))
    }
}

fn integrity_check(conn: &Connection) -> Result<(), StoreError> {
    let result: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
    if result == "ok" { Ok(()) } else { Err(StoreError::Task(format!("integrity check: {result}"))) }
}

/// Applies this binary's pending migrations in one transaction; refuses a
/// database that has migrations this binary does not know.
fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied_at INTEGER NOT NULL)",
    )?;
    let applied = applied_migrations(&tx)?;
    if let Some(unknown) = applied.iter().find(|a| !MIGRATIONS.iter().any(|(name, _)| name == a)) {
        return Err(StoreError::TooNew(unknown.clone()));
    }
    for (name, sql) in MIGRATIONS.iter().filter(|(name, _)| !applied.iter().any(|a| a == name)) {
        tx.execute_batch(sql).map_err(|source| StoreError::Migration { name, source })?;
        tx.execute(
            "INSERT INTO schema_migrations (name, applied_at) VALUES (?1, ?2)",
            rusqlite::params![name, to_unix(OffsetDateTime::now_utc())],
        )?;
        tracing::info!(migration = name, "applied database migration");
    }
    tx.commit()?;
    Ok(())
}

fn applied_migrations(conn: &Connection) -> Result<Vec<String>, StoreError> {
    let mut stmt = conn.prepare("SELECT name FROM schema_migrations ORDER BY name")?;
    let names = stmt.query_map([], |r| r.get(0))?.collect::<Result<Vec<String>, _>>()?;
    Ok(names)
}

/// Unix seconds → UTC time (clamped to the epoch on nonsense).
fn from_unix(secs: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(secs).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

fn to_unix(t: OffsetDateTime) -> i64 {
    t.unix_timestamp()
}

/// Space-separated list column → vector.
fn split_list(text: &str) -> Vec<String> {
    text.split_whitespace().map(str::to_string).collect()
}

/// `?first, ?first+1, …`: one numbered parameter per column.
fn numbered(columns: &[&str], first: usize) -> String {
    (first..first + columns.len()).map(|i| format!("?{i}")).collect::<Vec<_>>().join(", ")
}

/// `a = ?first, b = ?first+1, …`: each column set from its numbered parameter.
fn assigned(columns: &[&str], first: usize) -> String {
    columns.iter().zip(first..).map(|(c, i)| format!("{c} = ?{i}")).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests;
