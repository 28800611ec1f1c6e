//! The portal's pages: askama templates under `web/templates/portal/` on
//! the panel's stylesheet plus `portal.css`, and the headers every page
//! carries (no caching, a same-origin-only CSP, no referrer: portal URLs
//! hold `rd` and invitation tokens).

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, web};
use askama::Template;

use super::error::Reply;
use crate::assets;

/// What every page's layout needs.
pub struct Frame {
    pub title: &'static str,
    /// The operator's domain, or "Portico" before onboarding set one.
    pub site: String,
    /// Prefix of the asset URLs: empty on `auth.<d>` itself, the portal's
    /// origin on pages nginx shows on an app's name (`/denied`).
    pub assets: String,
    pub css: &'static str,
    pub portal_css: &'static str,
    pub icon: &'static str,
}

impl Frame {
    pub fn new(title: &'static str, domain: Option<&str>) -> Frame {
        Frame {
            title,
            site: domain.unwrap_or("Portico").to_string(),
            assets: String::new(),
            css: assets::url("app.css"),
            portal_css: assets::url("portal.css"),
            icon: assets::url("logo.svg"),
        }
    }
}

#[derive(Template)]
#[template(path = "portal/signin.html")]
pub struct SignIn<'a> {
    pub frame: Frame,
    pub csrf: &'a str,
    pub rd: &'a str,
    /// The app's host when `rd` leads to one.
    pub continue_to: Option<String>,
    pub username: &'a str,
    /// Next to the password field.
    pub error: Option<&'a str>,
    /// Above the form (bans, busy).
    pub banner: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "portal/totp.html")]
pub struct Totp<'a> {
    pub frame: Frame,
    pub csrf: &'a str,
    pub rd: &'a str,
    pub username: &'a str,
    pub switch_url: String,
    pub error: Option<&'a str>,
    pub banner: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "portal/invite.html")]
pub struct Invite<'a> {
    pub frame: Frame,
    pub csrf: &'a str,
    pub token: &'a str,
    pub rd: &'a str,
    pub username: &'a str,
    /// Rendered by `totp::qr_svg` from our own URI: markup, not input.
    pub qr_svg: &'a str,
    pub secret: &'a str,
    pub min_password: usize,
    pub password_error: Option<String>,
    pub code_error: Option<&'a str>,
    pub banner: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "portal/created.html")]
pub struct Created<'a> {
    pub frame: Frame,
    pub username: &'a str,
    /// (URL, host) of the app the invitee came for.
    pub continue_to: Option<(String, String)>,
}

#[derive(Template)]
#[template(path = "portal/denied.html")]
pub struct Denied {
    pub frame: Frame,
    pub username: Option<String>,
    pub switch_url: String,
}

#[derive(Template)]
#[template(path = "portal/signed_in.html")]
pub struct SignedIn<'a> {
    pub frame: Frame,
    pub csrf: &'a str,
    pub rd: &'a str,
    pub username: &'a str,
}

#[derive(Template)]
#[template(path = "portal/signed_out.html")]
pub struct SignedOut {
    pub frame: Frame,
    pub signin_url: String,
}

#[derive(Template)]
#[template(path = "portal/message.html")]
pub struct Message {
    pub frame: Frame,
    /// `ok` or `error`.
    pub kind: &'static str,
    pub text: &'static str,
    /// (href, text)
    pub link: (String, &'static str),
}

/// `Content-Security-Policy` of the portal's pages: styles, images and
/// forms from this origin only (plus the portal's origin on a page shown on
/// an app's name); form posts may redirect to apps under the domain.
pub fn csp(domain: Option<&str>, assets_origin: &str) -> String {
    let src = if assets_origin.is_empty() { "'self'".to_string() } else { format!("'self' {assets_origin}") };
    let forms = match domain {
        Some(d) => format!("'self' https://{d}:* https://*.{d}:*"),
        None => "'self'".into(),
    };
    format!(
        "default-src 'none'; style-src {src}; img-src {src} data:; form-action {forms}; \
         frame-ancestors 'none'; base-uri 'none'"
    )
}

/// A rendered page with the portal's headers.
pub fn respond(status: StatusCode, csp: &str, page: &impl Template) -> Reply {
    let body = page.render()?;
    let mut res = HttpResponse::build(status);
    res.content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"));
    if let Ok(v) = HeaderValue::from_str(csp) {
        res.insert_header((header::CONTENT_SECURITY_POLICY, v));
    }
    Ok(res.body(body))
}

/// The files the portal's pages use, served like the panel serves them.
const SERVED: &[&str] = &["app.css", "portal.css", "logo.svg"];

async fn asset(path: web::Path<(String, String)>) -> HttpResponse {
    let (hash, name) = path.into_inner();
    let Some(a) = assets::find(&name).filter(|a| SERVED.contains(&a.name)) else {
        return HttpResponse::NotFound().content_type("text/plain").body("not found");
    };
    // An old hash after an upgrade gets the current file, uncached.
    let cache = if a.hash == hash { "public, max-age=31536000, immutable" } else { "no-cache" };
    HttpResponse::Ok()
        .content_type(a.content_type)
        .insert_header((header::CACHE_CONTROL, cache))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .body(a.bytes)
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/static/{hash}/{name}", web::get().to(asset));
}
