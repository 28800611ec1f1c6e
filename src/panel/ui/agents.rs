//! Agents: one-time enrollment tokens, the list, capabilities, revoke, and
//! removing revoked agents from the list. Every change goes through the same
//! use cases as the API (`app::agents`, which audit them).

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError, web};
use askama::Template;
use time::OffsetDateTime;

use super::form::UiForm;
use super::{Chrome, FieldErrors, PageError, UiAdmin};
use crate::agents::{EnrollmentGrant, IssuedAgentCert};
use crate::app::{self, agents::AgentView};
use crate::downloads::{self, PanelAddress};
use crate::identity::Capability;
use crate::panel::error::ApiError;
use crate::store::Agent;

#[derive(Template)]
#[template(path = "agents.html")]
pub struct AgentsPage {
    pub chrome: Chrome,
    /// Each agent with the relay's view of it (online, since, address, round trip).
    pub agents: Vec<AgentView>,
    pub form_label: String,
    pub form_caps: Vec<String>,
    pub errors: FieldErrors,
    pub error: Option<String>,
    /// A token just created: shown this once.
    pub grant: Option<EnrollmentGrant>,
    /// A certificate and key generated here: shown this once.
    pub issued: Option<IssuedAgentCert>,
    /// This panel as a home machine reaches it, with its pins.
    pub panel: PanelAddress,
}

impl AgentsPage {
    /// Whether `list` holds `value` (checkbox state).
    pub fn has(&self, list: &[String], value: &str) -> bool {
        list.iter().any(|v| v == value)
    }

    pub fn capabilities(&self) -> Vec<&'static str> {
        Capability::ALL.iter().map(|c| c.as_str()).collect()
    }

    pub fn when(&self, t: &OffsetDateTime) -> String {
        super::when(t)
    }

    /// `12 ms`, `0.4 ms`.
    pub fn rtt(&self, ms: &f64) -> String {
        if *ms < 10.0 { format!("{ms:.1} ms") } else { format!("{ms:.0} ms") }
    }

    /// The one line an operator runs (as root) on the home machine.
    pub fn install_command(&self, token: &str) -> String {
        downloads::install_line(&self.panel, token)
    }

    /// Enrolling by hand where `portico` is installed already.
    pub fn enroll_command(&self, token: &str) -> String {
        downloads::enroll_command(&self.panel, token)
    }

    /// The installer's config directory, where a generated certificate goes.
    pub fn config_dir(&self) -> String {
        downloads::config_dir(downloads::DEFAULT_NAME)
    }

    /// `agent.json` for a certificate generated here: what enrollment
    /// would have written.
    pub fn agent_json(&self, issued: &IssuedAgentCert) -> String {
        let relay = self.panel.relay.clone().unwrap_or_else(|| "wss://tunnel.<domain>/".into());
        let config = crate::agent::AgentConfig {
            label: issued.agent.label.clone(),
            serial: issued.agent.serial.clone().unwrap_or_default(),
            relay,
            panel: self.panel.url.clone(),
        };
        serde_json::to_string_pretty(&config).unwrap_or_default()
    }
}

async fn page(ui: &UiAdmin) -> Result<AgentsPage, PageError> {
    let panel = downloads::panel_address(&ui.state.settings, &ui.state.store, ui.state.public_ip()).await?;
    Ok(AgentsPage {
        chrome: ui.chrome("/agents", "Agents").await?,
        agents: app::agents::views(&ui.state).await.map_err(ApiError::from)?,
        form_label: String::new(),
        form_caps: vec!["tunnels:read".into()],
        errors: FieldErrors::default(),
        error: None,
        grant: None,
        issued: None,
        panel,
    })
}

/// What an enrollment left to show once on the Agents page.
enum Enrolled {
    Grant(EnrollmentGrant),
    Issued(IssuedAgentCert),
}

async fn show(ui: UiAdmin) -> Result<HttpResponse, PageError> {
    let mut p = page(&ui).await?;
    match ui.take_shown::<Enrolled>() {
        Some(Enrolled::Grant(g)) => p.grant = Some(g),
        Some(Enrolled::Issued(i)) => p.issued = Some(i),
        None => {}
    }
    super::ok(&p)
}

#[derive(Template)]
#[template(path = "agent.html")]
pub struct AgentPage {
    pub chrome: Chrome,
    pub agent: Agent,
    /// Names of the existing sites (checkboxes of the allowed-sites form).
    pub sites: Vec<String>,
    /// The allowed-sites form as typed: checked names and other names.
    pub allowed: Vec<String>,
    pub other_sites: String,
    pub errors: FieldErrors,
}

impl AgentPage {
    pub fn capabilities(&self) -> Vec<&'static str> {
        Capability::ALL.iter().map(|c| c.as_str()).collect()
    }

    pub fn has(&self, list: &[String], value: &str) -> bool {
        list.iter().any(|v| v == value)
    }

    pub fn when(&self, t: &OffsetDateTime) -> String {
        super::when(t)
    }

    /// Allowed names that are not existing sites (future sites).
    pub fn future_sites(&self) -> String {
        self.agent.allowed_sites.iter().filter(|n| !self.sites.contains(n)).cloned().collect::<Vec<_>>().join(", ")
    }
}

