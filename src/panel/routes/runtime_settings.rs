//! `/api/settings/runtime`: settings an operator tunes while Portico runs;
//! a change is the use case [`crate::app::runtime_settings::update`].

use actix_web::{HttpResponse, get, patch, web};

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
    Ok(HttpResponse::Ok().json(crate::app::runtime_settings::update(&state, &admin.0, body.0).await?))
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(show).service(update);
}
