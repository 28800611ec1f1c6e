//! The tunnels table. Validation lives in the tunnels domain module; this
//! layer only stores what it is given.

use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::Serialize;
use time::OffsetDateTime;

use super::{Store, StoreError, from_unix, split_list, to_unix};

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Tunnel {
    pub id: i64,
    pub name: String,
    pub agent: String,
    pub target: String,
    pub enabled: bool,
    /// `public` (Public: anyone with the link), `authenticated` (Signed-in
    /// visitors: any visitor user) or `restricted` (Restricted: only
    /// `allowedUsers` and `allowedGroups`).
    pub access: String,
    pub allowed_users: Vec<String>,
    pub allowed_groups: Vec<String>,
    pub description: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// The writable fields of a tunnel.
#[derive(Debug, Clone, PartialEq)]
pub struct TunnelFields {
    pub name: String,
    pub agent: String,
    pub target: String,
    pub enabled: bool,
    pub access: String,
    pub allowed_users: Vec<String>,
    pub allowed_groups: Vec<String>,
    pub description: String,
}

impl From<&Tunnel> for TunnelFields {
    fn from(t: &Tunnel) -> Self {
        TunnelFields {
            name: t.name.clone(),
            agent: t.agent.clone(),
            target: t.target.clone(),
            enabled: t.enabled,
            access: t.access.clone(),
            allowed_users: t.allowed_users.clone(),
            allowed_groups: t.allowed_groups.clone(),
            description: t.description.clone(),
        }
    }
}

const COLUMNS: &str =
    "id, name, agent, target, enabled, access, allowed_users, allowed_groups, description, created_at, updated_at";

fn row(r: &Row<'_>) -> rusqlite::Result<Tunnel> {
    Ok(Tunnel {
        id: r.get(0)?,
        name: r.get(1)?,
        agent: r.get(2)?,
        target: r.get(3)?,
        enabled: r.get(4)?,
        access: r.get(5)?,
        allowed_users: split_list(&r.get::<_, String>(6)?),
        allowed_groups: split_list(&r.get::<_, String>(7)?),
        description: r.get(8)?,
        created_at: from_unix(r.get(9)?),
        updated_at: from_unix(r.get(10)?),
    })
}

fn find(conn: &Connection, id: i64) -> Result<Option<Tunnel>, StoreError> {
    Ok(conn.query_row(&format!("SELECT {COLUMNS} FROM tunnels WHERE id = ?1"), [id], row).optional()?)
}

fn unique_name(err: rusqlite::Error, name: &str) -> StoreError {
    match &err {
        rusqlite::Error::SqliteFailure(e, _) if e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY => {
            StoreError::Conflict("The agent does not exist".into())
        }
        _ => StoreError::conflict_on_unique(err, &format!("a tunnel named '{name}' already exists")),
    }
}

impl Store {
    /// Every tunnel, by name.
    pub async fn tunnels(&self) -> Result<Vec<Tunnel>, StoreError> {
        self.run(|c| {
            let mut stmt = c.prepare(&format!("SELECT {COLUMNS} FROM tunnels ORDER BY name"))?;
            let rows = stmt.query_map([], row)?.collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await
    }

    pub async fn tunnel(&self, id: i64) -> Result<Option<Tunnel>, StoreError> {
        self.run(move |c| find(c, id)).await
    }

    pub async fn insert_tunnel(&self, t: TunnelFields, now: OffsetDateTime) -> Result<Tunnel, StoreError> {
        self.run(move |c| {
            c.execute(
                "INSERT INTO tunnels (name, agent, target, enabled, access, allowed_users, allowed_groups, description, created_at, updated_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9)",
                params![
                    t.name,
                    t.agent,
                    t.target,
                    t.enabled,
                    t.access,
                    t.allowed_users.join(" "),
                    t.allowed_groups.join(" "),
                    t.description,
                    to_unix(now)
                ],
            )
            .map_err(|e| unique_name(e, &t.name))?;
            find(c, c.last_insert_rowid())?.ok_or(StoreError::NotFound)
        })
        .await
    }

    pub async fn update_tunnel(&self, id: i64, t: TunnelFields, now: OffsetDateTime) -> Result<Tunnel, StoreError> {
        self.run(move |c| {
            let n = c
                .execute(
                    "UPDATE tunnels SET name = ?2, agent = ?3, target = ?4, enabled = ?5, access = ?6, allowed_users = ?7, \
                     allowed_groups = ?8, description = ?9, updated_at = ?10 WHERE id = ?1",
                    params![
                        id,
                        t.name,
                        t.agent,
                        t.target,
                        t.enabled,
                        t.access,
                        t.allowed_users.join(" "),
                        t.allowed_groups.join(" "),
                        t.description,
                        to_unix(now)
                    ],
                )
                .map_err(|e| unique_name(e, &t.name))?;
            if n == 0 {
                return Err(StoreError::NotFound);
            }
            find(c, id)?.ok_or(StoreError::NotFound)
        })
        .await
    }

    /// Deletes and returns the tunnel (so a failed follow-up can re-insert it).
    pub async fn delete_tunnel(&self, id: i64) -> Result<Tunnel, StoreError> {
        self.run(move |c| {
            let tunnel = find(c, id)?.ok_or(StoreError::NotFound)?;
            c.execute("DELETE FROM tunnels WHERE id = ?1", [id])?;
            Ok(tunnel)
        })
        .await
    }

    /// Puts back a deleted tunnel with its original id (undo of a delete).
    pub async fn restore_tunnel(&self, t: Tunnel) -> Result<Tunnel, StoreError> {
        self.run(move |c| {
            c.execute(
                &format!("INSERT INTO tunnels ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"),
                params![
                    t.id,
                    t.name,
                    t.agent,
                    t.target,
                    t.enabled,
                    t.access,
                    t.allowed_users.join(" "),
                    t.allowed_groups.join(" "),
                    t.description,
                    to_unix(t.created_at),
                    to_unix(t.updated_at)
                ],
            )
            .map_err(|e| unique_name(e, &t.name))?;
            find(c, t.id)?.ok_or(StoreError::NotFound)
        })
        .await
    }
}
