//! Agents, the client certificates the CA issued, and enrollment tokens.

use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::Serialize;
use time::OffsetDateTime;

use super::{Store, StoreError, from_unix, split_list, to_unix};

/// An agent and its current (newest) certificate.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Agent {
    pub label: String,
    pub capabilities: Vec<String>,
    pub allowed_sites: Vec<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
    pub serial: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub cert_not_after: Option<OffsetDateTime>,
}

/// A client certificate issued by the Portico CA.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ClientCert {
    pub serial: String,
    pub kind: String,
    pub label: Option<String>,
    pub fingerprint: String,
    #[serde(with = "time::serde::rfc3339")]
    pub not_after: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
}

#[derive(Debug, Clone)]
pub struct NewEnrollmentToken {
    pub token_hash: String,
    pub label: String,
    pub capabilities: Vec<String>,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq)]
pub struct EnrollmentToken {
    pub label: String,
    pub capabilities: Vec<String>,
    pub expires_at: OffsetDateTime,
    pub used_at: Option<OffsetDateTime>,
}

const AGENT_COLUMNS: &str = "a.label, a.capabilities, a.allowed_sites, a.created_at, a.revoked_at, \
     (SELECT serial FROM client_certs c WHERE c.label = a.label ORDER BY created_at DESC, rowid DESC LIMIT 1), \
     (SELECT not_after FROM client_certs c WHERE c.label = a.label ORDER BY created_at DESC, rowid DESC LIMIT 1)";

fn agent_row(r: &Row<'_>) -> rusqlite::Result<Agent> {
    Ok(Agent {
        label: r.get(0)?,
        capabilities: split_list(&r.get::<_, String>(1)?),
        allowed_sites: split_list(&r.get::<_, String>(2)?),
        created_at: from_unix(r.get(3)?),
        revoked_at: r.get::<_, Option<i64>>(4)?.map(from_unix),
        serial: r.get(5)?,
        cert_not_after: r.get::<_, Option<i64>>(6)?.map(from_unix),
    })
}

fn find_agent(conn: &Connection, label: &str) -> Result<Option<Agent>, StoreError> {
    Ok(conn
        .query_row(&format!("SELECT {AGENT_COLUMNS} FROM agents a WHERE a.label = ?1"), [label], agent_row)
        .optional()?)
}

fn insert_cert(conn: &Connection, cert: &ClientCert, now: OffsetDateTime) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO client_certs (serial, kind, label, fingerprint, not_after, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![cert.serial, cert.kind, cert.label, cert.fingerprint, to_unix(cert.not_after), to_unix(now)],
    )
    .map_err(|e| StoreError::conflict_on_unique(e, "a certificate with this serial already exists"))?;
    Ok(())
}

/// Creates the agent, or brings a revoked one back with new capabilities.
/// An active agent with the same label is a conflict.
fn upsert_agent(conn: &Connection, label: &str, caps: &[String], now: OffsetDateTime) -> Result<(), StoreError> {
    if let Some(existing) = find_agent(conn, label)? {
        if existing.revoked_at.is_none() {
            return Err(StoreError::Conflict(format!("Agent '{label}' already exists")));
        }
        conn.execute(
            "UPDATE agents SET capabilities = ?2, allowed_sites = '', revoked_at = NULL, created_at = ?3 WHERE label = ?1",
            params![label, caps.join(" "), to_unix(now)],
        )?;
        return Ok(());
    }
    conn.execute(
        "INSERT INTO agents (label, capabilities, created_at) VALUES (?1, ?2, ?3)",
        params![label, caps.join(" "), to_unix(now)],
    )?;
    Ok(())
}

impl Store {
    /// Records a newly issued agent certificate, creating the agent.
    pub async fn create_agent(
        &self,
        caps: Vec<String>,
        cert: ClientCert,
        now: OffsetDateTime,
    ) -> Result<Agent, StoreError> {
        self.run(move |c| {
            let label = cert.label.clone().unwrap_or_default();
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            upsert_agent(&tx, &label, &caps, now)?;
            insert_cert(&tx, &cert, now)?;
            let agent = find_agent(&tx, &label)?.ok_or(StoreError::NotFound)?;
            tx.commit()?;
            Ok(agent)
        })
        .await
    }

