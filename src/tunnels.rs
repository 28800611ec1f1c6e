//! Tunnels: validation, ownership (an agent manages only its own tunnels),
//! and the agent setup snippets.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::identity::Identity;
use crate::model::FieldError;
use crate::model::{Access, RESERVED_NAMES};
use crate::store::{AgentStatus, Store, StoreError, Tunnel, TunnelFields};

const MAX_DESCRIPTION: usize = 500;

#[derive(Debug, thiserror::Error)]
pub enum TunnelsError {
    #[error("invalid input")]
    Invalid(Vec<FieldError>),
    #[error("This tunnel belongs to another agent")]
    NotYours,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A tunnel with its live state.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TunnelView {
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub tunnel: Tunnel,
    /// Enabled and its agent is connected to the relay.
    pub online: bool,
    /// The last probe of its public name (absent before the first probe and
    /// for disabled tunnels).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health: Option<crate::probe::NameHealth>,
}

/// Sets each view's `health` from a probe report.
pub fn with_health(mut views: Vec<TunnelView>, report: Option<&crate::probe::Report>) -> Vec<TunnelView> {
    if let Some(r) = report {
        for v in &mut views {
            v.health = r.get(&format!("tunnel:{}", v.tunnel.id)).cloned();
        }
    }
    views
}

/// Create or full replace. Absent optional fields take defaults.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TunnelInput {
    pub name: String,
    /// Agent label; an agent caller may omit it (defaults to itself).
    pub agent: Option<String>,
    /// `host:port` as the agent sees it.
    pub target: String,
    pub enabled: Option<bool>,
    /// `public` (Public: anyone with the link), `authenticated` (Signed-in
    /// visitors: any visitor user) or `restricted` (Restricted: only
    /// `allowedUsers` and `allowedGroups`).
    pub access: Option<String>,
    pub allowed_users: Option<Vec<String>>,
    pub allowed_groups: Option<Vec<String>>,
    pub description: Option<String>,
}

/// A partial update.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TunnelPatch {
    pub name: Option<String>,
    pub agent: Option<String>,
    pub target: Option<String>,
    pub enabled: Option<bool>,
    pub access: Option<String>,
    pub allowed_users: Option<Vec<String>>,
    pub allowed_groups: Option<Vec<String>>,
    pub description: Option<String>,
}

/// The agent label a caller is limited to; `None` for admins and API keys.
pub fn own_label(who: &Identity) -> Option<&str> {
    match who {
        Identity::Agent { label, .. } => Some(label),
        _ => None,
    }
}

/// Checks `host:port`: a DNS name, IPv4 or `[IPv6]` host and a port 1–65535.
pub fn valid_target(t: &str) -> bool {
    let Some((host, port)) = t.rsplit_once(':') else { return false };
    if !matches!(port.parse::<u16>(), Ok(p) if p != 0) || port.starts_with('+') {
        return false;
    }
    if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return v6.parse::<std::net::Ipv6Addr>().is_ok();
    }
    if host.parse::<std::net::Ipv4Addr>().is_ok() {
        return true;
    }
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
        && !host.bytes().all(|b| b.is_ascii_digit() || b == b'.')
}

/// Validates every field; collects all errors.
pub fn validate(f: &TunnelFields) -> Result<(), TunnelsError> {
    let TunnelFields { name, agent, target, enabled: _, access, allowed_users, allowed_groups, description } = f;
    let mut e = Vec::new();
    if !crate::model::is_label(name) {
        e.push(FieldError::new("name", "Use a lowercase DNS label: 1–63 letters, digits or hyphens"));
    } else if RESERVED_NAMES.contains(&name.as_str()) {
        e.push(FieldError::new("name", format!("'{name}' is reserved")));
    }
    if !crate::model::is_label(agent) {
        e.push(FieldError::new("agent", "Give the label of an enrolled agent"));
    }
    if !valid_target(target) {
        e.push(FieldError::new("target", "Give host:port with a port from 1 to 65535"));
    }
    if Access::parse(access).is_none() {
        e.push(FieldError::new("access", "Choose public, authenticated or restricted"));
    }
    for (field, list) in [("allowedUsers", allowed_users), ("allowedGroups", allowed_groups)] {
        if list.iter().any(|u| u.is_empty() || u.len() > 64 || u.chars().any(char::is_whitespace)) {
            e.push(FieldError::new(field, "Use names without spaces, 1–64 characters each"));
        }
    }
    if Access::parse(access) != Some(Access::Restricted) && (!allowed_users.is_empty() || !allowed_groups.is_empty()) {
        e.push(FieldError::new("access", "Allowed users and groups need access 'restricted'"));
    }
    if description.chars().count() > MAX_DESCRIPTION {
        e.push(FieldError::new("description", format!("Use at most {MAX_DESCRIPTION} characters")));
    }
    if e.is_empty() { Ok(()) } else { Err(TunnelsError::Invalid(e)) }
}

