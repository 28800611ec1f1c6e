//! The visitor login portal at `https://auth.<d>/`: server-rendered forms,
//! no JavaScript. Password first, then TOTP; CSRF tokens on every form
//! (signed double-submit in a `__Host-` cookie, which sibling subdomains
//! cannot set); the pending login between the two steps lives in a signed,
//! five-minute `__Host-` cookie.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::http::header::{CACHE_CONTROL, HeaderValue, LOCATION, RETRY_AFTER, SET_COOKIE, USER_AGENT};
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use serde::Deserialize;
use serde_json::json;

use super::AuthdState;
use super::redirect::safe_redirect;
use super::regulation::{Step, Verdict};
use super::sessions::{self, SESSION_COOKIE, cookie};
use crate::audit::{self, Outcome};
use crate::{token, totp, users};

const CSRF_COOKIE: &str = "__Host-portico_csrf";
const PENDING_COOKIE: &str = "__Host-portico_pending";
/// Lifetime of the step between password and TOTP, seconds.
const PENDING_SECS: i64 = 300;

pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A complete HTML page.
pub fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">\
         <title>{t} · Portico</title><style>body{{font-family:system-ui,sans-serif;max-width:24rem;margin:4rem auto;padding:0 1rem}}\
         label,input,button{{display:block;width:100%;margin:.4rem 0}}.err{{color:#b00020}}</style></head>\
         <body><h1>{t}</h1>{body}</body></html>",
        t = escape(title)
    )
}

/// `rd` exactly as nginx appended it: everything after the first `rd=`.
fn raw_rd(req: &HttpRequest) -> Option<String> {
    let q = req.query_string();
    let start = if q.starts_with("rd=") { Some(3) } else { q.find("&rd=").map(|i| i + 4) }?;
    Some(q[start..].to_string())
}

pub struct Csrf {
    pub token: String,
    set_cookie: Option<String>,
}

fn csrf_valid(state: &AuthdState, t: &str) -> bool {
    t.split_once('.').is_some_and(|(nonce, sig)| token::verify_signature(&state.key, &format!("csrf:{nonce}"), sig))
}

/// The request's CSRF token, or a new one with its cookie.
pub fn csrf(state: &AuthdState, req: &HttpRequest) -> Csrf {
    if let Some(t) = cookie(req, CSRF_COOKIE).filter(|t| csrf_valid(state, t)) {
        return Csrf { token: t, set_cookie: None };
    }
    let nonce = token::random_token(16);
    let t = format!("{nonce}.{}", token::sign(&state.key, &format!("csrf:{nonce}")));
    let set = format!("{CSRF_COOKIE}={t}; Path=/; Secure; HttpOnly; SameSite=Strict");
    Csrf { token: t, set_cookie: Some(set) }
}

pub fn csrf_ok(state: &AuthdState, req: &HttpRequest, presented: &str) -> bool {
    cookie(req, CSRF_COOKIE)
        .is_some_and(|c| csrf_valid(state, &c) && token::constant_time_eq(c.as_bytes(), presented.as_bytes()))
}

pub fn html(status: StatusCode, csrf: &Csrf, title: &str, body: &str) -> HttpResponse {
    let mut res = HttpResponse::build(status);
    res.content_type("text/html; charset=utf-8").insert_header((CACHE_CONTROL, "no-store"));
    if let Some(c) = &csrf.set_cookie {
        res.append_header((SET_COOKIE, c.clone()));
    }
    res.body(page(title, body))
}

fn login_form(csrf: &Csrf, rd: &str, message: &str) -> String {
    let msg = if message.is_empty() { String::new() } else { format!("<p class=\"err\">{}</p>", escape(message)) };
    format!(
        "{msg}<form method=\"post\" action=\"/login\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{c}\"><input type=\"hidden\" name=\"rd\" value=\"{rd}\">\
         <label>Username <input name=\"username\" autocomplete=\"username\" required></label>\
         <label>Password <input name=\"password\" type=\"password\" autocomplete=\"current-password\" required></label>\
         <label><input type=\"checkbox\" name=\"remember\" value=\"1\" style=\"width:auto;display:inline\"> Remember me</label>\
         <button>Continue</button></form>",
        c = escape(&csrf.token),
        rd = escape(rd)
    )
}

