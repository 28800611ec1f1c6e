//! Public `/download/`: the agent binaries, their checksums and `install.sh`.
//! No identity is asked for (nginx passes these without a client
//! certificate); only fixed names are served, so no part of the request path
//! reaches the filesystem.

use actix_web::http::header::{self, CacheControl, CacheDirective, ContentType, ETag, EntityTag, IfNoneMatch};
use actix_web::{HttpRequest, HttpResponse, guard, web};
use serde::Serialize;

use crate::downloads::{self, Artifact, Downloads};
use crate::panel::AppState;
use crate::panel::error::ApiError;

/// The served binaries, `GET /download/`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Index {
    files: Vec<Artifact>,
    /// `/download/install.sh`: installs, enrolls and starts the agent.
    install: &'static str,
}

async fn artifacts(state: &web::Data<AppState>) -> Result<Vec<Artifact>, ApiError> {
    let state = state.clone();
    web::block(move || state.downloads.list())
        .await
        .map_err(|e| ApiError::internal("downloads task", e))?
        .map_err(Into::into)
}

/// Binaries and checksums may change with the image: revalidate each time.
fn revalidate() -> CacheControl {
    CacheControl(vec![CacheDirective::NoCache])
}

async fn index(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let files = artifacts(&state).await?;
    Ok(HttpResponse::Ok().insert_header(revalidate()).json(Index { files, install: "/download/install.sh" }))
}

/// `GET /download/{file}`: `install.sh`, `SHA256SUMS`, a binary or its `.sha256`.
async fn file(state: web::Data<AppState>, req: HttpRequest, name: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let name = name.into_inner();
    let text =
        |body: String| HttpResponse::Ok().content_type(ContentType::plaintext()).insert_header(revalidate()).body(body);
    match name.as_str() {
        "install.sh" => {
            let panel = downloads::panel_address(&state.settings, &state.store, state.public_ip()).await?;
            let script = downloads::install_script(&panel, &artifacts(&state).await?);
            // The script carries pins and checksums of this moment.
            Ok(HttpResponse::Ok()
                .content_type("text/x-shellscript; charset=utf-8")
                .insert_header(CacheControl(vec![CacheDirective::NoStore]))
                .body(script))
        }
        "SHA256SUMS" => Ok(text(artifacts(&state).await?.iter().map(Artifact::checksum_line).collect())),
        _ => match name.strip_suffix(".sha256").map(Downloads::artifact_name) {
            Some(Some(artifact)) => Ok(text(open(&state, artifact).await?.1.checksum_line())),
            Some(None) => Err(ApiError::NotFound("No such download".into())),
            None => binary(&state, &req, &name).await,
        },
    }
}

async fn open(state: &web::Data<AppState>, name: &'static str) -> Result<(std::fs::File, Artifact), ApiError> {
    let state = state.clone();
    web::block(move || state.downloads.open(name))
        .await
        .map_err(|e| ApiError::internal("downloads task", e))?
        .map_err(Into::into)
}

/// A binary, streamed, with its length and its checksum as the entity tag.
async fn binary(state: &web::Data<AppState>, req: &HttpRequest, name: &str) -> Result<HttpResponse, ApiError> {
    let artifact = Downloads::artifact_name(name).ok_or_else(|| ApiError::NotFound("No such download".into()))?;
    let (file, a) = open(state, artifact).await?;
    let etag = EntityTag::new_strong(a.sha256.clone());
    let cached = matches!(<IfNoneMatch as header::Header>::parse(req),
        Ok(IfNoneMatch::Items(tags)) if tags.iter().any(|t| t.strong_eq(&etag)));
    if cached {
        return Ok(HttpResponse::NotModified().insert_header(ETag(etag)).insert_header(revalidate()).finish());
    }
    let stream = tokio_util::io::ReaderStream::new(tokio::fs::File::from_std(file));
    Ok(HttpResponse::Ok()
        .content_type("application/octet-stream")
        .insert_header((header::CONTENT_DISPOSITION, format!("attachment; filename=\"{}\"", a.name)))
        .insert_header(ETag(etag))
        .insert_header(revalidate())
        .no_chunking(a.size)
        .streaming(stream))
}

/// `GET` and `HEAD` (same headers, no body) on `/download/` and `/download/{file}`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    let read = || web::route().guard(guard::Any(guard::Get()).or(guard::Head()));
    cfg.service(
        web::scope("/download")
            .route("", read().to(index))
            .route("/", read().to(index))
            .route("/{file}", read().to(file))
            .default_service(web::to(|| async {
                Err::<HttpResponse, _>(ApiError::NotFound("No such download".into()))
            })),
    );
}
