//! End to end through a real nginx with the rendered config: a visitor with
//! curl and a cookie jar meets the auth_request redirect, signs in on the
//! portal (password, then TOTP), and reaches the app with the identity
//! headers authd set — never the ones the visitor sent.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::thread;

use time::OffsetDateTime;

use super::support::{
    DOMAIN, Layout, NGINX, NginxProcess, onboarded_input, set_ports, settings, test_ports, write_certs,
};
use crate::authd::{AuthdState, Clock, configure};
use crate::model::Access;
use crate::nginx::{Applier, NginxBinary, TunnelVhost, render};
use crate::settings::Settings;
use crate::store::{ClientCert, Store, TunnelFields};
use crate::testing;

/// Answers every request with the `remote-*` and `cookie` headers it received.
pub(crate) fn echo_upstream() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            thread::spawn(move || echo(conn));
        }
    });
    addr
}

fn echo(mut conn: TcpStream) {
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let (mut seen, mut line) = (String::new(), String::new());
    while reader.read_line(&mut line).unwrap_or(0) > 0 && line != "\r\n" {
        let lower = line.to_ascii_lowercase();
        if lower.starts_with("remote-") || lower.starts_with("cookie:") {
            seen.push_str(&line.to_ascii_lowercase());
        }
        line.clear();
    }
    let body = format!("app saw:\n{seen}");
    let _ = write!(conn, "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
}

/// Runs authd on its own thread and runtime; returns its address and state.
pub(crate) fn start_authd(data_dir: &Path) -> (SocketAddr, actix_web::web::Data<AuthdState>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let settings = Settings { data_dir: data_dir.to_path_buf(), ..Default::default() };
    let (tx, rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let store = Store::open(&settings.db_path()).unwrap();
            let state = actix_web::web::Data::new(AuthdState::new(settings, store, Clock::default()).await.unwrap());
            tx.send(state.clone()).unwrap();
            actix_web::HttpServer::new(move || actix_web::App::new().configure(configure(state.clone())))
                .workers(1)
                .listen(listener)
                .unwrap()
                .run()
                .await
                .unwrap();
        })
    });
    (addr, rx.recv().unwrap())
}

/// One curl call with a cookie jar; returns (status, headers, body).
pub(crate) fn curl(ca: &Path, jar: &Path, port: u16, url: &str, extra: &[&str]) -> (u16, String, String) {
    let host = url.trim_start_matches("https://").split([':', '/']).next().unwrap().to_string();
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "30", "-D", "-", "-o", "-"])
        .arg("--cacert")
        .arg(ca)
        .arg("-b")
        .arg(jar)
        .arg("-c")
        .arg(jar)
        .arg("--resolve")
        .arg(format!("{host}:{port}:127.0.0.1"))
        .args(extra)
        .arg(url)
        .output()
        .expect("run curl");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, head.to_string(), body.to_string())
}

