//! `POST /api/enroll`: an agent exchanges a one-time token and a CSR for its
//! certificate, through `app::agents::enroll` (which audits it).

use actix_web::{HttpResponse, post, web};
use serde::Deserialize;

use crate::agents::Enrolled;
use crate::app;
use crate::panel::AppState;
use crate::panel::error::ApiError;
use crate::panel::extract::ApiJson;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnrollRequest {
    /// The one-time token from `POST /api/certs/agent/enroll`.
    token: String,
    /// PEM certificate signing request made with the agent's own key.
    csr: String,
}

/// Public: exchanges a one-time token and a CSR for a signed agent certificate.
#[utoipa::path(tag = "certs", request_body = EnrollRequest,
    responses((status = 200, body = Enrolled), (status = 400), (status = 403)))]
#[post("/enroll")]
pub async fn enroll(state: web::Data<AppState>, body: ApiJson<EnrollRequest>) -> Result<HttpResponse, ApiError> {
    let EnrollRequest { token, csr } = body.0;
    Ok(HttpResponse::Ok().json(app::agents::enroll(&state, &token, csr).await?))
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(enroll);
}