impl TunnelInput {
    /// The fields to store: absent ones take their defaults (enabled,
    /// `authenticated`, no lists, no description; an agent caller's own label).
    pub fn into_fields(self, who: &Identity) -> TunnelFields {
        let TunnelInput { name, agent, target, enabled, access, allowed_users, allowed_groups, description } = self;
        TunnelFields {
            name,
            agent: agent.or_else(|| own_label(who).map(str::to_string)).unwrap_or_default(),
            target,
            enabled: enabled.unwrap_or(true),
            access: access.unwrap_or_else(|| "authenticated".into()),
            allowed_users: allowed_users.unwrap_or_default(),
            allowed_groups: allowed_groups.unwrap_or_default(),
            description: description.unwrap_or_default(),
        }
    }
}

impl TunnelPatch {
    /// `f` with every field the patch sets replaced.
    pub fn apply(self, f: TunnelFields) -> TunnelFields {
        let TunnelPatch { name, agent, target, enabled, access, allowed_users, allowed_groups, description } = self;
        TunnelFields {
            name: name.unwrap_or(f.name),
            agent: agent.unwrap_or(f.agent),
            target: target.unwrap_or(f.target),
            enabled: enabled.unwrap_or(f.enabled),
            access: access.unwrap_or(f.access),
            allowed_users: allowed_users.unwrap_or(f.allowed_users),
            allowed_groups: allowed_groups.unwrap_or(f.allowed_groups),
            description: description.unwrap_or(f.description),
        }
    }
}

/// A full replacement: every field set.
impl From<TunnelFields> for TunnelPatch {
    fn from(f: TunnelFields) -> Self {
        let TunnelFields { name, agent, target, enabled, access, allowed_users, allowed_groups, description } = f;
        TunnelPatch {
            name: Some(name),
            agent: Some(agent),
            target: Some(target),
            enabled: Some(enabled),
            access: Some(access),
            allowed_users: Some(allowed_users),
            allowed_groups: Some(allowed_groups),
            description: Some(description),
        }
    }
}

/// Checks the fields, the caller's right to them, and that the agent exists.
async fn check(store: &Store, who: &Identity, f: &TunnelFields) -> Result<(), TunnelsError> {
    validate(f)?;
    if own_label(who).is_some_and(|me| me != f.agent) {
        return Err(TunnelsError::NotYours);
    }
    if store.agent(f.agent.clone()).await?.is_none_or(|a| a.revoked_at.is_some()) {
        return Err(TunnelsError::Invalid(vec![FieldError::new(
            "agent",
            format!("There is no active agent '{}'", f.agent),
        )]));
    }
    Ok(())
}

async fn views(store: &Store, tunnels: Vec<Tunnel>) -> Result<Vec<TunnelView>, TunnelsError> {
    let online: Vec<AgentStatus> = store.relay_status().await?;
    Ok(tunnels
        .into_iter()
        .map(|t| {
            let on = t.enabled && online.iter().any(|s| s.label == t.agent);
            TunnelView { tunnel: t, online: on, health: None }
        })
        .collect())
}

/// The tunnels the caller may see.
pub async fn list(store: &Store, who: &Identity) -> Result<Vec<TunnelView>, TunnelsError> {
    let all = store.tunnels().await?;
    let mine = all.into_iter().filter(|t| own_label(who).is_none_or(|me| me == t.agent)).collect();
    views(store, mine).await
}

