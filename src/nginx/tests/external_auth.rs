//! `authd.mode: external` through a real nginx with the rendered config: a
//! stand-in speaking Authelia's nginx contract decides (401 → its portal
//! with `rd`, 200 with `Remote-*`, 403), its portal is served at `auth.<d>`,
//! and the app sees only the identity the service answered.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;

use super::authd::{curl, echo_upstream, header};
use super::support::{
    DOMAIN, Layout, NGINX, NginxProcess, onboarded_input, set_ports, settings, test_ports, write_certs,
};
use crate::model::Access;
use crate::nginx::{Applier, NginxBinary, TunnelVhost, VisitorAuth, render};

/// The stand-in: `/api/verify` decides by the `authelia_session` cookie
/// (alice: 200 with her identity; eve: 403; none: 401); every other path is
/// its portal page, which shows the query it got. Keeps each verify
/// request's head.
fn stand_in() -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let log = log.clone();
            thread::spawn(move || answer(conn, &log));
        }
    });
    (addr, seen)
}

fn answer(mut conn: TcpStream, log: &Mutex<Vec<String>>) {
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let (mut head, mut line) = (String::new(), String::new());
    while reader.read_line(&mut line).unwrap_or(0) > 0 && line != "\r\n" {
        head.push_str(&line);
        line.clear();
    }
    let target = head.split_whitespace().nth(1).unwrap_or("/").to_string();
    let cookie = head.lines().find(|l| l.to_ascii_lowercase().starts_with("cookie:")).unwrap_or("").to_string();
    let (status, extra, body) = if target == "/api/verify" {
        log.lock().unwrap().push(head.clone());
        if cookie.contains("authelia_session=alice") {
            let who = "Remote-User: alice\r\nRemote-Groups: family,admins\r\nRemote-Name: Alice\r\nRemote-Email: alice@example.test\r\n";
            ("200 OK", who, String::new())
        } else if cookie.contains("authelia_session=eve") {
            ("403 Forbidden", "", String::new())
        } else {
            ("401 Unauthorized", "", String::new())
        }
    } else {
        ("200 OK", "", format!("the external portal, asked for {target}"))
    };
    let _ =
        write!(conn, "HTTP/1.1 {status}\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
}

#[test]
fn an_external_service_decides_for_visitors_through_nginx() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_path_buf();
    let layout = Layout::temp(&root);
    let ca = write_certs(&layout);
    let (service, seen) = stand_in();

    let mut settings = settings(&layout, None);
    set_ports(&mut settings, test_ports());
    settings.relay.visitors_listen = echo_upstream();
    let mut input = onboarded_input(&layout, &settings);
    let port = input.ports.https;
    input.visitor_auth = VisitorAuth::External {
        verify_url: format!("http://{service}/api/verify"),
        portal_url: format!("https://auth.{DOMAIN}:{port}/"),
    };
    input.tunnels = vec![TunnelVhost { name: "vault".into(), access: Access::Restricted, enabled: true }];
    let reloader = NginxBinary::new(NGINX, &root, &layout.conf_dir);
    let applier = Applier::new(&layout.conf_dir, layout.data_dir.join("nginx/snapshots"), 5, Box::new(reloader));
    applier.install(&render(&input).unwrap(), "init").unwrap();
    let _nginx = NginxProcess::start(&root, &layout.conf_dir.join("nginx.conf"), port);

    let jar = root.join("cookies.txt");
    let app = format!("https://vault.{DOMAIN}:{port}/notes?x=1");
    let spoof = ["-H", "Remote-User: mallory", "-H", "Remote-Groups: root"];

    // No session: the service's 401 sends the visitor to its portal with rd.
    let (status, head, _) = curl(&ca, &jar, port, &app, &spoof);
    assert_eq!(status, 302, "{head}");
    let portal = header(&head, "location");
    assert_eq!(portal, format!("https://auth.{DOMAIN}:{port}/?rd={app}"));
    let verify = seen.lock().unwrap().last().cloned().unwrap();
    assert!(verify.contains(&format!("X-Original-URL: {app}\r\n")), "{verify}");
    assert!(verify.contains("X-Original-Method: GET\r\n"), "{verify}");
    assert!(!verify.contains("mallory"), "{verify}");

    // auth.<d> is the service's portal, not Portico's pages.
    let (status, _, body) = curl(&ca, &jar, port, &portal, &[]);
    assert_eq!(status, 200);
    assert_eq!(body, format!("the external portal, asked for /?rd={app}"));
    let (_, _, body) = curl(&ca, &jar, port, &format!("https://auth.{DOMAIN}:{port}/invite/abc"), &[]);
    assert_eq!(body, "the external portal, asked for /invite/abc");

    // Signed in with the service: the app sees its identity, never the spoofed one.
    let mut alice = spoof.to_vec();
    alice.extend(["-H", "Cookie: authelia_session=alice"]);
    let (status, _, body) = curl(&ca, &jar, port, &app, &alice);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("remote-user: alice") && body.contains("remote-groups: family,admins"), "{body}");
    assert!(body.contains("remote-email: alice@example.test"), "{body}");
    assert!(!body.contains("mallory") && !body.contains("root"), "spoofed headers reached the app: {body}");

    // The service refuses eve: 403, and the app never sees the request.
    let (status, _, body) = curl(&ca, &jar, port, &app, &["-H", "Cookie: authelia_session=eve"]);
    assert_eq!(status, 403);
    assert!(!body.contains("app saw"), "{body}");
}