pub(crate) fn header(head: &str, name: &str) -> String {
    head.lines()
        .find_map(|l| {
            l.split_once(':').filter(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_default()
}

fn csrf(body: &str) -> String {
    let start = body.find("name=\"csrf\" value=\"").unwrap() + 19;
    body[start..].split('"').next().unwrap().to_string()
}

#[actix_web::test]
async fn visitor_signs_in_through_nginx_and_reaches_the_app() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_path_buf();
    let layout = Layout::temp(&root);
    let ca = write_certs(&layout);

    let store = Store::open(&layout.data_dir.join("portico.db")).unwrap();
    let now = OffsetDateTime::now_utc();
    store.put_settings(vec![(crate::onboarding::keys::DOMAIN, DOMAIN.into())]).await.unwrap();
    let cert = ClientCert {
        serial: "0A".into(),
        kind: "agent".into(),
        label: Some("home".into()),
        fingerprint: "F".into(),
        not_after: now,
        revoked_at: None,
    };
    store.create_agent(vec![], cert, now).await.unwrap();
    for (name, access, users) in [("vault", "authenticated", vec![]), ("wiki", "restricted", vec!["bob".to_string()])] {
        let t = TunnelFields {
            access: access.into(),
            allowed_users: users,
            ..testing::tunnel_fields(name, "home", "127.0.0.1:1")
        };
        store.insert_tunnel(t, now).await.unwrap();
    }
    let new = crate::users::NewUser {
        username: "alice".into(),
        password: "correct horse battery".into(),
        email: "alice@example.test".into(),
        totp: true,
        ..Default::default()
    };
    let secret = crate::users::create_user(&store, new).await.unwrap().totp.unwrap().totp_secret;

    let mut settings = settings(&layout, None);
    set_ports(&mut settings, test_ports());
    settings.authd.listen = start_authd(&layout.data_dir).0;
    settings.relay.visitors_listen = echo_upstream();
    let mut input = onboarded_input(&layout, &settings);
    input.tunnels = vec![
        TunnelVhost { name: "vault".into(), access: Access::Authenticated, enabled: true },
        TunnelVhost { name: "wiki".into(), access: Access::Restricted, enabled: true },
    ];
    let reloader = NginxBinary::new(NGINX, &root, &layout.conf_dir);
    let applier = Applier::new(&layout.conf_dir, layout.data_dir.join("nginx/snapshots"), 5, Box::new(reloader));
    applier.install(&render(&input).unwrap(), "init").unwrap();
    let port = input.ports.https;
    let _nginx = NginxProcess::start(&root, &layout.conf_dir.join("nginx.conf"), port);

    let jar = root.join("cookies.txt");
    let app = format!("https://vault.{DOMAIN}:{port}/notes?x=1");
    let spoof = ["-H", "Remote-User: mallory", "-H", "Remote-Groups: admins"];

    // No session: nginx sends the visitor to the portal with rd.
    let (status, head, _) = curl(&ca, &jar, port, &app, &spoof);
    assert_eq!(status, 302, "{head}");
    let portal = header(&head, "location");
    assert_eq!(portal, format!("https://auth.{DOMAIN}:{port}/?rd={app}"));

    // Portal: password, then TOTP.
    let (status, _, body) = curl(&ca, &jar, port, &portal, &[]);
    assert_eq!(status, 200);
    let token = csrf(&body);
    let login = format!("https://auth.{DOMAIN}:{port}/login");
    let form = ["-d", "username=alice", "-d", "password=correct+horse+battery", "--data-urlencode"];
    let rd_arg = format!("rd={app}");
    let csrf_arg = format!("csrf={token}");
    let mut args: Vec<&str> = form.to_vec();
    args.extend([rd_arg.as_str(), "--data-urlencode", csrf_arg.as_str()]);
    let (status, head, _) = curl(&ca, &jar, port, &login, &args);
    assert_eq!(status, 303, "{head}");
    let code = crate::totp::code_now(&secret, OffsetDateTime::now_utc().unix_timestamp()).unwrap();
    let code_arg = format!("code={code}");
    let totp = format!("https://auth.{DOMAIN}:{port}/totp");
    let args = ["-d", code_arg.as_str(), "--data-urlencode", rd_arg.as_str(), "--data-urlencode", csrf_arg.as_str()];
    let (status, head, _) = curl(&ca, &jar, port, &totp, &args);
    assert_eq!(status, 303, "{head}");
    assert_eq!(header(&head, "location"), app);

    // Signed in: the app sees authd's identity headers, not the spoofed ones,
    // and its own cookies without the portal's session.
    let mut spoof = spoof.to_vec();
    spoof.extend(["-H", "Cookie: theme=dark"]);
    let (status, _, body) = curl(&ca, &jar, port, &app, &spoof);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("remote-user: alice"), "{body}");
    assert!(body.contains("remote-email: alice@example.test"), "{body}");
    assert!(!body.contains("mallory") && !body.contains("admins"), "spoofed headers reached the app: {body}");
    assert!(body.contains("theme=dark"), "{body}");
    assert!(!body.contains(crate::authd::SESSION_COOKIE), "the portal session reached the app: {body}");

    // The same cookie works on a sibling app, where alice is not allowed.
    let (status, _, body) = curl(&ca, &jar, port, &format!("https://wiki.{DOMAIN}:{port}/"), &[]);
    assert_eq!(status, 403);
    assert!(body.contains("Signed in as <strong id=\"who\">alice</strong>"), "{body}");
    assert!(body.contains("not shared with you"), "{body}");
}
