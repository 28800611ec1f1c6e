//! Visitor sessions: only a SHA-256 of the cookie value is stored.

use rusqlite::{OptionalExtension, Row, params};
use serde::Serialize;
use time::OffsetDateTime;

use super::users::find_user;
use super::{Store, StoreError, User, from_unix, to_unix};

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct VisitorSession {
    /// Public handle for listing and revoking; not the cookie value.
    pub id: String,
    pub username: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub last_seen_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    pub remember: bool,
    pub ip: String,
    pub user_agent: String,
}

const SESSION_COLUMNS: &str = "public_id, username, created_at, last_seen_at, expires_at, remember, ip, user_agent";

fn session_row(r: &Row<'_>) -> rusqlite::Result<VisitorSession> {
    Ok(VisitorSession {
        id: r.get(0)?,
        username: r.get(1)?,
        created_at: from_unix(r.get(2)?),
        last_seen_at: from_unix(r.get(3)?),
        expires_at: from_unix(r.get(4)?),
        remember: r.get(5)?,
        ip: r.get(6)?,
        user_agent: r.get(7)?,
    })
}

impl Store {
    pub async fn insert_session(&self, id_hash: String, s: VisitorSession) -> Result<(), StoreError> {
        self.run(move |c| {
            c.execute(
                &format!("INSERT INTO visitor_sessions (id_hash, {SESSION_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"),
                params![
                    id_hash,
                    s.id,
                    s.username,
                    to_unix(s.created_at),
                    to_unix(s.last_seen_at),
                    to_unix(s.expires_at),
                    s.remember,
                    s.ip,
                    s.user_agent
                ],
            )?;
            Ok(())
        })
        .await
    }

    /// The session with this hashed id and its user.
    pub async fn session(&self, id_hash: String) -> Result<Option<(VisitorSession, User)>, StoreError> {
        self.run(move |c| {
            let s = c
                .query_row(
                    &format!("SELECT {SESSION_COLUMNS} FROM visitor_sessions WHERE id_hash = ?1"),
                    [&id_hash],
                    session_row,
                )
                .optional()?;
            let Some(s) = s else { return Ok(None) };
            Ok(find_user(c, &s.username)?.map(|u| (s, u)))
        })
        .await
    }

    pub async fn touch_session(&self, id_hash: String, now: OffsetDateTime) -> Result<(), StoreError> {
        self.run(move |c| {
            c.execute(
                "UPDATE visitor_sessions SET last_seen_at = ?2 WHERE id_hash = ?1",
                params![id_hash, to_unix(now)],
            )?;
            Ok(())
        })
        .await
    }

    pub async fn delete_session(&self, id_hash: String) -> Result<(), StoreError> {
        self.run(move |c| {
            c.execute("DELETE FROM visitor_sessions WHERE id_hash = ?1", [id_hash])?;
            Ok(())
        })
        .await
    }

    pub async fn user_sessions(&self, username: String) -> Result<Vec<VisitorSession>, StoreError> {
        self.run(move |c| {
            let mut stmt = c.prepare(&format!(
                "SELECT {SESSION_COLUMNS} FROM visitor_sessions WHERE username = ?1 ORDER BY created_at"
            ))?;
            Ok(stmt.query_map([username], session_row)?.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    /// Revokes one session of `username` by its public id.
    pub async fn revoke_user_session(&self, username: String, id: String) -> Result<(), StoreError> {
        self.run(move |c| {
            let n = c.execute(
                "DELETE FROM visitor_sessions WHERE username = ?1 AND public_id = ?2",
                params![username, id],
            )?;
            if n == 0 { Err(StoreError::NotFound) } else { Ok(()) }
        })
        .await
    }

    /// Deletes sessions past their absolute expiry or idle since `idle_before`
    /// (remembered sessions only expire absolutely).
    pub async fn prune_sessions(&self, now: OffsetDateTime, idle_before: OffsetDateTime) -> Result<usize, StoreError> {
        self.run(move |c| {
            Ok(c.execute(
                "DELETE FROM visitor_sessions WHERE expires_at <= ?1 OR (remember = 0 AND last_seen_at <= ?2)",
                params![to_unix(now), to_unix(idle_before)],
            )?)
        })
        .await
    }
}
