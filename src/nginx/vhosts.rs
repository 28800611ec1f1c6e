//! Server blocks. Every function returns one file's text; all values have
//! passed `render::validate` before they get here.
//!
//! nginx inheritance rule kept throughout: a location that sets any
//! `proxy_set_header` loses every inherited one, so each proxied location
//! includes its complete header set; `add_header` is only used at server level.

use std::fmt::Write as _;
use std::net::SocketAddr;

use super::model::{AdminVhost, CertPaths, RenderInput, VisitorAuth};
use crate::model::Access;

/// Name of the internal page nginx serves for 495/496 (the renderer writes it).
pub(super) const CERT_PAGE: &str = "html/cert-required.html";
/// Name of the internal page nginx serves while the panel does not answer
/// (it is restarting): 502/503/504 from the panel's pages.
pub(super) const RESTARTING_PAGE: &str = "html/panel-restarting.html";

const HEADER: &str = "# Rendered by Portico; edits are overwritten on the next apply.\n";

fn listen(input: &RenderInput, port: u16) -> SocketAddr {
    SocketAddr::new(input.ports.bind, port)
}

/// `:port` when the HTTPS port is not the default, for absolute URLs.
fn https_port_suffix(input: &RenderInput) -> String {
    match input.ports.https {
        443 => String::new(),
        p => format!(":{p}"),
    }
}

/// `:80`: ACME HTTP-01 challenges, everything else to https.
pub(crate) fn http_redirect(input: &RenderInput) -> String {
    format!(
        "{HEADER}server {{
    listen {listen} default_server;
    server_name _;
    limit_conn portico_conn_visitors {conns};

    location ^~ /.well-known/acme-challenge/ {{
        alias {challenges}/;
        default_type text/plain;
    }}

    location / {{
        return 301 https://$host{port}$request_uri;
    }}
}}
",
        listen = listen(input, input.ports.http),
        challenges = input.data_dir.join("acme/challenges").display(),
        port = https_port_suffix(input),
        conns = super::limits::VISITOR_CONNS,
    )
}

/// Default HTTPS server: refuses the TLS handshake for unknown names.
pub(crate) fn default_tls(input: &RenderInput) -> String {
    format!(
        "{HEADER}server {{
    listen {listen} ssl default_server;
    server_name _;
    ssl_reject_handshake on;
    return 444;
}}
",
        listen = listen(input, input.ports.https),
    )
}

/// `:<admin>`: the panel by IP with the self-signed server certificate.
pub(crate) fn admin_ip(input: &RenderInput, admin: &AdminVhost) -> String {
    let mut s = format!(
        "{HEADER}server {{
    listen {listen} ssl default_server;
    server_name _;
    ssl_certificate {cert};
    ssl_certificate_key {key};
",
        listen = listen(input, input.ports.admin),
        cert = admin.server_cert.display(),
        key = admin.server_key.display(),
    );
    panel_body(&mut s, input, &admin.client_ca.display().to_string(), false);
    s
}

/// The name-based vhosts that have a certificate, as `(file, text)` pairs.
pub(crate) fn named(input: &RenderInput) -> Vec<(String, String)> {
    let Some(domain) = &input.domain else {
        return Vec::new();
    };
    let cert = |label: &str| -> Option<&CertPaths> {
        input.certs.get(&format!("{label}.{domain}")).or_else(|| input.certs.get(&format!("*.{domain}")))
    };
    let mut out = Vec::new();
    if let Some(c) = cert("panel") {
        let mut s = tls_server(input, &format!("panel.{domain}"), c);
        panel_body(&mut s, input, &input.client_ca.display().to_string(), true);
        out.push(("servers/10-panel.conf".into(), s));
    }
    if let Some(c) = cert("auth") {
        out.push(("servers/11-auth.conf".into(), auth_portal(input, domain, c)));
    }
    if let Some(c) = cert("tunnel") {
        out.push(("servers/12-tunnel.conf".into(), agent_endpoint(input, domain, c)));
    }
    let mut tunnels: Vec<_> = input.tunnels.iter().filter(|t| t.enabled).collect();
    tunnels.sort_by(|a, b| a.name.cmp(&b.name));
    for t in tunnels {
        if let Some(c) = cert(&t.name) {
            let file = format!("servers/20-tunnel-{}.conf", t.name);
            out.push((file, tunnel_vhost(input, domain, &t.name, t.access, c)));
        }
    }
    let mut sites: Vec<_> = input.sites.iter().collect();
    sites.sort_by(|a, b| a.name.cmp(&b.name));
    for site in sites {
        if let Some(c) = cert(&site.name) {
            let file = format!("servers/30-site-{}.conf", site.name);
            out.push((file, site_vhost(input, domain, &site.name, site.spa_fallback, site.access, c)));
        }
    }
    out
}

