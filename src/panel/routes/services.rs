//! `/api/services`: the appliance's services, their actions and live logs.
//! Reading the list needs `services:read`, acting `services:write` (every
//! action is audited); live logs need `logs:read`, which only the admin, an
//! `admin` API key or an agent granted it explicitly hold.

use std::time::Duration;

use actix_web::{HttpRequest, HttpResponse, get, post, web};
use serde::{Deserialize, Serialize};

use crate::audit::{self, Outcome};
use crate::logs::{self, Filter, Level};
use crate::panel::AppState;
use crate::panel::auth::{Cap, LogsRead, ServicesRead, ServicesWrite};
use crate::panel::error::ApiError;
use crate::panel::extract::ApiQuery;
use crate::services::{self, ServiceError, ServiceInfo};
use crate::supervisor::Action;

/// How often a log follower looks for new lines, milliseconds.
const FOLLOW_EVERY_MS: u64 = 250;
/// Longest accepted `q` filter, characters.
const MAX_QUERY: usize = 200;

#[derive(Serialize, utoipa::ToSchema)]
pub struct ServiceList {
    services: Vec<ServiceInfo>,
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ServiceError> + Send + 'static,
) -> Result<T, ApiError> {
    web::block(f).await.map_err(|e| ApiError::internal("services task", e))?.map_err(Into::into)
}

/// The services with their state, pid, uptime, restarts and last exit code.
#[utoipa::path(tag = "services", responses((status = 200, body = ServiceList)))]
#[get("/services")]
pub async fn list(state: web::Data<AppState>, _who: Cap<ServicesRead>) -> Result<HttpResponse, ApiError> {
    let services = statuses(&state).await?;
    Ok(HttpResponse::Ok().json(ServiceList { services }))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ActionResponse {
    /// The service's status when the answer was sent.
    service: ServiceInfo,
    /// Whether it reached the asked state within 5 s: down after a stop, a
    /// (new) process up for a second after a start or restart.
    settled: bool,
}

/// Starts, stops, restarts or reloads a service (reload: nginx only). Stopping
/// the panel is refused with 409. Answers with the state the service reached:
/// up (a new process, for a restart) or down, or its state after 5 s when it
/// did not get there (a service that fails at start shows down and its exit).
#[utoipa::path(tag = "services", params(("name" = String, Path), ("action" = String, Path)),
    responses((status = 200, body = ActionResponse)))]
#[post("/services/{name}/{action}")]
pub async fn control(
    state: web::Data<AppState>,
    who: Cap<ServicesWrite>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (name, action) = path.into_inner();
    let (service, settled) = perform(&state, &who.0.actor(), &name, &action).await?;
    Ok(HttpResponse::Ok().json(ActionResponse { service, settled }))
}

/// Checks and applies `action` to service `name`, audits it as `service.<action>`
/// and answers the service's new status. The API and the web UI both act here.
pub async fn perform(state: &AppState, actor: &str, name: &str, action: &str) -> Result<(ServiceInfo, bool), ApiError> {
    let name = services::known(name)?;
    let action = services::parse_action(action)
        .ok_or_else(|| ApiError::field("action", "Use one of start, stop, restart, reload"))?;
    let sup = state.supervisor.clone();
    let before = blocking(move || services::status(&sup, name)).await.ok().and_then(|s| s.pid);
    let sup = state.supervisor.clone();
    let result = blocking(move || services::control(&sup, name, action)).await;
    let verb = services::action_name(action);
    let (outcome, details) = match &result {
        Ok(()) => (Outcome::Success, None),
        Err(e) => (Outcome::Failure, Some(serde_json::json!({ "error": e.to_string() }))),
    };
    audit::record(&state.store, actor, &format!("service.{verb}"), name, outcome, details).await;
    result?;
    settle(state, name, action, before).await
}

/// How long an action's answer waits for the service to reach its new state.
const SETTLE: Duration = Duration::from_secs(5);
/// How long a started process must stay up to count as started (a service
/// that fails at start is up for a moment, again and again).
const STEADY: Duration = Duration::from_secs(1);

/// The service's status once `action` shows, and whether it did within
/// [`SETTLE`]: down for stop; for start and restart, one process (other than
/// `before`, for restart) up for [`STEADY`].
async fn settle(
    state: &AppState,
    name: &'static str,
    action: Action,
    before: Option<u32>,
) -> Result<(ServiceInfo, bool), ApiError> {
    let deadline = tokio::time::Instant::now() + SETTLE;
    let mut up_since: Option<(Option<u32>, tokio::time::Instant)> = None;
    loop {
        let sup = state.supervisor.clone();
        let now = blocking(move || services::status(&sup, name)).await?;
        let reached = match action {
            Action::Reload => true,
            Action::Stop => now.state == "down",
            Action::Start | Action::Restart => {
                let fresh = now.state == "up" && (action == Action::Start || now.pid != before);
                match up_since {
                    Some((pid, since)) if fresh && pid == now.pid => since.elapsed() >= STEADY,
                    _ => {
                        up_since = fresh.then(|| (now.pid, tokio::time::Instant::now()));
                        false
                    }
                }
            }
        };
        if reached || tokio::time::Instant::now() >= deadline {
            return Ok((now, reached));
        }
        tokio::time::sleep(Duration::from_millis(100)).await; // poll interval
    }
}

