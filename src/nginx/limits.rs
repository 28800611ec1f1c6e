//! http-level text of `nginx.conf` that guards the public surface: connection
//! sizing, timeouts, body limits, per-address connection limits, and the maps
//! that decide who reaches the panel API, what a home app sees of a visitor's
//! cookies, and what the access log may record.
//!
//! Everything here is constant text: nothing depends on state, so these
//! directives are the same in every rendered tree.

use crate::authd::SESSION_COOKIE;

/// Per-address connection limit of the visitor zone (tunnels, sites, `:80`).
pub(crate) const VISITOR_CONNS: u32 = 1024;
/// Per-address connection limit of the operator zone (panel, portal, agents).
pub(crate) const OPERATOR_CONNS: u32 = 64;
/// Name of the access log format that redacts secrets.
pub(crate) const LOG_FORMAT: &str = "portico";
/// Request bodies on locations reachable without an identity.
pub(crate) const PUBLIC_BODY: &str = "64k";

/// Main-context sizing placed before `events`, and the `events` block.
///
/// The arithmetic is in the rendered comment so an operator reading the live
/// tree sees why the numbers are what they are.
pub(crate) fn main_context() -> String {
    "# Sizing for the 512 MB box. A proxied visitor takes two connections in a
# worker (visitor + upstream) and the kernel does not spread accepts evenly,
# so one worker must be able to hold the whole load: 1,000 visitors on one
# tunnel need ~2,000, so each worker gets 4,096. A connection slot costs
# ~0.5 KB up front; a live TLS connection ~40-60 KB, so even 4,096 busy
# connections stay under ~250 MB. Descriptors: one per connection plus
# files being sent, hence twice worker_connections.
worker_rlimit_nofile 8192;

events {
    worker_connections 4096;
}
"
    .into()
}

/// http-level directives: timeouts, the default body limit, TLS session
/// cache, connection-limit zones and the maps.
pub(crate) fn http_context() -> String {
    format!(
        "    # Slow clients hold memory: a request head must arrive within 10 s,
    # a body must keep moving (30 s between two reads), and a visitor that
    # stops reading is dropped after 30 s without progress. Timed-out
    # connections are reset so their buffers are freed at once.
    client_header_timeout 10s;
    client_body_timeout 30s;
    send_timeout 30s;
    reset_timedout_connection on;
    # Every location reachable without an identity takes small bodies only;
    # locations behind a certificate or an API key, and tunnels (streamed,
    # never spooled), raise it themselves.
    client_max_body_size {PUBLIC_BODY};

    # Connections per client (IPv4 address, IPv6 /64) with a request in
    # flight. Visitors behind one NAT (or a load test from one host) may
    # hold {VISITOR_CONNS} on tunnels and sites, a quarter of the box; the panel,
    # the login portal and the agent endpoint serve people and scripts: {OPERATOR_CONNS}.
    limit_conn_zone $portico_client zone=portico_conn_visitors:2m;
    limit_conn_zone $portico_client zone=portico_conn_operators:1m;
    limit_conn_status 429;

{client}
    # API requests without a client certificate pass when they carry an API
    # key; the panel checks the key. Anything else gets the certificate page.
    map $http_authorization $portico_bearer {{
        default 0;
        \"~^Bearer \\S\" 1;
    }}
    map \"$ssl_client_verify:$portico_bearer\" $portico_api_denied {{
        default 1;
        \"SUCCESS:0\" 0;
        \"~:1$\" 0;
    }}

{cookie}
{log}",
        client = client_map(),
        cookie = cookie_maps(),
        log = log_maps(),
    )
}