fn totp_form(csrf: &Csrf, rd: &str, message: &str) -> String {
    let msg = if message.is_empty() { String::new() } else { format!("<p class=\"err\">{}</p>", escape(message)) };
    format!(
        "{msg}<form method=\"post\" action=\"/totp\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{c}\"><input type=\"hidden\" name=\"rd\" value=\"{rd}\">\
         <label>Code from your authenticator app <input name=\"code\" inputmode=\"numeric\" autocomplete=\"one-time-code\" \
         pattern=\"[0-9]{{6}}\" required autofocus></label><button>Sign in</button></form>",
        c = escape(&csrf.token),
        rd = escape(rd)
    )
}

fn see_other(to: &str) -> actix_web::HttpResponseBuilder {
    let mut res = HttpResponse::SeeOther();
    res.insert_header((LOCATION, to.to_string())).insert_header((CACHE_CONTROL, "no-store"));
    res
}

/// The signed-in user of this request, if any.
async fn signed_in(state: &AuthdState, req: &HttpRequest) -> Option<String> {
    let value = cookie(req, SESSION_COOKIE).filter(|v| !v.is_empty() && v.len() <= 128)?;
    let (s, u) = state.store.session(token::sha256_hex(value.as_bytes())).await.ok()??;
    let live = sessions::is_live(&s, state.clock.now(), &state.current().await) && !u.disabled;
    live.then_some(u.username)
}

#[get("/")]
pub async fn index(state: web::Data<AuthdState>, req: HttpRequest) -> HttpResponse {
    let rd = raw_rd(&req).unwrap_or_default();
    let csrf = csrf(&state, &req);
    if let Some(user) = signed_in(&state, &req).await {
        if let Some(domain) = state.domain().await
            && let Some(to) = safe_redirect(&rd, &domain)
        {
            return see_other(&to).finish();
        }
        let body = format!(
            "<p>You are signed in as <b>{}</b>.</p><form method=\"post\" action=\"/logout\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{}\"><button>Sign out</button></form>",
            escape(&user),
            escape(&csrf.token)
        );
        return html(StatusCode::OK, &csrf, "Signed in", &body);
    }
    html(StatusCode::OK, &csrf, "Sign in", &login_form(&csrf, &rd, ""))
}

/// nginx's `error_page 403` target on a tunnel or site: who is signed in,
/// and that this app is not shared with them. Always 403.
#[get("/denied")]
pub async fn denied(state: web::Data<AuthdState>, req: HttpRequest) -> HttpResponse {
    let c = csrf(&state, &req);
    let body = match signed_in(&state, &req).await {
        Some(user) => format!(
            "<p>You are signed in as <b>{}</b>, but this app is not shared with you.</p>\
             <p>Ask the administrator for access, or sign in as someone else.</p>",
            escape(&user)
        ),
        None => "<p>This app is not shared with you.</p>".into(),
    };
    html(StatusCode::FORBIDDEN, &c, "Not shared with you", &body)
}

#[derive(Deserialize)]
pub struct LoginForm {
    username: String,
    password: String,
    remember: Option<String>,
    #[serde(default)]
    rd: String,
    #[serde(default)]
    csrf: String,
}

/// A form that does not parse or is too large (16 KiB): a plain page with
/// the status actix chose (413, 400…), never the parser's text.
pub fn form_error(err: actix_web::error::UrlencodedError, _req: &HttpRequest) -> actix_web::Error {
    use actix_web::ResponseError;
    let status = err.status_code();
    let message = if status == StatusCode::PAYLOAD_TOO_LARGE {
        "<p>The form was too large. <a href=\"/\">Start again</a>.</p>"
    } else {
        "<p>The form could not be read. <a href=\"/\">Start again</a>.</p>"
    };
    let res = HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header((CACHE_CONTROL, "no-store"))
        .body(page("Sign in", message));
    actix_web::error::InternalError::from_response(err, res).into()
}

