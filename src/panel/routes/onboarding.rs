use actix_web::{HttpResponse, get, post, web};
use serde::{Deserialize, Serialize};

use crate::audit::{self, Outcome};
use crate::onboarding::{self, DnsReport, OnboardingError, OnboardingState, Status};
use crate::panel::AppState;
use crate::panel::auth::{Admin, Caller};
use crate::panel::error::ApiError;
use crate::panel::extract::ApiJson;

impl From<OnboardingError> for ApiError {
    fn from(e: OnboardingError) -> Self {
        match e {
            OnboardingError::Invalid(details) => ApiError::invalid(details),
            OnboardingError::WrongState(_) | OnboardingError::NoPublicIp => ApiError::Conflict(e.to_string()),
            OnboardingError::Store(s) => s.into(),
        }
    }
}

/// Current onboarding state, domain and the public IP DNS records must point at.
#[utoipa::path(tag = "onboarding", responses((status = 200, body = Status), (status = 401)))]
#[get("/onboarding/status")]
pub async fn status(state: web::Data<AppState>, _who: Caller) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(onboarding::status(&state.store, state.public_ip()).await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DomainRequest {
    /// The apex domain, e.g. `example.com` (Unicode allowed; stored as punycode).
    domain: String,
    /// Contact for certificate expiry notices.
    email: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct StateResponse {
    status: OnboardingState,
}

/// Sets the domain and contact email.
#[utoipa::path(tag = "onboarding", request_body = DomainRequest,
    responses((status = 200, body = StateResponse), (status = 400), (status = 409), (status = 410)))]
#[post("/onboarding/domain")]
pub async fn set_domain(
    state: web::Data<AppState>,
    who: Admin,
    body: ApiJson<DomainRequest>,
) -> Result<HttpResponse, ApiError> {
    let result = set_domain_and_apply(&state, &body.0.domain, &body.0.email).await;
    let outcome = if result.is_ok() { Outcome::Success } else { Outcome::Failure };
    audit::record(&state.store, &who.0.actor(), "onboarding.domain", body.0.domain.trim(), outcome, None).await;
    let next = result?;
    state.set_onboarding_state(next);
    Ok(HttpResponse::Ok().json(StateResponse { status: next }))
}

/// Records the domain and makes nginx serve it; if nginx refuses, the
/// previous onboarding rows are written back and the error returned. The
/// API and the web UI both call this.
pub async fn set_domain_and_apply(state: &AppState, domain: &str, email: &str) -> Result<OnboardingState, ApiError> {
    const ROWS: &[&str] = &[onboarding::keys::STATE, onboarding::keys::DOMAIN, onboarding::keys::EMAIL];
    let change = state.nginx.change().await;
    let before = state.store.settings(ROWS).await?;
    let next = onboarding::set_domain(&state.store, domain, email).await?;
    if let Err(e) = change.apply("onboarding: domain set").await {
        let fresh = OnboardingState::Fresh.as_str().to_string();
        let undo = ROWS
            .iter()
            .zip(before)
            .enumerate()
            .map(|(i, (k, v))| (*k, v.unwrap_or_else(|| if i == 0 { fresh.clone() } else { String::new() })))
            .collect();
        if let Err(undo_err) = state.store.put_settings(undo).await {
            tracing::error!(%undo_err, "cannot undo the domain change after nginx refused it");
        }
        return Err(e.into());
    }
    Ok(next)
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct VerifyResponse {
    status: OnboardingState,
    report: DnsReport,
}

/// Resolves panel/auth/tunnel and a random name under the domain and reports
/// per name whether it points at the public IP.
#[utoipa::path(tag = "onboarding", responses((status = 200, body = VerifyResponse), (status = 409), (status = 410)))]
#[post("/onboarding/verify-dns")]
pub async fn verify_dns(state: web::Data<AppState>, who: Admin) -> Result<HttpResponse, ApiError> {
    let (report, next) = onboarding::verify_dns(&state.store, state.settings.dns.resolver, state.public_ip()).await?;
    state.set_onboarding_state(next);
    let outcome = if report.ok { Outcome::Success } else { Outcome::Failure };
    audit::record(
        &state.store,
        &who.0.actor(),
        "onboarding.verify_dns",
        "",
        outcome,
        serde_json::to_value(&report).ok(),
    )
    .await;
    Ok(HttpResponse::Ok().json(VerifyResponse { status: next, report }))
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(status).service(set_domain).service(verify_dns);
}
