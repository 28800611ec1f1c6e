//! `/api/settings/2fa/*`: the optional TOTP second factor for admins, and
//! its one-time recovery codes. The changes are the use cases of
//! [`crate::app::two_factor`]; the session cookie a verified code earns is
//! set here ([`crate::panel::session`]).

use actix_web::http::header::SET_COOKIE;
use actix_web::{HttpResponse, get, post, web};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::app;
use crate::panel::AppState;
use crate::panel::auth::Admin;
use crate::panel::error::ApiError;
use crate::panel::extract::ApiJson;
use crate::panel::session;
use crate::two_factor;

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
    Ok(HttpResponse::Ok().json(app::two_factor::setup(&state, &admin.0).await?))
}

/// Confirms setup with a code: enables 2FA, starts a session, drops the IP
/// vhost, and answers with the recovery codes (shown this once).
#[utoipa::path(tag = "2fa", request_body = Code, responses((status = 200, body = RecoveryCodes), (status = 400)))]
#[post("/settings/2fa/confirm")]
pub async fn confirm(state: web::Data<AppState>, admin: Admin, body: ApiJson<Code>) -> Result<HttpResponse, ApiError> {
    let enabled = app::two_factor::confirm(&state, &admin.0, &body.0.code).await?;
    let cookie = state.sessions.session_cookie(&state, &admin.0.actor(), &enabled.secret).await?;
    let body = RecoveryCodes { enabled: true, recovery_codes: enabled.recovery_codes };
    Ok(HttpResponse::Ok().append_header((SET_COOKIE, cookie)).json(body))
}

/// Verifies a code (or a recovery code) and sets the signed panel-session cookie.
#[utoipa::path(tag = "2fa", request_body = Code, responses((status = 200, body = Object), (status = 400)))]
#[post("/settings/2fa/verify")]
pub async fn verify(state: web::Data<AppState>, admin: Admin, body: ApiJson<Code>) -> Result<HttpResponse, ApiError> {
    let secret = app::two_factor::verify(&state, &admin.0, &body.0.code).await?;
    let cookie = state.sessions.session_cookie(&state, &admin.0.actor(), &secret).await?;
    Ok(HttpResponse::Ok().append_header((SET_COOKIE, cookie)).json(json!({ "verified": true })))
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
    let codes = app::two_factor::regenerate_codes(&state, &admin.0, &body.0.code).await?;
    Ok(HttpResponse::Ok().json(RecoveryCodes { enabled: true, recovery_codes: codes }))
}

/// Disables 2FA (needs a current code or a recovery code); the IP vhost
/// comes back and the recovery codes are removed.
#[utoipa::path(tag = "2fa", request_body = Code, responses((status = 200, body = Object), (status = 400)))]
#[post("/settings/2fa/disable")]
pub async fn disable(state: web::Data<AppState>, admin: Admin, body: ApiJson<Code>) -> Result<HttpResponse, ApiError> {
    app::two_factor::disable(&state, &admin.0, &body.0.code).await?;
    Ok(HttpResponse::Ok().append_header((SET_COOKIE, session::cleared_cookie())).json(json!({ "enabled": false })))
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(show).service(setup).service(confirm).service(verify).service(regenerate).service(disable);
}
