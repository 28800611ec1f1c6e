//! `/api/settings/runtime`: settings an operator tunes while Portico runs.

use actix_web::{HttpResponse, get, patch, web};

use crate::audit::{self, Outcome};
use crate::panel::AppState;
use crate::panel::auth::Admin;
use crate::panel::error::ApiError;
use crate::panel::extract::ApiJson;
use crate::runtime_settings::{self, Patch, RuntimeView};

/// Every runtime setting: its value, default, where the value comes from,
/// whether the panel may change it and when a change takes effect.
#[utoipa::path(tag = "settings", responses((status = 200, body = RuntimeView)))]
#[get("/settings/runtime")]
pub async fn show(state: web::Data<AppState>, _admin: Admin) -> Result<HttpResponse, ApiError> {
    let (_, view) = runtime_settings::load(&state.store, &state.settings).await?;
    Ok(HttpResponse::Ok().json(view))
}

/// Changes some runtime settings, all or nothing. A field set in
/// config.yaml or the environment cannot be changed here (409).
#[utoipa::path(tag = "settings", request_body = Patch,
    responses((status = 200, body = RuntimeView), (status = 400), (status = 409)))]
#[patch("/settings/runtime")]
pub async fn update(state: web::Data<AppState>, admin: Admin, body: ApiJson<Patch>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(update_applied(&state, &admin.0.actor(), body.0).await?))
}

/// Validates and stores the patch, puts it in force in this process (log
/// level now, backup schedule re-planned, renewal days at the next check;
/// authd reads the store within seconds), and audits before and after.
/// The API and the web UI both call this.
pub async fn update_applied(state: &AppState, actor: &str, patch: Patch) -> Result<RuntimeView, ApiError> {
    let change = runtime_settings::update(&state.store, &state.settings, patch, actor).await?;
    if change.changed.is_empty() {
        return Ok(change.view);
    }
    state.runtime.set(change.after.clone());
    state.log.set(&change.after.panel_log_level);
    let details = change.audit_details();
    audit::record(&state.store, actor, "settings.update", "runtime", Outcome::Success, Some(details)).await;
    Ok(change.view)
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(show).service(update);
}
