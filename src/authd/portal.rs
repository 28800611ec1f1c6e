//! The visitor login portal at `https://auth.<d>/`: server-rendered forms,
//! no JavaScript. Password first, then TOTP; CSRF tokens on every form
//! (see [`super::forms`]); the pending login between the two steps lives in
//! a signed, five-minute `__Host-` cookie.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::http::header::{HeaderValue, RETRY_AFTER, SET_COOKIE, USER_AGENT};
use actix_web::{HttpRequest, get, post, web};
use serde::Deserialize;
use serde_json::json;

use super::AuthdState;
use super::error::{AuthdError, Reply};
use super::forms::{self, Csrf, bounded_rd, check_csrf, csrf, html, see_other, with_rd};
use super::pages::{Frame, SignIn, SignedIn, Totp};
use super::redirect::{self, safe_redirect};
use super::regulation::{Step, Verdict};
use super::sessions::{self, SESSION_COOKIE, cookie};
use crate::audit::{self, Outcome};
use crate::{token, totp, users};

const PENDING_COOKIE: &str = "__Host-portico_pending";
/// Lifetime of the step between password and TOTP, seconds.
const PENDING_SECS: i64 = 300;

/// `rd` when it is a safe place to send the visitor after signing in (see
/// [`safe_redirect`]), decoded; otherwise nothing.
pub fn safe_rd(rd: &str, domain: Option<&str>) -> String {
    domain.and_then(|d| safe_redirect(rd, d)).unwrap_or_default()
}

/// The sign-in form with what the visitor typed (never the password).
struct LoginPage<'a> {
    rd: &'a str,
    username: &'a str,
    error: Option<&'a str>,
    banner: Option<&'a str>,
}

impl LoginPage<'_> {
    fn render(&self, status: StatusCode, c: &Csrf, domain: Option<&str>) -> Reply {
        let page = SignIn {
            frame: Frame::new("Sign in", domain),
            csrf: &c.token,
            rd: self.rd,
            continue_to: (!self.rd.is_empty()).then(|| redirect::host(self.rd).to_string()),
            username: self.username,
            error: self.error,
            banner: self.banner,
        };
        html(status, c, domain, &page)
    }
}

fn totp_page_for(
    status: StatusCode,
    c: &Csrf,
    domain: Option<&str>,
    user: &str,
    rd: &str,
    error: Option<&str>,
    banner: Option<&str>,
) -> Reply {
    let page = Totp {
        frame: Frame::new("Two-step verification", domain),
        csrf: &c.token,
        rd,
        username: user,
        switch_url: with_rd("/", rd),
        error,
        banner,
    };
    html(status, c, domain, &page)
}

/// The signed-in user of this request, if any.
pub async fn signed_in(state: &AuthdState, req: &HttpRequest) -> Result<Option<String>, AuthdError> {
    let Some(value) = cookie(req, SESSION_COOKIE).filter(|v| !v.is_empty() && v.len() <= 128) else {
        return Ok(None);
    };
    let Some((s, u)) = state.store.session(token::sha256_hex(value.as_bytes())).await? else {
        return Ok(None);
    };
    let live = sessions::is_live(&s, state.clock.now(), &state.current().await) && !u.disabled;
    Ok(live.then_some(u.username))
}

#[get("/")]
pub async fn index(state: web::Data<AuthdState>, req: HttpRequest) -> Reply {
    let domain = state.domain().await;
    let rd = safe_rd(&forms::raw_rd(&req).unwrap_or_default(), domain.as_deref());
    let c = csrf(&state, &req);
    if let Some(user) = signed_in(&state, &req).await? {
        if !rd.is_empty() {
            return Ok(see_other(&rd).finish());
        }
        let page =
            SignedIn { frame: Frame::new("Signed in", domain.as_deref()), csrf: &c.token, rd: &rd, username: &user };
        return html(StatusCode::OK, &c, domain.as_deref(), &page);
    }
    let page = LoginPage { rd: &rd, username: "", error: None, banner: None };
    page.render(StatusCode::OK, &c, domain.as_deref())
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    remember: Option<String>,
    #[serde(default)]
    rd: String,
    #[serde(default)]
    csrf: String,
}

/// A username fit for the audit log and the regulator's keys: at most
/// [`users::MAX_USERNAME_LEN`] characters, anything outside the username
/// alphabet replaced by `?`, and `…` when it was cut.
fn bounded_name(raw: &str) -> String {
    let allowed = |c: char| matches!(c, 'a'..='z' | '0'..='9' | '.' | '_' | '-');
    let mut name: String =
        raw.chars().take(users::MAX_USERNAME_LEN).map(|c| if allowed(c) { c } else { '?' }).collect();
    if raw.chars().nth(users::MAX_USERNAME_LEN).is_some() {
        name.push('…');
    }
    name
}

