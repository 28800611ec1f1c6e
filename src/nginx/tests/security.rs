//! The rendered tree's guards, through a real nginx: what a client without a
//! certificate reaches on the panel vhosts (API keys, health, the certificate
//! page, the agent downloads), which URI the panel receives, what a home app sees of a visitor's
//! identity headers and cookies, body limits before authentication, authd's
//! forward-auth endpoint on the portal, and secrets in the access log.
//!
//! Every upstream (panel, authd, relay) is one echo server that answers with
//! the request line and headers it received, so each assertion reads what
//! nginx forwarded.

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use super::support::{
    DOMAIN, Layout, NginxProcess, onboarded_input, set_ports, settings, test_ports, wait_for, write_certs,
};
use crate::model::Access;
use crate::nginx::{TunnelVhost, render};

/// Request lines every upstream received, in order.
type Seen = Arc<Mutex<Vec<String>>>;

/// One echo server for every upstream. `/api/authz/nginx` (authd's
/// forward-auth) allows the visitor as `alice`; anything else answers 200
/// with the request line and headers as the body.
fn echo_upstream(seen: Seen) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let seen = seen.clone();
            thread::spawn(move || echo(conn, seen));
        }
    });
    addr
}

fn echo(mut conn: TcpStream, seen: Seen) {
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let (mut head, mut line, mut length) = (String::new(), String::new(), 0usize);
    while reader.read_line(&mut line).unwrap_or(0) > 0 && line != "\r\n" {
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse().unwrap_or(0);
        }
        head.push_str(&line);
        line.clear();
    }
    let mut body = vec![0; length];
    let _ = reader.read_exact(&mut body);
    let request_line = head.lines().next().unwrap_or_default().to_string();
    seen.lock().unwrap().push(request_line.clone());
    let extra = if request_line.starts_with("GET /api/authz/nginx ") { "Remote-User: alice\r\n" } else { "" };
    let body = format!("{head}body-bytes: {length}\n");
    let _ = write!(conn, "HTTP/1.1 200 OK\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
}

struct World {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    ca: PathBuf,
    https: u16,
    admin: u16,
    seen: Seen,
    nginx: NginxProcess,
}

/// The onboarded tree (panel by IP and by name, portal, a public tunnel `app`
/// and an authenticated tunnel `vault`) with every upstream on the echo.
fn world() -> World {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_path_buf();
    let layout = Layout::temp(&root);
    let ca = write_certs(&layout);
    let seen = Seen::default();
    let echo = echo_upstream(seen.clone());
    let mut settings = settings(&layout, None);
    set_ports(&mut settings, test_ports());
    (settings.panel.listen, settings.authd.listen, settings.relay.visitors_listen) = (echo, echo, echo);
    let mut input = onboarded_input(&layout, &settings);
    input.tunnels = vec![
        TunnelVhost { name: "app".into(), access: Access::Public, enabled: true },
        TunnelVhost { name: "vault".into(), access: Access::Authenticated, enabled: true },
    ];
    super::support::write_tree(&layout.conf_dir, &render(&input).unwrap());
    let nginx = NginxProcess::start(&root, &layout.conf_dir.join("nginx.conf"), input.ports.https);
    World { _tmp: tmp, root, ca, https: input.ports.https, admin: input.ports.admin, seen, nginx }
}

impl World {
    /// `curl` with `args` against `https://<host>:<port><path>` sent as is
    /// (no dot-segment squashing); returns (status, body).
    fn curl(&self, host: &str, port: u16, path: &str, args: &[&str]) -> (u16, String) {
        let out = Command::new("curl")
            .args(["-sS", "--path-as-is", "--max-time", "30", "-o", "-", "-w", "\n%{http_code}"])
            .arg("--cacert")
            .arg(&self.ca)
            .arg("--resolve")
            .arg(format!("{host}:{port}:127.0.0.1"))
            .args(args)
            .arg(format!("https://{host}:{port}{path}"))
            .output()
            .expect("run curl");
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let (body, status) = text.rsplit_once('\n').unwrap_or(("", &text));
        (status.trim().parse().unwrap_or(0), body.to_string())
    }

    /// The panel by IP and by name: (host, port) pairs.
    fn panels(&self) -> [(String, u16); 2] {
        [("127.0.0.1".into(), self.admin), (format!("panel.{DOMAIN}"), self.https)]
    }

    fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

fn is_cert_page(status: u16, body: &str) -> bool {
    status == 403 && body.contains("Client certificate required")
}

/// A header line as the echo reports it, lowercased name.
fn has_header(body: &str, name: &str) -> Option<String> {
    body.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
    })
}

#[test]
fn api_keys_pass_without_a_certificate_and_cannot_smuggle_one() {
    let w = world();
    let spoof = [
        "-H",
        "Authorization: Bearer pk_test_key",
        "-H",
        "X-SSL-Client-Verify: SUCCESS",
        "-H",
        "X-SSL-Client-DN: CN=admin",
        "-H",
        "X-SSL-Client-Serial: 01",
    ];
    for (host, port) in w.panels() {
        // Neither a certificate nor a key: the help page, the panel never asked.
        let before = w.seen().len();
        for path in ["/api/tunnels", "/metrics", "/", "/api/"] {
            let (status, body) = w.curl(&host, port, path, &[]);
            assert!(is_cert_page(status, &body), "{host}{path}: {status} {body}");
        }
        // Certificate headers without a key or certificate get the help page too.
        let (status, body) = w.curl(&host, port, "/api/tunnels", &spoof[2..]);
        assert!(is_cert_page(status, &body), "{host}: {status} {body}");
        assert_eq!(w.seen().len(), before, "a request without identity reached the panel");

        // Health is public.
        let (status, body) = w.curl(&host, port, "/api/health", &[]);
        assert_eq!(status, 200, "{host}: {body}");
        assert!(body.starts_with("GET /api/health HTTP/1.1"), "{body}");

        // A key reaches the API and /metrics; the forged certificate headers
        // are replaced by nginx's own verdict.
        for path in ["/api/tunnels", "/metrics", "/api/keys/abc"] {
            let (status, body) = w.curl(&host, port, path, &spoof);
            assert_eq!(status, 200, "{host}{path}: {body}");
            assert!(body.starts_with(&format!("GET {path} HTTP/1.1")), "{body}");
            assert_eq!(has_header(&body, "authorization").as_deref(), Some("Bearer pk_test_key"), "{body}");
            assert_eq!(has_header(&body, "x-ssl-client-verify").as_deref(), Some("NONE"), "{body}");
            assert!(!body.contains("CN=admin") && has_header(&body, "x-ssl-client-serial").is_none(), "{body}");
        }
        // Pages stay certificate-only, with or without a key.
        let (status, body) = w.curl(&host, port, "/", &spoof);
        assert!(is_cert_page(status, &body), "{host}: {status} {body}");
        // Something that is not a bearer key is no key.
        let (status, body) = w.curl(&host, port, "/api/tunnels", &["-H", "Authorization: Basic YTpi"]);
        assert!(is_cert_page(status, &body), "{host}: {status} {body}");
    }
}

#[test]
fn encoded_traversals_reach_the_panel_as_the_path_nginx_matched() {
    let w = world();
    for (host, port) in w.panels() {
        // Matched as the public invitation route: forwarded as that route,
        // never as the raw key route.
        let (status, body) = w.curl(&host, port, "/api/keys/..%2Finvite%2Fx", &[]);
        assert_eq!(status, 200, "{body}");
        assert!(body.starts_with("GET /api/invite/x HTTP/1.1"), "{body}");
        let (status, body) = w.curl(&host, port, "/api/tunnels/..%2Fenroll", &["-d", "{}"]);
        assert_eq!(status, 200, "{body}");
        assert!(body.starts_with("POST /api/enroll HTTP/1.1"), "{body}");
        // From a public prefix to an authenticated route: nginx sees the key
        // route and wants an identity.
        let before = w.seen().len();
        for path in ["/api/invite/..%2F..%2Fapi%2Fkeys", "/api/invite/../keys", "/api/health/..%2Fkeys"] {
            let (status, body) = w.curl(&host, port, path, &[]);
            assert!(is_cert_page(status, &body), "{host}{path}: {status} {body}");
        }
        assert_eq!(w.seen().len(), before, "a traversal reached the panel without identity");
        // With a key, the panel gets the normalised path, not the raw one.
        let key = ["-H", "Authorization: Bearer k"];
        let (status, body) = w.curl(&host, port, "/api/invite/..%2F..%2Fapi%2Fkeys", &key);
        assert_eq!(status, 200, "{body}");
        assert!(body.starts_with("GET /api/keys HTTP/1.1"), "{body}");
    }
}

