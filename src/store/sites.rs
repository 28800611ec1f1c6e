//! The sites table. Names share one namespace with tunnels (triggers in
//! `0003_sites`); validation lives in the sites domain module.

use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, Params, Row, params_from_iter};
use serde::Serialize;
use time::OffsetDateTime;

use super::{Store, StoreError, assigned, from_unix, numbered, split_list, to_unix};

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Site {
    pub id: i64,
    pub name: String,
    pub spa_fallback: bool,
    /// `public` (Public: anyone with the link), `authenticated` (Signed-in
    /// visitors: any visitor user) or `restricted` (Restricted: only
    /// `allowedUsers` and `allowedGroups`).
    pub access: crate::model::Access,
    pub allowed_users: Vec<String>,
    pub allowed_groups: Vec<String>,
    /// Upload cap for the whole site, bytes.
    pub max_bytes: u64,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// The writable fields of a site.
#[derive(Debug, Clone, PartialEq)]
pub struct SiteFields {
    pub name: String,
    pub spa_fallback: bool,
    pub access: String,
    pub allowed_users: Vec<String>,
    pub allowed_groups: Vec<String>,
    pub max_bytes: u64,
}

impl From<&Site> for SiteFields {
    fn from(s: &Site) -> Self {
        let Site {
            id: _,
            name,
            spa_fallback,
            access,
            allowed_users,
            allowed_groups,
            max_bytes,
            created_at: _,
            updated_at: _,
        } = s;
        SiteFields {
            name: name.clone(),
            spa_fallback: *spa_fallback,
            access: access.to_string(),
            allowed_users: allowed_users.clone(),
            allowed_groups: allowed_groups.clone(),
            max_bytes: *max_bytes,
        }
    }
}

const COLUMNS: &str =
    "id, name, spa_fallback, access, allowed_users, allowed_groups, max_bytes, created_at, updated_at";

/// The columns of [`SiteFields`], in the order [`field_values`] gives them.
const FIELD_COLUMNS: [&str; 6] = ["name", "spa_fallback", "access", "allowed_users", "allowed_groups", "max_bytes"];

/// The SQL values of the writable fields (insert, update and restore bind
/// these), in the order of [`FIELD_COLUMNS`], followed by `extra`.
fn field_values(s: &SiteFields, extra: impl IntoIterator<Item = Value>) -> impl Params {
    let SiteFields { name, spa_fallback, access, allowed_users, allowed_groups, max_bytes } = s;
    let fields: [Value; FIELD_COLUMNS.len()] = [
        name.clone().into(),
        (*spa_fallback).into(),
        access.clone().into(),
        allowed_users.join(" ").into(),
        allowed_groups.join(" ").into(),
        i64::try_from(*max_bytes).unwrap_or(i64::MAX).into(),
    ];
    params_from_iter(fields.into_iter().chain(extra))
}

fn row(r: &Row<'_>) -> rusqlite::Result<Site> {
    Ok(Site {
        id: r.get(0)?,
        name: r.get(1)?,
        spa_fallback: r.get(2)?,
        access: r.get(3)?,
        allowed_users: split_list(&r.get::<_, String>(4)?),
        allowed_groups: split_list(&r.get::<_, String>(5)?),
        max_bytes: r.get::<_, i64>(6)?.max(0) as u64,
        created_at: from_unix(r.get(7)?),
        updated_at: from_unix(r.get(8)?),
    })
}

fn find(conn: &Connection, id: i64) -> Result<Option<Site>, StoreError> {
    Ok(conn.query_row(&format!("SELECT {COLUMNS} FROM sites WHERE id = ?1"), [id], row).optional()?)
}

/// Unique constraint or the cross-table trigger → `Conflict`.
fn taken(err: rusqlite::Error, name: &str) -> StoreError {
    StoreError::conflict_on_unique(err, &format!("the name '{name}' is already used by a tunnel or site"))
}

impl Store {
    /// Every site, by name.
    pub async fn sites(&self) -> Result<Vec<Site>, StoreError> {
        self.run(|c| {
            let mut stmt = c.prepare(&format!("SELECT {COLUMNS} FROM sites ORDER BY name"))?;
            let rows = stmt.query_map([], row)?.collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await
    }

    pub async fn site(&self, id: i64) -> Result<Option<Site>, StoreError> {
        self.run(move |c| find(c, id)).await
    }

    pub async fn insert_site(&self, s: SiteFields, now: OffsetDateTime) -> Result<Site, StoreError> {
        let n = FIELD_COLUMNS.len();
        let sql = format!(
            "INSERT INTO sites ({}, created_at, updated_at) VALUES ({}, ?{at}, ?{at})",
            FIELD_COLUMNS.join(", "),
            numbered(&FIELD_COLUMNS, 1),
            at = n + 1,
        );
        self.run(move |c| {
            c.execute(&sql, field_values(&s, [to_unix(now).into()])).map_err(|e| taken(e, &s.name))?;
            find(c, c.last_insert_rowid())?.ok_or(StoreError::NotFound)
        })
        .await
    }

    /// Puts back a deleted site with its original id (undo of a delete).
    pub async fn restore_site(&self, s: Site) -> Result<Site, StoreError> {
        let n = FIELD_COLUMNS.len();
        let sql = format!(
            "INSERT INTO sites ({}, id, created_at, updated_at) VALUES ({}, ?{}, ?{}, ?{})",
            FIELD_COLUMNS.join(", "),
            numbered(&FIELD_COLUMNS, 1),
            n + 1,
            n + 2,
            n + 3
        );
        self.run(move |c| {
            let extra = [s.id.into(), to_unix(s.created_at).into(), to_unix(s.updated_at).into()];
            c.execute(&sql, field_values(&SiteFields::from(&s), extra)).map_err(|e| taken(e, &s.name))?;
            find(c, s.id)?.ok_or(StoreError::NotFound)
        })
        .await
    }

    /// Replaces every writable field; `Conflict` when the new name is taken.
    pub async fn update_site(&self, id: i64, s: SiteFields, now: OffsetDateTime) -> Result<Site, StoreError> {
        let n = FIELD_COLUMNS.len();
        let sql =
            format!("UPDATE sites SET {}, updated_at = ?{} WHERE id = ?{}", assigned(&FIELD_COLUMNS, 1), n + 1, n + 2);
        self.run(move |c| {
            let changed =
                c.execute(&sql, field_values(&s, [to_unix(now).into(), id.into()])).map_err(|e| taken(e, &s.name))?;
            if changed == 0 {
                return Err(StoreError::NotFound);
            }
            find(c, id)?.ok_or(StoreError::NotFound)
        })
        .await
    }

    /// Deletes and returns the site (so a failed follow-up can put it back).
    pub async fn delete_site(&self, id: i64) -> Result<Site, StoreError> {
        self.run(move |c| {
            let site = find(c, id)?.ok_or(StoreError::NotFound)?;
            c.execute("DELETE FROM sites WHERE id = ?1", [id])?;
            Ok(site)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{ClientCert, TunnelFields};

    #[tokio::test]
    async fn site_and_tunnel_names_share_one_namespace() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("p.db")).unwrap();
        let t = OffsetDateTime::now_utc();
        let cert = ClientCert {
            serial: "0A".into(),
            kind: "agent".into(),
            label: Some("home".into()),
            fingerprint: "F".into(),
            not_after: t,
            revoked_at: None,
        };
        store.create_agent(vec![], cert, t).await.unwrap();
        let tunnel = |name: &str| TunnelFields {
            name: name.into(),
            agent: "home".into(),
            target: "127.0.0.1:8080".into(),
            enabled: true,
            access: "public".into(),
            allowed_users: vec![],
            allowed_groups: vec![],
            description: String::new(),
        };
        let site = |name: &str| SiteFields {
            name: name.into(),
            spa_fallback: true,
            access: "authenticated".into(),
            allowed_users: vec![],
            allowed_groups: vec![],
            max_bytes: 500 * 1024 * 1024,
        };
        store.insert_tunnel(tunnel("app"), t).await.unwrap();
        let docs = store.insert_site(site("docs"), t).await.unwrap();
        assert_eq!((docs.name.as_str(), docs.spa_fallback, docs.max_bytes), ("docs", true, 500 * 1024 * 1024));

        assert!(matches!(store.insert_site(site("app"), t).await, Err(StoreError::Conflict(_))));
        assert!(matches!(store.insert_site(site("docs"), t).await, Err(StoreError::Conflict(_))));
        assert!(matches!(store.insert_tunnel(tunnel("docs"), t).await, Err(StoreError::Conflict(_))));
        let app = store.tunnels().await.unwrap().remove(0);
        assert!(matches!(store.update_tunnel(app.id, tunnel("docs"), t).await, Err(StoreError::Conflict(_))));
        assert_eq!(store.sites().await.unwrap(), vec![docs.clone()]);
        assert!(matches!(store.update_site(docs.id, site("app"), t).await, Err(StoreError::Conflict(_))));
        let renamed = store.update_site(docs.id, site("manual"), t).await.unwrap();
        assert_eq!((renamed.id, renamed.name.as_str()), (docs.id, "manual"));
        assert!(matches!(store.update_site(9999, site("other"), t).await, Err(StoreError::NotFound)));
        let docs = store.update_site(docs.id, site("docs"), docs.updated_at).await.unwrap();
        assert_eq!(store.delete_site(docs.id).await.unwrap(), docs);
        store.insert_tunnel(tunnel("docs"), t).await.unwrap();
        assert!(store.site(docs.id).await.unwrap().is_none());
    }
}