    pub async fn agent(&self, label: String) -> Result<Option<Agent>, StoreError> {
        self.run(move |c| find_agent(c, &label)).await
    }

    pub async fn agents(&self) -> Result<Vec<Agent>, StoreError> {
        self.run(|c| {
            let mut stmt = c.prepare(&format!("SELECT {AGENT_COLUMNS} FROM agents a ORDER BY a.label"))?;
            let rows = stmt.query_map([], agent_row)?.collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await
    }

    pub async fn set_agent_capabilities(&self, label: String, caps: Vec<String>) -> Result<Agent, StoreError> {
        self.run(move |c| {
            let n = c.execute(
                "UPDATE agents SET capabilities = ?2 WHERE label = ?1 AND revoked_at IS NULL",
                params![label, caps.join(" ")],
            )?;
            if n == 0 {
                return Err(StoreError::NotFound);
            }
            find_agent(c, &label)?.ok_or(StoreError::NotFound)
        })
        .await
    }

    /// Replaces the sites an agent with `sites:*` capabilities may manage.
    pub async fn set_agent_allowed_sites(&self, label: String, sites: Vec<String>) -> Result<Agent, StoreError> {
        self.run(move |c| {
            let n = c.execute(
                "UPDATE agents SET allowed_sites = ?2 WHERE label = ?1 AND revoked_at IS NULL",
                params![label, sites.join(" ")],
            )?;
            if n == 0 {
                return Err(StoreError::NotFound);
            }
            find_agent(c, &label)?.ok_or(StoreError::NotFound)
        })
        .await
    }

    /// Revokes the agent and every certificate it holds.
    pub async fn revoke_agent(&self, label: String, now: OffsetDateTime) -> Result<Agent, StoreError> {
        self.run(move |c| {
            let tx = c.transaction()?;
            let n = tx.execute(
                "UPDATE agents SET revoked_at = ?2 WHERE label = ?1 AND revoked_at IS NULL",
                params![label, to_unix(now)],
            )?;
            if n == 0 {
                return Err(StoreError::NotFound);
            }
            tx.execute(
                "UPDATE client_certs SET revoked_at = ?2 WHERE label = ?1 AND revoked_at IS NULL",
                params![label, to_unix(now)],
            )?;
            let agent = find_agent(&tx, &label)?.ok_or(StoreError::NotFound)?;
            tx.commit()?;
            Ok(agent)
        })
        .await
    }

    /// Removes a revoked agent with its certificate records, so it leaves
    /// the list. Its certificates stay refused: the identity chain and the
    /// relay admit only serials they find. `NotFound` for an unknown label,
    /// `Conflict` for an active agent or one that still has tunnels (they
    /// would go with it).
    pub async fn remove_agent(&self, label: String) -> Result<Agent, StoreError> {
        self.run(move |c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let agent = find_agent(&tx, &label)?.ok_or(StoreError::NotFound)?;
            if agent.revoked_at.is_none() {
                return Err(StoreError::Conflict(format!(
                    "agent '{label}' is active; revoke it first, then remove it"
                )));
            }
            let mut stmt = tx.prepare("SELECT name FROM tunnels WHERE agent = ?1 ORDER BY name")?;
            let tunnels = stmt.query_map([&label], |r| r.get::<_, String>(0))?.collect::<Result<Vec<_>, _>>()?;
            drop(stmt);
            if !tunnels.is_empty() {
                return Err(StoreError::Conflict(format!(
                    "agent '{label}' still has tunnels ({}); move them to another agent or delete them first",
                    tunnels.join(", ")
                )));
            }
            tx.execute("DELETE FROM client_certs WHERE label = ?1", [&label])?;
            tx.execute("DELETE FROM agents WHERE label = ?1", [&label])?;
            tx.commit()?;
            Ok(agent)
        })
        .await
    }

    /// Looks up a client certificate by normalized serial.
    pub async fn client_cert(&self, serial: String) -> Result<Option<ClientCert>, StoreError> {
        self.run(move |c| {
            Ok(c.query_row(
                "SELECT serial, kind, label, fingerprint, not_after, revoked_at FROM client_certs WHERE serial = ?1",
                [serial],
                |r| {
                    Ok(ClientCert {
                        serial: r.get(0)?,
                        kind: r.get(1)?,
                        label: r.get(2)?,
                        fingerprint: r.get(3)?,
                        not_after: from_unix(r.get(4)?),
                        revoked_at: r.get::<_, Option<i64>>(5)?.map(from_unix),
                    })
                },
            )
            .optional()?)
        })
        .await
    }

    /// Records the admin certificate (idempotent: a known serial is left alone).
    pub fn record_admin_cert_blocking(&self, cert: &ClientCert, now: OffsetDateTime) -> Result<(), StoreError> {
        self.blocking(|c| {
            c.execute(
                "INSERT INTO client_certs (serial, kind, label, fingerprint, not_after, created_at) \
                 VALUES (?1, 'admin', NULL, ?2, ?3, ?4) ON CONFLICT(serial) DO NOTHING",
                params![cert.serial, cert.fingerprint, to_unix(cert.not_after), to_unix(now)],
            )?;
            Ok(())
        })
    }

    /// A new admin certificate (rotation, hardware binding, recovery):
    /// records it and revokes the old one, and any other admin certificate
    /// still active, in one transaction.
    pub async fn rotate_admin_cert(
        &self,
        old_serial: String,
        new: ClientCert,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let new_serial = new.serial.clone();
        self.run(move |c| {
            let tx = c.transaction()?;
            insert_cert(&tx, &new, now)?;
            tx.execute(
                "INSERT INTO client_certs (serial, kind, label, fingerprint, not_after, created_at, revoked_at) \
                 VALUES (?1, 'admin', NULL, '', 0, ?2, ?2) ON CONFLICT(serial) DO UPDATE SET revoked_at = ?2",
                params![old_serial, to_unix(now)],
            )?;
            // One admin certificate is in force: any other still recorded as
            // active (an earlier change interrupted between the files and
            // this transaction) stops too.
            tx.execute(
                "UPDATE client_certs SET revoked_at = ?2 WHERE kind = 'admin' AND revoked_at IS NULL AND serial <> ?1",
                params![new_serial, to_unix(now)],
            )?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    pub async fn insert_enrollment_token(&self, token: NewEnrollmentToken) -> Result<(), StoreError> {
        self.run(move |c| {
            c.execute(
                "INSERT INTO enrollment_tokens (token_hash, label, capabilities, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![token.token_hash, token.label, token.capabilities.join(" "), to_unix(token.created_at), to_unix(token.expires_at)],
            )?;
            Ok(())
        })
        .await
    }

    pub async fn enrollment_token(&self, token_hash: String) -> Result<Option<EnrollmentToken>, StoreError> {
        self.run(move |c| {
            Ok(c.query_row(
                "SELECT label, capabilities, expires_at, used_at FROM enrollment_tokens WHERE token_hash = ?1",
                [token_hash],
                |r| {
                    Ok(EnrollmentToken {
                        label: r.get(0)?,
                        capabilities: split_list(&r.get::<_, String>(1)?),
                        expires_at: from_unix(r.get(2)?),
                        used_at: r.get::<_, Option<i64>>(3)?.map(from_unix),
                    })
                },
            )
            .optional()?)
        })
        .await
    }

    /// Marks the token used and records the agent and its certificate in one
    /// transaction. `Conflict` when the token was used or expired meanwhile.
    pub async fn complete_enrollment(
        &self,
        token_hash: String,
        cert: ClientCert,
        now: OffsetDateTime,
    ) -> Result<Agent, StoreError> {
        self.run(move |c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let caps: Option<String> = tx
                .query_row(
                    "UPDATE enrollment_tokens SET used_at = ?2 WHERE token_hash = ?1 AND used_at IS NULL AND expires_at > ?2 \
                     RETURNING capabilities",
                    params![token_hash, to_unix(now)],
                    |r| r.get(0),
                )
                .optional()?;
            let Some(caps) = caps else {
                return Err(StoreError::Conflict("The enrollment token is no longer valid".into()));
            };
            let label = cert.label.clone().unwrap_or_default();
            upsert_agent(&tx, &label, &split_list(&caps), now)?;
            insert_cert(&tx, &cert, now)?;
            let agent = find_agent(&tx, &label)?.ok_or(StoreError::NotFound)?;
            tx.commit()?;
            Ok(agent)
        })
        .await
    }
}
