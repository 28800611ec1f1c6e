//! API keys: create (the key shown once) and revoke. The REST API
//! (`/api/keys`) and the web UI's keys page call these; each change is
//! audited here, once.

use time::OffsetDateTime;

use super::{App, Error};
use crate::apikeys::{self, CreatedKey};
use crate::audit::Outcome;
use crate::identity::Identity;
use crate::store::ApiKeyRecord;

/// Validates and creates a key with `scopes` (`read`, `write`, `admin`),
/// expiring after `expires_in_days` (1–365) or never.
pub async fn create(
    app: &App,
    who: &Identity,
    name: &str,
    scopes: &[String],
    expires_in_days: Option<u32>,
) -> Result<CreatedKey, Error> {
    let scopes = apikeys::validate(name, scopes, expires_in_days)?;
    let created = apikeys::create(&app.store, name, scopes, expires_in_days).await?;
    let record = &created.record;
    let details =
        serde_json::json!({ "scopes": record.scopes, "expiresAt": record.expires_at.map(|t| t.unix_timestamp()) });
    app.audit(&who.actor(), "key.create", &record.id, Outcome::Success, Some(details)).await;
    Ok(created)
}

/// Revokes a key at once.
pub async fn revoke(app: &App, who: &Identity, id: &str) -> Result<ApiKeyRecord, Error> {
    let record = app.store.revoke_api_key(id.to_string(), OffsetDateTime::now_utc()).await?;
    app.audit(&who.actor(), "key.revoke", id, Outcome::Success, None).await;
    Ok(record)
}
