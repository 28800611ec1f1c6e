//! `/api/groups`: visitor groups and their members. The changes are the use
//! cases of [`crate::app::groups`].

use actix_web::{HttpResponse, delete, get, post, put, web};
use serde::Deserialize;
use serde_json::json;

use crate::app;
use crate::panel::AppState;
use crate::panel::auth::Admin;
use crate::panel::error::ApiError;
use crate::panel::extract::ApiJson;

#[utoipa::path(tag = "groups", responses((status = 200, body = Vec<Object>)))]
#[get("/groups")]
pub async fn list(state: web::Data<AppState>, _admin: Admin) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(state.store.groups().await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CreateGroup {
    /// 1–32 characters of `[a-z0-9._-]`.
    name: String,
    #[serde(default)]
    description: String,
}

#[utoipa::path(tag = "groups", request_body = CreateGroup, responses((status = 201, body = Object), (status = 400)))]
#[post("/groups")]
pub async fn create(
    state: web::Data<AppState>,
    admin: Admin,
    body: ApiJson<CreateGroup>,
) -> Result<HttpResponse, ApiError> {
    let b = body.0;
    app::groups::create(&state, &admin.0, &b.name, &b.description).await?;
    Ok(HttpResponse::Created().json(json!({ "name": b.name, "description": b.description, "members": [] })))
}

#[utoipa::path(tag = "groups", params(("name" = String, Path)), responses((status = 200, body = Object)))]
#[delete("/groups/{name}")]
pub async fn remove(
    state: web::Data<AppState>,
    admin: Admin,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let name = name.into_inner();
    app::groups::delete(&state, &admin.0, &name).await?;
    Ok(HttpResponse::Ok().json(json!({ "deleted": name })))
}

/// Adds a user to a group (idempotent).
#[utoipa::path(tag = "groups", params(("name" = String, Path), ("username" = String, Path)), responses((status = 200, body = Object)))]
#[put("/groups/{name}/members/{username}")]
pub async fn add_member(
    state: web::Data<AppState>,
    admin: Admin,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (group, user) = path.into_inner();
    app::groups::set_membership(&state, &admin.0, &group, &user, true).await?;
    Ok(HttpResponse::Ok().json(json!({ "group": group, "user": user, "member": true })))
}

/// Removes a user from a group (idempotent).
#[utoipa::path(tag = "groups", params(("name" = String, Path), ("username" = String, Path)), responses((status = 200, body = Object)))]
#[delete("/groups/{name}/members/{username}")]
pub async fn remove_member(
    state: web::Data<AppState>,
    admin: Admin,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (group, user) = path.into_inner();
    app::groups::set_membership(&state, &admin.0, &group, &user, false).await?;
    Ok(HttpResponse::Ok().json(json!({ "group": group, "user": user, "member": false })))
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(list).service(create).service(remove).service(add_member).service(remove_member);
}
