//! `/api/keys`: API keys. The changes are the use cases of [`crate::app::keys`].

use actix_web::{HttpResponse, delete, get, post, web};
use serde::Deserialize;

use crate::apikeys::CreatedKey;
use crate::app;
use crate::panel::AppState;
use crate::panel::auth::Admin;
use crate::panel::error::ApiError;
use crate::panel::extract::ApiJson;

/// Every API key (secrets are never returned after creation).
#[utoipa::path(tag = "keys", responses((status = 200, body = Vec<Object>), (status = 401), (status = 403)))]
#[get("/keys")]
pub async fn list(state: web::Data<AppState>, _admin: Admin) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(state.store.api_keys().await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CreateKey {
    name: String,
    /// Any of `read`, `write`, `admin`.
    scopes: Vec<String>,
    /// 1–365; no expiry when absent.
    expires_in_days: Option<u32>,
}

/// Creates a key; the response carries the key itself, shown this once.
#[utoipa::path(tag = "keys", request_body = CreateKey, responses((status = 201, body = CreatedKey), (status = 400)))]
#[post("/keys")]
pub async fn create(
    state: web::Data<AppState>,
    admin: Admin,
    body: ApiJson<CreateKey>,
) -> Result<HttpResponse, ApiError> {
    let req = body.0;
    let created = app::keys::create(&state, &admin.0, &req.name, &req.scopes, req.expires_in_days).await?;
    Ok(HttpResponse::Created().json(created))
}

/// Revokes a key at once.
#[utoipa::path(tag = "keys", params(("id" = String, Path)), responses((status = 200, body = Object), (status = 404)))]
#[delete("/keys/{id}")]
pub async fn revoke(state: web::Data<AppState>, admin: Admin, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let record = app::keys::revoke(&state, &admin.0, &id).await?;
    Ok(HttpResponse::Ok().json(record))
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(list).service(create).service(revoke);
}
