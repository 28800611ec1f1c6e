//! API keys table.

use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::Serialize;
use time::OffsetDateTime;

use super::{Store, StoreError, from_unix, split_list, to_unix};

/// An API key as stored (the secret itself is never stored).
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyRecord {
    pub id: String,
    pub name: String,
    #[serde(skip)]
    pub hash: String,
    pub scopes: Vec<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_used_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
}

#[derive(Debug, Clone)]
pub struct NewApiKey {
    pub id: String,
    pub name: String,
    pub hash: String,
    pub scopes: Vec<String>,
    pub created_at: OffsetDateTime,
    pub expires_at: Option<OffsetDateTime>,
}

const COLUMNS: &str = "id, name, hash, scopes, created_at, expires_at, last_used_at, revoked_at";

fn row(r: &Row<'_>) -> rusqlite::Result<ApiKeyRecord> {
    Ok(ApiKeyRecord {
        id: r.get(0)?,
        name: r.get(1)?,
        hash: r.get(2)?,
        scopes: split_list(&r.get::<_, String>(3)?),
        created_at: from_unix(r.get(4)?),
        expires_at: r.get::<_, Option<i64>>(5)?.map(from_unix),
        last_used_at: r.get::<_, Option<i64>>(6)?.map(from_unix),
        revoked_at: r.get::<_, Option<i64>>(7)?.map(from_unix),
    })
}

fn find(conn: &Connection, id: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
    Ok(conn.query_row(&format!("SELECT {COLUMNS} FROM api_keys WHERE id = ?1"), [id], row).optional()?)
}

impl Store {
    pub async fn insert_api_key(&self, key: NewApiKey) -> Result<(), StoreError> {
        self.run(move |c| {
            c.execute(
                "INSERT INTO api_keys (id, name, hash, scopes, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    key.id,
                    key.name,
                    key.hash,
                    key.scopes.join(" "),
                    to_unix(key.created_at),
                    key.expires_at.map(to_unix)
                ],
            )
            .map_err(|e| StoreError::conflict_on_unique(e, "an API key with this id already exists"))?;
            Ok(())
        })
        .await
    }

    pub async fn api_key(&self, id: String) -> Result<Option<ApiKeyRecord>, StoreError> {
        self.run(move |c| find(c, &id)).await
    }

    /// Every key, newest first, revoked ones included.
    pub async fn api_keys(&self) -> Result<Vec<ApiKeyRecord>, StoreError> {
        self.run(|c| {
            let mut stmt = c.prepare(&format!("SELECT {COLUMNS} FROM api_keys ORDER BY created_at DESC, id"))?;
            let rows = stmt.query_map([], row)?.collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await
    }

    /// Marks a key revoked; `NotFound` when there is no such live key.
    pub async fn revoke_api_key(&self, id: String, now: OffsetDateTime) -> Result<ApiKeyRecord, StoreError> {
        self.run(move |c| {
            let n = c.execute(
                "UPDATE api_keys SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
                params![id, to_unix(now)],
            )?;
            if n == 0 {
                return Err(StoreError::NotFound);
            }
            find(c, &id)?.ok_or(StoreError::NotFound)
        })
        .await
    }

    /// Records use, at most once a minute per key to keep writes rare.
    pub async fn touch_api_key(&self, id: String, now: OffsetDateTime) -> Result<(), StoreError> {
        self.run(move |c| {
            c.execute(
                "UPDATE api_keys SET last_used_at = ?2 WHERE id = ?1 AND (last_used_at IS NULL OR last_used_at < ?2 - 60)",
                params![id, to_unix(now)],
            )?;
            Ok(())
        })
        .await
    }
}
