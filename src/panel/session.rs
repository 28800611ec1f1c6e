//! The panel's own cookies and secrets: the per-install key derivation other
//! panel code (CSRF in the UI) reuses, and the optional second factor for
//! admins (TOTP on top of the client certificate).
//!
//! [`secret_key`] gives a 256-bit key per purpose (`"csrf"`, `"2fa-session"`,
//! …). The base is `panel.secret` when configured, else a random per-install
//! secret created once in the store's settings table (`install.secret`), so
//! keys survive restarts and differ between installs. Different purposes get
//! independent keys (HMAC-SHA-256 derivation).
//!
//! Panel 2FA: when enabled, certificate admins need a signed
//! `portico_panel_2fa` cookie (bound to their certificate and to the current
//! TOTP secret, 12 h) on every `/api` route except health, the OpenAPI
//! document and `/api/settings/2fa/*`. Agents, API keys and Home Assistant
//! ingress users are exempt (they never present the admin certificate).
//! The exempt 2FA routes that act on an enabled second factor (verify,
//! disable, new recovery codes) each demand a code or a recovery code
//! themselves ([`crate::two_factor::Checker::check_proof`]).

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpResponse, web};
use time::OffsetDateTime;
use tokio::sync::OnceCell;

use super::AppState;
use crate::identity::Identity;
use crate::settings::Settings;
use crate::store::{Store, StoreError};
use crate::token;
use crate::two_factor::status;

/// The key for `purpose`; stable across restarts.
pub async fn secret_key(settings: &Settings, store: &Store, purpose: &str) -> Result<[u8; 32], StoreError> {
    let base = match &settings.panel.secret {
        Some(s) => s.expose().to_string(),
        None => store.install_secret().await?,
    };
    Ok(crate::token::derive_key(base.as_bytes(), &format!("panel:{purpose}")))
}

pub const COOKIE: &str = "portico_panel_2fa";
/// Lifetime of a verified panel session, seconds.
const SESSION_SECS: i64 = 12 * 3600;

/// Signs and checks the 2FA session cookie with a key loaded once per process.
#[derive(Default)]
pub struct Sessions {
    key: OnceCell<[u8; 32]>,
}

fn session_message(actor: &str, expires: i64, secret: &str) -> String {
    format!("2fa:{actor}:{expires}:{}", &token::sha256_hex(secret.as_bytes())[..16])
}

impl Sessions {
    async fn key(&self, state: &AppState) -> Result<&[u8; 32], StoreError> {
        self.key.get_or_try_init(|| secret_key(&state.settings, &state.store, "2fa-session")).await
    }

    /// `Set-Cookie` for a verified session of `actor`.
    pub async fn session_cookie(&self, state: &AppState, actor: &str, secret: &str) -> Result<String, StoreError> {
        let expires = OffsetDateTime::now_utc().unix_timestamp() + SESSION_SECS;
        let sig = token::sign(self.key(state).await?, &session_message(actor, expires, secret));
        Ok(format!("{COOKIE}={expires}.{sig}; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age={SESSION_SECS}"))
    }

    async fn cookie_valid(&self, state: &AppState, actor: &str, secret: &str, value: &str) -> bool {
        let Some((expires, sig)) = value.split_once('.') else { return false };
        let Ok(expires) = expires.parse::<i64>() else { return false };
        let Ok(key) = self.key(state).await else { return false };
        expires > OffsetDateTime::now_utc().unix_timestamp()
            && token::verify_signature(key, &session_message(actor, expires, secret), sig)
    }
}

/// `Set-Cookie` that ends the session (the second factor was turned off).
pub fn cleared_cookie() -> String {
    format!("{COOKIE}=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0")
}

/// Cookie value of `name` in the request.
fn cookie(req: &ServiceRequest, name: &str) -> Option<String> {
    req.headers()
        .get_all(actix_web::http::header::COOKIE)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|p| p.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

fn exempt(path: &str) -> bool {
    matches!(path, "/api/health" | "/api/openapi.json") || path.starts_with("/api/settings/2fa")
}

/// Whether `req` comes from a certificate admin who still owes the second
/// factor: panel 2FA is enabled and no valid session cookie came along.
/// Runs inside the identity chain (the API's and the UI's).
pub async fn second_factor_missing(req: &ServiceRequest) -> Result<bool, StoreError> {
    let actor = match req.extensions().get::<Option<Identity>>() {
        Some(Some(Identity::Admin { actor })) if actor.starts_with("admin:") => actor.clone(),
        _ => return Ok(false),
    };
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else { return Ok(false) };
    let (enabled, secret, _) = status(&state.store).await?;
    if !enabled {
        return Ok(false);
    }
    let ok = match (secret, cookie(req, COOKIE)) {
        (Some(secret), Some(value)) => state.sessions.cookie_valid(&state, &actor, &secret, &value).await,
        _ => false,
    };
    Ok(!ok)
}

/// Middleware (inside the identity chain): certificate admins need a valid
/// 2FA session cookie while panel 2FA is enabled.
pub async fn require_second_factor(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<actix_web::body::BoxBody>, actix_web::Error> {
    if !exempt(req.path()) {
        match second_factor_missing(&req).await {
            Err(err) => return Ok(req.error_response(super::error::ApiError::internal("2fa status", err))),
            Ok(true) => {
                let res = HttpResponse::Unauthorized().json(serde_json::json!({ "error": "2fa_required" }));
                return Ok(req.into_response(res));
            }
            Ok(false) => {}
        }
    }
    next.call(req).await.map(ServiceResponse::map_into_boxed_body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[actix_web::test]
    async fn keys_are_stable_per_install_and_per_purpose() {
        let dir = tempfile::tempdir().unwrap();
        let settings = Settings { data_dir: dir.path().to_path_buf(), ..Default::default() };
        let store = Store::open(&dir.path().join("p.db")).unwrap();
        let a = secret_key(&settings, &store, "csrf").await.unwrap();
        let reopened = Store::open(&dir.path().join("p.db")).unwrap();
        assert_eq!(a, secret_key(&settings, &reopened, "csrf").await.unwrap());
        assert_ne!(a, secret_key(&settings, &store, "2fa-session").await.unwrap());
        let other = tempfile::tempdir().unwrap();
        let other_store = Store::open(&other.path().join("p.db")).unwrap();
        assert_ne!(a, secret_key(&settings, &other_store, "csrf").await.unwrap());
    }
}