pub fn csrf_refused(state: &AuthdState, req: &HttpRequest) -> HttpResponse {
    let c = csrf(state, req);
    html(StatusCode::FORBIDDEN, &c, "Form expired", "<p>The form expired. <a href=\"/\">Start again</a>.</p>")
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

/// A 429 page with `Retry-After` (seconds).
fn too_many(c: &Csrf, title: &str, body: &str, retry_after: u64) -> HttpResponse {
    let mut res = html(StatusCode::TOO_MANY_REQUESTS, c, title, body);
    res.headers_mut().insert(RETRY_AFTER, HeaderValue::from(retry_after));
    res
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

/// Longest `rd` echoed back into pages and the `/totp` redirect, bytes; a
/// longer one is dropped (the visitor lands on the portal's own page).
const MAX_RD: usize = 4096;

fn bounded_rd(rd: String) -> String {
    if rd.len() <= MAX_RD { rd } else { String::new() }
}

#[post("/login")]
pub async fn login(state: web::Data<AuthdState>, req: HttpRequest, form: web::Form<LoginForm>) -> HttpResponse {
    let mut form = form.into_inner();
    form.rd = bounded_rd(form.rd);
    if !csrf_ok(&state, &req, &form.csrf) {
        return csrf_refused(&state, &req);
    }
    let c = csrf(&state, &req);
    let (ip, client) = (state.client_ip(&req), state.client_key(&req));
    let username = form.username.trim().to_ascii_lowercase();
    let valid = users::valid_username(&username);
    let username = if valid { username } else { bounded_name(&username) };
    // Refused attempts are answered here, before any bcrypt work.
    if let Err(retry_after) = regulate(&state, &username, &client, Step::Password).await {
        return too_many(&c, "Sign in", &login_form(&c, &form.rd, BANNED), retry_after);
    }
    let wrong = |c: &Csrf| {
        html(StatusCode::UNAUTHORIZED, c, "Sign in", &login_form(c, &form.rd, "Wrong username or password."))
    };
    if !valid {
        // No such user can exist: no password check, and only a bounded name is kept.
        failed(&state, &username, &client, &ip, Step::Password, "invalid username").await;
        return wrong(&c);
    }
    let user = state.store.user(username.clone()).await.ok().flatten();
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
    let Ok(password_ok) = state.gate.verify(form.password, hash, wait).await else {
        return too_many(&c, "Sign in", &login_form(&c, &form.rd, BUSY), BUSY_RETRY_SECS);
    };
    let Some(user) = user.filter(|u| password_ok && !u.disabled) else {
        failed(&state, &username, &client, &ip, Step::Password, "bad credentials").await;
        return wrong(&c);
    };
    if user.totp_secret.is_none() {
        audit_login(&state, &username, "password", Outcome::Denied, &ip, "no second factor enrolled").await;
        let form = login_form(&c, &form.rd, "No authenticator is set up for this account; ask the administrator.");
        return html(StatusCode::FORBIDDEN, &c, "Sign in", &form);
    }
    let remember = form.remember.is_some_and(|v| !v.is_empty());
    let pending = format!("{}.{}.{}", user.username, u8::from(remember), now + PENDING_SECS);
    let sig = token::sign(&state.key, &format!("pending:{pending}"));
    see_other(&format!("/totp?rd={}", url_encode(&form.rd)))
        .append_header((
            SET_COOKIE,
            format!(
                "{PENDING_COOKIE}={pending}.{sig}; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age={PENDING_SECS}"
            ),
        ))
        .finish()
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
pub async fn totp_page(state: web::Data<AuthdState>, req: HttpRequest) -> HttpResponse {
    let rd = raw_rd(&req).map(|r| super::redirect::percent_decode(&r).unwrap_or(r)).unwrap_or_default();
    if pending(&state, &req).is_none() {
        return see_other(&format!("/?rd={}", url_encode(&rd))).finish();
    }
    let c = csrf(&state, &req);
    html(StatusCode::OK, &c, "Two-step verification", &totp_form(&c, &rd, ""))
}

#[derive(Deserialize)]
pub struct TotpForm {
    code: String,
    #[serde(default)]
    rd: String,
    #[serde(default)]
    csrf: String,
}

#[post("/totp")]
pub async fn totp_submit(state: web::Data<AuthdState>, req: HttpRequest, form: web::Form<TotpForm>) -> HttpResponse {
    let mut form = form.into_inner();
    form.rd = bounded_rd(form.rd);
    if !csrf_ok(&state, &req, &form.csrf) {
        return csrf_refused(&state, &req);
    }
    let c = csrf(&state, &req);
    let Some((username, remember)) = pending(&state, &req) else {
        return see_other(&format!("/?rd={}", url_encode(&form.rd))).finish();
    };
    let (ip, client) = (state.client_ip(&req), state.client_key(&req));
    if let Err(retry_after) = regulate(&state, &username, &client, Step::Totp).await {
        return too_many(&c, "Two-step verification", &totp_form(&c, &form.rd, BANNED), retry_after);
    }
    let now = state.clock.now().unix_timestamp();
    let user = state.store.user(username.clone()).await.ok().flatten().filter(|u| !u.disabled);
    let step = user.as_ref().and_then(|u| u.totp_secret.as_deref()).and_then(|s| totp::verify(s, &form.code, now));
    let claimed = match step {
        Some(step) => state.store.claim_totp_step(username.clone(), step).await.unwrap_or(false),
        None => false,
    };
    if !claimed {
        let reason = if step.is_some() { "replayed code" } else { "wrong code" };
        failed(&state, &username, &client, &ip, Step::Totp, reason).await;
        let form = totp_form(&c, &form.rd, "That code is not valid. Wait for the next one and try again.");
        return html(StatusCode::UNAUTHORIZED, &c, "Two-step verification", &form);
    }
    state.regulator.succeeded(&username, &client);
    let Some(domain) = state.domain().await else {
        return html(StatusCode::SERVICE_UNAVAILABLE, &c, "Not ready", "<p>The appliance has no domain yet.</p>");
    };
    // A fresh id on every login: any session cookie sent with this request is ended.
    if let Some(old) = cookie(&req, SESSION_COOKIE) {
        let hash = token::sha256_hex(old.as_bytes());
        let _ = state.store.delete_session(hash.clone()).await;
        state.cache.forget(&hash);
    }
    let ua = req.headers().get(USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let (value, session) = match sessions::create(&state, &username, remember, ip.clone(), ua).await {
        Ok(s) => s,
        Err(err) => {
            tracing::error!(%err, "cannot create session");
            return HttpResponse::InternalServerError().finish();
        }
    };
    audit_login(&state, &username, "totp", Outcome::Success, &ip, "").await;
    let max_age = remember.then(|| (session.expires_at - session.created_at).whole_seconds());
    let to = safe_redirect(&form.rd, &domain).unwrap_or_else(|| "/".into());
    see_other(&to)
        .append_header((SET_COOKIE, sessions::set_cookie(&value, &domain, max_age)))
        .append_header((SET_COOKIE, format!("{PENDING_COOKIE}=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0")))
        .finish()
}

#[derive(Deserialize)]
pub struct LogoutForm {
    #[serde(default)]
    csrf: String,
}

/// A sign-out button (links from apps land here; signing out itself is a POST).
#[get("/logout")]
pub async fn logout_page(state: web::Data<AuthdState>, req: HttpRequest) -> HttpResponse {
    let c = csrf(&state, &req);
    let body = format!(
        "<form method=\"post\" action=\"/logout\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">\
         <button>Sign out</button></form>",
        escape(&c.token)
    );
    html(StatusCode::OK, &c, "Sign out", &body)
}

#[post("/logout")]
pub async fn logout(state: web::Data<AuthdState>, req: HttpRequest, form: web::Form<LogoutForm>) -> HttpResponse {
    if !csrf_ok(&state, &req, &form.csrf) {
        return csrf_refused(&state, &req);
    }
    if let Some(value) = cookie(&req, SESSION_COOKIE) {
        let hash = token::sha256_hex(value.as_bytes());
        if let Err(err) = state.store.delete_session(hash.clone()).await {
            tracing::error!(%err, "cannot delete session");
            return HttpResponse::InternalServerError().finish();
        }
        state.cache.forget(&hash);
    }
    let mut res = see_other("/");
    if let Some(domain) = state.domain().await {
        res.append_header((SET_COOKIE, sessions::clear_cookie(&domain)));
    }
    res.finish()
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(index)
        .service(denied)
        .service(login)
        .service(totp_page)
        .service(totp_submit)
        .service(logout_page)
        .service(logout);
}
