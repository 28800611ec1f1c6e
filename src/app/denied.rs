//! Requests an HTTP surface refused, recorded in the audit log: the panel's
//! middleware and extractors decide the refusal and call one of these.

use std::net::IpAddr;

use serde_json::json;

use super::App;
use crate::audit::Outcome;
use crate::identity::Denied;

/// A request on the ingress listener from a peer that is not one of
/// `ingress.trusted_peers`; `path` is already masked.
pub async fn untrusted_peer(app: &App, peer: Option<IpAddr>, path: &str) {
    let actor = format!("peer:{}", peer.map(|p| p.to_string()).unwrap_or_default());
    app.audit(&actor, "ingress.refused", path, Outcome::Denied, None).await;
}

/// A caller refused for its credential or for what it may do; `path` is
/// already masked.
pub async fn request_denied(app: &App, actor: &str, path: &str, denied: &Denied) {
    let details = json!({ "reason": denied.to_string() });
    app.audit(actor, "request.denied", path, Outcome::Denied, Some(details)).await;
}

/// A browser's state-changing request from another site (`reason` says
/// which header gave it away); `path` is already masked.
pub async fn cross_site(app: &App, actor: &str, path: &str, method: &str, origin: Option<&str>, reason: &str) {
    let details = json!({ "method": method, "origin": origin, "reason": reason });
    app.audit(actor, "request.cross_site", path, Outcome::Denied, Some(details)).await;
}

/// A UI form post without a valid CSRF token.
pub async fn csrf_refused(app: &App, actor: &str, path: &str) {
    app.audit(actor, "ui.csrf_refused", path, Outcome::Denied, None).await;
}
