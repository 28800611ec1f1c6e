//! Tunnels: list with online state and access mode, create, edit,
//! enable/disable, delete, and the agent setup per tunnel. Every change goes
//! through the same functions as `/api/tunnels` (nginx apply with undo, audit).

use actix_web::http::StatusCode;
use actix_web::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use actix_web::{HttpResponse, web};
use askama::Template;

use super::form::UiForm;
use super::{Chrome, FieldErrors, PageError, UiAdmin};
use crate::downloads::DEFAULT_NAME;
use crate::nginx::Access;
use crate::panel::error::ApiError;
use crate::panel::routes::tunnels::{create_applied, delete_applied, setup_for, update_applied};
use crate::store::{Tunnel, TunnelFields};
use crate::tunnels::{self, AgentSetup, TunnelPatch, TunnelView};

/// The tunnel form's values (the user's input after a failed post).
pub struct TunnelForm {
    pub name: String,
    pub agent: String,
    pub target: String,
    pub enabled: bool,
    pub access: String,
    pub users: Vec<String>,
    pub groups: Vec<String>,
    pub description: String,
}

impl Default for TunnelForm {
    fn default() -> Self {
        TunnelForm {
            name: String::new(),
            agent: String::new(),
            target: String::new(),
            enabled: true,
            access: "authenticated".into(),
            users: Vec::new(),
            groups: Vec::new(),
            description: String::new(),
        }
    }
}

impl TunnelForm {
    fn of(t: &Tunnel) -> Self {
        TunnelForm {
            name: t.name.clone(),
            agent: t.agent.clone(),
            target: t.target.clone(),
            enabled: t.enabled,
            access: t.access.clone(),
            users: t.allowed_users.clone(),
            groups: t.allowed_groups.clone(),
            description: t.description.clone(),
        }
    }

    /// Reads a posted tunnel form. Users and groups only count for
    /// `restricted` (the checkboxes stay in the page for the other modes).
    fn read(form: &UiForm, enabled: bool) -> Self {
        let access = form.get("access").to_string();
        let restricted = access == "restricted";
        TunnelForm {
            name: form.get("name").trim().to_string(),
            agent: form.get("agent").trim().to_string(),
            target: form.get("target").trim().to_string(),
            enabled,
            users: if restricted { form.all("allowedUsers") } else { Vec::new() },
            groups: if restricted { form.all("allowedGroups") } else { Vec::new() },
            access,
            description: form.get("description").to_string(),
        }
    }

    fn fields(&self) -> TunnelFields {
        TunnelFields {
            name: self.name.clone(),
            agent: self.agent.clone(),
            target: self.target.clone(),
            enabled: self.enabled,
            access: self.access.clone(),
            allowed_users: self.users.clone(),
            allowed_groups: self.groups.clone(),
            description: self.description.clone(),
        }
    }

    fn patch(&self) -> TunnelPatch {
        let f = self.fields();
        TunnelPatch {
            name: Some(f.name),
            agent: Some(f.agent),
            target: Some(f.target),
            enabled: Some(f.enabled),
            access: Some(f.access),
            allowed_users: Some(f.allowed_users),
            allowed_groups: Some(f.allowed_groups),
            description: Some(f.description),
        }
    }
}

/// Choices of the tunnel form: active agents, users and groups.
pub struct Choices {
    pub agents: Vec<String>,
    pub users: Vec<String>,
    pub groups: Vec<String>,
}

async fn choices(ui: &UiAdmin) -> Result<Choices, PageError> {
    let store = &ui.state.store;
    Ok(Choices {
        agents: store.agents().await?.into_iter().filter(|a| a.revoked_at.is_none()).map(|a| a.label).collect(),
        users: store.users().await?.into_iter().map(|u| u.username).collect(),
        groups: store.groups().await?.into_iter().map(|g| g.name).collect(),
    })
}

#[derive(Template)]
#[template(path = "tunnels.html")]
pub struct TunnelsPage {
    pub chrome: Chrome,
    pub tunnels: Vec<TunnelView>,
    pub domain: Option<String>,
    pub form: TunnelForm,
    pub choices: Choices,
    pub errors: FieldErrors,
    pub error: Option<String>,
}

