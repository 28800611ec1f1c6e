//! `/api/sites/{id}/files`: list, upload (multipart, streamed to disk) and
//! delete a site's files; uploads and deletions go through
//! `app::sites::files`.

use actix_web::http::header::CONTENT_TYPE;
use actix_web::{HttpRequest, HttpResponse, delete, get, post, web};
use futures_util::StreamExt;
use serde::Serialize;

use super::sites::site_id;
use crate::app;
use crate::panel::AppState;
use crate::panel::auth::{Cap, SitesRead, SitesWrite};
use crate::panel::error::ApiError;
use crate::sites::files::{self, FileEntry};
use crate::sites::{self, site_dir};

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FileList {
    files: Vec<FileEntry>,
    /// Sum of the file sizes, bytes.
    total_bytes: u64,
    /// The site's cap, bytes.
    max_bytes: u64,
}

/// Every regular file of the site, by path.
#[utoipa::path(tag = "sites", params(("id" = i64, Path)), responses((status = 200, body = FileList)))]
#[get("/sites/{id}/files")]
pub async fn list(
    state: web::Data<AppState>,
    who: Cap<SitesRead>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let site = sites::get(&state.store, &who.0, site_id(&id)?).await?;
    let files = files::list(site_dir(&state.settings.data_dir, &site.name)).await?;
    let total_bytes = files.iter().map(|f| f.size).sum();
    Ok(HttpResponse::Ok().json(FileList { files, total_bytes, max_bytes: site.max_bytes }))
}

/// The multipart form of an upload.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct UploadForm {
    /// One part per file; each part's filename is its path inside the site
    /// (`assets/app.js`). Relative, no `.`/`..`/hidden segments, no `\`, `%`,
    /// `:` or control characters.
    #[schema(value_type = Vec<String>, format = Binary)]
    files: Vec<Vec<u8>>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Uploaded {
    /// The files written, by path.
    files: Vec<FileEntry>,
}

/// Stores files, streamed to disk. All or nothing: a refused part (bad
/// path, over the site's byte cap, too many files) leaves the site as it was.
#[utoipa::path(tag = "sites", params(("id" = i64, Path)),
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    responses((status = 200, body = Uploaded)))]
#[post("/sites/{id}/files")]
pub async fn upload(
    state: web::Data<AppState>,
    who: Cap<SitesWrite>,
    id: web::Path<String>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let site = sites::get(&state.store, &who.0, site_id(&id)?).await?;
    let ctype = req.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let files = app::sites::files::upload(&state, &who.0, &site, ctype, payload.boxed_local()).await?;
    Ok(HttpResponse::Ok().json(Uploaded { files }))
}

/// Deletes one file, or a directory with everything in it.
#[utoipa::path(tag = "sites",
    params(("id" = i64, Path), ("path" = String, Query, description = "Path inside the site")),
    responses((status = 204)))]
#[delete("/sites/{id}/files")]
pub async fn remove(
    state: web::Data<AppState>,
    who: Cap<SitesWrite>,
    id: web::Path<String>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let site = sites::get(&state.store, &who.0, site_id(&id)?).await?;
    let query: Vec<(String, String)> = serde_urlencoded::from_str(req.query_string())
        .map_err(|_| ApiError::field("path", "The query string could not be decoded"))?;
    let raw = query.into_iter().find(|(k, _)| k == "path").map(|(_, v)| v);
    let raw = raw.ok_or_else(|| ApiError::field("path", "A path is required"))?;
    app::sites::files::delete(&state, &who.0, &site, &raw).await?;
    Ok(HttpResponse::NoContent().finish())
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(list).service(upload).service(remove);
}
