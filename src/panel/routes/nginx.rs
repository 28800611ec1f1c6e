//! `/api/nginx/*`: the live configuration, its snapshots, diffs and rollback
//! (the use case [`crate::app::nginx::rollback`], which audits it). Admin only.

use std::collections::BTreeMap;

use actix_web::{HttpResponse, get, post, web};
use serde::Serialize;

use crate::nginx::SnapshotMeta;
use crate::panel::AppState;
use crate::panel::auth::Admin;
use crate::panel::error::ApiError;

#[derive(Serialize, utoipa::ToSchema)]
pub struct RenderedResponse {
    /// Path relative to the tree root → file content.
    files: BTreeMap<String, String>,
}

/// The live nginx configuration tree.
#[utoipa::path(tag = "nginx", responses((status = 200, body = RenderedResponse)))]
#[get("/nginx/rendered")]
pub async fn rendered(state: web::Data<AppState>, _admin: Admin) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(RenderedResponse { files: crate::app::nginx::live_files(&state).await? }))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct SnapshotList {
    /// Newest first.
    #[schema(value_type = Vec<Object>)]
    snapshots: Vec<SnapshotMeta>,
}

/// Snapshots of replaced trees, newest first.
#[utoipa::path(tag = "nginx", responses((status = 200, body = SnapshotList)))]
#[get("/nginx/snapshots")]
pub async fn snapshots(state: web::Data<AppState>, _admin: Admin) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(SnapshotList { snapshots: state.nginx.snapshots().await? }))
}

/// Unified diff from the snapshot to the live tree.
#[utoipa::path(tag = "nginx", params(("id" = String, Path)),
    responses((status = 200, content_type = "text/plain", body = String)))]
#[get("/nginx/snapshots/{id}/diff")]
pub async fn diff(state: web::Data<AppState>, _admin: Admin, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let text = state.nginx.diff(id.into_inner()).await?;
    Ok(HttpResponse::Ok().content_type("text/plain; charset=utf-8").body(text))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct RollbackResponse {
    /// Snapshot of the tree the rollback replaced (so it can be undone).
    snapshot: Option<String>,
    changed: bool,
    /// Set when the rollback was kept although names do not serve (they did
    /// not serve before it either).
    #[serde(skip_serializing_if = "Option::is_none")]
    warning: Option<String>,
}

/// Makes the snapshot live again through validate → swap → reload → probe,
/// then probes every public name: when one that served before stops
/// serving, the replaced tree goes live again and the answer is 409 with the
/// evidence. 422 when nginx refuses the snapshot, 502 when the reload fails;
/// the live tree stays.
#[utoipa::path(tag = "nginx", params(("id" = String, Path)),
    responses((status = 200, body = RollbackResponse), (status = 409), (status = 422), (status = 502)))]
#[post("/nginx/snapshots/{id}/rollback")]
pub async fn rollback(
    state: web::Data<AppState>,
    admin: Admin,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let (out, kept) = crate::app::nginx::rollback(&state, &admin.0, id.into_inner()).await?;
    Ok(HttpResponse::Ok().json(RollbackResponse {
        snapshot: out.snapshot,
        changed: out.changed,
        warning: kept.warning(),
    }))
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(rendered).service(snapshots).service(diff).service(rollback);
}
