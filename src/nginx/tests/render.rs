//! Renderer tests: golden files, determinism, refusals, and `nginx -t` on
//! every representative state with real certificates.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use std::collections::BTreeMap;

use super::support::{DOMAIN, Layout, NGINX, settings, states, write_certs, write_tree};
use crate::model::Access;
use crate::nginx::{RenderError, RenderInput, RenderedTree, SiteVhost, TunnelVhost, render, state};

fn golden_dir(state: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src/nginx/golden").join(state)
}

fn read_dir_tree(root: &Path) -> RenderedTree {
    fn walk(root: &Path, dir: &Path, tree: &mut RenderedTree) {
        for e in fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, tree);
            } else {
                let rel = p.strip_prefix(root).unwrap().to_path_buf();
                tree.files.insert(rel, fs::read_to_string(&p).unwrap());
            }
        }
    }
    let mut tree = RenderedTree::default();
    walk(root, root, &mut tree);
    tree
}

/// Compares each state with `src/nginx/golden/<state>/` byte for byte;
/// `PORTICO_UPDATE_GOLDEN=1` rewrites the files instead.
#[test]
fn golden_states() {
    let update = std::env::var("PORTICO_UPDATE_GOLDEN").is_ok_and(|v| v == "1");
    for (state, input) in states(&Layout::golden(), Some("www-data")) {
        let tree = render(&input).unwrap();
        let dir = golden_dir(state);
        if update {
            let _ = fs::remove_dir_all(&dir);
            write_tree(&dir, &tree);
            continue;
        }
        let golden = read_dir_tree(&dir);
        let got: Vec<_> = tree.files.keys().collect();
        let want: Vec<_> = golden.files.keys().collect();
        assert_eq!(got, want, "file list of {state} (PORTICO_UPDATE_GOLDEN=1 rewrites)");
        for (path, body) in &tree.files {
            assert!(
                body == &golden.files[path],
                "{state}/{} differs from golden (PORTICO_UPDATE_GOLDEN=1 rewrites)",
                path.display()
            );
        }
    }
}

#[test]
fn render_is_deterministic_and_order_independent() {
    for (_, input) in states(&Layout::golden(), None) {
        let a = render(&input).unwrap();
        assert_eq!(a, render(&input).unwrap());
        let mut shuffled = input.clone();
        shuffled.tunnels.reverse();
        shuffled.sites.reverse();
        assert_eq!(a, render(&shuffled).unwrap());
    }
}

#[test]
fn fresh_state_has_admin_and_acme_only() {
    let (_, fresh) = states(&Layout::golden(), None).remove(0);
    let tree = render(&fresh).unwrap();
    let servers: Vec<_> = tree.files.keys().filter(|p| p.starts_with("servers")).collect();
    assert_eq!(servers.len(), 3, "{servers:?}");
    assert!(tree.files[Path::new("servers/02-admin-ip.conf")].contains("ssl_verify_client optional;"));
}

#[test]
fn disabled_tunnels_and_missing_certs_get_no_vhost() {
    let (_, mut input) = states(&Layout::golden(), None).remove(1);
    input.certs.remove(&format!("wiki.{DOMAIN}"));
    input.certs.remove(&format!("auth.{DOMAIN}"));
    let tree = render(&input).unwrap();
    let all: String = tree.files.values().cloned().collect();
    assert!(!all.contains(&format!("wiki.{DOMAIN}")), "vhost without cert rendered");
    assert!(!all.contains(&format!("server_name auth.{DOMAIN}")));
    assert!(!all.contains("old."), "disabled tunnel rendered");
    assert!(all.contains(&format!("server_name vault.{DOMAIN}")));
}

#[test]
fn wildcard_certificate_covers_names_without_their_own() {
    let (_, mut input) = states(&Layout::golden(), None).remove(1);
    let wiki = input.certs.remove(&format!("wiki.{DOMAIN}")).unwrap();
    input.certs.insert(format!("*.{DOMAIN}"), wiki.clone());
    let tree = render(&input).unwrap();
    let conf = &tree.files[Path::new("servers/20-tunnel-wiki.conf")];
    assert!(conf.contains(&format!("ssl_certificate {};", wiki.fullchain.display())));
}

