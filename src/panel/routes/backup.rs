//! `/api/backup`: take an encrypted backup of the data directory and download
//! it. Admin only; every backup is audited.

use actix_web::{HttpResponse, get, post, web};
use serde::{Deserialize, Serialize};

use crate::audit::{self, Outcome};
use crate::backup::{self, BackupInfo};
use crate::panel::AppState;
use crate::panel::auth::Admin;
use crate::panel::error::ApiError;
use crate::panel::extract::ApiJson;
use crate::settings::Secret;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BackupRequest {
    /// Encrypts the archive (age, scrypt); at least 12 characters. Needed to restore.
    passphrase: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct BackupResponse {
    backup: BackupInfo,
    /// Where to download it.
    download: String,
}

/// Takes a consistent backup of the data directory (database snapshot, PKI,
/// ACME, sites, settings), compressed and encrypted with the passphrase.
#[utoipa::path(tag = "backup", request_body = BackupRequest, responses((status = 201, body = BackupResponse)))]
#[post("/backup")]
pub async fn create(
    state: web::Data<AppState>,
    admin: Admin,
    body: ApiJson<BackupRequest>,
) -> Result<HttpResponse, ApiError> {
    let info = take(&state, &admin.0.actor(), body.0.passphrase).await?;
    let link = format!("/api/backup/{}", info.id);
    Ok(HttpResponse::Created().json(BackupResponse { backup: info, download: link }))
}

/// Checks the passphrase, takes a backup and audits it. The API and the web
/// UI both take backups here.
pub async fn take(state: &AppState, actor: &str, passphrase: String) -> Result<BackupInfo, ApiError> {
    backup::check_passphrase(&passphrase).map_err(|e| ApiError::field("passphrase", e.to_string()))?;
    let passphrase = Secret::new(passphrase);
    let result = backup::create(&state.store, &state.settings, &passphrase).await;
    let (outcome, target, details) = match &result {
        Ok(info) => (Outcome::Success, info.id.clone(), Some(serde_json::json!({ "size": info.size }))),
        Err(e) => (Outcome::Failure, String::new(), Some(serde_json::json!({ "error": e.to_string() }))),
    };
    audit::record(&state.store, actor, "backup.create", &target, outcome, details).await;
    Ok(result?)
}

/// Downloads a backup archive (`<id>.tar.zst.age`; decrypt with `age -d` or
/// restore with `portico restore`).
#[utoipa::path(tag = "backup", params(("id" = String, Path)),
    responses((status = 200, content_type = "application/octet-stream", body = Vec<u8>)))]
#[get("/backup/{id}")]
pub async fn fetch(state: web::Data<AppState>, admin: Admin, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let path = backup::archive_path(&state.settings.backup_dir(), &id)?;
    let file = tokio::fs::File::open(&path).await.map_err(|_| ApiError::NotFound("No such backup".into()))?;
    let size = file.metadata().await.map_err(|e| ApiError::internal("backup download", e))?.len();
    audit::record(&state.store, &admin.0.actor(), "backup.download", &id, Outcome::Success, None).await;
    let stream = tokio_util::io::ReaderStream::new(file);
    Ok(HttpResponse::Ok()
        .content_type("application/octet-stream")
        .insert_header(("Content-Disposition", format!("attachment; filename=\"portico-{id}{}\"", backup::SUFFIX)))
        .no_chunking(size)
        .streaming(stream))
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(create).service(fetch);
}
