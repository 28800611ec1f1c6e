//! `/api/settings/2fa/*`: the optional TOTP second factor for admins, and
//! its one-time recovery codes.

use actix_web::http::header::SET_COOKIE;
use actix_web::{HttpResponse, get, post, web};
use serde::{Deserialize, Serialize};
use serde_json::json;
use time::OffsetDateTime;

use crate::audit::{self, Outcome};
use crate::panel::AppState;
use crate::panel::auth::Admin;
use crate::panel::error::ApiError;
use crate::panel::extract::ApiJson;
use crate::panel::session;
use crate::two_factor::{self, TwoFactorError, keys};

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Code {
    /// The current 6-digit code from the authenticator app. Where two-factor
    /// login is already on (verify, disable, new recovery codes), one of the
    /// recovery codes (`xxxxx-xxxxx`) works instead, once.
    code: String,
}

/// Whether panel 2FA is on, a setup is pending, and how many recovery codes remain.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TwoFactorStatus {
    enabled: bool,
    pending: bool,
    /// Unused recovery codes; absent while two-factor login is off.
    recovery_codes_remaining: Option<u32>,
}

/// A fresh set of recovery codes, shown this once.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RecoveryCodes {
    enabled: bool,
    /// Ten one-time codes; each signs in once instead of an authenticator code.
    recovery_codes: Vec<String>,
}

/// Whether panel 2FA is enabled (and whether a setup is pending).
#[utoipa::path(tag = "2fa", responses((status = 200, body = TwoFactorStatus)))]
#[get("/settings/2fa")]
pub async fn show(state: web::Data<AppState>, _admin: Admin) -> Result<HttpResponse, ApiError> {
    let (enabled, _, pending) = two_factor::status(&state.store).await?;
    let remaining = if enabled { Some(state.store.recovery_codes_remaining().await?) } else { None };
    Ok(HttpResponse::Ok().json(TwoFactorStatus {
        enabled,
        pending: pending.is_some(),
        recovery_codes_remaining: remaining,
    }))
}

/// Starts setup: a new secret (not active until confirmed).
#[utoipa::path(tag = "2fa", responses((status = 200, body = crate::users::TotpEnrollment)))]
#[post("/settings/2fa/setup")]
pub async fn setup(state: web::Data<AppState>, admin: Admin) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(start_setup(&state, &admin.0.actor()).await?))
}

/// A new pending secret, audited. The API and the web UI both call this.
pub async fn start_setup(state: &AppState, actor: &str) -> Result<crate::users::TotpEnrollment, ApiError> {
    let enrollment = two_factor::setup(&state.store).await?;
    audit::record(&state.store, actor, "2fa.setup", "panel", Outcome::Success, None).await;
    Ok(enrollment)
}

async fn failed(state: &AppState, actor: &str, action: &str, err: TwoFactorError) -> ApiError {
    audit::record(&state.store, actor, action, "panel", Outcome::Failure, Some(json!({ "reason": err.to_string() })))
        .await;
    err.into()
}

/// Confirms setup with a code: enables 2FA, starts a session, drops the IP
/// vhost, and answers with the recovery codes (shown this once).
#[utoipa::path(tag = "2fa", request_body = Code, responses((status = 200, body = RecoveryCodes), (status = 400)))]
#[post("/settings/2fa/confirm")]
pub async fn confirm(state: web::Data<AppState>, admin: Admin, body: ApiJson<Code>) -> Result<HttpResponse, ApiError> {
    let (cookie, codes) = confirm_code(&state, &admin.0.actor(), &body.0.code).await?;
    let body = RecoveryCodes { enabled: true, recovery_codes: codes };
    Ok(HttpResponse::Ok().append_header((SET_COOKIE, cookie)).json(body))
}

/// Checks `code` against the pending secret, enables 2FA with a new set of
/// recovery codes (undone when nginx refuses the new config), audits, and
/// returns the session `Set-Cookie` and the codes. The API and the web UI
/// both call this.
pub async fn confirm_code(state: &AppState, actor: &str, code: &str) -> Result<(String, Vec<String>), ApiError> {
    let (enabled, _, pending) = two_factor::status(&state.store).await?;
    let secret = match (enabled, pending) {
        (true, _) => return Err(TwoFactorError::AlreadyEnabled.into()),
        (false, None) => return Err(TwoFactorError::NoPendingSetup.into()),
        (false, Some(s)) => s,
    };
    if let Err(e) = state.two_factor.check_code(&state.store, actor, &secret, code).await {
        return Err(failed(state, actor, "2fa.confirm", e).await);
    }
    let (codes, hashes) = crate::recovery::generate();
    state.store.replace_recovery_codes(hashes, OffsetDateTime::now_utc()).await?;
    let rows = vec![(keys::ENABLED, "1".to_string()), (keys::SECRET, secret.clone()), (keys::PENDING, String::new())];
    state.store.put_settings(rows).await?;
    if let Err(e) = state.apply_config("panel 2fa enabled").await {
        state.store.put_settings(vec![(keys::ENABLED, "0".to_string())]).await?;
        state.store.replace_recovery_codes(Vec::new(), OffsetDateTime::now_utc()).await?;
        return Err(e.into());
    }
    let details = json!({ "recoveryCodes": codes.len() });
    audit::record(&state.store, actor, "2fa.enable", "panel", Outcome::Success, Some(details)).await;
    Ok((state.sessions.session_cookie(state, actor, &secret).await?, codes))
}