impl TunnelsPage {
    pub fn access(&self) -> Vec<(&'static str, String)> {
        super::access_choices(&Access::ALL)
    }

    pub fn has(&self, list: &[String], value: &str) -> bool {
        list.iter().any(|v| v == value)
    }

    pub fn address(&self, name: &str) -> Option<String> {
        super::address(self.domain.as_deref(), name)
    }
}

fn host(domain: Option<&str>, name: &str) -> String {
    match domain {
        Some(d) => format!("{name}.{d}"),
        None => name.to_string(),
    }
}

async fn domain(ui: &UiAdmin) -> Result<Option<String>, PageError> {
    Ok(ui.state.store.setting(crate::onboarding::keys::DOMAIN).await?)
}

async fn list_page(ui: &UiAdmin) -> Result<TunnelsPage, PageError> {
    Ok(TunnelsPage {
        chrome: ui.chrome("/tunnels", "Tunnels").await?,
        tunnels: tunnels::with_health(
            tunnels::list(&ui.state.store, &ui.who).await.map_err(ApiError::from)?,
            ui.state.health.get().as_deref(),
        ),
        domain: domain(ui).await?,
        form: TunnelForm::default(),
        choices: choices(ui).await?,
        errors: FieldErrors::default(),
        error: None,
    })
}

async fn show(ui: UiAdmin) -> Result<HttpResponse, PageError> {
    let mut p = list_page(&ui).await?;
    if let Some(agent) = p.choices.agents.first() {
        p.form.agent = agent.clone();
    }
    super::ok(&p)
}

async fn create(form: UiForm) -> Result<HttpResponse, PageError> {
    let ui = &form.ui;
    let input = TunnelForm::read(&form, true);
    match create_applied(&ui.state, &ui.who, input.fields()).await {
        Ok((t, kept)) => {
            let flash = if kept.warning().is_some() { "tunnel_created_down" } else { "tunnel_created" };
            Ok(ui.redirect(&format!("/tunnels/{}?flash={flash}", t.id)))
        }
        Err(e) => {
            let (errors, error) = super::form_error(e)?;
            let mut p = list_page(ui).await?;
            p.form = input;
            p.errors = errors;
            p.error = error;
            super::render(StatusCode::BAD_REQUEST, &p)
        }
    }
}

#[derive(Template)]
#[template(path = "tunnel.html")]
pub struct TunnelPage {
    pub chrome: Chrome,
    pub tunnel: TunnelView,
    pub domain: Option<String>,
    pub setup: AgentSetup,
    pub form: TunnelForm,
    pub choices: Choices,
    pub errors: FieldErrors,
    pub error: Option<String>,
}

impl TunnelPage {
    pub fn access(&self) -> Vec<(&'static str, String)> {
        super::access_choices(&Access::ALL)
    }

    pub fn has(&self, list: &[String], value: &str) -> bool {
        list.iter().any(|v| v == value)
    }

    pub fn host(&self, name: &str) -> String {
        host(self.domain.as_deref(), name)
    }

    pub fn address(&self, name: &str) -> Option<String> {
        super::address(self.domain.as_deref(), name)
    }
}

/// One tunnel the admin may see, with its live state.
async fn view(ui: &UiAdmin, id: i64) -> Result<TunnelView, PageError> {
    let all = tunnels::list(&ui.state.store, &ui.who).await.map_err(ApiError::from)?;
    let all = tunnels::with_health(all, ui.state.health.get().as_deref());
    all.into_iter().find(|t| t.tunnel.id == id).ok_or_else(|| ApiError::NotFound("No such tunnel".into()).into())
}

async fn one_page(ui: &UiAdmin, id: i64) -> Result<TunnelPage, PageError> {
    let tunnel = view(ui, id).await?;
    let mut choices = choices(ui).await?;
    if !choices.agents.contains(&tunnel.tunnel.agent) {
        choices.agents.push(tunnel.tunnel.agent.clone());
    }
    Ok(TunnelPage {
        chrome: ui.chrome("/tunnels", &format!("Tunnel {}", tunnel.tunnel.name)).await?,
        setup: setup_for(&ui.state, &tunnel.tunnel).await?,
        form: TunnelForm::of(&tunnel.tunnel),
        domain: domain(ui).await?,
        tunnel,
        choices,
        errors: FieldErrors::default(),
        error: None,
    })
}

