//! The server-rendered web UI of the panel: askama templates in
//! `web/templates/`, CSS/JS in `web/static/` (embedded, see [`assets`]).
//!
//! How to add a page (e.g. tunnels):
//! 1. `src/panel/ui/tunnels.rs` with a `configure(cfg)` registering
//!    `GET /tunnels` and its `POST /tunnels/...` form routes; add one
//!    `.configure(tunnels::configure)` line in [`configure`] and one row in
//!    [`NAV`] (or `OTHER_PAGES` for pages outside the navigation): only
//!    those path prefixes reach the page scope.
//! 2. A template `web/templates/tunnels.html` that `{% extends "base.html" %}`;
//!    its struct holds `chrome: Chrome` (base path, CSRF token, nav, flash) plus
//!    the page's data. Every URL in a template starts with `{{ chrome.base }}`
//!    (the ingress prefix or empty), so the UI works under Home Assistant.
//! 3. GET handlers take [`UiAdmin`] (same identity chain as the API, admin
//!    only). Nothing to do for onboarding: until it is complete,
//!    [`onboarding::guard`] sends the admin from every page except
//!    `/onboarding*`, `/static/*` and the 2FA code page to the wizard before
//!    any handler runs (order of the page scope's middleware: see [`configure`]).
//! 4. Form posts take [`form::UiForm`]: it refuses a missing or wrong CSRF
//!    token (403) before the handler runs. Handlers call the same use case in
//!    `crate::app` as the API handler (it validates, applies and audits), then either redirect (303)
//!    with a flash code (`?flash=<code>`, texts in [`flash_message`]) or, on a
//!    validation error, re-render the form with [`FieldErrors`] and the user's input.
//! 5. Lists use [`Pager`] and `{% include "pager.html" %}`; destructive
//!    actions sit in `<details class="confirm">` so they need a second click
//!    without any JavaScript. Text to copy (commands, secrets shown once):
//!    `{% let copy_id = "x" %}{% let copy_text = … %}{% include "copy.html" %}`
//!    (the copy button appears when `app.js` runs).
//! 6. A render test in `ui/tests.rs` and a step in `tests/ui_browser.rs`.

pub mod assets;
pub mod csrf;
pub mod form;

mod agents;
mod audit_log;
mod backups;
mod certs;
mod dashboard;
mod doctor;
mod groups;
mod keys;
mod nginx;
mod onboarding;
mod onboarding_restore;
mod restore;
mod runtime_settings;
mod services;
mod settings;
mod sites;
mod spark;
mod system;
mod tunnels;
mod upload;
mod users;
mod verify;

#[cfg(test)]
mod tests;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{FromRequest, HttpRequest, HttpResponse, ResponseError, middleware, web};
use askama::Template;
use futures_util::future::LocalBoxFuture;

use super::AppState;
use super::auth::{Admin, BasePath};
use super::error::ApiError;
use crate::identity::Identity;
use crate::model::FieldError;
use crate::onboarding::OnboardingState;

/// Main navigation: (path under the base, label). One row per page.
pub const NAV: &[(&str, &str)] = &[
    ("/", "Dashboard"),
    ("/tunnels", "Tunnels"),
    ("/sites", "Sites"),
    ("/agents", "Agents"),
    ("/users", "Users"),
    ("/certs", "Certificates"),
    ("/keys", "API keys"),
    ("/services", "Services"),
    ("/system", "System"),
    ("/backups", "Backups"),
    ("/nginx", "nginx"),
    ("/settings", "Settings"),
    ("/audit", "Audit log"),
    ("/doctor", "Doctor"),
];

/// Pages outside the navigation (their path prefixes).
const OTHER_PAGES: &[&str] = &["/onboarding", "/groups", "/invitations"];

/// Whether `path` belongs to a UI page (a `NAV` or `OTHER_PAGES` prefix), so
/// the page scope never swallows routes other modules register after it.
fn is_page(path: &str) -> bool {
    path == "/"
        || NAV
            .iter()
            .map(|(p, _)| *p)
            .chain(OTHER_PAGES.iter().copied())
            .filter(|p| *p != "/")
            .any(|p| path.strip_prefix(p).is_some_and(|rest| rest.is_empty() || rest.starts_with('/')))
}

