//! What every portal form shares: CSRF tokens (signed double-submit in a
//! `__Host-` cookie, which sibling subdomains cannot set), the `rd`
//! parameter as nginx appends it, and pages sent with the CSRF cookie.

use actix_web::http::StatusCode;
use actix_web::http::header::{CACHE_CONTROL, HeaderValue, LOCATION, SET_COOKIE};
use actix_web::{HttpRequest, HttpResponse};
use askama::Template;

use super::AuthdState;
use super::error::{AuthdError, Reply};
use super::pages::{self, Frame, Message};
use super::sessions::cookie;
use crate::token;

const CSRF_COOKIE: &str = "__Host-portico_csrf";
/// Longest `rd` echoed back into pages and redirects, bytes; a longer one is
/// dropped (the visitor lands on the portal's own page).
const MAX_RD: usize = 4096;

pub struct Csrf {
    pub token: String,
    set_cookie: Option<String>,
}

/// What the portal's tokens are bound to: a [`crate::csrf`] nonce token,
/// `<nonce>.<hex HMAC-SHA256(key, "csrf:" nonce)>`.
const CSRF_SUBJECT: &str = "csrf:";

fn csrf_valid(key: &[u8], t: &str) -> bool {
    crate::csrf::Signer::new(key).verify_nonce(CSRF_SUBJECT, t)
}

fn new_csrf_token(key: &[u8]) -> String {
    crate::csrf::Signer::new(key).with_nonce(CSRF_SUBJECT)
}

/// The request's CSRF token, or a new one with its cookie.
pub fn csrf(state: &AuthdState, req: &HttpRequest) -> Csrf {
    if let Some(t) = cookie(req, CSRF_COOKIE).filter(|t| csrf_valid(&state.key, t)) {
        return Csrf { token: t, set_cookie: None };
    }
    let t = new_csrf_token(&state.key);
    let set = format!("{CSRF_COOKIE}={t}; Path=/; Secure; HttpOnly; SameSite=Strict");
    Csrf { token: t, set_cookie: Some(set) }
}

/// Refuses a form post whose token does not match the request's valid CSRF cookie.
pub fn check_csrf(state: &AuthdState, req: &HttpRequest, presented: &str) -> Result<(), AuthdError> {
    let ok = cookie(req, CSRF_COOKIE)
        .is_some_and(|c| csrf_valid(&state.key, &c) && token::constant_time_eq(c.as_bytes(), presented.as_bytes()));
    if ok { Ok(()) } else { Err(AuthdError::Csrf) }
}

/// A portal page on `auth.<d>` with its headers and, when new, the CSRF cookie.
pub fn html(status: StatusCode, csrf: &Csrf, domain: Option<&str>, page: &impl Template) -> Reply {
    let mut res = pages::respond(status, &pages::csp(domain, ""), page)?;
    if let Some(v) = csrf.set_cookie.as_deref().and_then(|c| HeaderValue::from_str(c).ok()) {
        res.headers_mut().append(SET_COOKIE, v);
    }
    Ok(res)
}

/// A short message page with one way on.
pub fn message(
    status: StatusCode,
    csrf: &Csrf,
    domain: Option<&str>,
    title: &'static str,
    text: &'static str,
    link: (String, &'static str),
) -> Reply {
    let page = Message { frame: Frame::new(title, domain), kind: "error", text, link };
    html(status, csrf, domain, &page)
}

/// A form that does not parse or is too large: [`AuthdError::Form`].
pub fn form_error(err: actix_web::error::UrlencodedError, _req: &HttpRequest) -> actix_web::Error {
    AuthdError::Form(err).into()
}

/// `rd` exactly as nginx appended it: everything after the first `rd=`.
pub fn raw_rd(req: &HttpRequest) -> Option<String> {
    let q = req.query_string();
    let start = if q.starts_with("rd=") { Some(3) } else { q.find("&rd=").map(|i| i + 4) }?;
    Some(bounded_rd(q[start..].to_string()))
}

pub fn bounded_rd(rd: String) -> String {
    if rd.len() <= MAX_RD { rd } else { String::new() }
}

pub fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `path` with `?rd=…` when there is one.
pub fn with_rd(path: &str, rd: &str) -> String {
    if rd.is_empty() { path.to_string() } else { format!("{path}?rd={}", url_encode(rd)) }
}

pub fn see_other(to: &str) -> actix_web::HttpResponseBuilder {
    let mut res = HttpResponse::SeeOther();
    res.insert_header((LOCATION, to.to_string())).insert_header((CACHE_CONTROL, "no-store"));
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csrf_tokens_are_signed_nonces_under_the_portal_key() {
        let key = crate::token::derive_key(b"install secret", "authd-portal");
        let t = new_csrf_token(&key);
        let (nonce, sig) = t.split_once('.').unwrap();
        assert_eq!(nonce.len(), 22, "16 random bytes");
        assert_eq!(sig, token::sign(&key, &format!("csrf:{nonce}")), "format kept for cookies already issued");
        assert!(csrf_valid(&key, &t));
        assert_ne!(t, new_csrf_token(&key));
        let other = crate::token::derive_key(b"another install", "authd-portal");
        assert!(!csrf_valid(&other, &t), "other install");
        let panel_style = crate::csrf::Signer::new(&key).with_nonce("portico-ui-csrf|visitor|");
        for bad in ["", ".", nonce, &format!("{nonce}."), &format!("{nonce}.{}", &sig[1..]), &panel_style] {
            assert!(!csrf_valid(&key, bad), "{bad}");
        }
    }
}
