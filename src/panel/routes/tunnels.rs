//! `/api/tunnels` and `/api/agents` (with the relay's live status).

use actix_web::{HttpResponse, delete, get, patch, post, web};
use serde::Serialize;

use crate::app::Kept;
use crate::audit::{self, Outcome};
use crate::identity::Identity;
use crate::panel::AppState;
use crate::panel::auth::{Admin, Cap, TunnelsRead, TunnelsWrite};
use crate::panel::error::ApiError;
use crate::panel::extract::ApiJson;
use crate::store::{Agent, AgentStatus, Tunnel, TunnelFields};
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
    let (tunnel, kept) = create_applied(&state, &who.0, fields).await?;
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

/// Creates a tunnel and makes nginx serve it (the row is removed again when
/// nginx refuses or a working name stops serving), then audits. The API and
/// the web UI both call this.
pub async fn create_applied(
    state: &AppState,
    who: &Identity,
    fields: TunnelFields,
) -> Result<(Tunnel, Kept), ApiError> {
    let before = state.health_before().await;
    let tunnel = tunnels::create(&state.store, who, fields).await?;
    let undo = || async {
        let _ = state.store.delete_tunnel(tunnel.id).await;
    };
    let kept = state
        .apply_guarded("tunnel.create", &who.actor(), &tunnel.name, &format!("tunnel:{}", tunnel.id), before, undo)
        .await?;
    audit::record(&state.store, &who.actor(), "tunnel.create", &tunnel.name, Outcome::Success, None).await;
    state.certs.name_added();
    Ok((tunnel, kept))
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
    let (tunnel, kept) = update_applied(&state, &who.0, id.into_inner(), body.0).await?;
    Ok(HttpResponse::Ok().json(with_warning(&tunnel, &kept)))
}

/// Applies a patch and the nginx change (undone when nginx refuses or a
/// working name stops serving), then audits the before and after. The API
/// and the web UI both call this.
pub async fn update_applied(
    state: &AppState,
    who: &Identity,
    id: i64,
    patch: TunnelPatch,
) -> Result<(Tunnel, Kept), ApiError> {
    let before = state.health_before().await;
    let (old, new) = tunnels::update(&state.store, who, id, patch).await?;
    let undo = || async {
        let _ = state.store.update_tunnel(old.id, TunnelFields::from(&old), old.updated_at).await;
    };
    let kept =
        state.apply_guarded("tunnel.update", &who.actor(), &new.name, &format!("tunnel:{id}"), before, undo).await?;
    let details = serde_json::json!({ "before": TunnelFieldsJson::from(&old), "after": TunnelFieldsJson::from(&new) });
    audit::record(&state.store, &who.actor(), "tunnel.update", &new.name, Outcome::Success, Some(details)).await;
    if new.name != old.name {
        state.certs.name_added();
    }
    Ok((new, kept))
}

/// Deletes a tunnel.
#[utoipa::path(tag = "tunnels", params(("id" = i64, Path)), responses((status = 200, body = Object), (status = 404)))]
#[delete("/tunnels/{id}")]
pub async fn remove(
    state: web::Data<AppState>,
    who: Cap<TunnelsWrite>,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(delete_applied(&state, &who.0, id.into_inner()).await?))
}

/// Deletes a tunnel and applies nginx (the row comes back when nginx
/// refuses), then audits. The API and the web UI both call this.
pub async fn delete_applied(state: &AppState, who: &Identity, id: i64) -> Result<Tunnel, ApiError> {
    let before = state.health_before().await;
    let tunnel = tunnels::delete(&state.store, who, id).await?;
    let undo = || async {
        let _ = state.store.restore_tunnel(tunnel.clone()).await;
    };
    state.apply_guarded("tunnel.delete", &who.actor(), &tunnel.name, &format!("tunnel:{id}"), before, undo).await?;
    audit::record(&state.store, &who.actor(), "tunnel.delete", &tunnel.name, Outcome::Success, None).await;
    Ok(tunnel)
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
    Ok(HttpResponse::Ok().json(setup_for(&state, &tunnel).await?))
}

/// The agent setup of a tunnel, addressed to this panel (by name once its
/// certificate exists, else by IP, pinned either way).
pub async fn setup_for(state: &AppState, tunnel: &Tunnel) -> Result<AgentSetup, ApiError> {
    let panel = crate::downloads::panel_address(&state.settings, &state.store, state.public_ip()).await?;
    Ok(tunnels::agent_setup(&tunnel.agent, &panel))
}

/// An agent with the relay's view of it (`status` is null when offline).
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AgentView {
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub agent: Agent,
    pub online: bool,
    pub status: Option<AgentStatus>,
    /// When the relay last heard from the agent, also after it went offline;
    /// absent when it never connected.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_contact: Option<time::OffsetDateTime>,
    /// Round trip of the relay's last answered WebSocket ping to the agent
    /// (through nginx), milliseconds; the one measured last when offline.
    pub rtt_ms: Option<f64>,
}

/// Every agent with the relay's view of it (the API's and the Agents page's).
pub async fn agent_views(store: &crate::store::Store) -> Result<Vec<AgentView>, crate::store::StoreError> {
    let status = store.relay_status().await?;
    let contacts = store.agent_contacts().await?;
    Ok(store
        .agents()
        .await?
        .into_iter()
        .map(|agent| {
            let s = status.iter().find(|s| s.label == agent.label).cloned();
            let c = contacts.iter().find(|c| c.label == agent.label);
            let last_contact = s.as_ref().and_then(|s| s.last_contact).or(c.map(|c| c.last_contact));
            let rtt_ms = s.as_ref().and_then(|s| s.rtt_ms).or(c.and_then(|c| c.rtt_ms));
            AgentView { online: s.is_some(), status: s, last_contact, rtt_ms, agent }
        })
        .collect())
}

/// Every agent with its connection status, last contact and round trip.
#[utoipa::path(tag = "tunnels", responses((status = 200, body = Vec<AgentView>)))]
#[get("/agents")]
pub async fn agents(state: web::Data<AppState>, _admin: Admin) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(agent_views(&state.store).await?))
}

/// The writable fields as the audit log records them.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TunnelFieldsJson {
    name: String,
    agent: String,
    target: String,
    enabled: bool,
    access: String,
}

impl From<&crate::store::Tunnel> for TunnelFieldsJson {
    fn from(t: &crate::store::Tunnel) -> Self {
        TunnelFieldsJson {
            name: t.name.clone(),
            agent: t.agent.clone(),
            target: t.target.clone(),
            enabled: t.enabled,
            access: t.access.clone(),
        }
    }
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(list).service(create).service(update).service(remove).service(agent_config).service(agents);
}
