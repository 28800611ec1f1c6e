//! `/api/doctor`: start a doctor run and poll its findings (admin only).

use actix_web::{HttpResponse, get, post, web};

use crate::doctor::RunState;
use crate::panel::AppState;
use crate::panel::auth::Admin;
use crate::panel::error::ApiError;

/// The current or last doctor run: findings so far, the report once done.
#[utoipa::path(tag = "health", responses((status = 200, body = RunState)))]
#[get("/doctor")]
pub async fn show(state: web::Data<AppState>, _admin: Admin) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(state.doctor.snapshot()))
}

/// Starts a doctor run unless one is running; poll `GET /api/doctor`.
#[utoipa::path(tag = "health", responses((status = 200, body = RunState)))]
#[post("/doctor")]
pub async fn start(state: web::Data<AppState>, _admin: Admin) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(state.doctor.start(state.settings.clone(), state.store.clone(), state.public_ip())))
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(show).service(start);
}