/// Audits a sign-in step. `user` must already be bounded (a valid username
/// or [`bounded_name`]); `reason` is one of ours, never visitor input.
async fn audit_login(state: &AuthdState, user: &str, step: &str, outcome: Outcome, ip: &str, reason: &str) {
    if !matches!(outcome, Outcome::Success) {
        state.counters.login_failed(step);
    }
    let details = json!({ "ip": ip, "step": step, "reason": reason });
    audit::record(&state.store, &format!("visitor:{user}"), "authd.login", user, outcome, Some(details)).await;
}

const BANNED: &str = "Too many failed attempts. Try again in a few minutes.";
const BUSY: &str = "Too many sign-ins are being checked right now. Try again in a moment.";
/// `Retry-After` when every password check was busy, seconds.
const BUSY_RETRY_SECS: u64 = 2;

/// A page as a 429 with `Retry-After` (seconds).
fn too_many(page: Reply, retry_after: u64) -> Reply {
    let mut res = page?;
    *res.status_mut() = StatusCode::TOO_MANY_REQUESTS;
    res.headers_mut().insert(RETRY_AFTER, HeaderValue::from(retry_after));
    Ok(res)
}

/// Asks the regulator about an attempt: `Err(retry_after)` when refused;
/// otherwise waits out the slow-down first.
async fn regulate(state: &AuthdState, user: &str, client: &str, step: Step) -> Result<(), u64> {
    let now = state.clock.now().unix_timestamp();
    match state.regulator.check(user, client, step, now, &state.current().await) {
        Verdict::Refuse { retry_after } => {
            state.counters.refused(step);
            Err(retry_after)
        }
        Verdict::Allow { delay } => {
            if !delay.is_zero() {
                tracing::debug!(user, client, delay_ms = delay.as_millis() as u64, "sign-in slowed down");
                tokio::time::sleep(delay).await;
            }
            Ok(())
        }
    }
}

/// Records a failed attempt and audits it (once more when it started a ban).
async fn failed(state: &AuthdState, user: &str, client: &str, ip: &str, step: Step, reason: &str) {
    let now = state.clock.now().unix_timestamp();
    let banned = state.regulator.fail(user, client, step, now, &state.current().await);
    let name = if step == Step::Totp { "totp" } else { "password" };
    audit_login(state, user, name, Outcome::Failure, ip, reason).await;
    if banned {
        tracing::info!(user, client, step = name, "sign-in attempts banned");
        let details = json!({ "ip": ip, "step": name, "reason": "banned" });
        audit::record(&state.store, &format!("visitor:{user}"), "authd.login", user, Outcome::Denied, Some(details))
            .await;
    }
}

#[post("/login")]
pub async fn login(state: web::Data<AuthdState>, req: HttpRequest, form: web::Form<LoginForm>) -> Reply {
    let mut form = form.into_inner();
    form.rd = bounded_rd(form.rd);
    check_csrf(&state, &req, &form.csrf)?;
    let c = csrf(&state, &req);
    let domain = state.domain().await;
    let domain = domain.as_deref();
    let (ip, client) = (state.client_ip(&req), state.client_key(&req));
    let typed: String = form.username.trim().chars().take(users::MAX_USERNAME_LEN).collect();
    let username = form.username.trim().to_ascii_lowercase();
    let valid = users::valid_username(&username);
    let username = if valid { username } else { bounded_name(&username) };
    let again = |error, banner| LoginPage { rd: &form.rd, username: &typed, error, banner };
    // Refused attempts are answered here, before any bcrypt work.
    if let Err(retry_after) = regulate(&state, &username, &client, Step::Password).await {
        return too_many(again(None, Some(BANNED)).render(StatusCode::OK, &c, domain), retry_after);
    }
    let wrong = || again(Some("Wrong username or password."), None).render(StatusCode::UNAUTHORIZED, &c, domain);
    if !valid {
        // No such user can exist: no password check, and only a bounded name is kept.
        failed(&state, &username, &client, &ip, Step::Password, "invalid username").await;
        return wrong();
    }
    let user = state.store.user(username.clone()).await?;
    // Unknown users are checked against a dummy hash: they cost the same time.
    let hash = user.as_ref().map(|u| u.password_hash.clone());
    // A client that failed recently does not queue for a check: a flood from
    // such clients cannot push a clean visitor's attempt out.
    let now = state.clock.now().unix_timestamp();
    let wait = if state.regulator.has_failed(&client, now, &state.current().await) {
        Duration::ZERO
    } else {
        Duration::from_millis(u64::from(state.current().await.password_wait_ms))
    };
    let Ok(password_ok) = state.gate.verify(std::mem::take(&mut form.password), hash, wait).await else {
        return too_many(again(None, Some(BUSY)).render(StatusCode::OK, &c, domain), BUSY_RETRY_SECS);
    };
    let Some(user) = user.filter(|u| password_ok && !u.disabled) else {
        failed(&state, &username, &client, &ip, Step::Password, "bad credentials").await;
        return wrong();
    };
    if user.totp_secret.is_none() {
        audit_login(&state, &username, "password", Outcome::Denied, &ip, "no second factor enrolled").await;
        let text = "No authenticator app is set up for this account. Ask the administrator to set one up.";
        return again(None, Some(text)).render(StatusCode::FORBIDDEN, &c, domain);
    }
    let remember = form.remember.is_some_and(|v| !v.is_empty());
    let pending = format!("{}.{}.{}", user.username, u8::from(remember), now + PENDING_SECS);
    let sig = token::sign(&state.key, &format!("pending:{pending}"));
    Ok(see_other(&with_rd("/totp", &safe_rd(&form.rd, domain)))
        .append_header((
            SET_COOKIE,
            format!(
                "{PENDING_COOKIE}={pending}.{sig}; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age={PENDING_SECS}"
            ),
        ))
        .finish())
}

