//! The panel's second factor for certificate admins: setup, enabling,
//! checking a code, new recovery codes, disabling. The REST API
//! (`/api/settings/2fa/*`) and the web UI's Settings and code pages call
//! these; each outcome is audited here, once, failures included.
//!
//! The data and the regulated check live in [`crate::two_factor`]; the
//! session cookie a verified code earns is the panel's (`panel::session`),
//! so these functions return the verified secret and the HTTP side signs
//! its cookie with it.

use serde_json::json;
use time::OffsetDateTime;

use super::{App, Error};
use crate::audit::Outcome;
use crate::identity::Identity;
use crate::two_factor::{self, TwoFactorError, keys};
use crate::users::TotpEnrollment;

/// Second factor turned on: the secret a session is bound to and the new
/// recovery codes, shown this once.
pub struct Enabled {
    pub secret: String,
    pub recovery_codes: Vec<String>,
}

/// Starts setup: a new pending secret (not active until confirmed).
pub async fn setup(app: &App, who: &Identity) -> Result<TotpEnrollment, Error> {
    let enrollment = two_factor::setup(&app.store).await?;
    app.audit(&who.actor(), "2fa.setup", "panel", Outcome::Success, None).await;
    Ok(enrollment)
}

/// Audits a refused code under `action` and turns it into the use case's error.
async fn failed(app: &App, actor: &str, action: &str, err: TwoFactorError) -> Error {
    let details = json!({ "reason": err.to_string() });
    app.audit(actor, action, "panel", Outcome::Failure, Some(details)).await;
    err.into()
}

/// Checks `code` against the pending secret and enables the second factor
/// with a new set of recovery codes (undone when nginx refuses the new
/// configuration, which drops the IP vhost).
pub async fn confirm(app: &App, who: &Identity, code: &str) -> Result<Enabled, Error> {
    let actor = who.actor();
    let (enabled, _, pending) = two_factor::status(&app.store).await?;
    let secret = match (enabled, pending) {
        (true, _) => return Err(TwoFactorError::AlreadyEnabled.into()),
        (false, None) => return Err(TwoFactorError::NoPendingSetup.into()),
        (false, Some(s)) => s,
    };
    if let Err(e) = app.two_factor.check_code(&app.store, &actor, &secret, code).await {
        return Err(failed(app, &actor, "2fa.confirm", e).await);
    }
    let (codes, hashes) = crate::recovery::generate();
    app.store.replace_recovery_codes(hashes, OffsetDateTime::now_utc()).await?;
    let rows = vec![(keys::ENABLED, "1".to_string()), (keys::SECRET, secret.clone()), (keys::PENDING, String::new())];
    app.store.put_settings(rows).await?;
    if let Err(e) = app.apply_config("panel 2fa enabled").await {
        app.store.put_settings(vec![(keys::ENABLED, "0".to_string())]).await?;
        app.store.replace_recovery_codes(Vec::new(), OffsetDateTime::now_utc()).await?;
        return Err(e);
    }
    let details = json!({ "recoveryCodes": codes.len() });
    app.audit(&actor, "2fa.enable", "panel", Outcome::Success, Some(details)).await;
    Ok(Enabled { secret, recovery_codes: codes })
}

/// Checks a code or a recovery code against the active secret; a spent
/// recovery code is audited with how many remain. `Err` is already audited
/// under `action`.
async fn check_proof(app: &App, actor: &str, action: &str, input: &str) -> Result<String, Error> {
    let (enabled, secret, _) = two_factor::status(&app.store).await?;
    let Some(secret) = secret.filter(|_| enabled) else {
        return Err(TwoFactorError::NotEnabled.into());
    };
    match app.two_factor.check_proof(&app.store, actor, &secret, input).await {
        Ok(Some(remaining)) => {
            let details = json!({ "remaining": remaining, "for": action });
            app.audit(actor, "2fa.recovery_used", "panel", Outcome::Success, Some(details)).await;
            Ok(secret)
        }
        Ok(None) => Ok(secret),
        Err(e) => Err(failed(app, actor, action, e).await),
    }
}

/// Checks `code` (or a recovery code) against the active secret and returns
/// that secret, which the session earned here is bound to.
pub async fn verify(app: &App, who: &Identity, code: &str) -> Result<String, Error> {
    let actor = who.actor();
    let secret = check_proof(app, &actor, "2fa.verify", code).await?;
    app.audit(&actor, "2fa.verify", "panel", Outcome::Success, None).await;
    Ok(secret)
}

/// Checks `code` and replaces the recovery codes with a new set (the old
/// ones stop working), returned this once.
pub async fn regenerate_codes(app: &App, who: &Identity, code: &str) -> Result<Vec<String>, Error> {
    let actor = who.actor();
    check_proof(app, &actor, "2fa.recovery_regenerate", code).await?;
    let (codes, hashes) = crate::recovery::generate();
    app.store.replace_recovery_codes(hashes, OffsetDateTime::now_utc()).await?;
    let details = json!({ "recoveryCodes": codes.len() });
    app.audit(&actor, "2fa.recovery_regenerate", "panel", Outcome::Success, Some(details)).await;
    Ok(codes)
}

/// Checks `code` and disables the second factor (undone when nginx refuses
/// the new configuration, which brings the IP vhost back); the recovery
/// codes are removed.
pub async fn disable(app: &App, who: &Identity, code: &str) -> Result<(), Error> {
    let actor = who.actor();
    let secret = check_proof(app, &actor, "2fa.disable", code).await?;
    app.store.put_settings(vec![(keys::ENABLED, "0".to_string()), (keys::SECRET, String::new())]).await?;
    if let Err(e) = app.apply_config("panel 2fa disabled").await {
        app.store.put_settings(vec![(keys::ENABLED, "1".to_string()), (keys::SECRET, secret)]).await?;
        return Err(e);
    }
    app.store.replace_recovery_codes(Vec::new(), OffsetDateTime::now_utc()).await?;
    app.audit(&actor, "2fa.disable", "panel", Outcome::Success, None).await;
    Ok(())
}
