//! `/api/tunnels` and `/api/agents` (with the relay's live status): thin
//! adapters over `app::tunnels` and `app::agents::views`.

use actix_web::{HttpResponse, delete, get, patch, post, web};

use crate::app::agents::AgentView;
use crate::app::{self, Kept};
use crate::panel::AppState;
use crate::panel::auth::{Admin, Cap, TunnelsRead, TunnelsWrite};
use crate::panel::error::ApiError;
use crate::panel::extract::ApiJson;
use crate::store::Tunnel;
use crate::tunnels::{self, AgentSetup, TunnelInput, TunnelPatch, TunnelView};

/// Tunnels the caller may see, each with `online`.
#[utoipa::path(tag = "tunnels", responses((status = 200, body = Vec<TunnelView>)))]
#[get("/tunnels")]
pub async fn list(state: web::Data<AppState>, who: Cap<TunnelsRead>) -> Result<HttpResponse, ApiError> {
    let views = tunnels::list(&state.store, &who.0).await?;
    Ok(HttpResponse::Ok().json(tunnels::with_health(views, state.health.get().as_deref())))
}

/// Creates a tunnel; the name must be unused (409 otherwise).
#[utoipa::path(tag = "tunnels", request_body = TunnelInput, responses((status = 201, body = Object), (status = 409)))]
#[post("/tunnels")]
pub async fn create(
    state: web::Data<AppState>,
    who: Cap<TunnelsWrite>,
    body: ApiJson<TunnelInput>,
) -> Result<HttpResponse, ApiError> {
    let fields = body.0.into_fields(&who.0);
    let (tunnel, kept) = app::tunnels::create(&state, &who.0, fields).await?;
    Ok(HttpResponse::Created().json(with_warning(&tunnel, &kept)))
}

/// The tunnel's JSON, plus `warning` when the change was kept although
/// names do not serve (they did not before either).
fn with_warning(tunnel: &Tunnel, kept: &Kept) -> serde_json::Value {
    let mut v = serde_json::to_value(tunnel).unwrap_or_default();
    if let (Some(obj), Some(w)) = (v.as_object_mut(), kept.warning()) {
        obj.insert("warning".into(), w.into());
    }
    v
}

/// Changes some fields of a tunnel.
#[utoipa::path(tag = "tunnels", params(("id" = i64, Path)), request_body = TunnelPatch,
    responses((status = 200, body = Object), (status = 404), (status = 409)))]
#[patch("/tunnels/{id}")]
pub async fn update(
    state: web::Data<AppState>,
    who: Cap<TunnelsWrite>,
    id: web::Path<i64>,
    body: ApiJson<TunnelPatch>,
) -> Result<HttpResponse, ApiError> {
    let (tunnel, kept) = app::tunnels::update(&state, &who.0, id.into_inner(), body.0).await?;
    Ok(HttpResponse::Ok().json(with_warning(&tunnel, &kept)))
}

/// Deletes a tunnel.
#[utoipa::path(tag = "tunnels", params(("id" = i64, Path)), responses((status = 200, body = Object), (status = 404)))]
#[delete("/tunnels/{id}")]
pub async fn remove(
    state: web::Data<AppState>,
    who: Cap<TunnelsWrite>,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(app::tunnels::delete(&state, &who.0, id.into_inner()).await?))
}

/// Commands, a systemd unit and a launchd plist to run this tunnel's agent.
#[utoipa::path(tag = "tunnels", params(("id" = i64, Path)), responses((status = 200, body = AgentSetup), (status = 404)))]
#[get("/tunnels/{id}/agent-config")]
pub async fn agent_config(
    state: web::Data<AppState>,
    who: Cap<TunnelsRead>,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let tunnel = tunnels::get(&state.store, &who.0, id.into_inner()).await?;
    Ok(HttpResponse::Ok().json(app::tunnels::setup(&state, &tunnel).await?))
}

/// Every agent with its connection status, last contact and round trip.
#[utoipa::path(tag = "tunnels", responses((status = 200, body = Vec<AgentView>)))]
#[get("/agents")]
pub async fn agents(state: web::Data<AppState>, _admin: Admin) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(app::agents::views(&state).await?))
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(list).service(create).service(update).service(remove).service(agent_config).service(agents);
}
