//! Visitor users, groups, sessions and invitations, plus the access policy
//! lookup authd needs. Validation and hashing live in `crate::users`; this
//! layer only stores what it is given.

use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::Serialize;
use time::OffsetDateTime;

use super::{Store, StoreError, from_unix, split_list, to_unix};

/// A visitor account. Secrets (hash, TOTP seed) never leave through `Serialize`.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub username: String,
    pub display_name: String,
    pub email: String,
    pub groups: Vec<String>,
    pub disabled: bool,
    /// True once a TOTP secret is enrolled.
    pub totp_enrolled: bool,
    #[serde(skip)]
    pub password_hash: String,
    #[serde(skip)]
    pub totp_secret: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// Row values for a new user (already validated and hashed).
#[derive(Debug, Clone)]
pub struct NewUserRow {
    pub username: String,
    pub display_name: String,
    pub email: String,
    pub password_hash: String,
    pub totp_secret: Option<String>,
    pub groups: Vec<String>,
}

/// Fields to change; `None` keeps the current value.
#[derive(Debug, Clone, Default)]
pub struct UserUpdate {
    pub display_name: Option<String>,
    pub email: Option<String>,
    pub password_hash: Option<String>,
    pub disabled: Option<bool>,
    pub groups: Option<Vec<String>>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Group {
    pub name: String,
    pub description: String,
    pub members: Vec<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// Who may reach a tunnel or site.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    pub enabled: bool,
    /// `public`, `authenticated` or `restricted`.
    pub access: crate::model::Access,
    pub allowed_users: Vec<String>,
    pub allowed_groups: Vec<String>,
}

const USER_COLUMNS: &str = "u.username, u.display_name, u.email, u.password_hash, u.totp_secret, u.disabled, \
     u.created_at, u.updated_at, \
     (SELECT group_concat(group_name, ' ') FROM group_members m WHERE m.username = u.username)";

fn user_row(r: &Row<'_>) -> rusqlite::Result<User> {
    let secret: Option<String> = r.get(4)?;
    let mut groups = split_list(&r.get::<_, Option<String>>(8)?.unwrap_or_default());
    groups.sort();
    Ok(User {
        username: r.get(0)?,
        display_name: r.get(1)?,
        email: r.get(2)?,
        password_hash: r.get(3)?,
        totp_enrolled: secret.is_some(),
        totp_secret: secret,
        disabled: r.get(5)?,
        created_at: from_unix(r.get(6)?),
        updated_at: from_unix(r.get(7)?),
        groups,
    })
}

pub(super) fn find_user(c: &Connection, username: &str) -> Result<Option<User>, StoreError> {
    Ok(c.query_row(&format!("SELECT {USER_COLUMNS} FROM users u WHERE u.username = ?1"), [username], user_row)
        .optional()?)
}

fn set_groups(c: &Connection, username: &str, groups: &[String]) -> Result<(), StoreError> {
    c.execute("DELETE FROM group_members WHERE username = ?1", [username])?;
    for g in groups {
        c.execute("INSERT OR IGNORE INTO group_members (group_name, username) VALUES (?1, ?2)", params![g, username])
            .map_err(|e| match &e {
            rusqlite::Error::SqliteFailure(f, _) if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY => {
                StoreError::Conflict(format!("Group '{g}' does not exist"))
            }
            _ => StoreError::Sqlite(e),
        })?;
    }
    Ok(())
}

pub(super) fn insert_user_tx(c: &Connection, u: &NewUserRow, now: OffsetDateTime) -> Result<(), StoreError> {
    c.execute(
        "INSERT INTO users (username, display_name, email, password_hash, totp_secret, created_at, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
        params![u.username, u.display_name, u.email, u.password_hash, u.totp_secret, to_unix(now)],
    )
    .map_err(|e| StoreError::conflict_on_unique(e, &format!("a user named '{}' already exists", u.username)))?;
    set_groups(c, &u.username, &u.groups)
}

fn table_exists(c: &Connection, name: &str) -> Result<bool, StoreError> {
    let n: i64 =
        c.query_row("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1", [name], |r| r.get(0))?;
    Ok(n > 0)
}

/// Policy of the tunnel named `name`, else of the site (when the `sites`
/// table exists in this database and has the access columns).
fn find_policy(c: &Connection, name: &str) -> Result<Option<Policy>, StoreError> {
    let policy = |r: &Row<'_>| {
        Ok(Policy {
            enabled: r.get(0)?,
            access: r.get(1)?,
            allowed_users: split_list(&r.get::<_, String>(2)?),
            allowed_groups: split_list(&r.get::<_, String>(3)?),
        })
    };
    let sql = "SELECT enabled, access, allowed_users, allowed_groups FROM tunnels WHERE name = ?1";
    if let Some(p) = c.query_row(sql, [name], policy).optional()? {
        return Ok(Some(p));
    }
    if !table_exists(c, "sites")? {
        return Ok(None);
    }
    let columns: Vec<String> = c
        .prepare("SELECT name FROM pragma_table_info('sites')")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let has = |col: &str| columns.iter().any(|c| c == col);
    if !has("access") {
        // A site without an access column is treated as authenticated-only.
        let found: Option<i64> = c.query_row("SELECT 1 FROM sites WHERE name = ?1", [name], |r| r.get(0)).optional()?;
        return Ok(found.map(|_| Policy {
            enabled: true,
            access: crate::model::Access::Authenticated,
            allowed_users: vec![],
            allowed_groups: vec![],
        }));
    }
    let col = |c: &str, default: &str| if has(c) { c.to_string() } else { default.to_string() };
    let sql = format!(
        "SELECT {}, access, {}, {} FROM sites WHERE name = ?1",
        col("enabled", "1"),
        col("allowed_users", "''"),
        col("allowed_groups", "''")
    );
    Ok(c.query_row(&sql, [name], policy).optional()?)
}