/// Registers the pages and static files. Pages sit behind the same identity
/// middleware as the API; `/static` needs no identity.
///
/// A page request passes, outermost first: security headers;
/// [`auth::identify`](super::auth::identify) (resolves the caller, refuses
/// untrusted ingress peers and bad credentials); [`styled_errors`];
/// [`verify::second_factor`] (a certificate admin owing the code goes to the
/// code page first, in every onboarding state); [`onboarding::guard`] (the
/// admin goes to the wizard until it is complete; anyone else passes on);
/// then the handler's extractors: [`UiAdmin`] refuses callers without the
/// admin identity (401/403, same in every onboarding state) and
/// [`form::UiForm`] the CSRF token (403), so before completion only the
/// wizard's and the code page's forms ever reach a token check.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(web::Data::new(csrf::CsrfKey::default())).configure(assets::configure).service(
        web::scope("")
            .guard(actix_web::guard::fn_guard(|ctx| is_page(ctx.head().uri.path())))
            .wrap(middleware::from_fn(onboarding::guard))
            .wrap(middleware::from_fn(verify::second_factor))
            .wrap(middleware::from_fn(styled_errors))
            .wrap(middleware::from_fn(super::auth::identify))
            .wrap(
                middleware::DefaultHeaders::new()
                    .add((header::CACHE_CONTROL, "no-store"))
                    .add((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
                    .add((header::REFERRER_POLICY, "same-origin"))
                    .add((
                        header::CONTENT_SECURITY_POLICY,
                        "default-src 'self'; img-src 'self' data:; object-src 'none'; form-action 'self'; \
                         frame-ancestors 'self'; base-uri 'none'",
                    )),
            )
            .configure(dashboard::configure)
            .configure(doctor::configure)
            .configure(onboarding::configure)
            .configure(onboarding_restore::configure)
            .configure(tunnels::configure)
            .configure(sites::configure)
            .configure(users::configure)
            .configure(groups::configure)
            .configure(agents::configure)
            .configure(certs::configure)
            .configure(keys::configure)
            .configure(settings::configure)
            .configure(verify::configure)
            .configure(runtime_settings::configure)
            .configure(services::configure)
            .configure(system::configure)
            .configure(backups::configure)
            .configure(restore::configure)
            .configure(nginx::configure)
            .configure(audit_log::configure),
    );
}

/// What every page's layout needs.
pub struct Chrome {
    /// URL prefix (ingress path or empty); every emitted URL starts with it.
    pub base: String,
    /// CSRF token for forms on this page.
    pub csrf: String,
    /// `NAV` path of the current page.
    pub active: &'static str,
    pub title: String,
    pub flash: Option<(&'static str, &'static str)>,
    /// Whether onboarding is complete (shows the full navigation).
    pub completed: bool,
    pub css: &'static str,
    pub js: &'static str,
    /// The tab's icon (the logo).
    pub icon: &'static str,
    /// The external sign-in portal, when `authd.mode` is external.
    pub external_auth: Option<String>,
}

impl Chrome {
    pub fn nav(&self) -> &'static [(&'static str, &'static str)] {
        NAV
    }

    /// `base + path`, for templates: `{{ chrome.url("/keys") }}`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }
}

/// The external visitor portal, with `authd.mode: external`.
fn external_portal(settings: &crate::settings::Settings) -> Option<String> {
    match settings.authd.mode {
        crate::settings::AuthdMode::External => settings.authd.external.portal_url.clone(),
        crate::settings::AuthdMode::Builtin => None,
    }
}

/// The admin, resolved by the API's identity chain, plus what pages need.
pub struct UiAdmin {
    pub who: Identity,
    pub base: String,
    pub state: web::Data<AppState>,
    csrf_key: web::Data<csrf::CsrfKey>,
    flash: Option<String>,
    /// `?shown=`: the id of a result a form post left for this page.
    shown: Option<String>,
}