/// `(username, remember)` from a valid, unexpired pending-login cookie.
fn pending(state: &AuthdState, req: &HttpRequest) -> Option<(String, bool)> {
    let value = cookie(req, PENDING_COOKIE)?;
    let (body, sig) = value.rsplit_once('.')?;
    if !token::verify_signature(&state.key, &format!("pending:{body}"), sig) {
        return None;
    }
    let mut parts = body.split('.');
    let (expires, remember) = (parts.next_back()?.parse::<i64>().ok()?, parts.next_back()? == "1");
    let user: Vec<&str> = parts.collect();
    (expires > state.clock.now().unix_timestamp()).then(|| (user.join("."), remember))
}

#[get("/totp")]
pub async fn totp_page(state: web::Data<AuthdState>, req: HttpRequest) -> Reply {
    let domain = state.domain().await;
    let rd = safe_rd(&forms::raw_rd(&req).unwrap_or_default(), domain.as_deref());
    let Some((username, _)) = pending(&state, &req) else {
        return Ok(see_other(&with_rd("/", &rd)).finish());
    };
    let c = csrf(&state, &req);
    totp_page_for(StatusCode::OK, &c, domain.as_deref(), &username, &rd, None, None)
}

#[derive(Deserialize)]
pub struct TotpForm {
    #[serde(default)]
    code: String,
    #[serde(default)]
    rd: String,
    #[serde(default)]
    csrf: String,
}

#[post("/totp")]
pub async fn totp_submit(state: web::Data<AuthdState>, req: HttpRequest, form: web::Form<TotpForm>) -> Reply {
    let mut form = form.into_inner();
    form.rd = bounded_rd(form.rd);
    check_csrf(&state, &req, &form.csrf)?;
    let c = csrf(&state, &req);
    let domain = state.domain().await;
    let Some((username, remember)) = pending(&state, &req) else {
        return Ok(see_other(&with_rd("/", &safe_rd(&form.rd, domain.as_deref()))).finish());
    };
    let again =
        |status, error, banner| totp_page_for(status, &c, domain.as_deref(), &username, &form.rd, error, banner);
    let (ip, client) = (state.client_ip(&req), state.client_key(&req));
    if let Err(retry_after) = regulate(&state, &username, &client, Step::Totp).await {
        return too_many(again(StatusCode::OK, None, Some(BANNED)), retry_after);
    }
    let now = state.clock.now().unix_timestamp();
    let user = state.store.user(username.clone()).await?.filter(|u| !u.disabled);
    let step = user.as_ref().and_then(|u| u.totp_secret.as_deref()).and_then(|s| totp::verify(s, &form.code, now));
    let claimed = match step {
        Some(step) => state.store.claim_totp_step(username.clone(), step).await?,
        None => false,
    };
    if !claimed {
        let reason = if step.is_some() { "replayed code" } else { "wrong code" };
        failed(&state, &username, &client, &ip, Step::Totp, reason).await;
        let text = "That code is not valid or was already used. Wait for the next code and try again.";
        return again(StatusCode::UNAUTHORIZED, Some(text), None);
    }
    state.regulator.succeeded(&username, &client);
    let Some(domain) = domain else {
        return Err(AuthdError::NotReady);
    };
    // A fresh id on every login: any session cookie sent with this request is ended.
    if let Some(old) = cookie(&req, SESSION_COOKIE) {
        let hash = token::sha256_hex(old.as_bytes());
        state.store.delete_session(hash.clone()).await?;
        state.cache.forget(&hash);
    }
    let ua = req.headers().get(USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let (value, session) = sessions::create(&state, &username, remember, ip.clone(), ua).await?;
    audit_login(&state, &username, "totp", Outcome::Success, &ip, "").await;
    let max_age = remember.then(|| (session.expires_at - session.created_at).whole_seconds());
    let to = safe_redirect(&form.rd, &domain).unwrap_or_else(|| "/".into());
    Ok(see_other(&to)
        .append_header((SET_COOKIE, sessions::set_cookie(&value, &domain, max_age)))
        .append_header((SET_COOKIE, format!("{PENDING_COOKIE}=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0")))
        .finish())
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(index).service(login).service(totp_page).service(totp_submit);
}
