//! The onboarding wizard: domain → DNS records and check → provisioning
//! (progress rendered from the run so far; `app.js` follows it live over the
//! WebSocket and shows the first login when it is done), and [`guard`], which
//! keeps the admin on the wizard until it is complete. The first screen also
//! offers a restore from a backup ([`super::onboarding_restore`]). Each step
//! is a use case of [`crate::app::onboarding`], as for `/api/onboarding/*`.

use std::net::IpAddr;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::{FromRequest, HttpResponse, web};
use askama::Template;

use super::form::UiForm;
use super::{Chrome, FieldErrors, PageError, UiAdmin};
use crate::app::Error;
use crate::onboarding::{self, DnsReport, OnboardingState};
use crate::panel::AppState;
use crate::panel::auth::{self, BasePath};
use crate::panel::error::ApiError;

/// Path of the wizard's restore forms, under the base path (handled by
/// [`super::onboarding_restore`]).
pub(super) const RESTORE_ACTION: &str = "/onboarding/restore";

#[derive(Template)]
#[template(path = "onboarding.html")]
pub struct OnboardingPage {
    pub chrome: Chrome,
    pub status: OnboardingState,
    /// Recorded domain (drives the DNS step).
    pub domain: Option<String>,
    /// Form values (the user's input on a failed post).
    pub form_domain: String,
    pub form_email: String,
    /// Username of the first visitor login: suggested from the email, or as typed.
    pub form_username: String,
    pub errors: FieldErrors,
    pub error: Option<String>,
    pub public_ip: Option<IpAddr>,
    pub report: Option<DnsReport>,
    /// The latest event of each provisioning step so far.
    pub steps: Vec<StepView>,
    /// Onboarding completed, but no browser has received the first login
    /// yet: the page stays, so its progress stream can hand it over.
    pub awaiting_login: bool,
    /// The failed step of the last run (title, message), when it failed.
    pub failure: Option<(String, String)>,
    /// Restore from a backup instead (see [`super::onboarding_restore`]).
    pub restore: super::restore::RestoreView,
}

/// One provisioning step as the page shows it.
pub struct StepView {
    pub task: String,
    pub title: String,
    pub status: &'static str,
    pub message: String,
}

/// The failed step of a failed run: (title, message).
fn failure(snapshot: &crate::app::provision::Snapshot) -> Option<(String, String)> {
    use crate::app::provision::{RunStatus, StepStatus};
    if snapshot.status != RunStatus::Failed {
        return None;
    }
    let failed = snapshot.events.iter().rev().find(|e| e.status == StepStatus::Failed)?;
    Some((failed.title.clone(), failed.message.clone()))
}

fn step_views(snapshot: &crate::app::provision::Snapshot) -> Vec<StepView> {
    use crate::app::provision::StepStatus;
    let mut steps: Vec<StepView> = Vec::new();
    for e in &snapshot.events {
        let status = match e.status {
            StepStatus::Running => "running",
            StepStatus::Done => "done",
            StepStatus::Skipped => "skipped",
            StepStatus::Failed => "failed",
        };
        let view = StepView { task: e.task.clone(), title: e.title.clone(), status, message: e.message.clone() };
        match steps.iter_mut().find(|s| s.task == e.task) {
            Some(s) => *s = view,
            None => steps.push(view),
        }
    }
    steps
}

impl OnboardingPage {
    pub fn step(&self) -> u8 {
        match self.status {
            OnboardingState::Fresh => 1,
            OnboardingState::DomainSet => 2,
            _ => 3,
        }
    }

    /// The records to create: (name, type, value).
    pub fn records(&self) -> Vec<(String, &'static str, String)> {
        let (Some(domain), Some(ip)) = (&self.domain, self.public_ip) else { return vec![] };
        let kind = if ip.is_ipv4() { "A" } else { "AAAA" };
        ["panel", "auth", "tunnel", "*"].iter().map(|n| (format!("{n}.{domain}"), kind, ip.to_string())).collect()
    }

    /// The records as one zone-file snippet to copy.
    pub fn zone_snippet(&self) -> String {
        self.records().iter().map(|(n, t, v)| format!("{n}. 300 IN {t} {v}")).collect::<Vec<_>>().join("\n")
    }

    pub fn editable(&self) -> bool {
        matches!(self.status, OnboardingState::Fresh | OnboardingState::DomainSet | OnboardingState::DnsReady)
    }
}

