//! Services: status and actions (start, stop, restart, reload) of the
//! appliance's services, and a live view of each one's logs. The actions
//! and the log query are [`crate::app::services`]'s, as for `/api/services`.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

use super::form::UiForm;
use super::{Chrome, PageError, UiAdmin};
use crate::app::services::{LogQuery, log_request, perform, statuses};
use crate::logs;
use crate::panel::error::ApiError;
use crate::services::{self, ServiceInfo};
use crate::supervisor::{Action, Supervisor};

/// Lines of the log page rendered by the server (the live view then follows).
const PAGE_LINES: usize = 200;

#[derive(Template)]
#[template(path = "services.html")]
pub struct ServicesPage {
    pub chrome: Chrome,
    /// Whether a supervisor runs the services here.
    pub managed: bool,
    pub services: Vec<ServiceInfo>,
    /// Why the last action failed (the API's message).
    pub error: Option<String>,
    /// What the last action did, as the service shows it now: (`ok`|`bad`, text).
    pub result: Option<(&'static str, String)>,
}

impl ServicesPage {
    pub fn verb(&self, action: &Action) -> &'static str {
        services::action_name(*action)
    }

    pub fn label(&self, action: &Action) -> &'static str {
        match action {
            Action::Start => "Start",
            Action::Stop => "Stop",
            Action::Restart => "Restart",
            Action::Reload => "Reload",
        }
    }

    pub fn duration(&self, seconds: &u64) -> String {
        duration(*seconds)
    }

    /// The actions that make sense in the service's state: start when it is
    /// down, stop, restart and reload when it is up.
    pub fn offered(&self, service: &ServiceInfo) -> Vec<Action> {
        let up = service.state == "up";
        service.actions.iter().copied().filter(|a| (*a == Action::Start) != up).collect()
    }
}

/// `?service=<name>&did=<action>&settled=<bool>`: the page reports what
/// that action did.
#[derive(serde::Deserialize)]
struct Done {
    service: Option<String>,
    did: Option<String>,
    settled: Option<bool>,
}

/// What `action` did to `service`: whether it settled in the asked state
/// (see the API's `settled`), told with its status now.
fn outcome(service: &ServiceInfo, action: Action, settled: bool) -> (&'static str, String) {
    let name = &service.name;
    let up = service.state == "up";
    let running = |s: &ServiceInfo| match (s.uptime_seconds, s.pid) {
        (Some(u), Some(pid)) => format!("up for {}, pid {pid}", duration(u)),
        _ => "up".into(),
    };
    let why = match service.last_exit_code {
        Some(code) => format!(" (last exit code {code}); its logs say why"),
        None => "; its logs say why".into(),
    };
    let verb = services::action_name(action);
    match (action, settled && up == (action != Action::Stop)) {
        (Action::Start, true) => ("ok", format!("{name} started: {}.", running(service))),
        (Action::Restart, true) => ("ok", format!("{name} restarted: {}.", running(service))),
        (Action::Reload, true) => ("ok", format!("{name} reloaded its configuration.")),
        (Action::Stop, true) => ("ok", format!("{name} stopped; it stays down until started.")),
        (Action::Stop, false) => ("bad", format!("{name} is still up 5 s after the stop.")),
        (_, false) if service.restarts > 0 => (
            "bad",
            format!("{name} did not stay up after the {verb}: s6 has restarted it {} times{why}.", service.restarts),
        ),
        (_, false) => ("bad", format!("{name} is not up 5 s after the {verb}{why}.")),
    }
}

/// `3d 4h`, `2h 5m`, `4m 10s`, `12s`.
pub fn duration(seconds: u64) -> String {
    let (d, h, m, s) = (seconds / 86_400, seconds / 3600 % 24, seconds / 60 % 60, seconds % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m {s}s"),
        (0, _, _) => format!("{h}h {m}m"),
        _ => format!("{d}d {h}h"),
    }
}

async fn page(ui: &UiAdmin, error: Option<String>) -> Result<ServicesPage, PageError> {
    let managed = !matches!(ui.state.supervisor, Supervisor::None);
    let services = if managed { statuses(&ui.state).await.map_err(ApiError::from)? } else { Vec::new() };
    Ok(ServicesPage { chrome: ui.chrome("/services", "Services").await?, managed, services, error, result: None })
}

async fn show(ui: UiAdmin, req: HttpRequest) -> Result<HttpResponse, PageError> {
    let mut page = page(&ui, None).await?;
    if let Ok(done) = web::Query::<Done>::from_query(req.query_string())
        && let (Some(name), Some(action)) = (&done.service, done.did.as_deref().and_then(services::parse_action))
    {
        let settled = done.settled.unwrap_or(false);
        page.result = page.services.iter().find(|s| &s.name == name).map(|s| outcome(s, action, settled));
    }
    super::ok(&page)
}

async fn act(form: UiForm, path: web::Path<(String, String)>) -> Result<HttpResponse, PageError> {
    let ui = &form.ui;
    let (name, action) = path.into_inner();
    match perform(&ui.state, &ui.who, &name, &action).await {
        Ok((service, settled)) => {
            Ok(ui.redirect(&format!("/services?service={}&did={action}&settled={settled}", service.name)))
        }
        Err(e) => {
            let e = ApiError::from(e);
            let status = actix_web::ResponseError::status_code(&e);
            let message = match super::form_error(e)? {
                (_, Some(m)) => m,
                (errors, None) => errors.all().iter().map(|e| e.message.clone()).collect::<Vec<_>>().join("; "),
            };
            super::render(status, &page(ui, Some(message)).await?)
        }
    }
}

#[derive(Template)]
#[template(path = "logs.html")]
pub struct LogsPage {
    pub chrome: Chrome,
    pub service: &'static str,
    pub level: String,
    pub q: String,
    /// The last lines, as they were when the page was rendered.
    pub lines: Vec<String>,
}

async fn show_logs(ui: UiAdmin, name: web::Path<String>, req: HttpRequest) -> Result<HttpResponse, PageError> {
    let service = services::known(&name).map_err(ApiError::from)?;
    #[derive(serde::Deserialize)]
    struct Filters {
        level: Option<String>,
        q: Option<String>,
    }
    let filters = web::Query::<Filters>::from_query(req.query_string())
        .map_err(|_| PageError { status: StatusCode::BAD_REQUEST, message: "Malformed filter".into() })?
        .into_inner();
    let (level, q) = (filters.level.unwrap_or_default(), filters.q.unwrap_or_default());
    let query = LogQuery { lines: Some(PAGE_LINES), level: Some(level.clone()), q: Some(q.clone()) };
    let (lines, filter) = log_request(query).map_err(ApiError::from)?;
    let dir = logs::service_dir(&ui.state.settings.supervisor.log_dir, service);
    let lines = web::block(move || logs::tail(&dir, lines, &filter))
        .await
        .map_err(|e| PageError::internal(&format!("log tail: {e}")))?;
    let page =
        LogsPage { chrome: ui.chrome("/services", &format!("Logs of {service}")).await?, service, level, q, lines };
    super::ok(&page)
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/services", web::get().to(show))
        .route("/services/{name}/logs", web::get().to(show_logs))
        .route("/services/{name}/{action}", web::post().to(act));
}
