//! Tunnels: list with online state and access mode, create, edit,
//! enable/disable, delete, and the agent setup per tunnel. Every change goes
//! through the same use cases as `/api/tunnels` (`app::tunnels`: nginx apply
//! with undo, audit); the form decodes into the API's tunnel fields.

use actix_web::http::StatusCode;
use actix_web::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::form::{self, UiForm};
use super::{Chrome, FieldErrors, PageError, UiAdmin};
use crate::app;
use crate::downloads::DEFAULT_NAME;
use crate::model::Access;
use crate::panel::error::ApiError;
use crate::store::TunnelFields;
use crate::tunnels::{self, AgentSetup, TunnelInput, TunnelPatch, TunnelView};

/// The tunnel form as the browser posts it: the API's fields, with the
/// lists as repeated names and `enabled` as a checkbox (absent on the create
/// form). Absent fields are empty.
#[derive(Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Posted {
    name: String,
    agent: String,
    target: String,
    #[serde(deserialize_with = "form::checkbox")]
    enabled: bool,
    access: String,
    #[serde(deserialize_with = "form::list")]
    allowed_users: Vec<String>,
    #[serde(deserialize_with = "form::list")]
    allowed_groups: Vec<String>,
    description: String,
}

impl Posted {
    /// The tunnel as typed. Users and groups only count for `restricted`
    /// (the checkboxes stay in the page for the other modes).
    fn fields(self) -> TunnelFields {
        let Posted { name, agent, target, enabled, access, allowed_users, allowed_groups, description } = self;
        let restricted = Access::parse(&access) == Some(Access::Restricted);
        TunnelFields {
            name: name.trim().to_string(),
            agent: agent.trim().to_string(),
            target: target.trim().to_string(),
            enabled,
            allowed_users: if restricted { allowed_users } else { Vec::new() },
            allowed_groups: if restricted { allowed_groups } else { Vec::new() },
            access,
            description,
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
    /// The form's values: the API's defaults, or the input of a failed post.
    pub form: TunnelFields,
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
        form: TunnelInput::default().into_fields(&ui.who),
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
    // The create form has no `enabled` box: a new tunnel is enabled, as in the API.
    let input = TunnelFields { enabled: true, ..form.decode::<Posted>()?.fields() };
    match app::tunnels::create(&ui.state, &ui.who, input.clone()).await {
        Ok((t, kept)) => {
            let flash = if kept.warning().is_some() { "tunnel_created_down" } else { "tunnel_created" };
            Ok(ui.redirect(&format!("/tunnels/{}?flash={flash}", t.id)))
        }
        Err(e) => {
            let (errors, error) = super::form_error(ApiError::from(e))?;
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
    /// The form's values: the tunnel's, or the input of a failed post.
    pub form: TunnelFields,
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
        setup: app::tunnels::setup(&ui.state, &tunnel.tunnel).await.map_err(ApiError::from)?,
        form: TunnelFields::from(&tunnel.tunnel),
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
    let input = form.decode::<Posted>()?.fields();
    match app::tunnels::update(&ui.state, &ui.who, id, TunnelPatch::from(input.clone())).await {
        Ok((t, kept)) => {
            let flash = if kept.warning().is_some() { "tunnel_saved_down" } else { "tunnel_saved" };
            Ok(ui.redirect(&format!("/tunnels/{}?flash={flash}", t.id)))
        }
        Err(e) => {
            let (errors, error) = super::form_error(ApiError::from(e))?;
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
    app::tunnels::update(&ui.state, &ui.who, id, patch).await.map_err(ApiError::from)?;
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
    app::tunnels::delete(&ui.state, &ui.who, id).await.map_err(ApiError::from)?;
    Ok(ui.redirect("/tunnels?flash=tunnel_deleted"))
}

/// The systemd unit or launchd plist of a tunnel's agent, as a download.
async fn download(ui: UiAdmin, path: web::Path<(String, String)>) -> Result<HttpResponse, PageError> {
    let (id, file) = path.into_inner();
    let tunnel = view(&ui, tunnel_id(&id)?).await?.tunnel;
    let setup = app::tunnels::setup(&ui.state, &tunnel).await.map_err(ApiError::from)?;
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
