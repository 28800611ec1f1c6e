//! The tunnels table. Validation lives in the tunnels domain module; this
//! layer only stores what it is given.

use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, Params, Row, params_from_iter};
use serde::Serialize;
use time::OffsetDateTime;

use super::{Store, StoreError, assigned, from_unix, numbered, split_list, to_unix};

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
    pub access: crate::model::Access,
    pub allowed_users: Vec<String>,
    pub allowed_groups: Vec<String>,
    pub description: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// The writable fields of a tunnel. Serialised, it is what the audit log
/// records of a change (the lists and the description are left out).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TunnelFields {
    pub name: String,
    pub agent: String,
    pub target: String,
    pub enabled: bool,
    pub access: String,
    #[serde(skip_serializing)]
    pub allowed_users: Vec<String>,
    #[serde(skip_serializing)]
    pub allowed_groups: Vec<String>,
    #[serde(skip_serializing)]
    pub description: String,
}

impl From<&Tunnel> for TunnelFields {
    fn from(t: &Tunnel) -> Self {
        let Tunnel {
            id: _,
            name,
            agent,
            target,
            enabled,
            access,
            allowed_users,
            allowed_groups,
            description,
            created_at: _,
            updated_at: _,
        } = t;
        TunnelFields {
            name: name.clone(),
            agent: agent.clone(),
            target: target.clone(),
            enabled: *enabled,
            access: access.to_string(),
            allowed_users: allowed_users.clone(),
            allowed_groups: allowed_groups.clone(),
            description: description.clone(),
        }
    }
}

const COLUMNS: &str =
    "id, name, agent, target, enabled, access, allowed_users, allowed_groups, description, created_at, updated_at";

/// The columns of [`TunnelFields`], in the order [`field_values`] gives them.
const FIELD_COLUMNS: [&str; 8] =
    ["name", "agent", "target", "enabled", "access", "allowed_users", "allowed_groups", "description"];

/// The SQL values of the writable fields (insert, update and restore bind
/// these), in the order of [`FIELD_COLUMNS`], followed by `extra`.
fn field_values(t: &TunnelFields, extra: impl IntoIterator<Item = Value>) -> impl Params {
    let TunnelFields { name, agent, target, enabled, access, allowed_users, allowed_groups, description } = t;
    let fields: [Value; FIELD_COLUMNS.len()] = [
        name.clone().into(),
        agent.clone().into(),
        target.clone().into(),
        (*enabled).into(),
        access.clone().into(),
        allowed_users.join(" ").into(),
        allowed_groups.join(" ").into(),
        description.clone().into(),
    ];
    params_from_iter(fields.into_iter().chain(extra))
}

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
        let n = FIELD_COLUMNS.len();
        let sql = format!(
            "INSERT INTO tunnels ({}, created_at, updated_at) VALUES ({}, ?{at}, ?{at})",
            FIELD_COLUMNS.join(", "),
            numbered(&FIELD_COLUMNS, 1),
            at = n + 1,
        );
        self.run(move |c| {
            c.execute(&sql, field_values(&t, [to_unix(now).into()])).map_err(|e| unique_name(e, &t.name))?;
            find(c, c.last_insert_rowid())?.ok_or(StoreError::NotFound)
        })
        .await
    }

    pub async fn update_tunnel(&self, id: i64, t: TunnelFields, now: OffsetDateTime) -> Result<Tunnel, StoreError> {
        let n = FIELD_COLUMNS.len();
        let sql = format!(
            "UPDATE tunnels SET {}, updated_at = ?{} WHERE id = ?{}",
            assigned(&FIELD_COLUMNS, 1),
            n + 1,
            n + 2
        );
        self.run(move |c| {
            let changed = c
                .execute(&sql, field_values(&t, [to_unix(now).into(), id.into()]))
                .map_err(|e| unique_name(e, &t.name))?;
            if changed == 0 {
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
        let n = FIELD_COLUMNS.len();
        let sql = format!(
            "INSERT INTO tunnels ({}, id, created_at, updated_at) VALUES ({}, ?{}, ?{}, ?{})",
            FIELD_COLUMNS.join(", "),
            numbered(&FIELD_COLUMNS, 1),
            n + 1,
            n + 2,
            n + 3
        );
        self.run(move |c| {
            let extra = [t.id.into(), to_unix(t.created_at).into(), to_unix(t.updated_at).into()];
            c.execute(&sql, field_values(&TunnelFields::from(&t), extra)).map_err(|e| unique_name(e, &t.name))?;
            find(c, t.id)?.ok_or(StoreError::NotFound)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::TunnelFields;

    #[test]
    fn audited_fields_are_name_agent_target_enabled_access() {
        let f = TunnelFields {
            name: "app".into(),
            agent: "home".into(),
            target: "127.0.0.1:80".into(),
            enabled: true,
            access: "restricted".into(),
            allowed_users: vec!["alice".into()],
            allowed_groups: vec!["family".into()],
            description: "notes".into(),
        };
        let json = serde_json::json!({
            "name": "app", "agent": "home", "target": "127.0.0.1:80", "enabled": true, "access": "restricted"
        });
        assert_eq!(serde_json::to_value(&f).unwrap(), json);
    }
}
