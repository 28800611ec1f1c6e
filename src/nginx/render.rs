//! The renderer: a pure, deterministic function from [`RenderInput`] to a tree
//! of nginx files. Server blocks live in `vhosts.rs`; this file holds the main
//! `nginx.conf`, shared snippets and the checks that run before any text is
//! produced.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;

use super::limits;
use super::model::{RenderError, RenderInput, RenderedTree, check_path, is_domain};
use super::vhosts::{self, CERT_PAGE, RESTARTING_PAGE};
use crate::model::{RESERVED_NAMES, is_label};

/// Renders the whole tree. Same input → byte-identical files.
///
/// Tunnels and sites are sorted by name, so the order in which the store hands
/// them over does not matter. Name-based vhosts whose certificate is missing
/// from `input.certs` are left out rather than referencing a missing file.
pub fn render(input: &RenderInput) -> Result<RenderedTree, RenderError> {
    validate(input)?;
    let mut tree = RenderedTree::default();
    let mut servers = Vec::new();
    let mut add = |tree: &mut RenderedTree, name: String, body: String| {
        servers.push(name.clone());
        tree.files.insert(PathBuf::from(name), body);
    };
    add(&mut tree, "servers/00-http.conf".into(), vhosts::http_redirect(input));
    add(&mut tree, "servers/01-default-tls.conf".into(), vhosts::default_tls(input));
    if let Some(admin) = &input.admin_vhost {
        add(&mut tree, "servers/02-admin-ip.conf".into(), vhosts::admin_ip(input, admin));
    }
    for (file, body) in vhosts::named(input) {
        add(&mut tree, file, body);
    }
    tree.files.insert("nginx.conf".into(), main_conf(input, &servers));
    tree.files.insert("mime.types".into(), MIME_TYPES.into());
    tree.files.insert(CERT_PAGE.into(), CERT_REQUIRED_HTML.into());
    tree.files.insert(RESTARTING_PAGE.into(), RESTARTING_HTML.into());
    for (name, body) in SNIPPETS {
        tree.files.insert(format!("snippets/{name}").into(), (*body).into());
    }
    Ok(tree)
}