fn tls_server(input: &RenderInput, name: &str, cert: &CertPaths) -> String {
    tls_server_after(input, "", name, cert)
}

/// [`tls_server`] with `preamble` (http-level blocks) between the file header
/// and the server block.
fn tls_server_after(input: &RenderInput, preamble: &str, name: &str, cert: &CertPaths) -> String {
    format!(
        "{HEADER}{preamble}server {{
    listen {listen} ssl;
    server_name {name};
    ssl_certificate {chain};
    ssl_certificate_key {key};
",
        listen = listen(input, input.ports.https),
        chain = cert.fullchain.display(),
        key = cert.key.display(),
    )
}

/// Shared by `:9292` and `panel.<d>`: client certificate checked per location,
/// public enrollment, invitation and agent download routes, help page for 495/496.
/// HSTS only by name: browsers ignore it for IP addresses.
///
/// Every location forwards the normalised URI (`proxy_pass` with a URI part),
/// never the raw one: the path the panel routes is the path nginx matched, so
/// `/api/keys/..%2Finvite%2Fx` cannot reach a public location as `/api/invite/x`
/// and then the panel as a key route.
fn panel_body(s: &mut String, input: &RenderInput, client_ca: &str, hsts: bool) {
    let hsts = if hsts { "    add_header Strict-Transport-Security \"max-age=31536000\" always;\n" } else { "" };
    // Public: no identity, small bodies, certificate headers set by nginx.
    let public = |path: &str, extra: &str| {
        format!(
            "        limit_req zone=portico_login burst=10 nodelay;
{extra}        include snippets/proxy.conf;
        include snippets/mtls.conf;
        proxy_set_header Connection \"\";
        proxy_pass http://portico_panel{path};
"
        )
    };
    // Behind a certificate (or an API key the panel checks): uploads up to
    // 512 MB (backups, sites), streamed to the panel, never spooled.
    let identified = |path: &str, gate: &str| {
        format!(
            "        if ({gate}) {{
            return 496;
        }}
        limit_req zone=portico_panel burst=100 nodelay;
        client_max_body_size 512m;
        include snippets/proxy.conf;
        include snippets/mtls.conf;
        # WebSocket upgrades (provisioning progress) pass through.
        proxy_set_header Upgrade $http_upgrade;
        proxy_set_header Connection $connection_upgrade;
        proxy_request_buffering off;
        proxy_read_timeout 300s;
        proxy_pass http://portico_panel{path};
"
        )
    };
    let api_gate = "$portico_api_denied";
    let cert_gate = "$ssl_client_verify != SUCCESS";
    let _ = write!(
        s,
        "    ssl_client_certificate {client_ca};
    ssl_verify_client optional;
    ssl_verify_depth 2;
{hsts}    include snippets/panel-headers.conf;
    limit_conn portico_conn_operators {ops};
    error_page 495 496 =403 /_portico/cert-required.html;

    location = /_portico/cert-required.html {{
        internal;
        alias {page};
        default_type text/html;
    }}

    location = /_portico/restarting.html {{
        internal;
        alias {restarting};
        default_type text/html;
    }}

    location = /api/health {{
{health}    }}

    location = /api/enroll {{
{enroll}    }}

    # The agent's binaries, checksums and install.sh: public, read-only,
    # streamed (never spooled to disk).
    location ^~ /download/ {{
        limit_except GET {{
            deny all;
        }}
{download}    }}

    # The path carries the invitation token; nginx's error log has no format
    # to redact it, so this location logs only critical errors.
    location ^~ /api/invite/ {{
{invite}    }}

    # API and metrics: a client certificate or an API key.
    location /api/ {{
{api}    }}

    location = /metrics {{
{metrics}    }}

    # Pages: a client certificate only. While the panel restarts (nothing
    # answers), a page that reloads itself instead of nginx's bare 502; a
    # location's own error_page replaces the server's, so 495/496 again.
    location / {{
{pages}        error_page 495 496 =403 /_portico/cert-required.html;
        error_page 502 503 504 =503 /_portico/restarting.html;
    }}
}}
",
        ops = super::limits::OPERATOR_CONNS,
        page = input.conf_dir.join(CERT_PAGE).display(),
        restarting = input.conf_dir.join(RESTARTING_PAGE).display(),
        health = public("/api/health", "").replace("        limit_req zone=portico_login burst=10 nodelay;\n", ""),
        enroll = public("/api/enroll", ""),
        // No secret to guess here, so not the sign-in budget: the panel's
        // rate, a short burst (the script, a binary, its checksum).
        download = public("/download/", "        proxy_buffering off;\n").replace(
            "limit_req zone=portico_login burst=10 nodelay;",
            "limit_req zone=portico_panel burst=20 nodelay;",
        ),
        invite = public("/api/invite/", "        error_log stderr crit;\n"),
        api = identified("/api/", api_gate),
        metrics = identified("/metrics", api_gate),
        pages = identified("/", cert_gate),
    );
}