#[test]
fn agent_downloads_are_public_read_only_and_stay_under_their_prefix() {
    let w = world();
    for (host, port) in w.panels() {
        // No client certificate: the binaries and install.sh still pass, as
        // the path nginx matched; HEAD passes as well.
        for path in ["/download/", "/download/install.sh", "/download/portico-linux-amd64"] {
            let (status, body) = w.curl(&host, port, path, &[]);
            assert_eq!(status, 200, "{host}{path}: {body}");
            assert!(body.starts_with(&format!("GET {path} HTTP/1.1")), "{body}");
        }
        let (status, _) = w.curl(&host, port, "/download/install.sh", &["-I"]);
        assert_eq!(status, 200, "{host}: HEAD");
        // Nothing but reading: other verbs never reach the panel.
        let before = w.seen().len();
        for verb in ["POST", "PUT", "DELETE"] {
            let (status, _) = w.curl(&host, port, "/download/install.sh", &["-X", verb, "-d", "x"]);
            assert_eq!(status, 403, "{host}: {verb}");
        }
        // Out of the prefix by dot segments: the panel's pages, which want a certificate.
        for path in ["/download/..%2Fapi%2Fkeys", "/download/../api/keys", "/download/%2e%2e/metrics"] {
            let (status, body) = w.curl(&host, port, path, &[]);
            assert!(is_cert_page(status, &body), "{host}{path}: {status} {body}");
        }
        assert_eq!(w.seen().len(), before, "a refused request reached the panel");
    }
}

#[test]
fn the_forward_auth_endpoint_is_not_public_on_the_portal() {
    let w = world();
    let host = format!("auth.{DOMAIN}");
    let before = w.seen().len();
    for path in ["/api/authz/nginx", "/api/authz/nginx?x=1", "/x/..%2Fapi%2Fauthz%2Fnginx", "/api//authz/nginx"] {
        let (status, _) = w.curl(&host, w.https, path, &["-H", "Cookie: portico_session=abc"]);
        assert_eq!(status, 404, "{path}");
    }
    assert_eq!(w.seen().len(), before, "authd's forward-auth answered a visitor");
    // The portal itself and the internal subrequest still work.
    let (status, body) = w.curl(&host, w.https, "/login", &[]);
    assert_eq!((status, body.starts_with("GET /login HTTP/1.1")), (200, true), "{body}");
    let (status, body) = w.curl(&format!("vault.{DOMAIN}"), w.https, "/", &[]);
    assert_eq!(status, 200, "{body}");
    assert_eq!(has_header(&body, "remote-user").as_deref(), Some("alice"), "{body}");
    assert!(w.seen().iter().any(|l| l.starts_with("GET /api/authz/nginx ")));
}

#[test]
fn request_bodies_before_authentication_are_small() {
    let w = world();
    let big = w.root.join("big.json");
    fs::write(&big, vec![b'a'; 1024 * 1024]).unwrap();
    let big_arg = format!("@{}", big.display());
    let small = "a".repeat(32 * 1024);
    let before = w.seen().len();
    let public = [
        (format!("panel.{DOMAIN}"), w.https, "/api/enroll"),
        ("127.0.0.1".to_string(), w.admin, "/api/enroll"),
        (format!("panel.{DOMAIN}"), w.https, "/api/invite/tok"),
        (format!("panel.{DOMAIN}"), w.https, "/api/health"),
        (format!("auth.{DOMAIN}"), w.https, "/login"),
        (format!("auth.{DOMAIN}"), w.https, "/invite/tok"),
    ];
    for (host, port, path) in &public {
        let (status, _) = w.curl(host, *port, path, &["--data-binary", &big_arg]);
        assert_eq!(status, 413, "{host}{path}");
    }
    assert_eq!(w.seen().len(), before, "a large unauthenticated body reached an upstream");
    assert!(fs::read_dir(w.root.join("run/client_body")).map_or(0, |d| d.count()) == 0, "a body was spooled");
    // Bodies a form or a CSR needs still pass.
    for (host, port, path) in &public[..2] {
        let (status, body) = w.curl(host, *port, path, &["--data-binary", &small]);
        assert_eq!(status, 200, "{host}{path}: {body}");
        assert!(body.ends_with(&format!("body-bytes: {}\n", small.len())), "{body}");
    }
    // Tunnels stream bodies to the home app, which sets its own limit.
    let (status, body) = w.curl(&format!("app.{DOMAIN}"), w.https, "/upload", &["--data-binary", &big_arg]);
    assert_eq!(status, 200, "{body}");
    assert!(body.ends_with("body-bytes: 1048576\n"), "{body}");
}

