use actix_web::{HttpResponse, post, web};
use serde::Deserialize;
use time::OffsetDateTime;

use crate::agents::{self, Enrolled};
use crate::audit::{self, Outcome};
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
    if token.is_empty() || token.len() > 128 {
        return Err(ApiError::field("token", "The token is missing or malformed"));
    }
    if csr.len() > 16 * 1024 {
        return Err(ApiError::field("csr", "CSR is too large"));
    }
    let result = agents::enroll(state.pki.clone(), &state.store, &token, csr, OffsetDateTime::now_utc()).await;
    match &result {
        Ok(done) => {
            audit::record(
                &state.store,
                &format!("agent:{}", done.label),
                "agent.enroll",
                &done.label,
                Outcome::Success,
                None,
            )
            .await
        }
        Err(e) => {
            let details = serde_json::json!({ "reason": e.to_string() });
            audit::record(&state.store, "anonymous", "agent.enroll", "", Outcome::Denied, Some(details)).await
        }
    }
    Ok(HttpResponse::Ok().json(result?))
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(enroll);
}