/// Checks a code or a recovery code against the active secret; a spent
/// recovery code is audited with how many remain. `Err` is already audited
/// under `action`.
async fn check_proof(state: &AppState, actor: &str, action: &str, input: &str) -> Result<String, ApiError> {
    let (enabled, secret, _) = two_factor::status(&state.store).await?;
    let Some(secret) = secret.filter(|_| enabled) else {
        return Err(TwoFactorError::NotEnabled.into());
    };
    match state.two_factor.check_proof(&state.store, actor, &secret, input).await {
        Ok(Some(remaining)) => {
            let details = json!({ "remaining": remaining, "for": action });
            audit::record(&state.store, actor, "2fa.recovery_used", "panel", Outcome::Success, Some(details)).await;
            Ok(secret)
        }
        Ok(None) => Ok(secret),
        Err(e) => Err(failed(state, actor, action, e).await),
    }
}

/// Verifies a code (or a recovery code) and sets the signed panel-session cookie.
#[utoipa::path(tag = "2fa", request_body = Code, responses((status = 200, body = Object), (status = 400)))]
#[post("/settings/2fa/verify")]
pub async fn verify(state: web::Data<AppState>, admin: Admin, body: ApiJson<Code>) -> Result<HttpResponse, ApiError> {
    let cookie = verify_code(&state, &admin.0.actor(), &body.0.code).await?;
    Ok(HttpResponse::Ok().append_header((SET_COOKIE, cookie)).json(json!({ "verified": true })))
}

/// Checks `code` (or a recovery code) against the active secret, audits, and
/// returns the session `Set-Cookie`. The API and the web UI both call this.
pub async fn verify_code(state: &AppState, actor: &str, code: &str) -> Result<String, ApiError> {
    let secret = check_proof(state, actor, "2fa.verify", code).await?;
    audit::record(&state.store, actor, "2fa.verify", "panel", Outcome::Success, None).await;
    Ok(state.sessions.session_cookie(state, actor, &secret).await?)
}

/// Replaces the recovery codes with a new set (the old ones stop working);
/// needs a current code or one of the old recovery codes.
#[utoipa::path(tag = "2fa", request_body = Code, responses((status = 200, body = RecoveryCodes), (status = 400)))]
#[post("/settings/2fa/recovery-codes")]
pub async fn regenerate(
    state: web::Data<AppState>,
    admin: Admin,
    body: ApiJson<Code>,
) -> Result<HttpResponse, ApiError> {
    let codes = regenerate_codes(&state, &admin.0.actor(), &body.0.code).await?;
    Ok(HttpResponse::Ok().json(RecoveryCodes { enabled: true, recovery_codes: codes }))
}

/// Checks `code`, replaces the recovery codes, audits, and returns the new
/// set. The API and the web UI both call this.
pub async fn regenerate_codes(state: &AppState, actor: &str, code: &str) -> Result<Vec<String>, ApiError> {
    check_proof(state, actor, "2fa.recovery_regenerate", code).await?;
    let (codes, hashes) = crate::recovery::generate();
    state.store.replace_recovery_codes(hashes, OffsetDateTime::now_utc()).await?;
    let details = json!({ "recoveryCodes": codes.len() });
    audit::record(&state.store, actor, "2fa.recovery_regenerate", "panel", Outcome::Success, Some(details)).await;
    Ok(codes)
}

/// Disables 2FA (needs a current code or a recovery code); the IP vhost
/// comes back and the recovery codes are removed.
#[utoipa::path(tag = "2fa", request_body = Code, responses((status = 200, body = Object), (status = 400)))]
#[post("/settings/2fa/disable")]
pub async fn disable(state: web::Data<AppState>, admin: Admin, body: ApiJson<Code>) -> Result<HttpResponse, ApiError> {
    let clear = disable_code(&state, &admin.0.actor(), &body.0.code).await?;
    Ok(HttpResponse::Ok().append_header((SET_COOKIE, clear)).json(json!({ "enabled": false })))
}

/// Checks `code`, disables 2FA (undone when nginx refuses the new config),
/// removes the recovery codes, audits, and returns the `Set-Cookie` that
/// clears the session. The API and the web UI both call this.
pub async fn disable_code(state: &AppState, actor: &str, code: &str) -> Result<String, ApiError> {
    let secret = check_proof(state, actor, "2fa.disable", code).await?;
    state.store.put_settings(vec![(keys::ENABLED, "0".to_string()), (keys::SECRET, String::new())]).await?;
    if let Err(e) = state.apply_config("panel 2fa disabled").await {
        state.store.put_settings(vec![(keys::ENABLED, "1".to_string()), (keys::SECRET, secret)]).await?;
        return Err(e.into());
    }
    state.store.replace_recovery_codes(Vec::new(), OffsetDateTime::now_utc()).await?;
    audit::record(&state.store, actor, "2fa.disable", "panel", Outcome::Success, None).await;
    Ok(format!("{}=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0", session::COOKIE))
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(show).service(setup).service(confirm).service(verify).service(regenerate).service(disable);
}
