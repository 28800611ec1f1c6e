//! `/api/invitations` (admin) and the public `/api/invite/{token}` an invitee
//! uses to set a password and enroll TOTP. The changes are the use cases of
//! [`crate::app::invitations`].

use actix_web::{HttpResponse, delete, get, post, web};
use serde::Deserialize;
use serde_json::json;
use time::OffsetDateTime;

use crate::app::{self, invitations::Invite};
use crate::panel::AppState;
use crate::panel::auth::Admin;
use crate::panel::error::ApiError;
use crate::panel::extract::ApiJson;
use crate::users::{self, CreatedInvitation, InvitationView};

#[utoipa::path(tag = "invitations", responses((status = 200, body = Vec<Object>)))]
#[get("/invitations")]
pub async fn list(state: web::Data<AppState>, _admin: Admin) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(state.store.invitations().await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CreateInvitation {
    /// The username the invitee will get.
    username: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    groups: Vec<String>,
    /// 1–30, default 7.
    expires_in_days: Option<u32>,
}

/// Creates an invitation; the token is shown once.
#[utoipa::path(tag = "invitations", request_body = CreateInvitation, responses((status = 201, body = CreatedInvitation), (status = 400)))]
#[post("/invitations")]
pub async fn create(
    state: web::Data<AppState>,
    admin: Admin,
    body: ApiJson<CreateInvitation>,
) -> Result<HttpResponse, ApiError> {
    let b = body.0;
    let invite = Invite { username: b.username, email: b.email, groups: b.groups, expires_in_days: b.expires_in_days };
    let created = app::invitations::create(&state, &admin.0, invite).await?;
    Ok(HttpResponse::Created().json(created))
}

#[utoipa::path(tag = "invitations", params(("id" = String, Path)), responses((status = 200, body = Object)))]
#[delete("/invitations/{id}")]
pub async fn revoke(state: web::Data<AppState>, admin: Admin, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    app::invitations::revoke(&state, &admin.0, &id).await?;
    Ok(HttpResponse::Ok().json(json!({ "revoked": id })))
}

/// Public: the invitation behind a token, with the TOTP secret to enroll.
#[utoipa::path(tag = "invitations", params(("token" = String, Path)), responses((status = 200, body = InvitationView)))]
#[get("/invite/{token}")]
pub async fn show(state: web::Data<AppState>, token: web::Path<String>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(users::view_invitation(&state.store, &token, OffsetDateTime::now_utc()).await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AcceptInvitation {
    /// At least 12 characters, not a common password.
    password: String,
    /// The current 6-digit code from the enrolled authenticator.
    code: String,
}

/// Public: accepts an invitation (single use) and creates the user.
#[utoipa::path(tag = "invitations", params(("token" = String, Path)), request_body = AcceptInvitation, responses((status = 201, body = Object), (status = 400)))]
#[post("/invite/{token}")]
pub async fn accept(
    state: web::Data<AppState>,
    token: web::Path<String>,
    body: ApiJson<AcceptInvitation>,
) -> Result<HttpResponse, ApiError> {
    let b = body.0;
    let user = app::invitations::accept(&state, &token, b.password, &b.code).await?;
    Ok(HttpResponse::Created().json(user))
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(list).service(create).service(revoke).service(show).service(accept);
}
