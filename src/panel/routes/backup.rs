//! `/api/backup`: take an encrypted backup of the data directory and download
//! it. Admin only; the use cases ([`crate::app::backup`]) audit every backup
//! and download.

use actix_web::{HttpResponse, get, post, web};
use serde::{Deserialize, Serialize};

use crate::backup::{self, BackupInfo};
use crate::panel::AppState;
use crate::panel::auth::Admin;
use crate::panel::error::ApiError;
use crate::panel::extract::ApiJson;

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
    let info = crate::app::backup::take(&state, &admin.0, body.0.passphrase).await?;
    let link = format!("/api/backup/{}", info.id);
    Ok(HttpResponse::Created().json(BackupResponse { backup: info, download: link }))
}

/// Downloads a backup archive (`<id>.tar.zst.age`; decrypt with `age -d` or
/// restore with `portico restore`).
#[utoipa::path(tag = "backup", params(("id" = String, Path)),
    responses((status = 200, content_type = "application/octet-stream", body = Vec<u8>)))]
#[get("/backup/{id}")]
pub async fn fetch(state: web::Data<AppState>, admin: Admin, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let (file, size) = crate::app::backup::download(&state, &admin.0, &id).await?;
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