async fn agent_page(ui: &UiAdmin, label: &str) -> Result<AgentPage, PageError> {
    let not_found = || PageError::from(ApiError::NotFound("No such agent".into()));
    crate::pki::validate_label(label).map_err(|_| not_found())?;
    let agent = ui.state.store.agent(label.to_string()).await?.ok_or_else(not_found)?;
    let chrome = ui.chrome("/agents", &format!("Agent {label}")).await?;
    let sites = ui.state.store.sites().await?.into_iter().map(|s| s.name).collect();
    let mut p = AgentPage {
        chrome,
        allowed: agent.allowed_sites.clone(),
        agent,
        sites,
        other_sites: String::new(),
        errors: FieldErrors::default(),
    };
    p.other_sites = p.future_sites();
    Ok(p)
}

async fn show_one(ui: UiAdmin, label: web::Path<String>) -> Result<HttpResponse, PageError> {
    super::ok(&agent_page(&ui, &label).await?)
}

/// The sites an agent may manage: checked existing sites plus other
/// (future) names, comma- or space-separated; same function as
/// `PUT /api/agents/{label}/sites`.
async fn allowed_sites(form: UiForm, label: web::Path<String>) -> Result<HttpResponse, PageError> {
    let ui = &form.ui;
    let mut p = agent_page(ui, &label).await?;
    let checked = form.all("sites");
    let other = form.get("otherSites").to_string();
    let names: Vec<String> = checked
        .iter()
        .cloned()
        .chain(other.split([',', ' ', '\n', '\r', '\t']).filter(|n| !n.is_empty()).map(str::to_string))
        .collect();
    match app::agents::set_allowed_sites(&ui.state, &ui.actor(), &label, &names).await {
        Ok(_) => Ok(ui.redirect(&format!("/agents/{}?flash=sites_saved", p.agent.label))),
        Err(e) => {
            let (errors, error) = super::form_error(ApiError::from(e))?;
            p.errors = errors;
            if let Some(message) = error {
                p.errors.0.push(crate::model::FieldError::new("sites", message));
            }
            p.allowed = checked;
            p.other_sites = other;
            super::render(StatusCode::BAD_REQUEST, &p)
        }
    }
}

/// Which way the enroll form asked for: a one-time token (the agent makes
/// its own key) or a certificate and key generated here.
#[derive(PartialEq)]
enum Mode {
    Token,
    Certificate,
}

async fn create_token(form: UiForm) -> Result<HttpResponse, PageError> {
    let mode = if form.get("mode") == "certificate" { Mode::Certificate } else { Mode::Token };
    enroll(form, mode).await
}

async fn enroll(form: UiForm, mode: Mode) -> Result<HttpResponse, PageError> {
    let ui = &form.ui;
    let label = form.get("label").trim().to_string();
    let capabilities = form.all("capabilities");
    let (actor, state) = (ui.actor(), &ui.state);
    let result = match mode {
        Mode::Token => app::agents::enrollment_token(state, &actor, &label, &capabilities).await.map(Enrolled::Grant),
        Mode::Certificate => app::agents::issue(state, &actor, &label, &capabilities).await.map(Enrolled::Issued),
    };
    match result {
        Ok(enrolled) => Ok(ui.redirect_showing("/agents", enrolled)),
        Err(e) => {
            let (errors, error) = super::form_error(ApiError::from(e))?;
            let mut p = page(ui).await?;
            p.form_label = label;
            p.form_caps = capabilities;
            p.errors = errors;
            p.error = error;
            super::render(StatusCode::BAD_REQUEST, &p)
        }
    }
}

async fn revoke(form: UiForm, label: web::Path<String>) -> Result<HttpResponse, PageError> {
    let ui = &form.ui;
    app::agents::label(&label).map_err(ApiError::from)?;
    if !form.confirmed() {
        return Err(ApiError::field("confirm", "Confirm the revocation").into());
    }
    app::agents::revoke(&ui.state, &ui.actor(), &label).await.map_err(ApiError::from)?;
    Ok(ui.redirect("/agents?flash=agent_revoked"))
}

/// Removes a revoked agent from the list; same function as
/// `DELETE /api/agents/{label}`. An active agent or one with tunnels is
/// refused with the reason on the page.
async fn remove(form: UiForm, label: web::Path<String>) -> Result<HttpResponse, PageError> {
    let ui = &form.ui;
    if !form.confirmed() {
        return Err(ApiError::field("confirm", "confirm the removal").into());
    }
    match app::agents::remove(&ui.state, &ui.actor(), &label).await {
        Ok(_) => Ok(ui.redirect("/agents?flash=agent_removed")),
        Err(e) => {
            let e = ApiError::from(e);
            let status = e.status_code();
            let (_, error) = super::form_error(e)?;
            let mut p = page(ui).await?;
            p.error = error;
            super::render(status, &p)
        }
    }
}

async fn capabilities(form: UiForm, label: web::Path<String>) -> Result<HttpResponse, PageError> {
    let (ui, label) = (&form.ui, label.into_inner());
    let capabilities = form.all("capabilities");
    app::agents::set_capabilities(&ui.state, &ui.actor(), &label, &capabilities).await.map_err(ApiError::from)?;
    Ok(ui.redirect(&format!("/agents/{label}?flash=caps_saved")))
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/agents", web::get().to(show))
        .route("/agents/enroll", web::post().to(create_token))
        .route("/agents/{label}", web::get().to(show_one))
        .route("/agents/{label}/revoke", web::post().to(revoke))
        .route("/agents/{label}/remove", web::post().to(remove))
        .route("/agents/{label}/capabilities", web::post().to(capabilities))
        .route("/agents/{label}/sites", web::post().to(allowed_sites));
}
