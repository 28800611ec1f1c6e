//! Who is calling, and what they may do. No HTTP here: the panel's
//! extractors turn headers into [`Facts`], this module decides.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Agent capabilities (DESIGN.md "Roles and capabilities").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
pub enum Capability {
    #[serde(rename = "tunnels:read")]
    TunnelsRead,
    #[serde(rename = "tunnels:write")]
    TunnelsWrite,
    #[serde(rename = "services:read")]
    ServicesRead,
    #[serde(rename = "services:write")]
    ServicesWrite,
    #[serde(rename = "system:read")]
    SystemRead,
    #[serde(rename = "sites:read")]
    SitesRead,
    #[serde(rename = "sites:write")]
    SitesWrite,
    /// Live service logs. Logs name users, addresses and paths, so this is
    /// never implied: an agent holds it only when granted explicitly, and of
    /// the API key scopes only `admin` carries it.
    #[serde(rename = "logs:read")]
    LogsRead,
}

impl Capability {
    pub const ALL: [Capability; 8] = [
        Capability::TunnelsRead,
        Capability::TunnelsWrite,
        Capability::ServicesRead,
        Capability::ServicesWrite,
        Capability::SystemRead,
        Capability::SitesRead,
        Capability::SitesWrite,
        Capability::LogsRead,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Capability::TunnelsRead => "tunnels:read",
            Capability::TunnelsWrite => "tunnels:write",
            Capability::ServicesRead => "services:read",
            Capability::ServicesWrite => "services:write",
            Capability::SystemRead => "system:read",
            Capability::SitesRead => "sites:read",
            Capability::SitesWrite => "sites:write",
            Capability::LogsRead => "logs:read",
        }
    }

    pub fn parse(s: &str) -> Option<Capability> {
        Capability::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// Read capabilities are granted to API keys with the `read` scope.
    pub fn is_read(self) -> bool {
        self.as_str().ends_with(":read") && !self.admin_only_for_keys()
    }

    /// Capabilities that no `read` or `write` key carries, only `admin`.
    pub fn admin_only_for_keys(self) -> bool {
        self == Capability::LogsRead
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// API key scopes. `read` opens every route an agent reaches with a `*:read`
/// capability except `logs:read`; `write` adds the `*:write` ones; `admin`
/// opens every route, admin-only ones and live logs included (keys,
/// certificates, onboarding).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    Read,
    Write,
    Admin,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Write => "write",
            Scope::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Scope> {
        [Scope::Read, Scope::Write, Scope::Admin].into_iter().find(|x| x.as_str() == s)
    }
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq)]
pub enum Identity {
    /// The admin client certificate (serial), or a Home Assistant user through ingress.
    Admin {
        actor: String,
    },
    Agent {
        label: String,
        capabilities: Vec<Capability>,
    },
    ApiKey {
        id: String,
        scopes: Vec<Scope>,
    },
}

impl Identity {
    /// How the audit log names this caller.
    pub fn actor(&self) -> String {
        match self {
            Identity::Admin { actor } => actor.clone(),
            Identity::Agent { label, .. } => format!("agent:{label}"),
            Identity::ApiKey { id, .. } => format!("key:{id}"),
        }
    }
}

/// What a route requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    Admin,
    Capability(Capability),
}

/// Why a caller was turned away.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    #[error("Authentication required")]
    Unauthenticated,
    #[error("Certificate has been revoked")]
    Revoked,
    #[error("Insufficient certificate scope")]
    CertificateScope,
    #[error("Insufficient API key scope")]
    KeyScope,
    #[error("Invalid or expired API key")]
    BadKey,
    #[error("Request not from a trusted ingress peer")]
    UntrustedPeer,
}

/// Decides whether `who` may do what `need` asks.
pub fn authorize(who: &Identity, need: Need) -> Result<(), Denied> {
    match (who, need) {
        (Identity::Admin { .. }, _) => Ok(()),
        (Identity::Agent { capabilities, .. }, Need::Capability(c)) if capabilities.contains(&c) => Ok(()),
        (Identity::Agent { .. }, _) => Err(Denied::CertificateScope),
        (Identity::ApiKey { scopes, .. }, need) => {
            let ok = scopes.contains(&Scope::Admin)
                || match need {
                    Need::Admin => false,
                    Need::Capability(c) if c.admin_only_for_keys() => false,
                    Need::Capability(c) if c.is_read() => {
                        scopes.contains(&Scope::Read) || scopes.contains(&Scope::Write)
                    }
                    Need::Capability(_) => scopes.contains(&Scope::Write),
                };
            if ok { Ok(()) } else { Err(Denied::KeyScope) }
        }
    }
}

