//! `GET /api/authz/nginx`: the `auth_request` decision.
//!
//! Fast path: cookie → SHA-256 → (cached ≤ 1 s) session and user → (cached
//! ≤ 1 s) policy of the resource. Revoking a session, disabling a user or
//! changing a grant takes effect within the cache lifetime.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use actix_web::{HttpRequest, HttpResponse, get, web};

use super::AuthdState;
use super::counters::Outcome;
use super::error::Reply;
use super::sessions::{self, SESSION_COOKIE};
use crate::model::Access;
use crate::store::{Policy, Store, User, VisitorSession};
use crate::token;

/// How long a cached session or policy may be used.
const CACHE_TTL: Duration = Duration::from_secs(1);
/// Write `last_seen_at` at most this often per session, seconds.
const TOUCH_EVERY: i64 = 60;
const CACHE_MAX: usize = 50_000;

type SessionEntry = Option<(VisitorSession, User)>;

#[derive(Default)]
pub struct DecisionCache {
    sessions: Mutex<HashMap<String, (Instant, SessionEntry)>>,
    policies: Mutex<HashMap<String, (Instant, Option<Policy>)>>,
    domain: Mutex<Option<(Instant, Option<String>)>>,
}

fn cached<V: Clone>(map: &Mutex<HashMap<String, (Instant, V)>>, key: &str) -> Option<V> {
    let map = map.lock().unwrap_or_else(|e| e.into_inner());
    map.get(key).filter(|(at, _)| at.elapsed() < CACHE_TTL).map(|(_, v)| v.clone())
}

fn remember<V>(map: &Mutex<HashMap<String, (Instant, V)>>, key: String, value: V) {
    let mut map = map.lock().unwrap_or_else(|e| e.into_inner());
    if map.len() >= CACHE_MAX {
        map.retain(|_, (at, _)| at.elapsed() < CACHE_TTL);
        if map.len() >= CACHE_MAX / 2 {
            // A flood of distinct cookies: drop everything rather than rescan on every insert.
            map.clear();
        }
    }
    map.insert(key, (Instant::now(), value));
}

impl DecisionCache {
    async fn session(&self, store: &Store, hash: &str) -> Result<SessionEntry, crate::store::StoreError> {
        if let Some(hit) = cached(&self.sessions, hash) {
            return Ok(hit);
        }
        let found = store.session(hash.to_string()).await?;
        remember(&self.sessions, hash.to_string(), found.clone());
        Ok(found)
    }

    async fn policy(&self, store: &Store, resource: &str) -> Result<Option<Policy>, crate::store::StoreError> {
        if let Some(hit) = cached(&self.policies, resource) {
            return Ok(hit);
        }
        let found = store.policy(resource.to_string()).await?;
        remember(&self.policies, resource.to_string(), found.clone());
        Ok(found)
    }

    pub(super) async fn domain(&self, store: &Store) -> Option<String> {
        if let Some((at, d)) = self.domain.lock().unwrap_or_else(|e| e.into_inner()).as_ref()
            && at.elapsed() < CACHE_TTL * 5
        {
            return d.clone();
        }
        let d = store.setting(crate::onboarding::keys::DOMAIN).await.ok().flatten();
        *self.domain.lock().unwrap_or_else(|e| e.into_inner()) = Some((Instant::now(), d.clone()));
        d
    }

    /// Forgets a session at once (logout).
    pub(super) fn forget(&self, hash: &str) {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner()).remove(hash);
    }
}

/// The outcome of a decision.
#[derive(Debug, PartialEq)]
pub enum Decision {
    Allow(User),
    /// No valid session: nginx sends the visitor to the portal.
    Login,
    /// Signed in, but this resource is not shared with the user.
    Deny(Option<User>),
}

/// Whether `policy` lets `user` in.
pub fn allowed(policy: &Policy, user: &User) -> bool {
    if !policy.enabled || user.disabled {
        return false;
    }
    match policy.access {
        Access::Public | Access::Authenticated => true,
        Access::Restricted => {
            policy.allowed_users.contains(&user.username)
                || policy.allowed_groups.iter().any(|g| user.groups.contains(g))
        }
    }
}

/// The resource name: nginx's `X-Portico-Resource`, else the label of
/// `X-Forwarded-Host` under the domain.
async fn resource(state: &AuthdState, req: &HttpRequest) -> Option<String> {
    if let Some(r) = state.forwarded(req, "x-portico-resource") {
        return Some(r.to_string());
    }
    let host = state.forwarded(req, "x-forwarded-host")?.to_ascii_lowercase();
    let host = host.split(':').next()?.to_string();
    let domain = state.domain().await?;
    host.strip_suffix(&format!(".{domain}")).filter(|l| !l.contains('.')).map(str::to_string)
}

pub async fn decide(state: &AuthdState, req: &HttpRequest) -> Result<Decision, crate::store::StoreError> {
    if !state.trusted(req) {
        return Ok(Decision::Deny(None));
    }
    let Some(value) = sessions::cookie(req, SESSION_COOKIE).filter(|v| !v.is_empty() && v.len() <= 128) else {
        return Ok(Decision::Login);
    };
    let hash = token::sha256_hex(value.as_bytes());
    let Some((session, user)) = state.cache.session(&state.store, &hash).await? else {
        return Ok(Decision::Login);
    };
    let now = state.clock.now();
    if !sessions::is_live(&session, now, &state.current().await) || user.disabled || user.totp_secret.is_none() {
        return Ok(Decision::Login);
    }
    if (now - session.last_seen_at).whole_seconds() >= TOUCH_EVERY {
        state.store.touch_session(hash.clone(), now).await?;
        state.cache.forget(&hash);
    }
    let Some(name) = resource(state, req).await else {
        return Ok(Decision::Deny(Some(user)));
    };
    match state.cache.policy(&state.store, &name).await? {
        Some(p) if allowed(&p, &user) => Ok(Decision::Allow(user)),
        _ => Ok(Decision::Deny(Some(user))),
    }
}

/// Header values must be single-line; names and emails are validated, but
/// a display name is defensive-filtered here.
fn header_safe(v: &str) -> String {
    v.chars().filter(|c| !c.is_control()).collect()
}

#[get("/api/authz/nginx")]
pub async fn authz(state: web::Data<AuthdState>, req: HttpRequest) -> Reply {
    let decision = decide(&state, &req).await?;
    state.counters.count(match &decision {
        Decision::Allow(_) => Outcome::Allow,
        Decision::Deny(_) => Outcome::Deny,
        Decision::Login => Outcome::Login,
    });
    let no_store = ("Cache-Control", "no-store");
    Ok(match decision {
        Decision::Allow(user) => HttpResponse::Ok()
            .insert_header(("Remote-User", user.username.clone()))
            .insert_header(("Remote-Groups", user.groups.join(",")))
            .insert_header(("Remote-Name", header_safe(&user.display_name)))
            .insert_header(("Remote-Email", header_safe(&user.email)))
            .insert_header(no_store)
            .finish(),
        Decision::Login => HttpResponse::Unauthorized().insert_header(no_store).finish(),
        // nginx shows `/denied` instead of this (its `error_page 403`).
        Decision::Deny(_) => HttpResponse::Forbidden().insert_header(no_store).finish(),
    })
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(authz);
}
