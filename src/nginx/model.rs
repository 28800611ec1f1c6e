//! Plain input and output types of the renderer, and the defensive checks on
//! every value that ends up inside nginx syntax. A stored tunnel or site
//! becomes its vhost here (`From<&Tunnel>`, `From<&Site>`).

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use crate::model::{Access, is_label};

/// Everything the renderer needs: state from the store plus bootstrap settings.
///
/// The renderer is a pure function of this value; the store fills it with
/// plain structs and the apply loop writes the result.
#[derive(Debug, Clone)]
pub struct RenderInput {
    /// Data directory: sites at `data_dir/sites/<name>/`, ACME challenges at
    /// `data_dir/acme/challenges/`.
    pub data_dir: PathBuf,
    /// Path of the live tree (the stable path nginx is started with, e.g.
    /// `/data/nginx/current`). Only files served by nginx itself (the
    /// certificate help page) are referenced through it; includes are relative
    /// to `nginx.conf` so that a tree validates wherever it is written.
    pub conf_dir: PathBuf,
    /// Pid file and temp paths.
    pub run_dir: PathBuf,
    /// Listening address and ports.
    pub ports: Ports,
    /// Loopback services nginx proxies to.
    pub upstreams: Upstreams,
    /// The admin-by-IP vhost; `None` when panel 2FA is on.
    pub admin_vhost: Option<AdminVhost>,
    /// The owner's domain; `None` before onboarding.
    pub domain: Option<String>,
    /// Portico CA certificate, used to verify client certificates on
    /// `panel.<d>` and `tunnel.<d>`.
    pub client_ca: PathBuf,
    /// Certificates per fully qualified name; only names whose files exist.
    /// A `*.<domain>` entry serves any name without its own entry.
    pub certs: BTreeMap<String, CertPaths>,
    /// Tunnels; disabled ones get no vhost.
    pub tunnels: Vec<TunnelVhost>,
    /// Static sites.
    pub sites: Vec<SiteVhost>,
    /// The nginx `user` directive (`www-data` in the container, `None` in tests).
    pub user: Option<String>,
    /// Where tunnel and site vhosts send one syslog line per visitor request
    /// (the panel counts them for `/metrics`); no such log when `None`.
    pub visitor_log: Option<SocketAddr>,
    /// Who decides for visitors on authenticated and restricted vhosts.
    pub visitor_auth: VisitorAuth,
    /// Test-only: raw text placed verbatim in the `http` block so tests can
    /// produce a tree that `nginx -t` rejects. Never set it from state.
    pub extra: Option<String>,
}

/// Who answers nginx's `auth_request` for visitors (`authd.mode`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum VisitorAuth {
    /// `portico authd` on its loopback upstream, its portal at `auth.<d>`.
    #[default]
    Builtin,
    /// A forward-auth service with Authelia's nginx contract: nginx asks
    /// `verify_url` and sends visitors without a session to `portal_url`
    /// with `rd`. Both were checked at settings load (no nginx syntax in them).
    External { verify_url: String, portal_url: String },
}

/// Listening address and ports of the public surface (`nginx.bind`,
/// `nginx.http_port`, `nginx.https_port`, `nginx.admin_port`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ports {
    /// Address every `listen` binds (0.0.0.0 in the container, 127.0.0.1 in tests).
    pub bind: IpAddr,
    /// Plain HTTP: ACME challenges and redirects.
    pub http: u16,
    /// HTTPS for name-based vhosts.
    pub https: u16,
    /// Admin panel by IP.
    pub admin: u16,
}

/// Loopback addresses of the services behind nginx (from the settings, see
/// `state::upstreams`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Upstreams {
    /// `portico serve`.
    pub panel: SocketAddr,
    /// `portico authd`.
    pub authd: SocketAddr,
    /// `portico relay`, agent WebSocket side.
    pub relay_agents: SocketAddr,
    /// `portico relay`, visitor side (routes each connection by Host; every
    /// tunnel gets its own upstream block pointing here).
    pub relay_visitors: SocketAddr,
}

/// Certificate files of the admin-by-IP vhost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminVhost {
    /// Self-signed server certificate for the public IP.
    pub server_cert: PathBuf,
    /// Its private key.
    pub server_key: PathBuf,
    /// CA that issued admin and agent client certificates.
    pub client_ca: PathBuf,
}