/// The common name in an RFC 2253 DN as nginx prints it (`CN=admin,O=Portico`),
/// or in OpenSSL's legacy one-line form (`/O=Portico/CN=admin`). Escaped
/// separators (`\,`) stay inside their attribute, and `/` separates only
/// in the legacy form: in RFC 2253 it is an ordinary character of a value,
/// so `O=x/CN=admin,CN=agent:a` names `agent:a`.
pub fn common_name(dn: &str) -> Option<String> {
    let separator = if dn.starts_with('/') { '/' } else { ',' };
    let mut attrs = Vec::new();
    let mut current = String::new();
    let mut chars = dn.chars();
    while let Some(ch) = chars.next() {
        match ch {
            '\\' => {
                // Kept, so an escaped value is never mistaken for a plain one
                // (a trailing `\` too).
                current.push('\\');
                current.extend(chars.next());
            }
            c if c == separator => attrs.push(std::mem::take(&mut current)),
            _ => current.push(ch),
        }
    }
    attrs.push(current);
    attrs.iter().find_map(|a| {
        let (k, v) = a.trim().split_once('=')?;
        (k.trim().eq_ignore_ascii_case("CN") && !v.contains('\\')).then(|| v.trim().to_string())
    })
}

/// What the certificate CN claims to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertSubject {
    Admin,
    Agent(String),
}

pub fn cert_subject(cn: &str) -> Option<CertSubject> {
    if cn == "admin" {
        return Some(CertSubject::Admin);
    }
    let label = cn.strip_prefix("agent:")?;
    crate::pki::validate_label(label).ok()?;
    Some(CertSubject::Agent(label.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_name_from_nginx_dns() {
        let cases = [
            ("CN=admin,O=Portico", Some("admin")),
            ("O=Portico,CN=agent:home", Some("agent:home")),
            ("/O=Portico/CN=admin", Some("admin")),
            ("cn=admin", Some("admin")),
            ("O=Portico", None),
            ("CN=admin\\,O=evil", None),
            // A `/` inside an RFC 2253 value is not a separator.
            ("O=x/CN=admin,CN=agent:home", Some("agent:home")),
            ("O=x/CN=admin", None),
            ("/O=x,CN=admin/CN=agent:home", Some("agent:home")),
            // A lone trailing `\` is part of the value, not dropped.
            ("/CN=\\", None),
            ("CN=admin\\", None),
            ("", None),
        ];
        for (dn, want) in cases {
            assert_eq!(common_name(dn).as_deref(), want, "{dn}");
        }
    }

    #[test]
    fn subjects() {
        assert_eq!(cert_subject("admin"), Some(CertSubject::Admin));
        assert_eq!(cert_subject("agent:home-1"), Some(CertSubject::Agent("home-1".into())));
        assert_eq!(cert_subject("agent:"), None);
        assert_eq!(cert_subject("agent:Bad Label"), None);
        assert_eq!(cert_subject("administrator"), None);
    }

    #[test]
    fn authorization_table() {
        use Capability::*;
        let admin = Identity::Admin { actor: "admin".into() };
        let agent = Identity::Agent { label: "a".into(), capabilities: vec![TunnelsRead, SystemRead] };
        let key = |s: &[Scope]| Identity::ApiKey { id: "k".into(), scopes: s.to_vec() };
        let cases: Vec<(Identity, Need, Result<(), Denied>)> = vec![
            (admin.clone(), Need::Admin, Ok(())),
            (admin, Need::Capability(SitesWrite), Ok(())),
            (agent.clone(), Need::Capability(TunnelsRead), Ok(())),
            (agent.clone(), Need::Capability(TunnelsWrite), Err(Denied::CertificateScope)),
            (agent, Need::Admin, Err(Denied::CertificateScope)),
            (key(&[Scope::Read]), Need::Capability(SystemRead), Ok(())),
            (key(&[Scope::Read]), Need::Capability(TunnelsWrite), Err(Denied::KeyScope)),
            (key(&[Scope::Write]), Need::Capability(TunnelsWrite), Ok(())),
            (key(&[Scope::Write]), Need::Capability(TunnelsRead), Ok(())),
            (key(&[Scope::Write]), Need::Admin, Err(Denied::KeyScope)),
            (key(&[Scope::Admin]), Need::Admin, Ok(())),
            (key(&[]), Need::Capability(TunnelsRead), Err(Denied::KeyScope)),
            (key(&[Scope::Read]), Need::Capability(LogsRead), Err(Denied::KeyScope)),
            (key(&[Scope::Write]), Need::Capability(LogsRead), Err(Denied::KeyScope)),
            (key(&[Scope::Admin]), Need::Capability(LogsRead), Ok(())),
        ];
        for (who, need, want) in cases {
            assert_eq!(authorize(&who, need), want, "{who:?} {need:?}");
        }
    }
}