fn validate(input: &RenderInput) -> Result<(), RenderError> {
    for p in [&input.data_dir, &input.conf_dir, &input.run_dir, &input.client_ca] {
        check_path(p)?;
    }
    if let Some(admin) = &input.admin_vhost {
        for p in [&admin.server_cert, &admin.server_key, &admin.client_ca] {
            check_path(p)?;
        }
    }
    for c in input.certs.values() {
        check_path(&c.fullchain)?;
        check_path(&c.key)?;
    }
    if let Some(d) = &input.domain
        && !is_domain(d)
    {
        return Err(RenderError::InvalidName { kind: "domain", name: d.clone() });
    }
    if let Some(u) = &input.user
        && (u.is_empty() || !u.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'))
    {
        return Err(RenderError::InvalidName { kind: "user", name: u.clone() });
    }
    let names = input.tunnels.iter().map(|t| ("tunnel", &t.name)).chain(input.sites.iter().map(|s| ("site", &s.name)));
    let mut seen = BTreeSet::new();
    for (kind, name) in names {
        if !is_label(name) {
            return Err(RenderError::InvalidName { kind, name: name.clone() });
        }
        if RESERVED_NAMES.contains(&name.as_str()) {
            return Err(RenderError::ReservedName(name.clone()));
        }
        if !seen.insert(name) {
            return Err(RenderError::DuplicateName(name.clone()));
        }
    }
    Ok(())
}

fn main_conf(input: &RenderInput, servers: &[String]) -> String {
    let run = input.run_dir.display();
    let visitor_format = match input.visitor_log {
        Some(_) => format!(
            "    # One line per visitor request of a tunnel or site, counted by the panel;\n    \
             # the panel's own health probe is not a visitor.\n    log_format {} '$server_name $status';\n    \
             map $http_user_agent $portico_visitor {{\n        \"{}\" 0;\n        default 1;\n    }}\n",
            crate::metrics::visitors::LOG_FORMAT,
            crate::probe::USER_AGENT
        ),
        None => String::new(),
    };
    let (main_limits, http_limits) = (limits::main_context(), limits::http_context());
    let log_format = limits::LOG_FORMAT;
    let mut s = String::from("# Rendered by Portico; edits are overwritten on the next apply.\n");
    if let Some(user) = &input.user {
        let _ = writeln!(s, "user {user};");
    }
    let _ = write!(
        s,
        "worker_processes auto;
pid {run}/nginx.pid;
error_log stderr warn;
pcre_jit on;
# Old workers keep serving in-flight requests after a reload, but agent
# WebSockets never end by themselves; cap how long old workers linger.
worker_shutdown_timeout 10m;
{main_limits}
http {{
    include mime.types;
    default_type application/octet-stream;
    server_tokens off;
    sendfile on;
    tcp_nopush on;
    keepalive_timeout 65s;
    server_names_hash_bucket_size 128;
{http_limits}    access_log /dev/stdout {log_format};
{visitor_format}
    client_body_temp_path {run}/client_body;
    proxy_temp_path {run}/proxy;
    fastcgi_temp_path {run}/fastcgi;
    uwsgi_temp_path {run}/uwsgi;
    scgi_temp_path {run}/scgi;

    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_ciphers ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305;
    ssl_prefer_server_ciphers off;
    # 1 MB holds ~4,000 sessions: 10 MB keeps every visitor of a 1,000-visitor
    # burst resumable for an hour, with room to spare so the cache never
    # fills between expiries (a full cache costs full handshakes).
    ssl_session_cache shared:portico_tls:10m;
    ssl_session_timeout 1h;
    ssl_session_tickets off;

    # Per client (IPv4 address, IPv6 /64); the login zone also guards the
    # public enrollment and invitation routes.
    limit_req_zone $portico_client zone=portico_panel:1m rate=20r/s;
    limit_req_zone $portico_client zone=portico_login:1m rate=5r/s;
    limit_req_status 429;

    # An empty Connection header keeps upstream keepalive working for plain
    # requests; upgrades pass through.
    map $http_upgrade $connection_upgrade {{
        default upgrade;
        \"\" \"\";
    }}

"
    );
    let u = &input.upstreams;
    upstream(&mut s, "portico_panel", u.panel);
    upstream(&mut s, "portico_authd", u.authd);
    upstream(&mut s, "portico_relay_agents", u.relay_agents);
    // The relay's visitor port has one upstream per tunnel, in the tunnel's
    // own file (see `vhosts::tunnel_upstream`).
    for file in servers {
        let _ = writeln!(s, "    include {file};");
    }
    if let Some(extra) = &input.extra {
        let _ = writeln!(s, "\n    # test-only injection\n    {extra}");
    }
    s.push_str("}\n");
    s
}

fn upstream(s: &mut String, name: &str, addr: SocketAddr) {
    let _ = write!(s, "    upstream {name} {{\n        server {addr};\n        keepalive 16;\n    }}\n\n");
}

const SNIPPETS: &[(&str, &str)] = &[
    (
        "proxy.conf",
        "# Headers for every proxied location. The client's own X-Forwarded-For is
# dropped: nginx is the edge, so the peer address is the client.
proxy_http_version 1.1;
proxy_set_header Host $host;
proxy_set_header X-Real-IP $remote_addr;
proxy_set_header X-Forwarded-For $remote_addr;
proxy_set_header X-Forwarded-Proto $scheme;
proxy_set_header X-Forwarded-Host $http_host;
",
    ),
    (
        "mtls.conf",
        "# Client certificate result for the panel and the relay.
proxy_set_header X-SSL-Client-Verify $ssl_client_verify;
proxy_set_header X-SSL-Client-DN $ssl_client_s_dn;
proxy_set_header X-SSL-Client-Serial $ssl_client_serial;
",
    ),
    (
        "identity-clear.conf",
        "# Proxied public locations: never forward an identity header a client sent
# itself. These are every header Portico's own services believe (client
# certificate, Home Assistant ingress); Remote-* are set per location.
proxy_set_header X-SSL-Client-Verify \"\";
proxy_set_header X-SSL-Client-DN \"\";
proxy_set_header X-SSL-Client-Serial \"\";
proxy_set_header X-Remote-User-Id \"\";
proxy_set_header X-Remote-User-Name \"\";
proxy_set_header X-Remote-User-Display-Name \"\";
proxy_set_header X-Ingress-Path \"\";
proxy_set_header X-Portico-Resource \"\";
",
    ),
    (
        "remote-clear.conf",
        "# Locations without visitor auth: no Remote-* header reaches the app.
proxy_set_header Remote-User \"\";
proxy_set_header Remote-Groups \"\";
proxy_set_header Remote-Name \"\";
proxy_set_header Remote-Email \"\";
",
    ),
    (
        "security-headers.conf",
        "add_header Strict-Transport-Security \"max-age=31536000\" always;
add_header X-Content-Type-Options nosniff always;
",
    ),
    (
        "panel-headers.conf",
        "add_header X-Content-Type-Options nosniff always;
add_header X-Frame-Options DENY always;
add_header Referrer-Policy no-referrer always;
",
    ),
];

const MIME_TYPES: &str = "types {
    text/html html htm;
    text/css css;
    text/plain txt;
    text/xml xml;
    text/markdown md;
    application/javascript js mjs;
    application/json json map webmanifest;
    application/wasm wasm;
    application/pdf pdf;
    application/zip zip;
    image/svg+xml svg svgz;
    image/png png;
    image/jpeg jpg jpeg;
    image/gif gif;
    image/webp webp;
    image/avif avif;
    image/x-icon ico;
    font/woff woff;
    font/woff2 woff2;
    audio/mpeg mp3;
    audio/ogg ogg;
    video/mp4 mp4;
    video/webm webm;
}
";

const CERT_REQUIRED_HTML: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Client certificate required</title>
<style>
body { font-family: system-ui, sans-serif; max-width: 40rem; margin: 3rem auto; padding: 0 1rem; line-height: 1.5; color: #222; }
code { background: #f3f3f3; padding: 0 .25rem; }
</style>
</head>
<body>
<h1>Client certificate required</h1>
<p>This Portico panel only opens for browsers that present a client
certificate issued by this appliance.</p>
<ol>
<li>Copy <code>admin.p12</code> from the appliance's data volume
(<code>pki/</code>) together with its password file.</li>
<li>Import it: on macOS open it in Keychain Access; on Windows double-click it;
in Firefox use Settings, Privacy &amp; Security, Certificates, Your Certificates, Import;
on Linux with Chrome use Settings, Privacy and security, Security, Manage certificates.</li>
<li>Restart the browser and open this address again; choose the Portico
certificate when asked.</li>
</ol>
<p>If you already imported it, the certificate may have expired or been
revoked; issue a new one from a device that still has access.</p>
</body>
</html>
"#;

/// The panel's look without the panel: styles inline (the panel serves its
/// stylesheet, and it is the panel that is down), light and dark, no script.
/// The refresh reloads the address asked for, as a GET.
const RESTARTING_HTML: &str = r##"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="5">
<title>Restarting · Portico</title>
<style>
:root { --bg: #f6f7f9; --fg: #1b1f24; --muted: #5b6470; --card: #fff; --line: #d9dde3; --accent: #2557d6; color-scheme: light dark; }
@media (prefers-color-scheme: dark) { :root { --bg: #111418; --fg: #e6e9ee; --muted: #9aa4b1; --card: #1a1e24; --line: #2d333b; --accent: #6d95ff; } }
body { margin: 0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; background: var(--bg); color: var(--fg); }
header { display: flex; align-items: center; gap: 8px; padding: 10px 24px; background: var(--card); border-bottom: 1px solid var(--line); font-weight: 700; font-size: 18px; }
main { max-width: 40rem; margin: 0 auto; padding: 24px; }
section { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 18px 20px; }
h1 { font-size: 22px; margin: 0 0 8px; }
p { margin: 8px 0; }
.muted { color: var(--muted); }
.spinner { display: inline-block; width: 14px; height: 14px; border: 2px solid var(--line); border-top-color: var(--accent); border-radius: 50%; vertical-align: -2px; margin-right: 6px; animation: spin 1s linear infinite; }
@keyframes spin { to { transform: rotate(360deg); } }
@media (prefers-reduced-motion: reduce) { .spinner { animation: none; } }
</style>
</head>
<body>
<header><svg width="20" height="20" viewBox="0 0 24 24" fill="none" stroke="#2557d6" stroke-width="2" aria-hidden="true"><path d="M3 21V9l9-6 9 6v12"/><path d="M9 21v-7h6v7"/></svg>Portico</header>
<main>
<section role="status" aria-live="polite">
<h1>The panel is restarting</h1>
<p><span class="spinner" aria-hidden="true"></span>This page reloads itself every few seconds and shows the panel as soon as it answers again, usually within a few seconds.</p>
<p class="muted">Nothing you saved is lost. If this page stays for more than a minute, the panel's own log says why: <code>docker logs</code> on the appliance, or the Services page once it is back.</p>
</section>
</main>
</body>
</html>
"##;
