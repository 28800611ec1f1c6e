//! `GET /api/system/stats`: CPU, memory, disk, uptime, load and process
//! memory, cached for two seconds. Needs `system:read`.

use actix_web::{HttpResponse, get, web};

use crate::panel::AppState;
use crate::panel::auth::{Cap, SystemRead};
use crate::panel::error::ApiError;
use crate::sysstats::SystemStats;

/// A reading of the machine (served from a 2 s cache).
#[utoipa::path(tag = "system", responses((status = 200, body = SystemStats)))]
#[get("/system/stats")]
pub async fn stats(state: web::Data<AppState>, _who: Cap<SystemRead>) -> Result<HttpResponse, ApiError> {
    let state = state.into_inner();
    let stats = web::block(move || state.stats.get()).await.map_err(|e| ApiError::internal("stats task", e))?;
    Ok(HttpResponse::Ok().json(stats))
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(stats);
}