impl FromRequest for UiAdmin {
    type Error = PageError;
    type Future = LocalBoxFuture<'static, Result<Self, PageError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let admin = Admin::extract(req).into_inner();
        let base = BasePath::extract(req).into_inner().map(|b| b.0).unwrap_or_default();
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let csrf_key = req.app_data::<web::Data<csrf::CsrfKey>>().cloned();
        let (flash, shown) = web::Query::<FlashQuery>::from_query(req.query_string())
            .map(|q| (q.0.flash, q.0.shown))
            .unwrap_or_default();
        Box::pin(async move {
            let Admin(who) = admin.map_err(PageError::from)?;
            let state = state.ok_or_else(|| PageError::internal("AppState missing"))?;
            let csrf_key = csrf_key.ok_or_else(|| PageError::internal("csrf key missing"))?;
            Ok(UiAdmin { who, base, state, csrf_key, flash, shown })
        })
    }
}

#[derive(serde::Deserialize)]
struct FlashQuery {
    flash: Option<String>,
    shown: Option<String>,
}

impl UiAdmin {
    /// The layout context for a page; `active` is its `NAV` path.
    pub async fn chrome(&self, active: &'static str, title: &str) -> Result<Chrome, PageError> {
        let key = self.csrf_key.get(&self.state.store).await.map_err(PageError::from)?;
        Ok(Chrome {
            base: self.base.clone(),
            csrf: key.token(&self.who.actor(), time::OffsetDateTime::now_utc()),
            active,
            title: title.to_string(),
            flash: self.flash.as_deref().and_then(flash_message),
            completed: self.state.onboarding_state() == OnboardingState::Completed,
            css: assets::url("app.css"),
            js: assets::url("app.js"),
            icon: assets::url("logo.svg"),
            external_auth: external_portal(&self.state.settings),
        })
    }

    /// 303 to `base + path` (after a successful form post).
    pub fn redirect(&self, path: &str) -> HttpResponse {
        see_other(&format!("{}{}", self.base, path))
    }

    pub fn actor(&self) -> String {
        self.who.actor()
    }

    /// 303 to `base + path` with `value` kept for that page to show once
    /// ([`UiAdmin::take_shown`]). `path` may carry a query already.
    pub fn redirect_showing<T: Send + 'static>(&self, path: &str, value: T) -> HttpResponse {
        let id = self.state.shown.put(value);
        let sep = if path.contains('?') { '&' } else { '?' };
        self.redirect(&format!("{path}{sep}shown={id}"))
    }

    /// What the form post that redirected here left to show, once.
    pub fn take_shown<T: 'static>(&self) -> Option<T> {
        self.take_shown_if(|_| true)
    }

    /// [`UiAdmin::take_shown`] when `wanted` says it belongs to this page.
    pub fn take_shown_if<T: 'static>(&self, wanted: impl Fn(&T) -> bool) -> Option<T> {
        self.shown.as_deref().and_then(|id| self.state.shown.take_if(id, wanted))
    }
}

pub fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther().insert_header((header::LOCATION, location)).finish()
}

