//! `/api/certs/mtls` and `/api/certs/admin/*` (the admin client
//! certificate, its `.p12`, rotation and hardware binding) and `/api/certs/agent`,
//! `/api/agents/{label}` (agent certificates, enrollment tokens, capabilities,
//! revoke, removal). The agent routes are thin adapters over `app::agents`.

use actix_web::http::header::{ContentDisposition, DispositionParam, DispositionType};
use actix_web::{HttpResponse, delete, get, patch, post, web};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::agents::{EnrollmentGrant, IssuedAgentCert};
use crate::app;
use crate::panel::AppState;
use crate::panel::auth::{Admin, BasePath};
use crate::panel::error::ApiError;
use crate::panel::extract::ApiJson;
use crate::pki::{AdminMode, CertInfo, Pki, PkiError};

async fn pki_call<T: Send + 'static>(
    pki: &Pki,
    f: impl FnOnce(&Pki) -> Result<T, PkiError> + Send + 'static,
) -> Result<T, ApiError> {
    let pki = pki.clone();
    web::block(move || f(&pki)).await.map_err(|e| ApiError::internal("pki task", e))?.map_err(ApiError::from)
}

fn attachment(name: &str, content_type: &str, body: Vec<u8>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header(ContentDisposition {
            disposition: DispositionType::Attachment,
            parameters: vec![DispositionParam::Filename(name.into())],
        })
        .insert_header(("Cache-Control", "no-store"))
        .body(body)
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MtlsInfo {
    #[schema(value_type = Object)]
    certificate: CertInfo,
    days_left: i64,
    mode: AdminMode,
    /// Where the `.p12` is; absent when the certificate is hardware-bound.
    #[serde(skip_serializing_if = "Option::is_none")]
    download_url: Option<String>,
}

/// The admin client certificate: serial, validity, fingerprint, mode.
#[utoipa::path(tag = "certs", responses((status = 200, body = MtlsInfo)))]
#[get("/certs/mtls")]
pub async fn mtls_info(state: web::Data<AppState>, _admin: Admin, base: BasePath) -> Result<HttpResponse, ApiError> {
    let app::certs::AuthMode { mode, certificate, .. } = app::certs::admin_auth_mode(&state).await?;
    let days_left = (certificate.not_after - OffsetDateTime::now_utc()).whole_days();
    let download_url = (mode == AdminMode::P12).then(|| format!("{}/api/certs/mtls/download", base.0));
    Ok(HttpResponse::Ok().json(MtlsInfo { certificate, days_left, mode, download_url }))
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuthModeResponse {
    /// `p12`: the key was made here and downloads as `admin.p12`;
    /// `hardware-bound`: the key lives in the operator's hardware key store.
    mode: AdminMode,
    /// When the certificate was bound to a hardware key.
    #[serde(with = "time::serde::rfc3339::option", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    since: Option<OffsetDateTime>,
    #[schema(value_type = Object)]
    certificate: CertInfo,
}

/// Which kind of admin certificate is in force.
#[utoipa::path(tag = "certs", responses((status = 200, body = AuthModeResponse)))]
#[get("/certs/admin/auth-mode")]
pub async fn admin_auth_mode(state: web::Data<AppState>, _admin: Admin) -> Result<HttpResponse, ApiError> {
    let app::certs::AuthMode { mode, since, certificate } = app::certs::admin_auth_mode(&state).await?;
    Ok(HttpResponse::Ok().json(AuthModeResponse { mode, since, certificate }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HardwareCsr {
    /// PEM certificate signing request for a key made in a hardware key
    /// store: ECDSA P-256 or P-384, Ed25519, or RSA of 2048 bits or more.
    /// Only its key is used; the certificate is always `CN=admin`.
    csr: String,
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HardwareBoundResponse {
    mode: AdminMode,
    /// The new admin certificate (PEM), to import beside the hardware key.
    certificate: String,
    /// The Portico CA (PEM) that signed it.
    ca_certificate: String,
    #[schema(value_type = Object)]
    admin: CertInfo,
    /// The certificate that stopped working.
    revoked_serial: String,
}

/// Binds the admin certificate to a hardware key: issues it for the CSR's
/// key, revokes the certificate in force at once (this request is its
/// last), and deletes the `.p12`; from then on `/api/certs/mtls/download`
/// and rotation answer 409. Sent again with another key's CSR, it moves the
/// binding to that key.
#[utoipa::path(tag = "certs", request_body = HardwareCsr,
    responses((status = 200, body = HardwareBoundResponse), (status = 400)))]
#[post("/certs/admin/upgrade-to-hardware-bound")]
pub async fn admin_upgrade(
    state: web::Data<AppState>,
    admin: Admin,
    body: ApiJson<HardwareCsr>,
) -> Result<HttpResponse, ApiError> {
    let bound = app::certs::bind_admin(&state, &admin.0, body.0.csr).await?;
    let ca_certificate = pki_call(&state.pki, |p| p.ca_pem()).await?;
    Ok(HttpResponse::Ok().json(HardwareBoundResponse {
        mode: AdminMode::HardwareBound,
        certificate: bound.cert_pem,
        ca_certificate,
        admin: bound.new,
        revoked_serial: bound.old.serial,
    }))
}

/// The admin `.p12` bundle (legacy encryption that browsers and Keychain import).
#[utoipa::path(tag = "certs",
    responses((status = 200, content_type = "application/x-pkcs12", body = Vec<u8>), (status = 409)))]
#[get("/certs/mtls/download")]
pub async fn mtls_download(state: web::Data<AppState>, admin: Admin) -> Result<HttpResponse, ApiError> {
    let bytes = crate::app::certs::admin_p12(&state, &admin.0).await?;
    Ok(attachment("portico-admin.p12", "application/x-pkcs12", bytes))
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RotateResponse {
    #[schema(value_type = Object)]
    old: CertInfo,
    #[schema(value_type = Object)]
    new: CertInfo,
    /// Password of the new `.p12`, shown this once.
    p12_password: String,
}

/// New admin key and serial; the old certificate stops working at once.
#[utoipa::path(tag = "certs", responses((status = 200, body = RotateResponse), (status = 409)))]
#[post("/certs/mtls/rotate")]
pub async fn mtls_rotate(state: web::Data<AppState>, admin: Admin) -> Result<HttpResponse, ApiError> {
    let crate::app::certs::Rotated { old, new, p12_password } =
        crate::app::certs::rotate_admin(&state, &admin.0).await?;
    Ok(HttpResponse::Ok().json(RotateResponse { old, new, p12_password }))
}

/// Every agent with its capabilities and current certificate.
#[utoipa::path(tag = "certs", responses((status = 200, body = Vec<Object>)))]
#[get("/certs/agent")]
pub async fn agent_list(state: web::Data<AppState>, _admin: Admin) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(state.store.agents().await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentRequest {
    /// Lowercase letters, digits and hyphens; the certificate CN becomes `agent:<label>`.
    label: String,
    capabilities: Vec<String>,
}

/// Issues an agent certificate generated here; key and `.p12` are returned once.
#[utoipa::path(tag = "certs", request_body = AgentRequest, responses((status = 201, body = IssuedAgentCert), (status = 400), (status = 409)))]
#[post("/certs/agent")]
pub async fn agent_create(
    state: web::Data<AppState>,
    admin: Admin,
    body: ApiJson<AgentRequest>,
) -> Result<HttpResponse, ApiError> {
    let AgentRequest { label, capabilities } = body.0;
    let issued = app::agents::issue(&state, &admin.0.actor(), &label, &capabilities).await?;
    Ok(HttpResponse::Created().json(issued))
}

/// A new enrollment token with the lines that use it.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GrantView {
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub grant: EnrollmentGrant,
    /// The one line (as root) that installs, enrolls and starts the agent.
    pub install: String,
    /// `portico agent enroll …` where the binary is installed already.
    pub enroll: String,
}

/// Creates a one-time enrollment token (256 bits, expiring, single use).
#[utoipa::path(tag = "certs", request_body = AgentRequest, responses((status = 201, body = GrantView), (status = 400), (status = 409)))]
#[post("/certs/agent/enroll")]
pub async fn agent_enroll_token(
    state: web::Data<AppState>,
    admin: Admin,
    body: ApiJson<AgentRequest>,
) -> Result<HttpResponse, ApiError> {
    let AgentRequest { label, capabilities } = body.0;
    let grant = app::agents::enrollment_token(&state, &admin.0.actor(), &label, &capabilities).await?;
    let panel = crate::downloads::panel_address(&state.settings, &state.store, state.public_ip()).await?;
    let (install, enroll) =
        (crate::downloads::install_line(&panel, &grant.token), crate::downloads::enroll_command(&panel, &grant.token));
    Ok(HttpResponse::Created().json(GrantView { grant, install, enroll }))
}

/// The agent's current certificate and the CA, as PEM.
#[utoipa::path(tag = "certs", params(("label" = String, Path)), responses((status = 200, content_type = "application/x-pem-file", body = String), (status = 404)))]
#[get("/certs/agent/{label}/download")]
pub async fn agent_download(
    state: web::Data<AppState>,
    _admin: Admin,
    label: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let label = app::agents::label(&label)?;
    let agent =
        state.store.agent(label.to_string()).await?.ok_or_else(|| ApiError::NotFound("No such agent".into()))?;
    let serial = agent.serial.ok_or_else(|| ApiError::NotFound("Agent has no certificate".into()))?;
    let pem =
        pki_call(&state.pki, move |p| Ok(format!("{}{}", p.agent_cert_pem(label.as_str(), &serial)?, p.ca_pem()?)))
            .await?;
    Ok(attachment(&format!("portico-agent-{}.pem", agent.label), "application/x-pem-file", pem.into_bytes()))
}

/// Revokes the agent and all its certificates; it is refused from now on.
#[utoipa::path(tag = "certs", params(("label" = String, Path)), responses((status = 200, body = Object), (status = 404)))]
#[delete("/certs/agent/{label}")]
pub async fn agent_revoke(
    state: web::Data<AppState>,
    admin: Admin,
    label: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(app::agents::revoke(&state, &admin.0.actor(), &label).await?))
}

/// Removes a revoked agent from the list, with its certificate records; its
/// certificates stay refused. 409 for an active agent (revoke it first) or
/// one that still has tunnels.
#[utoipa::path(tag = "certs", params(("label" = String, Path)),
    responses((status = 200, body = Object), (status = 404), (status = 409)))]