/// One tunnel the caller may see; another agent's tunnel is "not found".
pub async fn get(store: &Store, who: &Identity, id: i64) -> Result<Tunnel, TunnelsError> {
    let t = store.tunnel(id).await?.ok_or(StoreError::NotFound)?;
    if own_label(who).is_some_and(|me| me != t.agent) {
        return Err(TunnelsError::Store(StoreError::NotFound));
    }
    Ok(t)
}

pub async fn create(store: &Store, who: &Identity, f: TunnelFields) -> Result<Tunnel, TunnelsError> {
    check(store, who, &f).await?;
    Ok(store.insert_tunnel(f, OffsetDateTime::now_utc()).await?)
}

/// Applies a patch; returns the old and the new tunnel.
pub async fn update(
    store: &Store,
    who: &Identity,
    id: i64,
    patch: TunnelPatch,
) -> Result<(Tunnel, Tunnel), TunnelsError> {
    let old = get(store, who, id).await?;
    let f = patch.apply(TunnelFields::from(&old));
    check(store, who, &f).await?;
    let new = store.update_tunnel(id, f, OffsetDateTime::now_utc()).await?;
    Ok((old, new))
}

pub async fn delete(store: &Store, who: &Identity, id: i64) -> Result<Tunnel, TunnelsError> {
    get(store, who, id).await?;
    Ok(store.delete_tunnel(id).await?)
}

/// Install, enroll and run commands and service definitions for a tunnel's agent.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AgentSetup {
    pub agent: String,
    /// The one line (as root) that downloads, verifies, installs, enrolls and
    /// starts the agent; `<token>` stands for a one-time token.
    pub install: String,
    /// Enrolling by hand where `portico` is installed already.
    pub enroll: String,
    pub run: String,
    pub systemd_unit: String,
    pub launchd_plist: String,
}

pub fn agent_setup(agent: &str, panel: &crate::downloads::PanelAddress) -> AgentSetup {
    use crate::downloads::{self, DEFAULT_NAME, DEFAULT_PREFIX};
    let bin = format!("{DEFAULT_PREFIX}/bin/portico");
    let token = "<token>";
    AgentSetup {
        agent: agent.to_string(),
        install: downloads::install_line(panel, token),
        enroll: downloads::enroll_command(panel, token),
        run: format!("{bin} agent --config-dir {} run", downloads::config_dir(DEFAULT_NAME)),
        systemd_unit: downloads::systemd_unit(DEFAULT_NAME, &bin),
        launchd_plist: downloads::launchd_plist(DEFAULT_NAME, &bin),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(name: &str, target: &str) -> TunnelFields {
        TunnelFields {
            name: name.into(),
            agent: "home".into(),
            target: target.into(),
            enabled: true,
            access: "public".into(),
            allowed_users: vec![],
            allowed_groups: vec![],
            description: String::new(),
        }
    }

    #[test]
    fn validation_table() {
        for (name, target, ok) in [
            ("app", "127.0.0.1:8080", true),
            ("my-app2", "nas.lan:443", true),
            ("app", "[::1]:80", true),
            ("app", "localhost:3000", true),
            ("App", "127.0.0.1:80", false),
            ("-app", "127.0.0.1:80", false),
            ("panel", "127.0.0.1:80", false),
            ("www", "127.0.0.1:80", false),
            ("a.b", "127.0.0.1:80", false),
            ("app", "127.0.0.1:0", false),
            ("app", "127.0.0.1:65536", false),
            ("app", "127.0.0.1", false),
            ("app", "::1:80", false),
            ("app", "host name:80", false),
            ("app", "http://x:80", false),
            ("app", "999.1.1.1:80", false),
            ("app", ":80", false),
        ] {
            assert_eq!(validate(&fields(name, target)).is_ok(), ok, "{name} {target}");
        }
        let mut f = fields("app", "127.0.0.1:80");
        f.allowed_users = vec!["alice".into()];
        assert!(validate(&f).is_err(), "users need restricted access");
        f.access = "restricted".into();
        assert!(validate(&f).is_ok());
        f.access = "secret".into();
        assert!(validate(&f).is_err());
    }
}