/// Fixed flash texts, chosen by code so no user text reaches the page this way.
pub fn flash_message(code: &str) -> Option<(&'static str, &'static str)> {
    Some(match code {
        "domain_saved" => ("ok", "Domain saved. Now create the DNS records below."),
        "provisioning" => ("ok", "Provisioning started. Progress appears below."),
        "key_revoked" => ("ok", "API key revoked. It stops working at once."),
        "agent_revoked" => ("ok", "Agent revoked. Its certificates are refused from now on."),
        "agent_removed" => ("ok", "Agent removed from the list. Its certificates stay refused."),
        "caps_saved" => ("ok", "Capabilities saved; they apply on the agent's next request."),
        "tunnel_created" => ("ok", "Tunnel created. Run its agent with the commands below."),
        "tunnel_saved" => ("ok", "Tunnel saved."),
        "tunnel_saved_down" => ("warn", "Tunnel saved, but some names do not serve yet; see Health below."),
        "tunnel_created_down" => (
            "warn",
            "Tunnel created, but its name does not serve yet (its agent or certificate may be missing); see Health below.",
        ),
        "tunnel_enabled" => ("ok", "Tunnel enabled."),
        "tunnel_disabled" => ("ok", "Tunnel disabled; it stops answering at once."),
        "tunnel_deleted" => ("ok", "Tunnel deleted."),
        "user_saved" => ("ok", "User saved."),
        "user_deleted" => ("ok", "User deleted; their sessions ended."),
        "session_revoked" => ("ok", "Session ended."),
        "group_created" => ("ok", "Group created."),
        "group_deleted" => ("ok", "Group deleted."),
        "members_saved" => ("ok", "Members saved."),
        "invitation_revoked" => ("ok", "Invitation revoked; its link no longer works."),
        "2fa_enabled" => ("ok", "Two-factor login is on. Keep the authenticator app safe."),
        "2fa_disabled" => ("ok", "Two-factor login is off; its recovery codes were deleted."),
        "recovery_codes_new" => ("ok", "New recovery codes made; the old ones no longer work."),
        "runtime_saved" => ("ok", "Runtime settings saved. Each takes effect as its row says."),
        "site_created" => ("ok", "Site created; it serves a placeholder page."),
        "site_deleted" => ("ok", "Site and its files deleted."),
        "site_created_down" => (
            "warn",
            "Site created, but its name does not serve yet (its certificate may still be on its way); see Health below.",
        ),
        "site_saved_down" => ("warn", "Site saved, but its name does not serve; see Sites for its health."),
        "site_saved" => ("ok", "Site saved."),
        "files_uploaded" => ("ok", "Files uploaded; they are served at once."),
        "file_deleted" => ("ok", "File deleted."),
        "nginx_rolled_back" => ("ok", "Snapshot is live again; the replaced configuration was kept as a snapshot."),
        "nginx_rolled_back_down" => (
            "warn",
            "Snapshot is live again, but some names do not serve (they did not before either); see the Doctor.",
        ),
        "sites_saved" => ("ok", "Allowed sites saved; they apply on the agent's next request."),
        "restore_staged" => {
            ("ok", "Backup decrypted and checked. Nothing has changed yet: confirm below to restore it.")
        }
        "restore_restarting" => {
            ("ok", "Restore confirmed. The panel restarts now to apply it; reload this page in a few seconds.")
        }
        "restore_pending" => (
            "warn",
            "Restore confirmed. No service supervisor runs the panel here: restart `portico serve` to apply it.",
        ),
        "restore_discarded" => ("ok", "Restore discarded; nothing was changed."),
        "restore_back" => ("ok", "The panel restarted."),
        "restore_accepted" => ("ok", "Restored data kept; the data it replaced was deleted."),
        "rollback_pending" => (
            "warn",
            "No service supervisor runs the panel here: restart `portico serve` to go back to the previous data.",
        ),
        _ => return None,
    })
}

/// Field errors of a form, by field name.
#[derive(Default, Debug)]
pub struct FieldErrors(pub Vec<FieldError>);

impl FieldErrors {
    /// The message for `field` or its indexed forms (`scopes[0]`).
    pub fn get(&self, field: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|e| e.field == field || e.field.strip_prefix(field).is_some_and(|r| r.starts_with('[')))
            .map(|e| e.message.as_str())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn all(&self) -> &[FieldError] {
        &self.0
    }
}

/// Splits a domain error into field errors (re-render) and a banner message.
pub fn form_error(err: ApiError) -> Result<(FieldErrors, Option<String>), PageError> {
    match err {
        ApiError::BadRequest { details, message } if details.is_empty() => Ok((FieldErrors::default(), Some(message))),
        ApiError::BadRequest { details, .. } => Ok((FieldErrors(details), None)),
        ApiError::Conflict(m) | ApiError::NotFound(m) | ApiError::Forbidden(m) => Ok((FieldErrors::default(), Some(m))),
        ApiError::NamesBroken(r) => Ok((FieldErrors::default(), Some(names_broken(&r)))),
        other => Err(other.into()),
    }
}

/// The banner for a change that was undone because names stopped serving.
pub fn names_broken(r: &[crate::probe::Regression]) -> String {
    let list: Vec<String> = r.iter().map(|x| format!("{} ({})", x.name, x.reason)).collect();
    format!("The change was undone: it stopped a working name from serving: {}", list.join("; "))
}

/// Page numbers of a list; links keep the list's filters.
pub struct Pager {
    pub page: u32,
    pub pages: u32,
    pub total: u64,
    pub prev: Option<String>,
    pub next: Option<String>,
}

