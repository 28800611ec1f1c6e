//! Visitor sessions: 256-bit random ids, stored as SHA-256 hashes, in a
//! `Secure; HttpOnly; SameSite=Lax; Domain=.<d>` cookie. A login always
//! mints a fresh id, so a planted cookie never becomes authenticated.

use std::time::Duration;

use actix_web::HttpRequest;
use actix_web::web;
use time::OffsetDateTime;

use super::AuthdState;
use crate::settings::AuthdSettings;
use crate::store::{StoreError, VisitorSession};
use crate::token;

pub const SESSION_COOKIE: &str = "portico_session";
/// How often expired sessions are deleted, seconds.
const CLEANUP_EVERY: u64 = 600;

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn cookie(req: &HttpRequest, name: &str) -> Option<String> {
    req.headers()
        .get_all(actix_web::http::header::COOKIE)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('"').to_string())
}

/// True while `s` is within its absolute lifetime and (unless remembered)
/// its inactivity limit.
pub fn is_live(s: &VisitorSession, now: OffsetDateTime, cfg: &AuthdSettings) -> bool {
    let idle = time::Duration::minutes(i64::from(cfg.inactivity_minutes));
    now < s.expires_at && (s.remember || now - s.last_seen_at < idle)
}

/// Creates a session; returns the cookie value (shown only to the client).
pub async fn create(
    state: &AuthdState,
    username: &str,
    remember: bool,
    ip: String,
    user_agent: String,
) -> Result<(String, VisitorSession), StoreError> {
    let value = token::random_token(32);
    let now = state.clock.now();
    let lifetime = if remember {
        time::Duration::days(i64::from(state.current().await.remember_days))
    } else {
        time::Duration::hours(i64::from(state.current().await.session_hours))
    };
    let session = VisitorSession {
        id: token::random_hex(8),
        username: username.to_string(),
        created_at: now,
        last_seen_at: now,
        expires_at: now + lifetime,
        remember,
        ip,
        user_agent: user_agent.chars().take(256).collect(),
    };
    state.store.insert_session(token::sha256_hex(value.as_bytes()), session.clone()).await?;
    Ok((value, session))
}

/// `Set-Cookie` for the session, scoped to every subdomain of `domain`.
pub fn set_cookie(value: &str, domain: &str, max_age: Option<i64>) -> String {
    let age = max_age.map(|s| format!("; Max-Age={s}")).unwrap_or_default();
    format!("{SESSION_COOKIE}={value}; Domain=.{domain}; Path=/; Secure; HttpOnly; SameSite=Lax{age}")
}

pub fn clear_cookie(domain: &str) -> String {
    set_cookie("", domain, Some(0))
}

/// Runs the `session-cleanup` task until the runtime ends.
pub fn spawn_cleanup(state: web::Data<AuthdState>) {
    actix_web::rt::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(CLEANUP_EVERY));
        loop {
            every.tick().await;
            let now = state.clock.now();
            let idle = now - time::Duration::minutes(i64::from(state.current().await.inactivity_minutes));
            match state.store.prune_sessions(now, idle).await {
                Ok(0) => {}
                Ok(removed) => tracing::info!(task = "session-cleanup", removed, "deleted expired sessions"),
                Err(err) => tracing::error!(task = "session-cleanup", %err, "session cleanup failed"),
            }
        }
    });
}
