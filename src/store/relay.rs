//! The relay's view of the store: a cheap change detector and the status
//! table it owns (`relay_status`).

use rusqlite::{Row, params};
use serde::Serialize;
use time::OffsetDateTime;

use super::{Store, StoreError, from_unix, to_unix};

/// What the relay records about a connected agent.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AgentStatus {
    pub label: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub connected_since: OffsetDateTime,
    pub remote_addr: String,
    pub protocol_version: u16,
    /// Bytes from visitors to the agent.
    pub bytes_in: u64,
    /// Bytes from the agent to visitors.
    pub bytes_out: u64,
    pub open_streams: u64,
}

fn status_row(r: &Row<'_>) -> rusqlite::Result<AgentStatus> {
    Ok(AgentStatus {
        label: r.get(0)?,
        connected_since: from_unix(r.get(1)?),
        remote_addr: r.get(2)?,
        protocol_version: r.get(3)?,
        bytes_in: r.get::<_, i64>(4)? as u64,
        bytes_out: r.get::<_, i64>(5)? as u64,
        open_streams: r.get::<_, i64>(6)? as u64,
    })
}

/// Notices commits made by other connections (this process or another)
/// through `PRAGMA data_version`, which costs no I/O when nothing changed.
pub struct ChangeWatcher {
    conn: r2d2::PooledConnection<r2d2_sqlite::SqliteConnectionManager>,
    last: Option<i64>,
}

impl ChangeWatcher {
    /// True on the first call and whenever another connection committed since.
    pub fn changed(&mut self) -> Result<bool, StoreError> {
        let v: i64 = self.conn.query_row("PRAGMA data_version", [], |r| r.get(0))?;
        let changed = self.last != Some(v);
        self.last = Some(v);
        Ok(changed)
    }
}

impl Store {
    /// A watcher holding one pooled connection for as long as it lives.
    pub fn change_watcher(&self) -> Result<ChangeWatcher, StoreError> {
        Ok(ChangeWatcher { conn: self.pool.get()?, last: None })
    }

    /// Replaces the whole status table (the relay's periodic snapshot).
    pub async fn put_relay_status(&self, rows: Vec<AgentStatus>) -> Result<(), StoreError> {
        self.run(move |c| {
            let tx = c.transaction()?;
            tx.execute("DELETE FROM relay_status", [])?;
            for s in &rows {
                tx.execute(
                    "INSERT INTO relay_status (label, connected_since, remote_addr, protocol_version, bytes_in, bytes_out, \
                     open_streams, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                    params![
                        s.label,
                        to_unix(s.connected_since),
                        s.remote_addr,
                        s.protocol_version,
                        s.bytes_in as i64,
                        s.bytes_out as i64,
                        s.open_streams as i64,
                        to_unix(OffsetDateTime::now_utc())
                    ],
                )?;
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }

    /// Connected agents as the relay last recorded them.
    pub async fn relay_status(&self) -> Result<Vec<AgentStatus>, StoreError> {
        self.run(|c| {
            let mut stmt = c.prepare(
                "SELECT label, connected_since, remote_addr, protocol_version, bytes_in, bytes_out, open_streams \
                 FROM relay_status ORDER BY label",
            )?;
            let rows = stmt.query_map([], status_row)?.collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await
    }
}
