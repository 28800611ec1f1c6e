//! `nginx.*`: where the live nginx tree is, how it is validated and
//! reloaded, and the public address and ports its vhosts listen on.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// nginx: where the live tree is, how to validate and reload it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct NginxSettings {
    /// When false the panel never renders or reloads nginx (tests, dev runs).
    pub enabled: bool,
    /// The nginx binary, for `nginx -t` and the default reload.
    pub bin: PathBuf,
    /// The live tree nginx is started with; `<data_dir>/nginx/live` when unset.
    pub live_dir: Option<PathBuf>,
    /// Pid file and temp dirs of nginx.
    pub run_dir: PathBuf,
    /// Reload command as an argv list, e.g. `["s6-svc", "-h", "/run/s6/services/nginx"]`;
    /// `nginx -s reload` when empty.
    pub reload_command: Vec<String>,
    /// How many snapshots of replaced trees stay.
    pub keep_snapshots: usize,
    /// The nginx `user` directive; none when unset.
    pub user: Option<String>,
    /// Address every public `listen` binds.
    pub bind: IpAddr,
    /// Plain HTTP port (ACME challenges, redirects).
    pub http_port: u16,
    /// HTTPS port of the name-based vhosts.
    pub https_port: u16,
    /// Port of the admin-by-IP vhost.
    pub admin_port: u16,
}

impl Default for NginxSettings {
    fn default() -> Self {
        NginxSettings {
            enabled: true,
            bin: PathBuf::from("/usr/sbin/nginx"),
            live_dir: None,
            run_dir: PathBuf::from("/run/nginx"),
            reload_command: Vec::new(),
            keep_snapshots: 10,
            user: None,
            bind: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            http_port: 80,
            https_port: 443,
            admin_port: 9292,
        }
    }
}
