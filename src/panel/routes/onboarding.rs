//! `/api/onboarding/*`: the wizard's steps over JSON (domain, DNS check,
//! provisioning and its progress stream). Each step is a use case of
//! [`crate::app::onboarding`], which audits it.

use actix_web::{HttpRequest, HttpResponse, get, post, web};
use serde::{Deserialize, Serialize};

use crate::onboarding::{self, DnsReport, OnboardingState, Status};
use crate::panel::AppState;
use crate::panel::auth::{Admin, BasePath, Caller};
use crate::panel::error::ApiError;
use crate::panel::extract::ApiJson;

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
    let next = crate::app::onboarding::set_domain(&state, &who.0, &body.0.domain, &body.0.email).await?;
    Ok(HttpResponse::Ok().json(StateResponse { status: next }))
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
    let (report, next) = crate::app::onboarding::verify_dns(&state, &who.0).await?;
    Ok(HttpResponse::Ok().json(VerifyResponse { status: next, report }))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ProvisionAccepted {
    status: OnboardingState,
    /// Where progress is streamed (WebSocket).
    stream: String,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProvisionRequest {
    /// Username of the first visitor login (`[a-z0-9._-]{1,32}`, not taken).
    /// Without it (or without a body), the contact email's local part.
    username: Option<String>,
}

/// Starts provisioning in the background (from DNS_READY, or again after a
/// failed run); follow it on `/api/onboarding/provision/stream`. The body
/// is optional.
#[utoipa::path(tag = "onboarding", request_body(content = Option<ProvisionRequest>),
    responses((status = 202, body = ProvisionAccepted), (status = 400), (status = 409), (status = 410)))]
#[post("/onboarding/provision")]
pub async fn provision(
    state: web::Data<AppState>,
    who: Admin,
    base: BasePath,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let asked = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        crate::panel::extract::parse_json::<ProvisionRequest>(&body)?.username
    };
    crate::app::onboarding::start_provisioning(&state.app, &who.0, asked.as_deref()).await?;
    Ok(HttpResponse::Accepted().json(ProvisionAccepted {
        status: OnboardingState::Provisioning,
        stream: format!("{}/api/onboarding/provision/stream", base.0),
    }))
}

/// Provisioning progress over a WebSocket. The first message is the state so
/// far (`{"type":"state","status":…,"events":[…]}`), then one message per
/// event (`{"type":"event","task","title","status","message","progress":{"current","total"}}`).
/// Answers after completion too: a run that ended with nobody connected
/// hands its final event, with the first login, to the next client, once.
#[utoipa::path(tag = "onboarding", responses((status = 101, description = "WebSocket"), (status = 400)))]
#[get("/onboarding/provision/stream")]
pub async fn provision_stream(
    state: web::Data<AppState>,
    _who: Admin,
    req: HttpRequest,
    body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let (response, session, messages) = actix_ws::handle(&req, body)
        .map_err(|_| ApiError::field("upgrade", "This endpoint speaks WebSocket only; send an Upgrade request"))?;
    let (snapshot, events) = state.provision.subscribe();
    actix_web::rt::spawn(stream_progress(state.into_inner(), session, messages, snapshot, events));
    Ok(response)
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum StreamMessage<'a> {
    State(&'a crate::app::provision::Snapshot),
    Event(&'a crate::app::provision::Event),
}

async fn stream_progress(
    state: std::sync::Arc<AppState>,
    mut session: actix_ws::Session,
    mut messages: actix_ws::MessageStream,
    snapshot: crate::app::provision::Snapshot,
    mut events: tokio::sync::broadcast::Receiver<crate::app::provision::Event>,
) {
    use futures_util::StreamExt;
    use tokio::sync::broadcast::error::RecvError;
    let json = |m: StreamMessage<'_>| serde_json::to_string(&m).unwrap_or_default();
    if session.text(json(StreamMessage::State(&snapshot))).await.is_err() {
        return;
    }
    // A run that completed with nobody listening: its first login, once.
    if snapshot.status == crate::app::provision::RunStatus::Completed
        && let Some(last) = state.provision.take_undelivered()
        && session.text(json(StreamMessage::Event(&last))).await.is_err()
    {
        state.provision.put_back(last);
        return;
    }
    loop {
        tokio::select! {
            event = events.recv() => match event {
                Ok(event) => {
                    let sent = session.text(json(StreamMessage::Event(&event))).await.is_ok();
                    if event.first_user.is_some() && sent {
                        state.provision.take_undelivered();
                    }
                    if !sent {
                        return;
                    }
                }
                Err(RecvError::Lagged(_)) => {
                    tracing::warn!("provisioning stream lagged; closing so the client reconnects");
                    break;
                }
                Err(RecvError::Closed) => break,
            },
            msg = messages.next() => match msg {
                Some(Ok(actix_ws::Message::Ping(p))) => {
                    if session.pong(&p).await.is_err() {
                        return;
                    }
                }
                Some(Ok(actix_ws::Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            },
        }
    }
    let _ = session.close(None).await;
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(status).service(set_domain).service(verify_dns).service(provision).service(provision_stream);
}