#[delete("/agents/{label}")]
pub async fn agent_remove(
    state: web::Data<AppState>,
    admin: Admin,
    label: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(app::agents::remove(&state, &admin.0.actor(), &label).await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CapabilitiesRequest {
    capabilities: Vec<String>,
}

/// Replaces the agent's capabilities; effective on its next request.
#[utoipa::path(tag = "certs", params(("label" = String, Path)), request_body = CapabilitiesRequest,
    responses((status = 200, body = Object), (status = 400), (status = 404)))]
#[patch("/certs/agent/{label}/capabilities")]
pub async fn agent_capabilities(
    state: web::Data<AppState>,
    admin: Admin,
    label: web::Path<String>,
    body: ApiJson<CapabilitiesRequest>,
) -> Result<HttpResponse, ApiError> {
    let agent = app::agents::set_capabilities(&state, &admin.0.actor(), &label, &body.0.capabilities).await?;
    Ok(HttpResponse::Ok().json(agent))
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(mtls_info)
        .service(mtls_download)
        .service(mtls_rotate)
        .service(admin_auth_mode)
        .service(admin_upgrade)
        .service(agent_list)
        .service(agent_create)
        .service(agent_enroll_token)
        .service(agent_download)
        .service(agent_revoke)
        .service(agent_remove)
        .service(agent_capabilities);
}