/// Certificate chain and key of one name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertPaths {
    /// Leaf followed by intermediates.
    pub fullchain: PathBuf,
    /// Private key.
    pub key: PathBuf,
}

/// One tunnel as the renderer sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TunnelVhost {
    /// DNS label; the vhost is `<name>.<domain>`.
    pub name: String,
    /// Visitor access mode.
    pub access: Access,
    /// Disabled tunnels get no vhost.
    pub enabled: bool,
}

/// One static site as the renderer sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteVhost {
    /// DNS label; files live at `data_dir/sites/<name>/`.
    pub name: String,
    /// Serve `/index.html` for unknown paths (single-page apps).
    pub spa_fallback: bool,
    /// Visitor access mode.
    pub access: Access,
}

impl From<&crate::store::Tunnel> for TunnelVhost {
    fn from(t: &crate::store::Tunnel) -> Self {
        let crate::store::Tunnel {
            id: _,
            name,
            agent: _,
            target: _,
            enabled,
            access,
            allowed_users: _,
            allowed_groups: _,
            description: _,
            created_at: _,
            updated_at: _,
        } = t;
        TunnelVhost { name: name.clone(), access: *access, enabled: *enabled }
    }
}

impl From<&crate::store::Site> for SiteVhost {
    fn from(s: &crate::store::Site) -> Self {
        let crate::store::Site {
            id: _,
            name,
            spa_fallback,
            access,
            allowed_users: _,
            allowed_groups: _,
            max_bytes: _,
            created_at: _,
            updated_at: _,
        } = s;
        SiteVhost { name: name.clone(), spa_fallback: *spa_fallback, access: *access }
    }
}

/// A rendered configuration: relative path → file content.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RenderedTree {
    /// Files keyed by path relative to the tree root.
    pub files: BTreeMap<PathBuf, String>,
}

/// Why a state cannot be rendered. The store validates first; these are the
/// last line of defence against values that would inject nginx syntax.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    /// A tunnel or site name is not a lowercase DNS label.
    #[error("invalid {kind} name {name:?}")]
    InvalidName {
        /// `tunnel`, `site`, `domain` or `user`.
        kind: &'static str,
        /// The offending value.
        name: String,
    },
    /// A tunnel or site uses a reserved subdomain.
    #[error("name {0:?} is reserved")]
    ReservedName(String),
    /// Two tunnels or sites share a name.
    #[error("name {0:?} is used twice")]
    DuplicateName(String),
    /// A path contains characters that are unsafe inside nginx syntax.
    #[error("unsafe path {0:?}")]
    UnsafePath(PathBuf),
}

/// A lowercase domain of at least two labels, at most 253 characters.
pub fn is_domain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').count() >= 2 && s.split('.').all(is_label)
}

/// Refuses paths that are relative or hold characters with meaning in nginx
/// syntax (whitespace, quotes, `;`, braces, `$`, `#`, backslash).
pub fn check_path(p: &Path) -> Result<(), RenderError> {
    let ok = p.is_absolute()
        && p.to_str().is_some_and(|s| s.bytes().all(|b| b.is_ascii_alphanumeric() || b"/._-+@=,~%:".contains(&b)));
    if ok { Ok(()) } else { Err(RenderError::UnsafePath(p.to_path_buf())) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_domains() {
        for good in ["a", "app", "my-app", "a1", &"x".repeat(63)] {
            assert!(is_label(good), "{good}");
        }
        for bad in ["", "-a", "a-", "A", "a.b", "a;", "a b", "a{", "a\"", &"x".repeat(64)] {
            assert!(!is_label(bad), "{bad}");
        }
        assert!(is_domain("example.test"));
        for bad in ["example", "example..test", "ex ample.test", "example.test;", ".example.test"] {
            assert!(!is_domain(bad), "{bad}");
        }
    }

    #[test]
    fn unsafe_paths_are_refused() {
        assert!(check_path(Path::new("/data/pki/ca.pem")).is_ok());
        for bad in ["relative/ca.pem", "/data/a b", "/data/a;b", "/data/$x", "/data/{x}", "/data/\"x"] {
            assert!(check_path(Path::new(bad)).is_err(), "{bad}");
        }
    }
}
