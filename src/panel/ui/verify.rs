//! The page that asks for the panel's second factor while it is owed, and
//! the middleware that sends a certificate admin there first. The page
//! carries the page asked for (`?next=`) and returns there after the code;
//! only a page of this panel under the base path is accepted, anything else
//! lands on the dashboard. The code is checked by the same use case as
//! `/api/settings/2fa/verify` ([`crate::app::two_factor::verify`]).

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{FromRequest, HttpRequest, HttpResponse, web};
use askama::Template;

use super::form::UiForm;
use super::{Chrome, FieldErrors, PageError, UiAdmin};
use crate::app;
use crate::panel::auth::BasePath;
use crate::panel::error::ApiError;
use crate::panel::session;

/// The page that takes the code while the second factor is owed.
pub(super) const VERIFY: &str = "/settings/2fa/verify";
/// Longest return path carried, bytes.
const MAX_NEXT: usize = 1024;

/// `next` when it is a page of this panel under `base` (the ingress prefix
/// or empty): an absolute path without scheme, host, `//`, backslashes,
/// dot segments (plain or escaped), control characters or fragment, and not
/// the code page itself. `None` sends the caller to the dashboard.
pub(super) fn return_path(base: &str, next: &str) -> Option<String> {
    let plain = next.bytes().all(|b| b.is_ascii_graphic() && b != b'\\' && b != b'#');
    if next.len() > MAX_NEXT || !plain || !next.starts_with('/') || next.starts_with("//") {
        return None;
    }
    let rest = next.strip_prefix(base)?;
    let path = rest.split_once('?').map_or(rest, |(p, _)| p);
    let lower = path.to_ascii_lowercase();
    let escaped = ["%2e", "%2f", "%5c"].iter().any(|e| lower.contains(e));
    let dots = path.split('/').any(|s| s == "." || s == "..");
    if !path.starts_with('/') || path.contains("//") || escaped || dots || path.starts_with(VERIFY) {
        return None;
    }
    super::is_page(path).then(|| next.to_string())
}

#[derive(Template)]
#[template(path = "verify.html")]
pub struct VerifyPage {
    pub chrome: Chrome,
    pub errors: FieldErrors,
    /// Where to go after the code (validated), carried by the forms.
    pub next: Option<String>,
    /// The last attempt was a recovery code (its form opens with the error).
    pub recovery: bool,
}

#[derive(serde::Deserialize)]
struct NextQuery {
    next: Option<String>,
}

async fn show(ui: UiAdmin, req: HttpRequest) -> Result<HttpResponse, PageError> {
    let asked = web::Query::<NextQuery>::from_query(req.query_string()).ok().and_then(|q| q.0.next);
    let next = asked.and_then(|n| return_path(&ui.base, &n));
    let chrome = ui.chrome("/settings", "Second factor").await?;
    super::ok(&VerifyPage { chrome, errors: FieldErrors::default(), next, recovery: false })
}

async fn verify(form: UiForm) -> Result<HttpResponse, PageError> {
    let ui = &form.ui;
    let next = return_path(&ui.base, form.get("next"));
    let recovery = form.get("kind") == "recovery";
    let field = if recovery { "recovery_code" } else { "code" };
    let code = form.get(field).trim().to_string();
    match app::two_factor::verify(&ui.state, &ui.who, &code).await {
        Ok(secret) => {
            let cookie = ui.state.sessions.session_cookie(&ui.state, &ui.actor(), &secret).await?;
            let mut res = match &next {
                Some(path) => super::see_other(path),
                None => ui.redirect("/"),
            };
            let value = cookie.parse().map_err(|_| PageError::internal("2fa cookie is not a header value"))?;
            res.headers_mut().append(actix_web::http::header::SET_COOKIE, value);
            Ok(res)
        }
        Err(e) => {
            let chrome = ui.chrome("/settings", "Second factor").await?;
            let mut errors = super::settings::code_error(ApiError::from(e))?;
            errors.0.iter_mut().for_each(|f| f.field = field.to_string());
            super::render(StatusCode::BAD_REQUEST, &VerifyPage { chrome, errors, next, recovery })
        }
    }
}

/// Middleware (inside the identity chain): while panel 2FA is on, a
/// certificate admin without a valid session is sent to the code page,
/// which returns to the page asked for (GET and HEAD only; a form post
/// lands on the dashboard, its form is not replayed).
pub async fn second_factor(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    if req.path() != VERIFY {
        let missing = session::second_factor_missing(&req)
            .await
            .map_err(|e| actix_web::Error::from(PageError::internal(&format!("2fa status: {e}"))))?;
        if missing {
            let base = BasePath::extract(req.request()).await.map(|b| b.0).unwrap_or_default();
            let asked = match req.query_string() {
                "" => format!("{base}{}", req.path()),
                q => format!("{base}{}?{q}", req.path()),
            };
            let reading = matches!(*req.method(), Method::GET | Method::HEAD) && req.path() != "/";
            let location = match return_path(&base, &asked).filter(|_| reading) {
                Some(path) => {
                    format!("{base}{VERIFY}?{}", serde_urlencoded::to_string([("next", path)]).unwrap_or_default())
                }
                None => format!("{base}{VERIFY}"),
            };
            return Ok(req.into_response(super::see_other(&location)));
        }
    }
    next.call(req).await.map(ServiceResponse::map_into_boxed_body)
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(VERIFY, web::get().to(show)).route(VERIFY, web::post().to(verify));
}

#[cfg(test)]
mod tests {
    use super::return_path;

    #[test]
    fn only_pages_of_this_panel_are_returned_to() {
        for good in ["/tunnels", "/audit?page=2&action=2fa.verify", "/agents/home-nas", "/", "/settings"] {
            assert_eq!(return_path("", good).as_deref(), Some(good), "{good}");
        }
        let open_redirects = [
            "https://evil.example/",
            "//evil.example/tunnels",
            "/\\evil.example",
            "\\\\evil.example",
            "/tunnels\\..\\x",
            "/%2f%2fevil.example",
            "/%5Cevil.example",
            "/tunnels/../../evil",
            "/tunnels/%2E%2E/x",
            "/tunnels//x",
            "/\t/evil.example",
            "/tunnels\n",
            "/tunnels#frag",
            "javascript:alert(1)",
            "tunnels",
            "",
            "/settings/2fa/verify",
            "/settings/2fa/verify?next=/tunnels",
            "/static/app.js",
            "/api/keys",
            "/tünnels",
        ];
        for bad in open_redirects {
            assert_eq!(return_path("", bad), None, "{bad:?}");
        }
        assert_eq!(return_path("", &format!("/audit?x={}", "a".repeat(1100))), None, "too long");
    }

    #[test]
    fn behind_ingress_the_path_stays_under_the_base() {
        let base = "/api/hassio_ingress/tok";
        assert_eq!(
            return_path(base, "/api/hassio_ingress/tok/tunnels").as_deref(),
            Some("/api/hassio_ingress/tok/tunnels")
        );
        assert_eq!(return_path(base, "/api/hassio_ingress/tok/").as_deref(), Some("/api/hassio_ingress/tok/"));
        for bad in [
            "/tunnels",
            "/api/hassio_ingress/other/tunnels",
            "/api/hassio_ingress/tokx/tunnels",
            "/api/hassio_ingress/tok/../x/tunnels",
            "/api/hassio_ingress/tok",
        ] {
            assert_eq!(return_path(base, bad), None, "{bad}");
        }
    }
}