/// Every managed service with its status (empty without a supervisor).
pub async fn statuses(state: &AppState) -> Result<Vec<ServiceInfo>, ApiError> {
    let sup = state.supervisor.clone();
    blocking(move || services::list(&sup)).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogQuery {
    /// Lines sent first (default 200, at most 5000).
    pub lines: Option<usize>,
    /// Minimum level: trace, debug, info, warn, error.
    pub level: Option<String>,
    /// Only lines containing this text (case-insensitive).
    pub q: Option<String>,
}

/// Checks a log query: how many lines to send first and which lines pass.
pub fn log_request(query: LogQuery) -> Result<(usize, Filter), ApiError> {
    let lines = query.lines.unwrap_or(200);
    if lines > logs::MAX_TAIL {
        return Err(ApiError::field("lines", format!("Ask for at most {} lines", logs::MAX_TAIL)));
    }
    let level = match query.level.as_deref() {
        None | Some("") => None,
        Some(l) => Some(
            Level::parse(l).ok_or_else(|| ApiError::field("level", "Use one of trace, debug, info, warn, error"))?,
        ),
    };
    if query.q.as_ref().is_some_and(|q| q.chars().count() > MAX_QUERY) {
        return Err(ApiError::field("q", format!("Use at most {MAX_QUERY} characters")));
    }
    Ok((lines, Filter::new(level, query.q.as_deref())))
}

/// Live logs over a WebSocket: the last `lines` lines (default 200), then new
/// lines as the service writes them, across log rotation; one text message
/// per line, secrets masked. Closing the socket ends the follower. Needs
/// `logs:read` (not part of the `read` or `write` key scopes).
#[utoipa::path(tag = "services",
    params(("name" = String, Path), ("lines" = Option<u32>, Query), ("level" = Option<String>, Query),
        ("q" = Option<String>, Query)),
    responses((status = 101, description = "WebSocket: one text message per log line")))]
#[get("/services/{name}/logs")]
pub async fn live_logs(
    state: web::Data<AppState>,
    _who: Cap<LogsRead>,
    name: web::Path<String>,
    query: ApiQuery<LogQuery>,
    req: HttpRequest,
    body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let name = services::known(&name)?;
    let (lines, filter) = log_request(query.0)?;
    let (response, session, stream) =
        actix_ws::handle(&req, body).map_err(|_| ApiError::field("upgrade", "A WebSocket upgrade is required"))?;
    let dir = logs::service_dir(&state.settings.supervisor.log_dir, name);
    actix_web::rt::spawn(follow(dir, lines, filter, session, stream));
    Ok(response)
}

/// Sends the tail, then follows until the client goes away. Every resource
/// (file handle, buffers) lives in this task and ends with it.
async fn follow(
    dir: std::path::PathBuf,
    lines: usize,
    filter: Filter,
    mut session: actix_ws::Session,
    mut stream: actix_ws::MessageStream,
) {
    let start = {
        let (dir, filter) = (dir.clone(), filter.clone());
        web::block(move || (logs::Follower::new(&dir), logs::tail(&dir, lines, &filter))).await
    };
    let Ok((mut follower, tail)) = start else { return };
    for line in tail {
        if session.text(line).await.is_err() {
            return;
        }
    }
    let mut every = tokio::time::interval(Duration::from_millis(FOLLOW_EVERY_MS));
    'follow: loop {
        tokio::select! {
            msg = stream.recv() => match msg {
                Some(Ok(actix_ws::Message::Ping(bytes))) => {
                    if session.pong(&bytes).await.is_err() {
                        break;
                    }
                }
                Some(Ok(actix_ws::Message::Close(_))) | Some(Err(_)) | None => break,
                Some(Ok(_)) => {}
            },
            _ = every.tick() => {
                let Ok((f, new)) = web::block(move || {
                    let new = follower.poll();
                    (follower, new)
                })
                .await
                else {
                    break;
                };
                follower = f;
                for line in new.into_iter().filter(|l| filter.matches(l)) {
                    if session.text(line).await.is_err() {
                        break 'follow;
                    }
                }
            }
        }
    }
    let _ = session.close(None).await;
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(list).service(live_logs).service(control);
}
