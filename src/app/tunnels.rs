//! Tunnels: create, change and delete, each applied to nginx and proved by
//! the probe (the store change is undone when nginx refuses it or a working
//! name stops serving), then audited; and the agent setup of a tunnel. The
//! REST API (`panel::routes::tunnels`) and the Tunnels pages
//! (`panel::ui::tunnels`) both call these. Validation and ownership are in
//! the `tunnels` domain module.

use super::{App, Error, Kept};
use crate::audit::Outcome;
use crate::identity::Identity;
use crate::store::{Tunnel, TunnelFields};
use crate::tunnels::{self, AgentSetup, TunnelPatch};

/// Creates a tunnel and makes nginx serve it (the row is removed again when
/// nginx refuses or a working name stops serving), then audits
/// `tunnel.create`.
pub async fn create(app: &App, who: &Identity, fields: TunnelFields) -> Result<(Tunnel, Kept), Error> {
    let before = app.health_before().await;
    let tunnel = tunnels::create(&app.store, who, fields).await?;
    let undo = || async {
        let _ = app.store.delete_tunnel(tunnel.id).await;
    };
    let key = format!("tunnel:{}", tunnel.id);
    let kept = app.apply_guarded("tunnel.create", &who.actor(), &tunnel.name, &key, before, undo).await?;
    app.audit(&who.actor(), "tunnel.create", &tunnel.name, Outcome::Success, None).await;
    app.certs.name_added();
    Ok((tunnel, kept))
}

/// Applies a patch and the nginx change (undone when nginx refuses or a
/// working name stops serving), then audits `tunnel.update` with the fields
/// before and after.
pub async fn update(app: &App, who: &Identity, id: i64, patch: TunnelPatch) -> Result<(Tunnel, Kept), Error> {
    let before = app.health_before().await;
    let (old, new) = tunnels::update(&app.store, who, id, patch).await?;
    let undo = || async {
        let _ = app.store.update_tunnel(old.id, TunnelFields::from(&old), old.updated_at).await;
    };
    let kept =
        app.apply_guarded("tunnel.update", &who.actor(), &new.name, &format!("tunnel:{id}"), before, undo).await?;
    let details = serde_json::json!({ "before": TunnelFields::from(&old), "after": TunnelFields::from(&new) });
    app.audit(&who.actor(), "tunnel.update", &new.name, Outcome::Success, Some(details)).await;
    if new.name != old.name {
        app.certs.name_added();
    }
    Ok((new, kept))
}

/// Deletes a tunnel and applies nginx (the row comes back when nginx
/// refuses or a working name stops serving), then audits `tunnel.delete`.
pub async fn delete(app: &App, who: &Identity, id: i64) -> Result<Tunnel, Error> {
    let before = app.health_before().await;
    let tunnel = tunnels::delete(&app.store, who, id).await?;
    let undo = || async {
        let _ = app.store.restore_tunnel(tunnel.clone()).await;
    };
    app.apply_guarded("tunnel.delete", &who.actor(), &tunnel.name, &format!("tunnel:{id}"), before, undo).await?;
    app.audit(&who.actor(), "tunnel.delete", &tunnel.name, Outcome::Success, None).await;
    Ok(tunnel)
}

/// The agent setup of a tunnel, addressed to this panel (by name once its
/// certificate exists, else by IP, pinned either way).
pub async fn setup(app: &App, tunnel: &Tunnel) -> Result<AgentSetup, Error> {
    let panel = crate::downloads::panel_address(&app.settings, &app.store, app.public_ip()).await?;
    Ok(tunnels::agent_setup(&tunnel.agent, &panel))
}
