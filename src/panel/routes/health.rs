use std::time::Duration;

use actix_web::{HttpMessage, HttpRequest, HttpResponse, get, web};
use serde::Serialize;

use crate::healthcheck::Component;
use crate::identity::{self, Identity, Need};
use crate::panel::AppState;

/// How long a component probe waits for a connection.
const PROBE_TIMEOUT: Duration = Duration::from_millis(500);

#[derive(Serialize, utoipa::ToSchema)]
pub struct Health {
    status: &'static str,
    version: &'static str,
    /// Per-component status, for an admin only: relay, authd, store.
    #[serde(skip_serializing_if = "Option::is_none")]
    components: Option<Vec<Component>>,
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
    HttpResponse::Ok().json(Health { status, version: env!("CARGO_PKG_VERSION"), components })
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(show);
}