/// Tunnel and site vhosts log each request to the panel's visitor counter
/// (tagged by kind, with the vhost's own name), besides stdout; nothing else
/// does, and nothing does when the counter is off.
#[test]
fn visitor_log_lines_go_to_the_panel_only_from_tunnels_and_sites() {
    let (_, mut input) = states(&Layout::golden(), None).remove(1);
    let tree = render(&input).unwrap();
    let syslog = |file: &str| {
        tree.files[Path::new(file)].lines().filter(|l| l.contains("syslog:server=127.0.0.1:3101")).collect::<Vec<_>>()
    };
    assert_eq!(syslog("servers/20-tunnel-app.conf").len(), 1);
    assert!(syslog("servers/20-tunnel-app.conf")[0].contains("tag=portico_tunnel"));
    assert!(tree.files[Path::new("servers/20-tunnel-app.conf")].contains("access_log /dev/stdout portico;"));
    assert!(syslog("servers/30-site-dash.conf")[0].contains("tag=portico_site"));
    for other in ["servers/10-panel.conf", "servers/11-auth.conf", "servers/12-tunnel.conf", "servers/02-admin-ip.conf"]
    {
        assert!(syslog(other).is_empty(), "{other}");
    }
    input.visitor_log = None;
    let all: String = render(&input).unwrap().files.values().cloned().collect();
    assert!(!all.contains("syslog:") && !all.contains("portico_visitor"));
}

#[test]
fn injection_characters_are_refused() {
    let (_, base) = states(&Layout::golden(), None).remove(1);
    for bad in ["app;", "a{b", "a b", "a\"b", "a'b", "a\nb", "A", "-a", "a.b", "$host", ""] {
        let mut input = base.clone();
        input.tunnels.push(TunnelVhost { name: bad.into(), access: Access::Public, enabled: true });
        assert!(
            matches!(render(&input), Err(RenderError::InvalidName { kind: "tunnel", .. })),
            "tunnel {bad:?} accepted"
        );
        let mut input = base.clone();
        input.sites.push(SiteVhost { name: bad.into(), spa_fallback: false, access: Access::Public });
        assert!(render(&input).is_err(), "site {bad:?} accepted");
    }
    let mut input = base.clone();
    input.domain = Some("example.test; evil".into());
    assert!(matches!(render(&input), Err(RenderError::InvalidName { kind: "domain", .. })));
    let mut input = base.clone();
    input.data_dir = "/data dir".into();
    assert!(matches!(render(&input), Err(RenderError::UnsafePath(_))));
    let mut input = base.clone();
    input.tunnels.push(TunnelVhost { name: "panel".into(), access: Access::Public, enabled: true });
    assert_eq!(render(&input), Err(RenderError::ReservedName("panel".into())));
    let mut input = base;
    input.sites.push(SiteVhost { name: "app".into(), spa_fallback: false, access: Access::Public });
    assert_eq!(render(&input), Err(RenderError::DuplicateName("app".into())));
}

/// The internal listeners, each moved off its default: IPv4, another
/// 127.x address and IPv6 loopback.
const MOVED: [(&str, &str); 4] = [
    ("panel", "127.0.0.1:4100"),
    ("authd", "127.0.0.2:4191"),
    ("relay_agents", "[::1]:4190"),
    ("relay_visitors", "127.0.0.1:4180"),
];
const MOVED_LOG_PORT: u16 = 4101;

/// The onboarded state rendered from settings that move every internal
/// listener and the visitor log port; the settings pass validation.
fn moved(l: &Layout) -> RenderInput {
    let mut s = settings(l, None);
    let addr = |name: &str| MOVED.iter().find(|(n, _)| *n == name).unwrap().1.parse().unwrap();
    s.panel.listen = addr("panel");
    s.authd.listen = addr("authd");
    s.relay.agents_listen = addr("relay_agents");
    s.relay.visitors_listen = addr("relay_visitors");
    s.panel.visitor_log_port = MOVED_LOG_PORT;
    s.validate().unwrap();
    let (_, onboarded) = states(l, None).remove(1);
    let RenderInput { domain, certs, tunnels, sites, .. } = onboarded;
    RenderInput { domain, certs, tunnels, sites, ..state::settings_input(&s) }
}

