//! `/api/users`: visitor accounts, their TOTP enrollment and sessions. The
//! changes are the use cases of [`crate::app::users`].

use actix_web::{HttpResponse, delete, get, post, put, web};
use serde::Deserialize;
use serde_json::json;

use crate::app;
use crate::panel::AppState;
use crate::panel::auth::Admin;
use crate::panel::error::ApiError;
use crate::panel::extract::ApiJson;
use crate::users::{NewUser, TotpEnrollment, UserChanges};

/// Every visitor user (no secrets).
#[utoipa::path(tag = "users", responses((status = 200, body = Vec<Object>)))]
#[get("/users")]
pub async fn list(state: web::Data<AppState>, _admin: Admin) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(state.store.users().await?))
}

fn yes() -> bool {
    true
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CreateUser {
    /// Lowercase, 1–32 characters of `[a-z0-9._-]`.
    username: String,
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    email: String,
    /// At least 12 characters, not a common password.
    password: String,
    /// Existing group names.
    #[serde(default)]
    groups: Vec<String>,
    /// Enroll TOTP now (default true); the response shows the secret once.
    #[serde(default = "yes")]
    totp: bool,
}

/// Creates a user; with `totp` the response carries the `otpauth://` URI and QR code once.
/// The body of `201` from `POST /api/users`: the user, plus the TOTP
/// enrollment fields only when TOTP was requested (the Rust type flattens an
/// `Option`, which the derived schema would describe as always present).
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
pub struct CreatedUserBody {
    #[schema(value_type = Object)]
    user: serde_json::Value,
    /// Base32 TOTP secret, shown once.
    totp_secret: Option<String>,
    otpauth_uri: Option<String>,
    /// The URI as an SVG QR code.
    qr_svg: Option<String>,
}

#[utoipa::path(tag = "users", request_body = CreateUser, responses((status = 201, body = CreatedUserBody), (status = 400)))]
#[post("/users")]
pub async fn create(
    state: web::Data<AppState>,
    admin: Admin,
    body: ApiJson<CreateUser>,
) -> Result<HttpResponse, ApiError> {
    let b = body.0;
    let new = NewUser {
        username: b.username,
        display_name: b.display_name,
        email: b.email,
        password: b.password,
        groups: b.groups,
        totp: b.totp,
    };
    let created = app::users::create(&state, &admin.0, new).await?;
    Ok(HttpResponse::Created().json(created))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UpdateUser {
    display_name: Option<String>,
    email: Option<String>,
    password: Option<String>,
    disabled: Option<bool>,
    /// Replaces the user's group memberships.
    groups: Option<Vec<String>>,
}

/// Changes a user; absent fields keep their value.
#[utoipa::path(tag = "users", params(("username" = String, Path)), request_body = UpdateUser, responses((status = 200, body = Object), (status = 400)))]
#[put("/users/{username}")]
pub async fn update(
    state: web::Data<AppState>,
    admin: Admin,
    username: web::Path<String>,
    body: ApiJson<UpdateUser>,
) -> Result<HttpResponse, ApiError> {
    let b = body.0;
    let changes = UserChanges {
        display_name: b.display_name,
        email: b.email,
        password: b.password,
        disabled: b.disabled,
        groups: b.groups,
    };
    let user = app::users::update(&state, &admin.0, &username, changes).await?;
    Ok(HttpResponse::Ok().json(user))
}

/// Deletes a user and their sessions; 409 for the last user while tunnels need sign-in.
#[utoipa::path(tag = "users", params(("username" = String, Path)), responses((status = 200, body = Object)))]
#[delete("/users/{username}")]
pub async fn remove(
    state: web::Data<AppState>,
    admin: Admin,
    username: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let user = app::users::delete(&state, &admin.0, &username).await?;
    Ok(HttpResponse::Ok().json(user))
}

/// A new TOTP secret; the old one stops working at once.
#[utoipa::path(tag = "users", params(("username" = String, Path)), responses((status = 200, body = TotpEnrollment)))]
#[post("/users/{username}/reset-totp")]
pub async fn reset_totp(
    state: web::Data<AppState>,
    admin: Admin,
    username: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let enrollment = app::users::reset_totp(&state, &admin.0, &username).await?;
    Ok(HttpResponse::Ok().json(enrollment))
}

/// The user's visitor sessions.
#[utoipa::path(tag = "users", params(("username" = String, Path)), responses((status = 200, body = Vec<Object>)))]
#[get("/users/{username}/sessions")]
pub async fn sessions(
    state: web::Data<AppState>,
    _admin: Admin,
    username: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let username = username.into_inner();
    if state.store.user(username.clone()).await?.is_none() {
        return Err(ApiError::NotFound("No such user".into()));
    }
    Ok(HttpResponse::Ok().json(state.store.user_sessions(username).await?))
}

/// Ends one session (authd notices within a second).
#[utoipa::path(tag = "users", params(("username" = String, Path), ("id" = String, Path)), responses((status = 200, body = Object)))]
#[delete("/users/{username}/sessions/{id}")]
pub async fn revoke_session(
    state: web::Data<AppState>,
    admin: Admin,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (username, id) = path.into_inner();
    app::users::revoke_session(&state, &admin.0, &username, &id).await?;
    Ok(HttpResponse::Ok().json(json!({ "revoked": id })))
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(list)
        .service(create)
        .service(update)
        .service(remove)
        .service(reset_totp)
        .service(sessions)
        .service(revoke_session);
}