/// `$portico_app_cookie`: the visitor's `Cookie` without the login portal's
/// session cookie, for home apps. Each map removes one occurrence (first at
/// the start, else after a `;`); if a third one is still there, every cookie
/// is dropped rather than letting the session through.
/// `$portico_client`, the key every rate and connection limit counts by:
/// the IPv4 address, or the IPv6 /64 as its first four groups written out
/// (`2001:db8:0:0`).
///
/// One subscriber gets a whole /64, so keying by the address would give a
/// client 2^64 buckets. `$remote_addr` is in RFC 5952 form (lowercase, no
/// leading zeros, the longest run of two or more zero groups written `::`),
/// so the four groups are read back from where `::` stands: all four before
/// it; fewer, with zeros after them (and, when five or six groups follow
/// `::`, the first of those in place); IPv4-mapped addresses as they are.
pub(crate) fn client_map() -> String {
    const H: &str = "[0-9a-f]+";
    let rules = [
        (r"\.".to_string(), "$remote_addr"),
        (format!("^(?<portico_c>{H}:{H}:{H}:{H}):"), "$portico_c"),
        (
            format!("^(?<portico_c1>{H}):(?<portico_c2>{H}):(?<portico_c3>{H})::"),
            "$portico_c1:$portico_c2:$portico_c3:0",
        ),
        (format!("^(?<portico_c1>{H}):(?<portico_c2>{H})::"), "$portico_c1:$portico_c2:0:0"),
        (format!("^(?<portico_c1>{H})::(?<portico_c4>{H})(?::{H}){{4}}$"), "$portico_c1:0:0:$portico_c4"),
        (format!("^(?<portico_c1>{H})::"), "$portico_c1:0:0:0"),
        (format!("^::(?<portico_c3>{H}):(?<portico_c4>{H})(?::{H}){{4}}$"), "0:0:$portico_c3:$portico_c4"),
        (format!("^::(?<portico_c4>{H})(?::{H}){{4}}$"), "0:0:0:$portico_c4"),
        ("^::".to_string(), "0:0:0:0"),
    ];
    let mut s = String::from(
        "    # Limits count a client per IPv4 address and per IPv6 /64 (one
    # subscriber's share); see `client_map` in src/nginx/limits.rs.
    map $remote_addr $portico_client {
        default $remote_addr;
",
    );
    for (regex, value) in rules {
        s.push_str(&format!("        \"~{regex}\" \"{value}\";\n"));
    }
    s.push_str("    }\n");
    s
}

fn cookie_maps() -> String {
    let pass = |n: u8, source: &str| {
        format!(
            "    map {source} $portico_cookie_{n} {{
        default {source};
        \"~^\\s*{SESSION_COOKIE}=[^;]*;?\\s*(?<portico_ck{n}_rest>.*)$\" $portico_ck{n}_rest;
        \"~^(?<portico_ck{n}_head>.*?);\\s*{SESSION_COOKIE}=[^;]*(?<portico_ck{n}_tail>.*)$\" $portico_ck{n}_head$portico_ck{n}_tail;
    }}
"
        )
    };
    format!(
        "    # A home app never sees the portal's session cookie: it would open
    # every other tunnel the visitor may reach.
{one}{two}    map $portico_cookie_2 $portico_app_cookie {{
        default $portico_cookie_2;
        \"~(^|;)\\s*{SESSION_COOKIE}=\" \"\";
    }}
",
        one = pass(1, "$http_cookie"),
        two = pass(2, "$portico_cookie_1"),
    )
}

/// `$portico_log_uri` and `$portico_log_referer`: the request URI and the
/// Referer with invitation tokens (`/invite/<token>`, `/api/invite/<token>`,
/// also percent-encoded) replaced, and any query that carries a secret-like
/// parameter replaced as a whole. Used by the `portico` log format.
fn log_maps() -> String {
    let pair = |source: &str, name: &str| {
        format!(
            "    map {source} $portico_{name}_path {{
        default {source};
        \"~*^(?<portico_{name}_a>[^?]*?(?:/|%2f)invite(?:/|%2f))[^/?]+(?<portico_{name}_b>.*)$\" \"${{portico_{name}_a}}[redacted]$portico_{name}_b\";
    }}
    map $portico_{name}_path $portico_log_{name} {{
        default $portico_{name}_path;
        \"~*^(?<portico_{name}_p>[^?]*)\\?(?:.*[&;?])?(?:[a-z0-9_.-]*(?:token|secret|passw|csrf|session|ticket|signature)[a-z0-9_.-]*|code|key|auth|sig)=\" \"${{portico_{name}_p}}?[redacted]\";
    }}
"
        )
    };
    format!(
        "    # Access log without secrets: invitation tokens in paths and any query
    # with a token-like parameter are redacted (the log streams to the panel).
{uri}{referer}    log_format {LOG_FORMAT} '$remote_addr - $remote_user [$time_local] \"$request_method $portico_log_uri $server_protocol\" '
                       '$status $body_bytes_sent \"$portico_log_referer\" \"$http_user_agent\"';
",
        uri = pair("$request_uri", "uri"),
        referer = pair("$http_referer", "referer"),
    )
}
