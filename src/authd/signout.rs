//! Leaving: nginx's "not shared with you" page on an app's name, signing
//! out (a confirmation page, then a POST), and the signed-out page.

use actix_web::http::StatusCode;
use actix_web::http::header::SET_COOKIE;
use actix_web::{HttpRequest, get, post, web};
use serde::Deserialize;

use super::AuthdState;
use super::error::Reply;
use super::forms::{self, bounded_rd, check_csrf, csrf, html, see_other, with_rd};
use super::pages::{self, Denied, Frame, SignedIn, SignedOut};
use super::portal::{safe_rd, signed_in};
use super::sessions::{self, SESSION_COOKIE, cookie};
use crate::token;

/// nginx's `error_page 403` target on a tunnel or site: who is signed in,
/// and that this app is not shared with them. Always 403. The page is shown
/// on the app's own name, so its stylesheet and links point at the portal.
#[get("/denied")]
pub async fn denied(state: web::Data<AuthdState>, req: HttpRequest) -> Reply {
    let domain = state.domain().await;
    let mut frame = Frame::new("Not shared with you", domain.as_deref());
    let origin = domain.as_deref().map(|d| state.portal_origin(d)).unwrap_or_default();
    frame.assets = origin.clone();
    // The app the visitor asked for, as nginx names it (its own vhost name).
    let app = state.forwarded(&req, "x-original-url").map(|u| safe_rd(u, domain.as_deref())).unwrap_or_default();
    let page = Denied {
        frame,
        username: signed_in(&state, &req).await?,
        switch_url: format!("{origin}{}", with_rd("/logout", &app)),
    };
    pages::respond(StatusCode::FORBIDDEN, &pages::csp(domain.as_deref(), &origin), &page)
}

#[derive(Deserialize)]
pub struct LogoutForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    rd: String,
}

/// A sign-out button (links from apps land here; signing out itself is a
/// POST). Nobody signed in: the sign-in page.
#[get("/logout")]
pub async fn logout_page(state: web::Data<AuthdState>, req: HttpRequest) -> Reply {
    let domain = state.domain().await;
    let rd = safe_rd(&forms::raw_rd(&req).unwrap_or_default(), domain.as_deref());
    let Some(user) = signed_in(&state, &req).await? else {
        return Ok(see_other(&with_rd("/", &rd)).finish());
    };
    let c = csrf(&state, &req);
    let page = SignedIn { frame: Frame::new("Sign out", domain.as_deref()), csrf: &c.token, rd: &rd, username: &user };
    html(StatusCode::OK, &c, domain.as_deref(), &page)
}

#[post("/logout")]
pub async fn logout(state: web::Data<AuthdState>, req: HttpRequest, form: web::Form<LogoutForm>) -> Reply {
    check_csrf(&state, &req, &form.csrf)?;
    if let Some(value) = cookie(&req, SESSION_COOKIE) {
        let hash = token::sha256_hex(value.as_bytes());
        state.store.delete_session(hash.clone()).await?;
        state.cache.forget(&hash);
    }
    let domain = state.domain().await;
    let rd = safe_rd(&bounded_rd(form.into_inner().rd), domain.as_deref());
    let mut res = see_other(&with_rd("/signed-out", &rd));
    if let Some(domain) = domain {
        res.append_header((SET_COOKIE, sessions::clear_cookie(&domain)));
    }
    Ok(res.finish())
}

#[get("/signed-out")]
pub async fn signed_out(state: web::Data<AuthdState>, req: HttpRequest) -> Reply {
    let domain = state.domain().await;
    let rd = safe_rd(&forms::raw_rd(&req).unwrap_or_default(), domain.as_deref());
    let c = csrf(&state, &req);
    let page = SignedOut { frame: Frame::new("Signed out", domain.as_deref()), signin_url: with_rd("/", &rd) };
    html(StatusCode::OK, &c, domain.as_deref(), &page)
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(denied).service(logout_page).service(logout).service(signed_out);
}