impl Store {
    pub async fn users(&self) -> Result<Vec<User>, StoreError> {
        self.run(|c| {
            let mut stmt = c.prepare(&format!("SELECT {USER_COLUMNS} FROM users u ORDER BY u.username"))?;
            Ok(stmt.query_map([], user_row)?.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    pub async fn user(&self, username: String) -> Result<Option<User>, StoreError> {
        self.run(move |c| find_user(c, &username)).await
    }

    pub async fn insert_user(&self, u: NewUserRow, now: OffsetDateTime) -> Result<User, StoreError> {
        self.run(move |c| {
            let tx = c.transaction()?;
            insert_user_tx(&tx, &u, now)?;
            tx.commit()?;
            find_user(c, &u.username)?.ok_or(StoreError::NotFound)
        })
        .await
    }

    pub async fn update_user(&self, username: String, u: UserUpdate, now: OffsetDateTime) -> Result<User, StoreError> {
        self.run(move |c| {
            let tx = c.transaction()?;
            let current = find_user(&tx, &username)?.ok_or(StoreError::NotFound)?;
            let end_sessions = u.password_hash.is_some() || u.disabled == Some(true);
            tx.execute(
                "UPDATE users SET display_name = ?2, email = ?3, password_hash = ?4, disabled = ?5, updated_at = ?6 \
                 WHERE username = ?1",
                params![
                    username,
                    u.display_name.unwrap_or(current.display_name),
                    u.email.unwrap_or(current.email),
                    u.password_hash.unwrap_or(current.password_hash),
                    u.disabled.unwrap_or(current.disabled),
                    to_unix(now)
                ],
            )?;
            if let Some(groups) = &u.groups {
                set_groups(&tx, &username, groups)?;
            }
            // A new password or a disabled account ends every session.
            if end_sessions {
                tx.execute("DELETE FROM visitor_sessions WHERE username = ?1", [&username])?;
            }
            tx.commit()?;
            find_user(c, &username)?.ok_or(StoreError::NotFound)
        })
        .await
    }

    /// Deletes a user and their sessions. Refuses to delete the last user
    /// while any tunnel (or site) needs a signed-in visitor.
    pub async fn delete_user(&self, username: String) -> Result<User, StoreError> {
        self.run(move |c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let user = find_user(&tx, &username)?.ok_or(StoreError::NotFound)?;
            let users: i64 = tx.query_row("SELECT count(*) FROM users", [], |r| r.get(0))?;
            let mut protected: i64 =
                tx.query_row("SELECT count(*) FROM tunnels WHERE access != 'public'", [], |r| r.get(0))?;
            if table_exists(&tx, "sites")? {
                protected += tx
                    .query_row("SELECT count(*) FROM sites WHERE access != 'public'", [], |r| r.get(0))
                    .unwrap_or(0);
            }
            if users == 1 && protected > 0 {
                return Err(StoreError::Conflict(
                    "Cannot delete the last user while tunnels or sites require sign-in; make them public or add another user first".into(),
                ));
            }
            tx.execute("DELETE FROM users WHERE username = ?1", [&username])?;
            tx.commit()?;
            Ok(user)
        })
        .await
    }

    /// Replaces the TOTP secret and forgets the replay guard.
    pub async fn set_totp_secret(
        &self,
        username: String,
        secret: String,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        self.run(move |c| {
            let n = c.execute(
                "UPDATE users SET totp_secret = ?2, totp_last_step = 0, updated_at = ?3 WHERE username = ?1",
                params![username, secret, to_unix(now)],
            )?;
            if n == 0 { Err(StoreError::NotFound) } else { Ok(()) }
        })
        .await
    }

    /// Records `step` as used; false when it (or a later step) was used already.
    pub async fn claim_totp_step(&self, username: String, step: i64) -> Result<bool, StoreError> {
        self.run(move |c| {
            let n = c.execute(
                "UPDATE users SET totp_last_step = ?2 WHERE username = ?1 AND totp_last_step < ?2",
                params![username, step],
            )?;
            Ok(n == 1)
        })
        .await
    }

    pub async fn groups(&self) -> Result<Vec<Group>, StoreError> {
        self.run(|c| {
            let mut stmt = c.prepare(
                "SELECT name, description, created_at, \
                 (SELECT group_concat(username, ' ') FROM group_members m WHERE m.group_name = g.name) \
                 FROM groups g ORDER BY name",
            )?;
            let rows = stmt.query_map([], |r| {
                let mut members = split_list(&r.get::<_, Option<String>>(3)?.unwrap_or_default());
                members.sort();
                Ok(Group { name: r.get(0)?, description: r.get(1)?, created_at: from_unix(r.get(2)?), members })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    pub async fn insert_group(&self, name: String, description: String, now: OffsetDateTime) -> Result<(), StoreError> {
        self.run(move |c| {
            c.execute(
                "INSERT INTO groups (name, description, created_at) VALUES (?1, ?2, ?3)",
                params![name, description, to_unix(now)],
            )
            .map_err(|e| StoreError::conflict_on_unique(e, &format!("a group named '{name}' already exists")))?;
            Ok(())
        })
        .await
    }

    pub async fn delete_group(&self, name: String) -> Result<(), StoreError> {
        self.run(move |c| {
            let n = c.execute("DELETE FROM groups WHERE name = ?1", [name])?;
            if n == 0 { Err(StoreError::NotFound) } else { Ok(()) }
        })
        .await
    }

    /// Adds (`member = true`) or removes a user from a group.
    pub async fn set_membership(&self, group: String, username: String, member: bool) -> Result<(), StoreError> {
        self.run(move |c| {
            let g: Option<i64> =
                c.query_row("SELECT 1 FROM groups WHERE name = ?1", [&group], |r| r.get(0)).optional()?;
            if g.is_none() || find_user(c, &username)?.is_none() {
                return Err(StoreError::NotFound);
            }
            if member {
                c.execute(
                    "INSERT OR IGNORE INTO group_members (group_name, username) VALUES (?1, ?2)",
                    params![group, username],
                )?;
            } else {
                c.execute(
                    "DELETE FROM group_members WHERE group_name = ?1 AND username = ?2",
                    params![group, username],
                )?;
            }
            Ok(())
        })
        .await
    }

    pub async fn policy(&self, resource: String) -> Result<Option<Policy>, StoreError> {
        self.run(move |c| find_policy(c, &resource)).await
    }

    /// The per-install random secret (hex, 256 bits), created on first use.
    pub async fn install_secret(&self) -> Result<String, StoreError> {
        self.run(|c| {
            let fresh = crate::token::random_hex(32);
            c.execute("INSERT OR IGNORE INTO settings (key, value) VALUES ('install.secret', ?1)", [&fresh])?;
            Ok(c.query_row("SELECT value FROM settings WHERE key = 'install.secret'", [], |r| r.get(0))?)
        })
        .await
    }

    /// Records TOTP `step` as used for a code kept in settings row `key`
    /// (the panel's own 2FA); false when it or a later step was used.
    pub async fn claim_setting_step(&self, key: &'static str, step: i64) -> Result<bool, StoreError> {
        self.run(move |c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let last: Option<String> =
                tx.query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| r.get(0)).optional()?;
            if last.and_then(|v| v.parse::<i64>().ok()).is_some_and(|l| l >= step) {
                return Ok(false);
            }
            tx.execute(
                "INSERT INTO settings (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                params![key, step.to_string()],
            )?;
            tx.commit()?;
            Ok(true)
        })
        .await
    }
}