/// What the forward-auth subrequest says of the visitor's request.
const AUTHZ_FORWARDED: &str = "        proxy_set_header X-Forwarded-Method $request_method;
        proxy_set_header X-Forwarded-Proto $scheme;
        proxy_set_header X-Forwarded-Host $http_host;
        proxy_set_header X-Forwarded-Uri $request_uri;
        proxy_set_header X-Forwarded-For $remote_addr;
";

/// With an external forward-auth service (Authelia's nginx contract): the
/// subrequest goes to its verify URL with the original URL and method; 401
/// sends the visitor to its portal with `rd`; a 403 is nginx's own page
/// (who may open what is the service's business).
fn external_auth(verify_url: &str, portal_url: &str, origin: &str) -> (String, String) {
    let authz = format!(
        "    location = /_portico_authz {{
        internal;
        proxy_pass {verify_url};
        proxy_pass_request_body off;
        proxy_http_version 1.1;
        # The visitor's own identity headers never reach the service.
        include snippets/identity-clear.conf;
        include snippets/remote-clear.conf;
        proxy_set_header Connection \"\";
        proxy_set_header Content-Length \"\";
        proxy_set_header X-Original-URL $scheme://$http_host$request_uri;
        proxy_set_header X-Original-Method $request_method;
{forwarded}    }}

",
        forwarded = AUTHZ_FORWARDED,
    );
    let check = format!(
        "        auth_request /_portico_authz;
        auth_request_set $portico_user $upstream_http_remote_user;
        auth_request_set $portico_groups $upstream_http_remote_groups;
        auth_request_set $portico_name $upstream_http_remote_name;
        auth_request_set $portico_email $upstream_http_remote_email;
        error_page 401 =302 {portal_url}?rd={origin}$request_uri;
"
    );
    (authz, check)
}

/// `auth.<d>` with an external forward-auth service: Portico's own visitor
/// pages are never served. When the service's portal lives at this name,
/// nginx proxies it there; otherwise the name sends visitors to the portal.
fn external_portal(s: &mut String, domain: &str, verify_url: &str, portal_url: &str) {
    let here = url::Url::parse(portal_url).ok().and_then(|u| u.host_str().map(|h| h == format!("auth.{domain}")));
    let service = url::Url::parse(verify_url).map(|u| u.origin().ascii_serialization()).unwrap_or_default();
    let to = if here == Some(true) {
        format!(
            "        limit_req zone=portico_login burst=20 nodelay;
        include snippets/proxy.conf;
        include snippets/identity-clear.conf;
        proxy_set_header Connection \"\";
        proxy_pass {service};
"
        )
    } else {
        format!("        return 302 {portal_url};\n")
    };
    let _ = write!(
        s,
        "    include snippets/security-headers.conf;
    limit_conn portico_conn_operators {ops};

    location / {{
{to}    }}
}}
",
        ops = super::limits::OPERATOR_CONNS,
    );
}

