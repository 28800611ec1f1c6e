//! `/api/sites/{id}/files`: list, upload (multipart, streamed to disk) and
//! delete a site's files.

use actix_web::error::PayloadError;
use actix_web::http::header::CONTENT_TYPE;
use actix_web::{HttpRequest, HttpResponse, delete, get, post, web};
use futures_util::StreamExt;
use serde::Serialize;

use super::sites::site_id;
use crate::audit::{self, Outcome};
use crate::identity::Identity;
use crate::panel::AppState;
use crate::panel::auth::{Cap, SitesRead, SitesWrite};
use crate::panel::error::ApiError;
use crate::sites::files::{self, FileEntry, FilesError, Limits, Upload};
use crate::sites::{self, site_dir};
use crate::store::Site;

/// Uploads run one at a time, so that the byte cap of a site holds when two
/// arrive together (each counts the other's files once committed).
static UPLOADS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Chunks buffered between the request body and the multipart parser.
const PUMP_DEPTH: usize = 4;

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
    let files = store_upload(&state, &who.0, &site, ctype, payload.boxed_local()).await?;
    Ok(HttpResponse::Ok().json(Uploaded { files }))
}

/// Streams a multipart body into `site` (all or nothing) and audits it: the
/// API and the site page both call this.
pub(crate) async fn store_upload(
    state: &AppState,
    who: &Identity,
    site: &Site,
    ctype: &str,
    mut payload: futures_util::stream::LocalBoxStream<'static, Result<bytes::Bytes, PayloadError>>,
) -> Result<Vec<FileEntry>, ApiError> {
    let boundary = multer::parse_boundary(ctype)
        .map_err(|_| ApiError::field("body", "Send multipart/form-data with one file part per path"))?;
    let _one_at_a_time = UPLOADS.lock().await;
    let data_dir = &state.settings.data_dir;
    files::clear_staging(data_dir).await?;
    let mut staged = Upload::begin(data_dir, site_dir(data_dir, &site.name), site.max_bytes, Limits::default()).await?;

    // The request body is not `Send`; the parser wants a `Send` stream. A
    // short channel bridges them, so memory stays flat whatever the size.
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<bytes::Bytes, std::io::Error>>(PUMP_DEPTH);
    let pump = async move {
        while let Some(chunk) = payload.next().await {
            if tx.send(chunk.map_err(std::io::Error::other)).await.is_err() {
                break;
            }
        }
    };
    let body = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|c| (c, rx)) });
    let parts = multer::Multipart::new(body, boundary);
    let consume = async {
        // Owned by this future: when it ends early (a refused part), the
        // parser and the channel's receiver go, and the pump stops.
        let mut parts = parts;
        let mut count = 0usize;
        while let Some(field) = parts.next_field().await.map_err(|e| FilesError::Body(e.to_string()))? {
            let Some(path) = field.file_name().map(str::to_string) else {
                return Err(FilesError::Body("every part must be a file whose filename is its path".into()));
            };
            staged.add(&path, field).await?;
            count += 1;
        }
        if count == 0 {
            return Err(FilesError::Body("no file parts".into()));
        }
        Ok(())
    };
    let ((), consumed) = tokio::join!(pump, consume);
    let result = match consumed {
        Ok(()) => staged.commit().await,
        Err(e) => {
            staged.abort().await;
            Err(e)
        }
    };
    let outcome = if result.is_ok() { Outcome::Success } else { Outcome::Failure };
    let details = result
        .as_ref()
        .ok()
        .map(|f| serde_json::json!({ "files": f.len(), "bytes": f.iter().map(|e| e.size).sum::<u64>() }));
    audit::record(&state.store, &who.actor(), "site.files.upload", &site.name, outcome, details).await;
    Ok(result?)
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
    delete_file(&state, &who.0, &site, &raw).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Deletes `raw` (a path inside `site`) and audits it: the API and the site
/// page both call this.
pub(crate) async fn delete_file(state: &AppState, who: &Identity, site: &Site, raw: &str) -> Result<(), ApiError> {
    let path = files::parse_path(raw)?;
    let result = files::delete(site_dir(&state.settings.data_dir, &site.name), path.clone()).await;
    let outcome = if result.is_ok() { Outcome::Success } else { Outcome::Failure };
    let details = Some(serde_json::json!({ "path": path.as_str() }));
    audit::record(&state.store, &who.actor(), "site.files.delete", &site.name, outcome, details).await;
    Ok(result?)
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(list).service(upload).service(remove);
}
