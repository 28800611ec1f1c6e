//! Agents: enrollment (one-time tokens, or a certificate generated here),
//! enrolling with a token, capabilities, allowed sites, revoke and removal,
//! each audited; and the agents as the relay sees them. The REST API
//! (`panel::routes::certs`, `enroll`, `tunnels`, `sites`) and the Agents
//! pages (`panel::ui::agents`) both call these. Certificates and tokens are
//! made in the `agents` domain module.

use serde::Serialize;
use time::OffsetDateTime;

use super::{App, Error};
use crate::agents::{self, Enrolled, EnrollmentGrant, IssuedAgentCert};
use crate::audit::Outcome;
use crate::model::Label;
use crate::store::{Agent, AgentStatus, StoreError};

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

/// Every agent with the relay's view of it (`/api/agents` and the Agents page).
pub async fn views(app: &App) -> Result<Vec<AgentView>, Error> {
    let status = app.store.relay_status().await?;
    let contacts = app.store.agent_contacts().await?;
    Ok(app
        .store
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

/// An agent label from a URL; one that cannot be a label names no agent.
pub fn label(raw: &str) -> Result<Label, Error> {
    Label::parse(raw).ok_or_else(|| Error::NotFound("No such agent".into()))
}

/// Exchanges a one-time token and a CSR for a signed agent certificate.
/// Audits `agent.enroll` as the agent, or as `anonymous` (denied, with the
/// reason) when the token or the CSR is refused.
pub async fn enroll(app: &App, token: &str, csr: String) -> Result<Enrolled, Error> {
    if token.is_empty() || token.len() > 128 {
        return Err(Error::field("token", "The token is missing or malformed"));
    }
    if csr.len() > 16 * 1024 {
        return Err(Error::field("csr", "CSR is too large"));
    }
    match agents::enroll(app.pki.clone(), &app.store, token, csr, OffsetDateTime::now_utc()).await {
        Ok(done) => {
            app.audit(&format!("agent:{}", done.label), "agent.enroll", &done.label, Outcome::Success, None).await;
            Ok(done)
        }
        Err(e) => {
            let details = serde_json::json!({ "reason": e.to_string() });
            app.audit("anonymous", "agent.enroll", "", Outcome::Denied, Some(details)).await;
            Err(e.into())
        }
    }
}

/// Issues an agent certificate generated here (key and `.p12` returned
/// once), audited as `cert.agent.create`.
pub async fn issue(app: &App, actor: &str, label: &str, capabilities: &[String]) -> Result<IssuedAgentCert, Error> {
    let caps = agents::validate(Some(label), capabilities)?;
    let issued = agents::issue(app.pki.clone(), &app.store, label.to_string(), caps).await?;
    let details = serde_json::json!({ "serial": issued.agent.serial, "capabilities": issued.agent.capabilities });
    app.audit(actor, "cert.agent.create", label, Outcome::Success, Some(details)).await;
    Ok(issued)
}

/// Creates a one-time enrollment token (256 bits, expiring, single use),
/// audited as `cert.agent.enroll_token`.
pub async fn enrollment_token(
    app: &App,
    actor: &str,
    label: &str,
    capabilities: &[String],
) -> Result<EnrollmentGrant, Error> {
    let caps = agents::validate(Some(label), capabilities)?;
    let minutes = app.settings.pki.enroll_token_minutes;
    let grant = agents::create_enrollment(&app.store, label.to_string(), caps, minutes).await?;
    let details = serde_json::json!({ "capabilities": capabilities, "expiresAt": grant.expires_at.unix_timestamp() });
    app.audit(actor, "cert.agent.enroll_token", label, Outcome::Success, Some(details)).await;
    Ok(grant)
}

/// Revokes the agent and all its certificates (refused from now on),
/// audited as `cert.agent.revoke`.
pub async fn revoke(app: &App, actor: &str, raw_label: &str) -> Result<Agent, Error> {
    let label = label(raw_label)?.to_string();
    let agent = app.store.revoke_agent(label.clone(), OffsetDateTime::now_utc()).await.map_err(|e| match e {
        StoreError::NotFound => Error::NotFound("No such active agent".into()),
        other => other.into(),
    })?;
    app.audit(actor, "cert.agent.revoke", &label, Outcome::Success, None).await;
    Ok(agent)
}

/// Removes a revoked agent from the list, with its certificate records (its
/// certificates stay refused), audited as `cert.agent.remove`. An active
/// agent or one that still has tunnels is a conflict.
pub async fn remove(app: &App, actor: &str, raw_label: &str) -> Result<Agent, Error> {
    let label = label(raw_label)?.to_string();
    let agent = app.store.remove_agent(label.clone()).await.map_err(|e| match e {
        StoreError::NotFound => Error::NotFound("No such agent".into()),
        other => other.into(),
    })?;
    let details =
        serde_json::json!({ "serial": agent.serial, "revokedAt": agent.revoked_at.map(|t| t.unix_timestamp()) });
    app.audit(actor, "cert.agent.remove", &label, Outcome::Success, Some(details)).await;
    Ok(agent)
}

/// Replaces the agent's capabilities (effective on its next request),
/// audited as `cert.agent.capabilities`.
pub async fn set_capabilities(
    app: &App,
    actor: &str,
    raw_label: &str,
    capabilities: &[String],
) -> Result<Agent, Error> {
    let label = label(raw_label)?.to_string();
    let caps = agents::validate(None, capabilities)?;
    let caps: Vec<String> = caps.iter().map(|c| c.as_str().to_string()).collect();
    let agent = app.store.set_agent_capabilities(label.clone(), caps.clone()).await?;
    let details = serde_json::json!({ "capabilities": caps });
    app.audit(actor, "cert.agent.capabilities", &label, Outcome::Success, Some(details)).await;
    Ok(agent)
}

/// Replaces the sites an agent may manage (existing or future names),
/// audited as `agent.sites`.
pub async fn set_allowed_sites(app: &App, actor: &str, label: &str, sites: &[String]) -> Result<Agent, Error> {
    let names = crate::sites::validate_allowed(sites)?;
    let agent = app.store.set_agent_allowed_sites(label.to_string(), names.clone()).await?;
    let details = Some(serde_json::json!({ "sites": names }));
    app.audit(actor, "agent.sites", label, Outcome::Success, details).await;
    Ok(agent)
}