/// `auth.<d>`: the visitor login portal, rate limited. authd's forward-auth
/// endpoint answers nginx's internal subrequests only: 404 here.
fn auth_portal(input: &RenderInput, domain: &str, cert: &CertPaths) -> String {
    let mut s = tls_server(input, &format!("auth.{domain}"), cert);
    if let VisitorAuth::External { verify_url, portal_url } = &input.visitor_auth {
        external_portal(&mut s, domain, verify_url, portal_url);
        return s;
    }
    let proxied = |path: &str| {
        format!(
            "        limit_req zone=portico_login burst=20 nodelay;
        include snippets/proxy.conf;
        include snippets/identity-clear.conf;
        proxy_set_header Connection \"\";
        proxy_pass http://portico_authd{path};
"
        )
    };
    let _ = write!(
        s,
        "    include snippets/security-headers.conf;
    add_header X-Frame-Options DENY always;
    limit_conn portico_conn_operators {ops};

    location ^~ /api/authz {{
        return 404;
    }}

    # The portal's stylesheets and logo: no sign-in budget spent on them.
    location ^~ /static/ {{
        limit_req zone=portico_panel burst=100 nodelay;
        include snippets/proxy.conf;
        include snippets/identity-clear.conf;
        proxy_set_header Connection \"\";
        proxy_pass http://portico_authd/static/;
    }}

    # The path carries the invitation token; nginx's error log has no format
    # to redact it, so this location logs only critical errors.
    location ^~ /invite/ {{
        error_log stderr crit;
{invite}    }}

    location / {{
{rest}    }}
}}
",
        ops = super::limits::OPERATOR_CONNS,
        invite = proxied("/invite/"),
        rest = proxied("/"),
    );
    s
}

/// `tunnel.<d>`: agents' WebSocket; the relay decides on the certificate.
fn agent_endpoint(input: &RenderInput, domain: &str, cert: &CertPaths) -> String {
    let mut s = tls_server(input, &format!("tunnel.{domain}"), cert);
    let _ = write!(
        s,
        "    ssl_client_certificate {ca};
    ssl_verify_client optional;
    ssl_verify_depth 2;
    include snippets/security-headers.conf;
    limit_conn portico_conn_operators {ops};

    location / {{
        include snippets/proxy.conf;
        include snippets/mtls.conf;
        proxy_set_header Upgrade $http_upgrade;
        proxy_set_header Connection $connection_upgrade;
        proxy_buffering off;
        proxy_request_buffering off;
        proxy_read_timeout 1h;
        proxy_send_timeout 1h;
        proxy_pass http://portico_relay_agents;
    }}
}}
",
        ca = input.client_ca.display(),
        ops = super::limits::OPERATOR_CONNS,
    );
    s
}

/// Access logs of a tunnel or site vhost: stdout like every vhost, plus one
/// syslog datagram per request to the panel's visitor counter. The tag tells
/// tunnels from sites; `$server_name` is this vhost's own name, never the
/// client's Host header.
fn visitor_logs(input: &RenderInput, tag: &str) -> String {
    use super::limits::LOG_FORMAT as ACCESS;
    use crate::metrics::visitors::LOG_FORMAT;
    match input.visitor_log {
        Some(addr) => format!(
            "    access_log /dev/stdout {ACCESS};
    access_log syslog:server={addr},nohostname,tag={tag},severity=info {LOG_FORMAT} if=$portico_visitor;
"
        ),
        None => String::new(),
    }
}

/// The authz subrequest location and the `location /` preamble for visitor
/// access. Public resources only clear identity headers. A 403 from authd
/// shows authd's "not shared with you" page (status stays 403).
///
/// The `rd` parameter is not percent-encoded (nginx has no encoder without
/// extra modules). It is always the last parameter and carries this vhost's
/// own name rather than the client's Host header, so authd takes everything
/// after `rd=` verbatim and must still check it lies under the domain. The
/// denied page gets the same URL, for its "sign in as someone else" link.
fn visitor_auth(input: &RenderInput, domain: &str, name: &str, access: Access) -> (String, String) {
    if access == Access::Public {
        return (String::new(), String::new());
    }
    let port = https_port_suffix(input);
    if let VisitorAuth::External { verify_url, portal_url } = &input.visitor_auth {
        return external_auth(verify_url, portal_url, &format!("https://{name}.{domain}{port}"));
    }
    let authz = format!(
        "    location = /_portico_authz {{
        internal;
        proxy_pass http://portico_authd/api/authz/nginx;
        proxy_pass_request_body off;
        proxy_http_version 1.1;
        proxy_set_header Connection \"\";
        proxy_set_header Content-Length \"\";
        proxy_set_header Host $host;
        proxy_set_header X-Original-URL $scheme://$http_host$request_uri;
{forwarded}        proxy_set_header X-Portico-Resource {name};
    }}

    location = /_portico_denied {{
        internal;
        proxy_pass http://portico_authd/denied;
        proxy_pass_request_body off;
        proxy_http_version 1.1;
        proxy_set_header Connection \"\";
        proxy_set_header Content-Length \"\";
        proxy_set_header Host $host;
        proxy_set_header X-Original-URL https://{name}.{domain}{port}$request_uri;
    }}

