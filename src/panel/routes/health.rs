//! `/api/health`: liveness (each component's status for an admin, and the
//! process's boot id from [`crate::app::restore::boot_id`]) and what the
//! probe saw of every public name.

use std::time::Duration;

use actix_web::{HttpMessage, HttpRequest, HttpResponse, get, post, web};
use serde::Serialize;

use crate::healthcheck::Component;
use crate::identity::{self, Identity, Need};
use crate::panel::AppState;
use crate::panel::auth::{Admin, Cap, SystemRead};
use crate::panel::error::ApiError;
use crate::probe::Report;

/// How long a component probe waits for a connection.
const PROBE_TIMEOUT: Duration = Duration::from_millis(500);

#[derive(Serialize, utoipa::ToSchema)]
pub struct Health {
    status: &'static str,
    version: &'static str,
    /// Per-component status, for an admin only: relay, authd, store.
    #[serde(skip_serializing_if = "Option::is_none")]
    components: Option<Vec<Component>>,
    /// Differs for each start of the panel process, so a page can tell
    /// that a restart happened (the restarting page after a restore).
    boot: &'static str,
}

/// Liveness: answers without identity. An admin also gets each component's status.
#[utoipa::path(tag = "health", responses((status = 200, body = Health)))]
#[get("/health")]
pub async fn show(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let who = req.extensions().get::<Option<Identity>>().cloned().flatten();
    let admin = who.is_some_and(|w| identity::authorize(&w, Need::Admin).is_ok());
    let mut components = None;
    if admin {
        let settings = state.settings.clone();
        let mut list =
            web::block(move || crate::healthcheck::components(&settings, PROBE_TIMEOUT)).await.unwrap_or_default();
        // The panel's own pool, rather than a second connection.
        let store = state.store.ping().await;
        if let Some(c) = list.iter_mut().find(|c| c.name == "store") {
            c.ok = c.ok && store.is_ok();
        }
        components = Some(list);
    }
    let status = match &components {
        Some(list) if list.iter().any(|c| !c.ok) => "degraded",
        _ => "ok",
    };
    HttpResponse::Ok().json(Health {
        status,
        version: env!("CARGO_PKG_VERSION"),
        components,
        boot: crate::app::restore::boot_id(),
    })
}

/// Every public name as a visitor reaches it (DNS, TLS with SNI, HTTP
/// through nginx, relay → agent → target for tunnels), from the last probe;
/// probes now when none has run yet. Needs `system:read`.
#[utoipa::path(tag = "health", responses((status = 200, body = Report)))]
#[get("/health/names")]
pub async fn names(state: web::Data<AppState>, _who: Cap<SystemRead>) -> Result<HttpResponse, ApiError> {
    let report = match state.health.get() {
        Some(r) => r,
        None => state.probe_now().await?,
    };
    Ok(HttpResponse::Ok().json(&*report))
}

/// Probes every public name now and returns the fresh report (admin).
#[utoipa::path(tag = "health", responses((status = 200, body = Report)))]
#[post("/health/names/probe")]
pub async fn probe(state: web::Data<AppState>, _admin: Admin) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(&*state.probe_now().await?))
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(show).service(names).service(probe);
}
