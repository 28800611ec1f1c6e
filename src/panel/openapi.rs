//! `GET /api/openapi.json`: the API description, generated from the handlers.

use actix_web::{HttpResponse, get, web};
use utoipa::OpenApi;

use super::routes::{audit, certs, enroll, health, keys, onboarding};

#[derive(OpenApi)]
#[openapi(
    info(title = "Portico panel API", description = "Self-hosted tunnel appliance: panel REST API."),
    paths(
        health::show,
        onboarding::status, onboarding::set_domain, onboarding::verify_dns,
        keys::list, keys::create, keys::revoke,
        certs::mtls_info, certs::mtls_download, certs::mtls_rotate,
        certs::agent_list, certs::agent_create, certs::agent_enroll_token,
        certs::agent_download, certs::agent_revoke, certs::agent_capabilities,
        enroll::enroll,
        audit::list,
        document,
    )
)]
pub struct ApiDoc;

#[utoipa::path(tag = "health", responses((status = 200, content_type = "application/json", body = Object)))]
#[get("/openapi.json")]
pub async fn document() -> HttpResponse {
    HttpResponse::Ok().json(full_document())
}

/// The document with every path under `/api`, where the scope mounts them.
pub fn full_document() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    let paths = std::mem::take(&mut doc.paths.paths);
    doc.paths.paths = paths.into_iter().map(|(path, item)| (format!("/api{path}"), item)).collect();
    doc
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(document);
}
