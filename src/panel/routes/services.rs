//! `/api/services`: the appliance's services, their actions and live logs.
//! Reading the list needs `services:read`, acting `services:write` (every
//! action is audited by [`crate::app::services::perform`]); live logs need
//! `logs:read`, which only the admin, an `admin` API key or an agent granted
//! it explicitly hold.

use std::time::Duration;

use actix_web::{HttpRequest, HttpResponse, get, post, web};
use serde::Serialize;

use crate::app::services::{LogQuery, log_request, perform, statuses};
use crate::logs::{self, Filter};
use crate::panel::AppState;
use crate::panel::auth::{Cap, LogsRead, ServicesRead, ServicesWrite};
use crate::panel::error::ApiError;
use crate::panel::extract::ApiQuery;
use crate::services::{self, ServiceInfo};

/// How often a log follower looks for new lines, milliseconds.
const FOLLOW_EVERY_MS: u64 = 250;

#[derive(Serialize, utoipa::ToSchema)]
pub struct ServiceList {
    services: Vec<ServiceInfo>,
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
    let (service, settled) = perform(&state, &who.0, &name, &action).await?;
    Ok(HttpResponse::Ok().json(ActionResponse { service, settled }))
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
