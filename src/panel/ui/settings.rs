//! Settings: the panel's own second factor (set up with a QR code, confirm,
//! recovery codes, disable) and the ACME settings. Same use cases
//! ([`crate::app::two_factor`]) as `/api/settings/2fa/*`; the page asking
//! for the code is [`super::verify`].

use actix_web::http::StatusCode;
use actix_web::http::header::SET_COOKIE;
use actix_web::{HttpResponse, web};
use askama::Template;

use super::form::UiForm;
use super::{Chrome, FieldErrors, PageError, UiAdmin};
use crate::app;
use crate::model::FieldError;
use crate::panel::error::ApiError;
use crate::panel::session;
use crate::users::TotpEnrollment;

#[derive(Template)]
#[template(path = "settings.html")]
pub struct SettingsPage {
    pub chrome: Chrome,
    pub enabled: bool,
    pub pending: bool,
    /// A setup just started: the QR code, shown once.
    pub enrollment: Option<TotpEnrollment>,
    pub errors: FieldErrors,
    /// Recovery codes just made (2FA turned on, or a new set): shown once.
    pub recovery_codes: Option<Vec<String>>,
    /// Unused recovery codes, while 2FA is on.
    pub remaining: u32,
    /// `https://<ip>:9292`, which turning 2FA on closes.
    pub ip_url: String,
    /// `https://panel.<domain>`, where the panel stays, once a domain is set.
    pub panel_url: Option<String>,
    pub acme: AcmeView,
    /// The Settings tab this page is (`settings_tabs.html`).
    pub settings_tab: &'static str,
}

impl SettingsPage {
    /// Few enough recovery codes left to say so.
    pub fn few_left(&self) -> bool {
        self.enabled && self.remaining <= crate::recovery::FEW
    }

    /// The codes as one block of text to copy.
    pub fn codes_text(&self, codes: &[String]) -> String {
        codes.join("\n")
    }
}

/// The ACME settings, read-only (set in config.yaml or the environment).
pub struct AcmeView {
    pub directory: String,
    /// Whether `acme.ca_bundle` names extra roots (test CAs).
    pub ca_bundle: bool,
    /// The renewal check's schedule in words, with its next run.
    pub schedule: crate::schedule::Described,
    pub renew_days: u32,
}

impl AcmeView {
    fn new(acme: &crate::settings::AcmeSettings) -> AcmeView {
        AcmeView {
            directory: acme.directory.clone(),
            ca_bundle: acme.ca_bundle.is_some(),
            schedule: crate::schedule::describe(&acme.renew_schedule, time::OffsetDateTime::now_utc()),
            renew_days: acme.renew_days,
        }
    }
}

async fn page(ui: &UiAdmin) -> Result<SettingsPage, PageError> {
    let (enabled, _, pending) = crate::two_factor::status(&ui.state.store).await?;
    let remaining = if enabled { ui.state.store.recovery_codes_remaining().await? } else { 0 };
    let domain = crate::onboarding::status(&ui.state.store, None).await?.domain;
    let ip = ui.state.public_ip().map(|ip| ip.to_string()).unwrap_or_else(|| "<public IP>".into());
    Ok(SettingsPage {
        chrome: ui.chrome("/settings", "Settings").await?,
        enabled,
        pending: pending.is_some(),
        enrollment: None,
        errors: FieldErrors::default(),
        recovery_codes: None,
        remaining,
        ip_url: format!("https://{ip}:9292"),
        panel_url: domain.map(|d| format!("https://panel.{d}")),
        acme: AcmeView { renew_days: ui.state.certs.renew_days(), ..AcmeView::new(&ui.state.settings.acme) },
        settings_tab: "panel",
    })
}

/// What a 2FA post leaves for the Settings page to show once.
enum Shown {
    /// A setup just started: its QR code.
    Enrollment(TotpEnrollment),
    /// Recovery codes just made (2FA turned on, or a new set).
    Codes(Vec<String>),
}