/// `upstream` name → its `server` lines, over every file of the tree.
fn upstream_servers(tree: &RenderedTree) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for body in tree.files.values() {
        let mut current = None;
        for line in body.lines().map(str::trim) {
            if let Some(name) = line.strip_prefix("upstream ").and_then(|l| l.strip_suffix(" {")) {
                current = Some(name.to_string());
            } else if line == "}" {
                current = None;
            } else if let (Some(name), Some(addr)) = (&current, line.strip_prefix("server ")) {
                out.entry(name.clone()).or_default().push(addr.trim_end_matches(';').to_string());
            }
        }
    }
    out
}

/// Moved listeners reach every line that points at them: the panel, authd
/// and relay-agents upstreams, every tunnel's own upstream, each
/// `auth_request` location (through authd's upstream) and every visitor
/// syslog line; no default address is left anywhere.
#[test]
fn moved_listeners_reach_upstream_auth_request_and_syslog_lines() {
    let tree = render(&moved(&Layout::golden())).unwrap();
    let servers = upstream_servers(&tree);
    let want = |name: &str| vec![MOVED.iter().find(|(n, _)| *n == name).unwrap().1.to_string()];
    assert_eq!(servers["portico_panel"], want("panel"));
    assert_eq!(servers["portico_authd"], want("authd"));
    assert_eq!(servers["portico_relay_agents"], want("relay_agents"));
    for tunnel in ["app", "wiki", "vault"] {
        assert_eq!(servers[&format!("portico_tunnel_{tunnel}")], want("relay_visitors"), "{tunnel}");
    }
    assert_eq!(servers.len(), 6, "{servers:?}");

    let all: String = tree.files.values().map(String::as_str).collect::<Vec<_>>().join("\n");
    // Every proxy_pass names one of those upstreams, never an address.
    for line in all.lines().filter_map(|l| l.trim().strip_prefix("proxy_pass http://")) {
        let upstream = line.split(['/', ';']).next().unwrap();
        assert!(servers.contains_key(upstream), "proxy_pass to {line}");
    }
    // Each auth_request subrequest goes to authd's upstream.
    let guarded: Vec<_> = tree.files.iter().filter(|(_, b)| b.contains("auth_request /_portico_authz;")).collect();
    assert_eq!(guarded.len(), 3, "tunnels wiki and vault, site notes");
    for (path, body) in guarded {
        let authz = body.split("location = /_portico_authz {").nth(1).unwrap().split('}').next().unwrap();
        assert!(authz.contains("proxy_pass http://portico_authd/api/authz/nginx;"), "{}", path.display());
    }
    let syslog: Vec<_> = all.lines().filter(|l| l.contains("syslog:")).collect();
    assert_eq!(syslog.len(), 5, "three tunnels and two sites: {syslog:?}");
    for line in syslog {
        assert!(line.contains(&format!("syslog:server=127.0.0.1:{MOVED_LOG_PORT},")), "{line}");
    }
    for default in ["127.0.0.1:3100", "127.0.0.1:3101", "127.0.0.1:9080", "127.0.0.1:9090", "127.0.0.1:9091"] {
        assert!(!all.contains(default), "default {default} left in the tree");
    }
}

/// All three states and the one with moved listeners, rendered with real
/// temp paths and real certificates, pass the installed nginx's own check.
#[test]
fn every_state_passes_nginx_t() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = Layout::temp(tmp.path());
    write_certs(&layout);
    for (state, input) in states(&layout, None).into_iter().chain([("moved-listeners", moved(&layout))]) {
        let tree = render(&input).unwrap();
        let dir = tmp.path().join("trees").join(state);
        write_tree(&dir, &tree);
        let out = Command::new(NGINX)
            .args(["-t", "-q", "-p"])
            .arg(tmp.path())
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .output()
            .unwrap();
        assert!(out.status.success(), "{state}: {}", String::from_utf8_lossy(&out.stderr));
    }
}
