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
    /// Round trip of the last answered WebSocket ping, relay → nginx →
    /// agent and back, milliseconds; `None` before the first answer.
    pub rtt_ms: Option<f64>,
    /// When the relay last heard from the agent (a ping or its answer).
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_contact: Option<OffsetDateTime>,
}

/// The last contact with an agent, kept after it goes offline.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AgentContact {
    pub label: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub last_contact: OffsetDateTime,
    /// Round trip measured then, milliseconds.
    pub rtt_ms: Option<f64>,
}

fn rtt_ms(us: Option<i64>) -> Option<f64> {
    us.map(|us| us as f64 / 1000.0)
}

fn rtt_us(ms: Option<f64>) -> Option<i64> {
    ms.map(|ms| (ms * 1000.0).round() as i64)
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
        rtt_ms: rtt_ms(r.get(7)?),
        last_contact: r.get::<_, Option<i64>>(8)?.map(from_unix),
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

    /// Replaces the whole status table (the relay's periodic snapshot) and
    /// records each listed agent's last contact.
    pub async fn put_relay_status(&self, rows: Vec<AgentStatus>) -> Result<(), StoreError> {
        self.run(move |c| {
            let tx = c.transaction()?;
            tx.execute("DELETE FROM relay_status", [])?;
            for s in &rows {
                tx.execute(
                    "INSERT INTO relay_status (label, connected_since, remote_addr, protocol_version, bytes_in, bytes_out, \
                     open_streams, updated_at, rtt_us, last_contact) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                    params![
                        s.label,
                        to_unix(s.connected_since),
                        s.remote_addr,
                        s.protocol_version,
                        s.bytes_in as i64,
                        s.bytes_out as i64,
                        s.open_streams as i64,
                        to_unix(OffsetDateTime::now_utc()),
                        rtt_us(s.rtt_ms),
                        s.last_contact.map(to_unix),
                    ],
                )?;
                if let Some(at) = s.last_contact {
                    put_contact(&tx, &s.label, at, s.rtt_ms)?;
                }
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }

    /// Records an agent's last contact (the relay calls it when the agent
    /// goes offline, so the time survives the status row).
    pub async fn put_agent_contact(&self, contact: AgentContact) -> Result<(), StoreError> {
        self.run(move |c| {
            put_contact(c, &contact.label, contact.last_contact, contact.rtt_ms)?;
            Ok(())
        })
        .await
    }

    /// The last contact of every agent that ever connected, by label.
    pub async fn agent_contacts(&self) -> Result<Vec<AgentContact>, StoreError> {
        self.run(|c| {
            let mut stmt = c.prepare("SELECT label, last_contact, rtt_us FROM agent_contact ORDER BY label")?;
            let rows = stmt
                .query_map([], |r| {
                    Ok(AgentContact { label: r.get(0)?, last_contact: from_unix(r.get(1)?), rtt_ms: rtt_ms(r.get(2)?) })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await
    }

    /// Connected agents as the relay last recorded them.
    pub async fn relay_status(&self) -> Result<Vec<AgentStatus>, StoreError> {
        self.run(|c| {
            let mut stmt = c.prepare(
                "SELECT label, connected_since, remote_addr, protocol_version, bytes_in, bytes_out, open_streams, \
                 rtt_us, last_contact FROM relay_status ORDER BY label",
            )?;
            let rows = stmt.query_map([], status_row)?.collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await
    }
}

/// Upserts one agent's last contact; an older time never replaces a newer one.
fn put_contact(c: &rusqlite::Connection, label: &str, at: OffsetDateTime, rtt: Option<f64>) -> rusqlite::Result<usize> {
    c.execute(
        "INSERT INTO agent_contact (label, last_contact, rtt_us) VALUES (?1, ?2, ?3) \
         ON CONFLICT(label) DO UPDATE SET last_contact = excluded.last_contact, \
         rtt_us = COALESCE(excluded.rtt_us, agent_contact.rtt_us) \
         WHERE excluded.last_contact >= agent_contact.last_contact",
        params![label, to_unix(at), rtt_us(rtt)],
    )
}