async fn show(ui: UiAdmin) -> Result<HttpResponse, PageError> {
    let mut p = page(&ui).await?;
    match ui.take_shown::<Shown>() {
        Some(Shown::Enrollment(e)) => p.enrollment = Some(e),
        Some(Shown::Codes(codes)) => p.recovery_codes = Some(codes),
        None => {}
    }
    super::ok(&p)
}

/// A wrong code, a ban or a state conflict is shown at the code field.
pub(super) fn code_error(e: ApiError) -> Result<FieldErrors, PageError> {
    match e {
        ApiError::Unauthorized(m) | ApiError::Forbidden(m) | ApiError::Conflict(m) => {
            Ok(FieldErrors(vec![FieldError::new("code", m)]))
        }
        other => super::form_error(other).map(|(errors, _)| errors),
    }
}

async fn setup(form: UiForm) -> Result<HttpResponse, PageError> {
    let ui = &form.ui;
    let enrollment = app::two_factor::setup(&ui.state, &ui.who).await.map_err(ApiError::from)?;
    Ok(ui.redirect_showing("/settings", Shown::Enrollment(enrollment)))
}

/// Adds a `Set-Cookie` header to a response.
fn with_cookie(mut res: HttpResponse, cookie: &str) -> Result<HttpResponse, PageError> {
    let value = cookie.parse().map_err(|_| PageError::internal("2fa cookie is not a header value"))?;
    res.headers_mut().append(SET_COOKIE, value);
    Ok(res)
}

/// The page again with the error of `field`.
async fn refused(ui: &UiAdmin, e: ApiError, field: &str) -> Result<HttpResponse, PageError> {
    let mut p = page(ui).await?;
    p.errors = code_error(e)?;
    p.errors.0.iter_mut().for_each(|f| f.field = field.to_string());
    super::render(StatusCode::BAD_REQUEST, &p)
}

/// Turns 2FA on; the page it redirects to shows the recovery codes, once
/// (kept in memory for that one GET only, never stored in clear).
async fn confirm(form: UiForm) -> Result<HttpResponse, PageError> {
    let ui = &form.ui;
    let code = form.get("code").trim().to_string();
    match app::two_factor::confirm(&ui.state, &ui.who, &code).await {
        Ok(enabled) => {
            let cookie = ui.state.sessions.session_cookie(&ui.state, &ui.actor(), &enabled.secret).await?;
            let shown = Shown::Codes(enabled.recovery_codes);
            with_cookie(ui.redirect_showing("/settings?flash=2fa_enabled", shown), &cookie)
        }
        Err(e) => refused(ui, e.into(), "code").await,
    }
}

/// A new set of recovery codes (the old ones stop working), shown once.
async fn regenerate(form: UiForm) -> Result<HttpResponse, PageError> {
    let ui = &form.ui;
    let code = form.get("code").trim().to_string();
    match app::two_factor::regenerate_codes(&ui.state, &ui.who, &code).await {
        Ok(codes) => Ok(ui.redirect_showing("/settings?flash=recovery_codes_new", Shown::Codes(codes))),
        Err(e) => refused(ui, e.into(), "regen_code").await,
    }
}

async fn disable(form: UiForm) -> Result<HttpResponse, PageError> {
    let ui = &form.ui;
    let code = form.get("code").trim().to_string();
    match app::two_factor::disable(&ui.state, &ui.who, &code).await {
        Ok(()) => with_cookie(ui.redirect("/settings?flash=2fa_disabled"), &session::cleared_cookie()),
        Err(e) => refused(ui, e.into(), "code").await,
    }
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/settings", web::get().to(show))
        .route("/settings/2fa/setup", web::post().to(setup))
        .route("/settings/2fa/confirm", web::post().to(confirm))
        .route("/settings/2fa/disable", web::post().to(disable))
        .route("/settings/2fa/recovery-codes", web::post().to(regenerate));
}