fn tunnel_id(raw: &str) -> Result<i64, PageError> {
    raw.parse().map_err(|_| ApiError::NotFound("No such tunnel".into()).into())
}

async fn show_one(ui: UiAdmin, id: web::Path<String>) -> Result<HttpResponse, PageError> {
    super::ok(&one_page(&ui, tunnel_id(&id)?).await?)
}

async fn update(form: UiForm, id: web::Path<String>) -> Result<HttpResponse, PageError> {
    let ui = &form.ui;
    let id = tunnel_id(&id)?;
    let input = TunnelForm::read(&form, form.get("enabled") == "on");
    match update_applied(&ui.state, &ui.who, id, input.patch()).await {
        Ok((t, kept)) => {
            let flash = if kept.warning().is_some() { "tunnel_saved_down" } else { "tunnel_saved" };
            Ok(ui.redirect(&format!("/tunnels/{}?flash={flash}", t.id)))
        }
        Err(e) => {
            let (errors, error) = super::form_error(e)?;
            let mut p = one_page(ui, id).await?;
            p.form = input;
            p.errors = errors;
            p.error = error;
            super::render(StatusCode::BAD_REQUEST, &p)
        }
    }
}

/// Flips `enabled`; back to the list (or the tunnel's page with `from=tunnel`).
async fn toggle(form: UiForm, id: web::Path<String>) -> Result<HttpResponse, PageError> {
    let ui = &form.ui;
    let id = tunnel_id(&id)?;
    let current = view(ui, id).await?;
    let enabled = !current.tunnel.enabled;
    let patch = TunnelPatch { enabled: Some(enabled), ..Default::default() };
    update_applied(&ui.state, &ui.who, id, patch).await?;
    let flash = if enabled { "tunnel_enabled" } else { "tunnel_disabled" };
    match form.get("from") {
        "tunnel" => Ok(ui.redirect(&format!("/tunnels/{id}?flash={flash}"))),
        _ => Ok(ui.redirect(&format!("/tunnels?flash={flash}"))),
    }
}

async fn delete(form: UiForm, id: web::Path<String>) -> Result<HttpResponse, PageError> {
    let ui = &form.ui;
    let id = tunnel_id(&id)?;
    if !form.confirmed() {
        return Err(ApiError::field("confirm", "Confirm the deletion").into());
    }
    delete_applied(&ui.state, &ui.who, id).await?;
    Ok(ui.redirect("/tunnels?flash=tunnel_deleted"))
}

/// The systemd unit or launchd plist of a tunnel's agent, as a download.
async fn download(ui: UiAdmin, path: web::Path<(String, String)>) -> Result<HttpResponse, PageError> {
    let (id, file) = path.into_inner();
    let tunnel = view(&ui, tunnel_id(&id)?).await?.tunnel;
    let setup = setup_for(&ui.state, &tunnel).await?;
    let (name, content_type, body) = match file.as_str() {
        "systemd" => (format!("{DEFAULT_NAME}.service"), "text/plain; charset=utf-8", setup.systemd_unit),
        "launchd" => (format!("app.portico.{DEFAULT_NAME}.plist"), "application/xml", setup.launchd_plist),
        _ => return Err(ApiError::NotFound("No such file".into()).into()),
    };
    Ok(HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, content_type))
        .insert_header((CONTENT_DISPOSITION, format!("attachment; filename=\"{name}\"")))
        .body(body))
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/tunnels", web::get().to(show))
        .route("/tunnels", web::post().to(create))
        .route("/tunnels/{id}", web::get().to(show_one))
        .route("/tunnels/{id}", web::post().to(update))
        .route("/tunnels/{id}/toggle", web::post().to(toggle))
        .route("/tunnels/{id}/delete", web::post().to(delete))
        .route("/tunnels/{id}/agent/{file}", web::get().to(download));
}