/// Headers a visitor sends that claim an identity Portico uses.
const SPOOFED: [&str; 10] = [
    "X-SSL-Client-Verify: SUCCESS",
    "X-SSL-Client-DN: CN=admin",
    "X-SSL-Client-Serial: 01",
    "X-Remote-User-Id: 1",
    "X-Remote-User-Name: admin",
    "X-Remote-User-Display-Name: Admin",
    "X-Ingress-Path: /api/hassio_ingress/x",
    "X-Portico-Resource: vault",
    "Remote-User: mallory",
    "Remote-Groups: admins",
];

#[test]
fn home_apps_never_see_identity_headers_or_the_portal_session() {
    let w = world();
    let cookies: [(&[&str], &str); 8] = [
        (&["portico_session=S1"], ""),
        (&["portico_session=S1; a=1"], "a=1"),
        (&["a=1; portico_session=S1"], "a=1"),
        (&["a=1; portico_session=S1; b=2"], "a=1; b=2"),
        (&["a=1;portico_session=S1;b=2"], "a=1;b=2"),
        (&["portico_session=S1; a=1; portico_session=S2; b=2"], "a=1; b=2"),
        (&["a=1", "portico_session=S1", "b=2"], "a=1; b=2"),
        (&["xportico_session=keep; portico_sessionx=keep2"], "xportico_session=keep; portico_sessionx=keep2"),
    ];
    for tunnel in ["app", "vault"] {
        let host = format!("{tunnel}.{DOMAIN}");
        for (sent, want) in cookies {
            let mut args: Vec<String> = SPOOFED.iter().flat_map(|h| ["-H".to_string(), h.to_string()]).collect();
            for c in sent {
                args.extend(["-H".to_string(), format!("Cookie: {c}")]);
            }
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let (status, body) = w.curl(&host, w.https, "/", &args);
            assert_eq!(status, 200, "{body}");
            let cookie = has_header(&body, "cookie").unwrap_or_default();
            assert_eq!(cookie, want, "{tunnel} with {sent:?}: {body}");
            assert!(!body.contains("S1") && !body.contains("S2"), "session reached {tunnel}: {body}");
            for spoofed in SPOOFED {
                let name = spoofed.split(':').next().unwrap();
                let got = has_header(&body, name);
                let allowed = tunnel == "vault" && name == "Remote-User" && got.as_deref() == Some("alice");
                assert!(got.is_none() || allowed, "{name} reached {tunnel}: {body}");
            }
        }
    }
    // Three session cookies are more than the maps unpick: every cookie goes.
    let three = "Cookie: portico_session=S1; a=1; portico_session=S2; portico_session=S3";
    let (_, body) = w.curl(&format!("app.{DOMAIN}"), w.https, "/", &["-H", three]);
    assert!(has_header(&body, "cookie").is_none(), "{body}");
}

#[test]
fn the_access_log_redacts_tokens() {
    let w = world();
    let requests = [
        (format!("panel.{DOMAIN}"), "/api/invite/SECRETPANEL1"),
        (format!("auth.{DOMAIN}"), "/invite/SECRETPORTAL2?x=1"),
        (format!("auth.{DOMAIN}"), "/api%2Finvite%2FSECRETENC3"),
        (format!("app.{DOMAIN}"), "/callback?state=1&code=SECRETCODE4"),
        (format!("app.{DOMAIN}"), "/x?access_token=SECRETTOKEN5"),
        (format!("app.{DOMAIN}"), "/plain?page=2"),
    ];
    let referer = format!("Referer: https://auth.{DOMAIN}/invite/SECRETREFERER6");
    for (host, path) in &requests {
        w.curl(host, w.https, path, &["-H", &referer]);
    }
    let log = wait_for("access log lines", Duration::from_secs(10), || {
        let log = fs::read_to_string(&w.nginx.stdout).unwrap_or_default();
        (log.contains("/plain?page=2") && log.lines().count() >= requests.len()).then_some(log)
    });
    assert!(!log.contains("SECRET"), "{log}");
    assert!(log.contains("/api/invite/[redacted]") && log.contains("/invite/[redacted]?x=1"), "{log}");
    assert!(log.contains("/callback?[redacted]") && log.contains("/invite/[redacted]\""), "{log}");
    let errors = fs::read_to_string(Path::new(&w.nginx.stderr)).unwrap_or_default();
    assert!(!errors.contains("SECRET"), "{errors}");
}