pub(super) async fn page(ui: &UiAdmin) -> Result<OnboardingPage, PageError> {
    let status = onboarding::status(&ui.state.store, ui.state.public_ip()).await?;
    let mut restore = super::restore::view(ui, RESTORE_ACTION).await?;
    // Offered on the first screen only; a staged or pending one shows until done.
    restore.upload = status.status == OnboardingState::Fresh;
    let run = ui.state.provision.subscribe().0;
    Ok(OnboardingPage {
        chrome: ui.chrome("/onboarding", "Set up Portico").await?,
        status: status.status,
        form_domain: status.domain.clone().unwrap_or_default(),
        form_username: crate::app::provision::suggested_username(&ui.state).await?,
        form_email: status.email.unwrap_or_default(),
        domain: status.domain,
        errors: FieldErrors::default(),
        error: None,
        public_ip: status.public_ip,
        report: None,
        steps: step_views(&run),
        awaiting_login: status.status == OnboardingState::Completed && ui.state.provision.has_undelivered(),
        failure: failure(&run),
        restore,
    })
}

async fn show(ui: UiAdmin) -> Result<HttpResponse, PageError> {
    // A run can finish before the page that follows it loads: while its
    // first login is undelivered, the page still shows the progress.
    if ui.state.onboarding_state() == OnboardingState::Completed && !ui.state.provision.has_undelivered() {
        return Ok(ui.redirect("/"));
    }
    super::ok(&page(&ui).await?)
}

async fn set_domain(form: UiForm) -> Result<HttpResponse, PageError> {
    let ui = &form.ui;
    let (domain, email) = (form.get("domain"), form.get("email"));
    match crate::app::onboarding::set_domain(&ui.state, &ui.who, domain, email).await {
        Ok(_) => Ok(ui.redirect("/onboarding?flash=domain_saved")),
        Err(e) => {
            let mut p = page(ui).await?;
            p.form_domain = domain.to_string();
            p.form_email = email.to_string();
            let (errors, error) = super::form_error(ApiError::from(e))?;
            let status = if errors.is_empty() { StatusCode::CONFLICT } else { StatusCode::BAD_REQUEST };
            p.errors = errors;
            p.error = error;
            super::render(status, &p)
        }
    }
}

async fn check_dns(form: UiForm) -> Result<HttpResponse, PageError> {
    let ui = &form.ui;
    match crate::app::onboarding::verify_dns(&ui.state, &ui.who).await {
        Ok((report, _)) => {
            let mut p = page(ui).await?;
            p.report = Some(report);
            super::ok(&p)
        }
        Err(Error::Conflict(message)) => {
            let mut p = page(ui).await?;
            p.error = Some(message);
            super::render(StatusCode::CONFLICT, &p)
        }
        Err(e) => Err(ApiError::from(e).into()),
    }
}

async fn provision(form: UiForm) -> Result<HttpResponse, PageError> {
    let ui = &form.ui;
    let username = form.get("username").trim().to_string();
    match crate::app::onboarding::start_provisioning(&ui.state.app, &ui.who, Some(&username)).await {
        Ok(()) => Ok(ui.redirect("/onboarding?flash=provisioning")),
        Err(Error::Invalid(errors)) => {
            let mut p = page(ui).await?;
            p.errors = FieldErrors(errors);
            p.form_username = username;
            super::render(StatusCode::BAD_REQUEST, &p)
        }
        Err(Error::Conflict(message)) => {
            let mut p = page(ui).await?;
            p.error = Some(message);
            super::render(StatusCode::CONFLICT, &p)
        }
        Err(e) => Err(ApiError::from(e).into()),
    }
}

/// Paths that answer before onboarding is complete: the wizard, the
/// second-factor code page (where [`super::verify::second_factor`] sends a
/// certificate admin first) and the static files.
fn open_before_completion(path: &str) -> bool {
    path == "/onboarding"
        || path.starts_with("/onboarding/")
        || path.starts_with("/static/")
        || path == super::verify::VERIFY
}

/// Middleware, innermost of the page scope: until onboarding is complete, the
/// admin is sent from every other page to the wizard (303 under the base
/// path). Callers without the admin identity pass on untouched, so the
/// page's extractor refuses them exactly as after completion and learns them
/// nothing about onboarding. It runs before the extractors, so a form post is
/// redirected before [`UiForm`] reads its CSRF token and no handler code runs.
pub async fn guard(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let pending = req
        .app_data::<web::Data<AppState>>()
        .is_some_and(|state| state.onboarding_state() != OnboardingState::Completed);
    if pending && !open_before_completion(req.path()) && auth::is_admin(req.request()) {
        let base = BasePath::extract(req.request()).await.map(|b| b.0).unwrap_or_default();
        let res = super::see_other(&format!("{base}/onboarding"));
        return Ok(req.into_response(res));
    }
    next.call(req).await.map(ServiceResponse::map_into_boxed_body)
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/onboarding", web::get().to(show))
        .route("/onboarding/domain", web::post().to(set_domain))
        .route("/onboarding/dns", web::post().to(check_dns))
        .route("/onboarding/provision", web::post().to(provision));
}
