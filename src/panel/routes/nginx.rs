//! `/api/nginx/*`: the live configuration, its snapshots, diffs and rollback.
//! Admin only.

use std::collections::BTreeMap;

use actix_web::{HttpResponse, get, post, web};
use serde::Serialize;

use crate::app::{Change, Kept};
use crate::audit::{self, Outcome};
use crate::nginx::{ApplyOutcome, SnapshotMeta};
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
    Ok(HttpResponse::Ok().json(RenderedResponse { files: live_files(&state).await? }))
}

/// The live tree's files: path relative to the tree root → content.
pub async fn live_files(state: &AppState) -> Result<BTreeMap<String, String>, ApiError> {
    let tree = state.nginx.live_tree().await?;
    Ok(tree.files.into_iter().map(|(p, body)| (p.to_string_lossy().into_owned(), body)).collect())
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
    let (out, kept) = rollback_to(&state, &admin.0.actor(), id.into_inner()).await?;
    Ok(HttpResponse::Ok().json(RollbackResponse {
        snapshot: out.snapshot,
        changed: out.changed,
        warning: kept.warning(),
    }))
}

/// Makes snapshot `id` live again, proves it with the probe (undone by
/// rolling back to the tree it replaced when a working name stops serving)
/// and audits the attempt as `actor`. The API and the nginx page call this.
pub async fn rollback_to(state: &AppState, actor: &str, id: String) -> Result<(ApplyOutcome, Kept), ApiError> {
    let before = state.health_before().await;
    let result = state.nginx.rollback(id.clone()).await;
    let proved = match result {
        Ok(out) => {
            let change = Change { reason: "nginx.rollback", actor, target: &id, key: "" };
            let replaced = out.snapshot.clone();
            let undo = || async {
                let Some(replaced) = replaced else { return };
                if let Err(e) = state.nginx.rollback(replaced).await {
                    tracing::error!(error = %e, "undoing the nginx rollback failed");
                }
            };
            let kept = state.prove_applied(change, before, undo).await;
            kept.map(|k| (out, k))
        }
        Err(e) => Err(e.into()),
    };
    let proved = proved.map_err(ApiError::from);
    let (outcome, details) = match &proved {
        Ok((_, kept)) => (Outcome::Success, kept.warning().map(|w| serde_json::json!({ "warning": w }))),
        Err(e) => (Outcome::Failure, Some(serde_json::json!({ "error": e.to_string() }))),
    };
    audit::record(&state.store, actor, "nginx.rollback", &id, outcome, details).await;
    proved
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(rendered).service(snapshots).service(diff).service(rollback);
}