impl Pager {
    /// `link(page)` builds the URL of another page.
    pub fn new(page: u32, per_page: u32, total: u64, link: impl Fn(u32) -> String) -> Pager {
        let pages = total.div_ceil(u64::from(per_page.max(1))).max(1).min(u64::from(u32::MAX)) as u32;
        Pager {
            page,
            pages,
            total,
            prev: (page > 1).then(|| link(page - 1)),
            next: (page < pages).then(|| link(page + 1)),
        }
    }
}

/// Renders a template into a response with `status`.
pub fn render(status: StatusCode, t: &impl Template) -> Result<HttpResponse, PageError> {
    let body = t.render().map_err(|e| PageError::internal(&format!("template: {e}")))?;
    Ok(HttpResponse::build(status).content_type(mime::TEXT_HTML_UTF_8).body(body))
}

pub fn ok(t: &impl Template) -> Result<HttpResponse, PageError> {
    render(StatusCode::OK, t)
}

/// An error shown as a small HTML page (no internal details).
#[derive(Debug)]
pub struct PageError {
    pub status: StatusCode,
    pub message: String,
}

impl PageError {
    pub fn internal(context: &str) -> Self {
        tracing::error!(error = context, "page failed");
        PageError { status: StatusCode::INTERNAL_SERVER_ERROR, message: "Internal server error".into() }
    }
}

impl std::fmt::Display for PageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<ApiError> for PageError {
    fn from(e: ApiError) -> Self {
        if let ApiError::Internal(context) = &e {
            return PageError::internal(context);
        }
        if let ApiError::NamesBroken(r) = &e {
            return PageError { status: e.status_code(), message: names_broken(r) };
        }
        PageError { status: e.status_code(), message: e.to_string() }
    }
}

impl From<crate::store::StoreError> for PageError {
    fn from(e: crate::store::StoreError) -> Self {
        ApiError::from(e).into()
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    status: u16,
    reason: &'a str,
    message: &'a str,
    /// Known when rendered by [`styled_errors`]: enables the stylesheet and
    /// the link back (both under the base path).
    base: Option<&'a str>,
    css: &'static str,
}

fn error_page(status: StatusCode, message: &str, base: Option<&str>) -> HttpResponse {
    let page = ErrorPage {
        status: status.as_u16(),
        reason: status.canonical_reason().unwrap_or("Error"),
        message,
        base,
        css: assets::url("app.css"),
    };
    let body = page.render().unwrap_or_else(|_| message.to_string());
    HttpResponse::build(status)
        .insert_header((header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8")))
        .body(body)
}

impl ResponseError for PageError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        error_page(self.status, &self.message, None)
    }
}

/// Middleware: re-renders a [`PageError`] with the caller's base path, so
/// the error page is styled and links back into the panel.
async fn styled_errors(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let base = BasePath::extract(req.request()).await.map(|b| b.0).unwrap_or_default();
    let res = next.call(req).await?;
    let failed = res.response().error().and_then(|e| e.as_error::<PageError>()).map(|e| (e.status, e.message.clone()));
    match failed {
        Some((status, message)) => {
            let (req, _) = res.into_parts();
            Ok(ServiceResponse::new(req, error_page(status, &message, Some(&base))))
        }
        None => Ok(res.map_into_boxed_body()),
    }
}

/// Formats a time for tables: `2026-01-31 12:00 UTC`.
pub fn when(t: &time::OffsetDateTime) -> String {
    let f = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    t.to_offset(time::UtcOffset::UTC).format(&f).unwrap_or_default()
}

/// A public name's address, `https://<name>.<domain>/`, once a domain is set.
pub fn address(domain: Option<&str>, name: &str) -> Option<String> {
    domain.map(|d| format!("https://{name}.{d}/"))
}

/// The form's choices of access mode: (value, `Label — meaning`).
pub fn access_choices(modes: &[crate::model::Access]) -> Vec<(&'static str, String)> {
    modes.iter().map(|a| (a.as_str(), format!("{} — {}", a.label(), a.meaning()))).collect()
}

/// A stored access mode's name on the pages (`Signed-in visitors`).
pub fn access_label(access: &crate::model::Access) -> &'static str {
    access.label()
}
