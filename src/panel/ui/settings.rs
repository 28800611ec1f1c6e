//! Settings: the panel's own second factor (set up with a QR code, confirm,
//! disable) and the page that asks for the code while 2FA is on. Same
//! functions as `/api/settings/2fa/*`.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::SET_COOKIE;
use actix_web::middleware::Next;
use actix_web::{FromRequest, HttpResponse, web};
use askama::Template;

use super::form::UiForm;
use super::{Chrome, FieldErrors, PageError, UiAdmin};
use crate::onboarding::FieldError;
use crate::panel::auth::BasePath;
use crate::panel::error::ApiError;
use crate::panel::routes::two_factor::{confirm_code, disable_code, start_setup, verify_code};
use crate::panel::session;
use crate::users::TotpEnrollment;

/// The page that takes the code while the second factor is owed.
pub(super) const VERIFY: &str = "/settings/2fa/verify";

#[derive(Template)]
#[template(path = "settings.html")]
pub struct SettingsPage {
    pub chrome: Chrome,
    pub enabled: bool,
    pub pending: bool,
    /// A setup just started: the QR code, shown once.
    pub enrollment: Option<TotpEnrollment>,
    pub errors: FieldErrors,
    pub acme: AcmeView,
    /// The Settings tab this page is (`settings_tabs.html`).
    pub settings_tab: &'static str,
}

/// The ACME settings, read-only (set in config.yaml or the environment).
pub struct AcmeView {
    pub directory: String,
    /// Whether `acme.ca_bundle` names extra roots (test CAs).
    pub ca_bundle: bool,
    pub renew_schedule: String,
    /// Next renewal check, when the schedule parses.
    pub next_run: Option<String>,
    pub renew_days: u32,
}

impl AcmeView {
    fn new(acme: &crate::settings::AcmeSettings) -> AcmeView {
        let next_run = acme
            .schedule()
            .ok()
            .and_then(|s| crate::acme::renewal::next_run(&s, time::OffsetDateTime::now_utc()))
            .map(|t| super::when(&t));
        AcmeView {
            directory: acme.directory.clone(),
            ca_bundle: acme.ca_bundle.is_some(),
            renew_schedule: acme.renew_schedule.clone(),
            next_run,
            renew_days: acme.renew_days,
        }
    }
}

async fn page(ui: &UiAdmin) -> Result<SettingsPage, PageError> {
    let (enabled, _, pending) = session::status(&ui.state.store).await?;
    Ok(SettingsPage {
        chrome: ui.chrome("/settings", "Settings").await?,
        enabled,
        pending: pending.is_some(),
        enrollment: None,
        errors: FieldErrors::default(),
        acme: AcmeView { renew_days: ui.state.certs.renew_days(), ..AcmeView::new(&ui.state.settings.acme) },
        settings_tab: "panel",
    })
}

async fn show(ui: UiAdmin) -> Result<HttpResponse, PageError> {
    super::ok(&page(&ui).await?)
}

/// A wrong code, a ban or a state conflict is shown at the code field.
fn code_error(e: ApiError) -> Result<FieldErrors, PageError> {
    match e {
        ApiError::Unauthorized(m) | ApiError::Forbidden(m) | ApiError::Conflict(m) => {
            Ok(FieldErrors(vec![FieldError::new("code", m)]))
        }
        other => super::form_error(other).map(|(errors, _)| errors),
    }
}

async fn setup(form: UiForm) -> Result<HttpResponse, PageError> {
    let ui = &form.ui;
    let enrollment = start_setup(&ui.state, &ui.actor()).await?;
    let mut p = page(ui).await?;
    p.enrollment = Some(enrollment);
    super::ok(&p)
}

/// Runs a code action; on success sets its cookie and redirects with `flash`.
async fn with_code(
    form: UiForm,
    action: impl AsyncFnOnce(&UiAdmin, &str) -> Result<String, ApiError>,
    done: &str,
) -> Result<HttpResponse, PageError> {
    let ui = &form.ui;
    let code = form.get("code").trim().to_string();
    match action(ui, &code).await {
        Ok(cookie) => {
            let mut res = ui.redirect(done);
            res.headers_mut().append(
                SET_COOKIE,
                cookie.parse().map_err(|_| PageError::internal("2fa cookie is not a header value"))?,
            );
            Ok(res)
        }
        Err(e) => {
            let mut p = page(ui).await?;
            p.errors = code_error(e)?;
            super::render(StatusCode::BAD_REQUEST, &p)
        }
    }
}

async fn confirm(form: UiForm) -> Result<HttpResponse, PageError> {
    with_code(form, async |ui, code| confirm_code(&ui.state, &ui.actor(), code).await, "/settings?flash=2fa_enabled")
        .await
}

async fn disable(form: UiForm) -> Result<HttpResponse, PageError> {
    with_code(form, async |ui, code| disable_code(&ui.state, &ui.actor(), code).await, "/settings?flash=2fa_disabled")
        .await
}

#[derive(Template)]
#[template(path = "verify.html")]
pub struct VerifyPage {
    pub chrome: Chrome,
    pub errors: FieldErrors,
}

async fn show_verify(ui: UiAdmin) -> Result<HttpResponse, PageError> {
    let chrome = ui.chrome("/settings", "Second factor").await?;
    super::ok(&VerifyPage { chrome, errors: FieldErrors::default() })
}

async fn verify(form: UiForm) -> Result<HttpResponse, PageError> {
    let ui = &form.ui;
    let code = form.get("code").trim().to_string();
    match verify_code(&ui.state, &ui.actor(), &code).await {
        Ok(cookie) => {
            let mut res = ui.redirect("/");
            let value = cookie.parse().map_err(|_| PageError::internal("2fa cookie is not a header value"))?;
            res.headers_mut().append(SET_COOKIE, value);
            Ok(res)
        }
        Err(e) => {
            let chrome = ui.chrome("/settings", "Second factor").await?;
            super::render(StatusCode::BAD_REQUEST, &VerifyPage { chrome, errors: code_error(e)? })
        }
    }
}

/// Middleware (inside the identity chain): while panel 2FA is on, a
/// certificate admin without a valid session is sent to the code page.
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
            let res = super::see_other(&format!("{base}{VERIFY}"));
            return Ok(req.into_response(res));
        }
    }
    next.call(req).await.map(ServiceResponse::map_into_boxed_body)
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/settings", web::get().to(show))
        .route("/settings/2fa/setup", web::post().to(setup))
        .route("/settings/2fa/confirm", web::post().to(confirm))
        .route("/settings/2fa/disable", web::post().to(disable))
        .route(VERIFY, web::get().to(show_verify))
        .route(VERIFY, web::post().to(verify));
}
