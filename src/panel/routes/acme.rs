//! TLS certificates of the served names: `/api/certs`, renewal status, forced
//! renewal and bring-your-own uploads (use cases of [`crate::app::certs`],
//! which audit them). Registered after `certs::configure`, so the literal
//! `/certs/mtls*` and `/certs/agent*` paths match first.

use actix_web::{HttpResponse, get, post, web};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::acme::CertStatus;
use crate::acme::renewal::AutoRenewStatus;
use crate::panel::AppState;
use crate::panel::auth::Admin;
use crate::panel::error::ApiError;
use crate::panel::extract::ApiJson;
use crate::store::CertRecord;

/// Every served name with its certificate: issuer, expiry, days left, auto
/// or manual, and `health`: what the last probe saw nginx serve for it.
#[utoipa::path(tag = "certs", responses((status = 200, body = Vec<CertStatus>)))]
#[get("/certs")]
pub async fn list(state: web::Data<AppState>, _admin: Admin) -> Result<HttpResponse, ApiError> {
    let list = state.certs.list(OffsetDateTime::now_utc()).await?;
    Ok(HttpResponse::Ok().json(crate::acme::with_health(list, state.health.get().as_deref())))
}

/// The renewal schedule: next run, last run and its result, names in backoff.
#[utoipa::path(tag = "certs", responses((status = 200, body = AutoRenewStatus)))]
#[get("/certs/auto-renew-status")]
pub async fn auto_renew_status(state: web::Data<AppState>, _admin: Admin) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(state.certs.auto_renew_status(OffsetDateTime::now_utc()).await?))
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Installed {
    name: String,
    issuer: String,
    #[schema(value_type = String)]
    #[serde(with = "time::serde::rfc3339")]
    not_after: OffsetDateTime,
    days_left: i64,
}

impl From<CertRecord> for Installed {
    fn from(r: CertRecord) -> Self {
        let days_left = (r.not_after - OffsetDateTime::now_utc()).whole_days();
        Installed { name: r.name, issuer: r.issuer, not_after: r.not_after, days_left }
    }
}

/// Issues a new certificate for the name now and reloads nginx with it.
/// 502 carries the CA's problem as an actionable message.
#[utoipa::path(tag = "certs", params(("domain" = String, Path, description = "a served name, e.g. panel.example.com")),
    responses((status = 200, body = Installed), (status = 404), (status = 409), (status = 422), (status = 502)))]
#[post("/certs/{domain}/renew")]
pub async fn renew(
    state: web::Data<AppState>,
    admin: Admin,
    domain: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(Installed::from(crate::app::certs::renew(&state, &admin.0, &domain).await?)))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UploadRequest {
    /// PEM chain, leaf first.
    fullchain: String,
    /// PEM private key of the leaf.
    key: String,
}

/// Installs an operator's certificate for the name (validated: chain parses,
/// key matches, name covered, not expired). Uploaded certificates are not
/// renewed automatically.
#[utoipa::path(tag = "certs", request_body = UploadRequest,
    params(("domain" = String, Path, description = "a served name, e.g. panel.example.com")),
    responses((status = 200, body = Installed), (status = 400), (status = 404), (status = 422), (status = 502)))]
#[post("/certs/{domain}/upload")]
pub async fn upload(
    state: web::Data<AppState>,
    admin: Admin,
    domain: web::Path<String>,
    body: ApiJson<UploadRequest>,
) -> Result<HttpResponse, ApiError> {
    let UploadRequest { fullchain, key } = body.0;
    let record = crate::app::certs::upload(&state, &admin.0, &domain, fullchain, key).await?;
    Ok(HttpResponse::Ok().json(Installed::from(record)))
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(list).service(auto_renew_status).service(renew).service(upload);
}
