//! Invitations: only a SHA-256 of the token is stored; accepting one creates
//! the user in the same transaction.

use rusqlite::{OptionalExtension, Row, params};
use serde::Serialize;
use time::OffsetDateTime;

use super::users::{find_user, insert_user_tx};
use super::{NewUserRow, Store, StoreError, User, from_unix, split_list, to_unix};

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Invitation {
    pub id: String,
    pub username: String,
    pub email: String,
    pub groups: Vec<String>,
    pub created_by: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub used_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
    #[serde(skip)]
    pub totp_secret: String,
}

#[derive(Debug, Clone)]
pub struct NewInvitation {
    pub id: String,
    pub token_hash: String,
    pub username: String,
    pub email: String,
    pub groups: Vec<String>,
    pub totp_secret: String,
    pub created_by: String,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
}

const INVITE_COLUMNS: &str =
    "id, username, email, groups, created_by, created_at, expires_at, used_at, revoked_at, totp_secret";

fn invite_row(r: &Row<'_>) -> rusqlite::Result<Invitation> {
    Ok(Invitation {
        id: r.get(0)?,
        username: r.get(1)?,
        email: r.get(2)?,
        groups: split_list(&r.get::<_, String>(3)?),
        created_by: r.get(4)?,
        created_at: from_unix(r.get(5)?),
        expires_at: from_unix(r.get(6)?),
        used_at: r.get::<_, Option<i64>>(7)?.map(from_unix),
        revoked_at: r.get::<_, Option<i64>>(8)?.map(from_unix),
        totp_secret: r.get(9)?,
    })
}

impl Store {
    pub async fn insert_invitation(&self, i: NewInvitation) -> Result<Invitation, StoreError> {
        self.run(move |c| {
            c.execute(
                "INSERT INTO invitations (id, token_hash, username, email, groups, totp_secret, created_by, created_at, expires_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    i.id,
                    i.token_hash,
                    i.username,
                    i.email,
                    i.groups.join(" "),
                    i.totp_secret,
                    i.created_by,
                    to_unix(i.created_at),
                    to_unix(i.expires_at)
                ],
            )?;
            Ok(c.query_row(&format!("SELECT {INVITE_COLUMNS} FROM invitations WHERE id = ?1"), [&i.id], invite_row)?)
        })
        .await
    }

    pub async fn invitations(&self) -> Result<Vec<Invitation>, StoreError> {
        self.run(|c| {
            let mut stmt = c.prepare(&format!("SELECT {INVITE_COLUMNS} FROM invitations ORDER BY created_at DESC"))?;
            Ok(stmt.query_map([], invite_row)?.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    pub async fn invitation_by_token(&self, token_hash: String) -> Result<Option<Invitation>, StoreError> {
        self.run(move |c| {
            Ok(c.query_row(
                &format!("SELECT {INVITE_COLUMNS} FROM invitations WHERE token_hash = ?1"),
                [token_hash],
                invite_row,
            )
            .optional()?)
        })
        .await
    }

    pub async fn revoke_invitation(&self, id: String, now: OffsetDateTime) -> Result<(), StoreError> {
        self.run(move |c| {
            let n = c.execute(
                "UPDATE invitations SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL AND used_at IS NULL",
                params![id, to_unix(now)],
            )?;
            if n == 0 { Err(StoreError::NotFound) } else { Ok(()) }
        })
        .await
    }

    /// Marks the invitation used and creates its user in one transaction;
    /// `Conflict` when it was used, revoked or expired meanwhile. The new
    /// user's TOTP replay guard starts empty: the code that proved the
    /// enrolment is not a login, so it still signs the invitee in once.
    pub async fn accept_invitation(
        &self,
        token_hash: String,
        user: NewUserRow,
        now: OffsetDateTime,
    ) -> Result<User, StoreError> {
        self.run(move |c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let n = tx.execute(
                "UPDATE invitations SET used_at = ?2 WHERE token_hash = ?1 AND used_at IS NULL AND revoked_at IS NULL \
                 AND expires_at > ?2",
                params![token_hash, to_unix(now)],
            )?;
            if n == 0 {
                return Err(StoreError::Conflict("The invitation is no longer valid".into()));
            }
            insert_user_tx(&tx, &user, now)?;
            tx.commit()?;
            find_user(c, &user.username)?.ok_or(StoreError::NotFound)
        })
        .await
    }
}