",
        forwarded = AUTHZ_FORWARDED,
    );
    let check = format!(
        "        auth_request /_portico_authz;
        auth_request_set $portico_user $upstream_http_remote_user;
        auth_request_set $portico_groups $upstream_http_remote_groups;
        auth_request_set $portico_name $upstream_http_remote_name;
        auth_request_set $portico_email $upstream_http_remote_email;
        error_page 401 =302 https://auth.{domain}{port}/?rd=https://{name}.{domain}{port}$request_uri;
        error_page 403 /_portico_denied;
"
    );
    (authz, check)
}

/// The upstream of one tunnel: the relay's visitor port with a keep-alive
/// pool of its own.
///
/// The relay routes a visitor connection by the `Host` of its first request
/// and relays it to that tunnel's agent for as long as it lives. A pool shared
/// by several tunnels would let nginx reuse a connection opened for tunnel A
/// for a request to tunnel B, which A's agent would then answer.
pub(crate) fn tunnel_upstream(name: &str) -> String {
    format!("portico_tunnel_{name}")
}

/// `<name>.<d>` for a tunnel: visitor auth, then the relay's visitor port
/// through the tunnel's own upstream.
fn tunnel_vhost(input: &RenderInput, domain: &str, name: &str, access: Access, cert: &CertPaths) -> String {
    let upstream = tunnel_upstream(name);
    let preamble = format!(
        "# Own keep-alive pool: the relay routes each connection by its first Host.
# Idle connections close after 5 s: each holds a tunnel stream whose flow-control
# window, once grown by a download, stays taken from the agent's shared budget.
upstream {upstream} {{
    server {addr};
    keepalive 8;
    keepalive_timeout 5s;
}}

",
        addr = input.upstreams.relay_visitors,
    );
    let mut s = tls_server_after(input, &preamble, &format!("{name}.{domain}"), cert);
    let (authz, check) = visitor_auth(input, domain, name, access);
    let logs = visitor_logs(input, crate::metrics::visitors::TAG_TUNNEL);
    // Only the Remote-* headers authd answered may reach the app; every other
    // identity header Portico uses, and the portal's session cookie, never do.
    let identity = if access == Access::Public {
        "        include snippets/identity-clear.conf;
        include snippets/remote-clear.conf;
        proxy_set_header Cookie $portico_app_cookie;
"
    } else {
        "        include snippets/identity-clear.conf;
        proxy_set_header Cookie $portico_app_cookie;
        proxy_set_header Remote-User $portico_user;
        proxy_set_header Remote-Groups $portico_groups;
        proxy_set_header Remote-Name $portico_name;
        proxy_set_header Remote-Email $portico_email;
"
    };
    let _ = write!(
        s,
        "    include snippets/security-headers.conf;
    limit_conn portico_conn_visitors {conns};
{logs}    # Streamed to the relay, never spooled; the home app sets its own limit.
    client_max_body_size 0;

{authz}    location / {{
{check}        include snippets/proxy.conf;
{identity}        proxy_set_header Upgrade $http_upgrade;
        proxy_set_header Connection $connection_upgrade;
        proxy_buffering off;
        proxy_request_buffering off;
        proxy_read_timeout 1h;
        proxy_send_timeout 1h;
        proxy_pass http://{upstream};
    }}
}}
",
        conns = super::limits::VISITOR_CONNS,
    );
    s
}

/// `<name>.<d>` for a static site served from `data_dir/sites/<name>/`.
fn site_vhost(input: &RenderInput, domain: &str, name: &str, spa: bool, access: Access, cert: &CertPaths) -> String {
    let mut s = tls_server(input, &format!("{name}.{domain}"), cert);
    let (authz, check) = visitor_auth(input, domain, name, access);
    let fallback = if spa { "/index.html" } else { "=404" };
    let logs = visitor_logs(input, crate::metrics::visitors::TAG_SITE);
    let _ = write!(
        s,
        "    include snippets/security-headers.conf;
    limit_conn portico_conn_visitors {conns};
{logs}    root {root};
    index index.html;

{authz}    location / {{
{check}        try_files $uri $uri/ {fallback};
    }}
}}
",
        root = input.data_dir.join("sites").join(name).display(),
        conns = super::limits::VISITOR_CONNS,
    );
    s
}
