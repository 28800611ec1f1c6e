//! The apply loop against a real nginx on free loopback ports: a broken tree
//! never reaches the running server, and a reload does not cut a download
//! that is in flight.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use super::support::{
    DOMAIN, Layout, NGINX, NginxProcess, curl, onboarded_input, set_ports, settings, test_ports, wait_for, write_certs,
};
use crate::model::Access;
use crate::nginx::{Applier, ApplyError, NginxBinary, RenderInput, SiteVhost, TunnelVhost, render};

/// Size of the slow download.
const BIG: usize = 20 * 1024 * 1024;
const CHUNK: usize = 64 * 1024;

fn pattern(i: usize) -> u8 {
    (i % 251) as u8
}

/// A tiny HTTP upstream standing in for the relay: `/big` streams [`BIG`]
/// bytes slowly and reports on `started` once the first chunk is out;
/// anything else answers with the Host header it saw.
fn stub_upstream(started: mpsc::Sender<()>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { return };
            let started = started.clone();
            thread::spawn(move || serve(conn, started));
        }
    });
    addr
}

fn serve(mut conn: TcpStream, started: mpsc::Sender<()>) {
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let (mut path, mut host, mut line) = (String::new(), String::new(), String::new());
    while reader.read_line(&mut line).unwrap_or(0) > 0 && line != "\r\n" {
        if path.is_empty() {
            path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
        } else if let Some(v) = line.strip_prefix("Host: ").or_else(|| line.strip_prefix("host: ")) {
            host = v.trim().to_string();
        }
        line.clear();
    }
    if path == "/big" {
        let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {BIG}\r\nConnection: close\r\n\r\n");
        if conn.write_all(head.as_bytes()).is_err() {
            return;
        }
        for (n, start) in (0..BIG).step_by(CHUNK).enumerate() {
            let chunk: Vec<u8> = (start..start + CHUNK).map(pattern).collect();
            if conn.write_all(&chunk).is_err() {
                return;
            }
            if n == 0 {
                let _ = started.send(());
            }
            thread::sleep(Duration::from_millis(8)); // pacing: ~2.6 s for the whole body
        }
    } else {
        let body = format!("stub saw host {host}\n");
        let _ = write!(conn, "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
    }
}

struct World {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    layout: Layout,
    ca: PathBuf,
    input: RenderInput,
    started: mpsc::Receiver<()>,
}

/// Certificates, one public tunnel `app` → stub, one public SPA site `dash`.
fn world() -> World {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_path_buf();
    let layout = Layout::temp(&root);
    let ca = write_certs(&layout);
    let site = layout.data_dir.join("sites/dash");
    fs::create_dir_all(&site).unwrap();
    fs::write(site.join("index.html"), "<h1>dash</h1>\n").unwrap();
    let (tx, started) = mpsc::channel();
    let mut settings = settings(&layout, None);
    set_ports(&mut settings, test_ports());
    settings.relay.visitors_listen = stub_upstream(tx);
    let mut input = onboarded_input(&layout, &settings);
    input.tunnels = vec![TunnelVhost { name: "app".into(), access: Access::Public, enabled: true }];
    input.sites = vec![SiteVhost { name: "dash".into(), spa_fallback: true, access: Access::Public }];
    World { _tmp: tmp, root, layout, ca, input, started }
}

fn applier(w: &World, probe_port: Option<u16>) -> Applier {
    let reloader = NginxBinary::new(NGINX, &w.root, &w.layout.conf_dir);
    let a = Applier::new(&w.layout.conf_dir, w.layout.data_dir.join("nginx/snapshots"), 5, Box::new(reloader));
    match probe_port {
        None => a,
        Some(port) => {
            // The reload is asynchronous: wait until the new vhost answers.
            let ca = w.ca.clone();
            a.with_probe(Box::new(move || {
                let host = format!("wiki.{DOMAIN}");
                wait_for("new vhost after reload", Duration::from_secs(10), || {
                    (curl(&ca, &host, port, "/").0 == 200).then_some(())
                });
                Ok(())
            }))
        }
    }
}

fn start(w: &World, a: &Applier) -> NginxProcess {
    a.install(&render(&w.input).unwrap(), "init").unwrap();
    NginxProcess::start(&w.root, &w.layout.conf_dir.join("nginx.conf"), w.input.ports.https)
}

fn assert_serves(w: &World) {
    let port = w.input.ports.https;
    let (status, body) = curl(&w.ca, &format!("dash.{DOMAIN}"), port, "/some/spa/route");
    assert_eq!((status, body.as_slice()), (200, b"<h1>dash</h1>\n".as_slice()));
    let (status, body) = curl(&w.ca, &format!("app.{DOMAIN}"), port, "/");
    assert_eq!(status, 200);
    assert_eq!(String::from_utf8(body).unwrap(), format!("stub saw host app.{DOMAIN}\n"));
}

#[test]
fn broken_tree_is_rejected_and_running_nginx_keeps_serving() {
    let w = world();
    let a = applier(&w, None);
    let _nginx = start(&w, &a);
    assert_serves(&w);
    let before = a.live_tree().unwrap();

    let mut broken = w.input.clone();
    broken.extra = Some("this_is_not_a_directive;".into());
    match a.apply(&render(&broken).unwrap(), "broken on purpose") {
        Err(ApplyError::Invalid { details }) => {
            assert!(details.iter().any(|l| l.contains("unknown directive \"this_is_not_a_directive\"")), "{details:?}")
        }
        other => panic!("expected Invalid, got {other:?}"),
    }
    assert_eq!(a.live_tree().unwrap(), before, "live tree must be byte-identical");
    // Without a client certificate the admin vhost answers with nginx's own help page.
    let (status, body) = curl(&w.ca, "127.0.0.1", w.input.ports.admin, "/api/tunnels");
    assert_eq!(status, 403);
    assert!(String::from_utf8(body).unwrap().contains("Client certificate required"));
    assert!(a.snapshots().unwrap().is_empty());
    assert_serves(&w);
}

#[test]
fn reload_keeps_an_in_flight_download_intact() {
    let w = world();
    let port = w.input.ports.https;
    let a = applier(&w, Some(port));
    let nginx = start(&w, &a);
    assert_serves(&w);

    let (ca, host) = (w.ca.clone(), format!("app.{DOMAIN}"));
    let download = thread::spawn(move || curl(&ca, &host, port, "/big"));
    w.started.recv_timeout(Duration::from_secs(10)).expect("download started");

    let mut next = w.input.clone();
    next.tunnels.push(TunnelVhost { name: "wiki".into(), access: Access::Public, enabled: true });
    let out = a.apply(&render(&next).unwrap(), "add wiki").unwrap();
    assert!(out.changed && out.snapshot.is_some());

    let (status, body) = download.join().unwrap();
    assert_eq!(status, 200);
    assert_eq!(body.len(), BIG, "download cut short: {}", fs::read_to_string(&nginx.stderr).unwrap());
    assert!(body.iter().enumerate().all(|(i, &b)| b == pattern(i)), "download corrupted");
    assert_serves(&w);
}

/// Keeps the helper honest: the pid file and temp dirs land in the test's run dir.
#[test]
fn nginx_runtime_files_stay_inside_the_temp_dir() {
    let w = world();
    let a = applier(&w, None);
    let _nginx = start(&w, &a);
    assert!(Path::new(&w.layout.run_dir.join("nginx.pid")).is_file());
    assert!(w.layout.run_dir.join("proxy").is_dir());
}

/// `curl` with a client certificate: (status, body).
fn curl_with_client(w: &World, client: &Path, path: &str) -> (u16, String) {
    let host = format!("panel.{DOMAIN}");
    let port = w.input.ports.https;
    let out = std::process::Command::new("curl")
        .args(["-sS", "--max-time", "30", "-o", "-", "-w", "\n%{http_code}"])
        .arg("--cacert")
        .arg(&w.ca)
        .arg("--cert")
        .arg(client.join("client.crt"))
        .arg("--key")
        .arg(client.join("client.key"))
        .arg("--resolve")
        .arg(format!("{host}:{port}:127.0.0.1"))
        .arg(format!("https://{host}:{port}{path}"))
        .output()
        .expect("run curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, status) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (status.trim().parse().unwrap_or(0), body.to_string())
}

/// A client CA of its own and an admin certificate signed by it, under `dir`.
fn client_certificate(dir: &Path) -> PathBuf {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(DnType::CommonName, "Portico client CA");
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, "admin");
    let cert = params.signed_by(&key, &ca).unwrap();
    fs::create_dir_all(dir).unwrap();
    fs::write(dir.join("client-ca.crt"), ca.pem()).unwrap();
    fs::write(dir.join("client.crt"), cert.pem()).unwrap();
    fs::write(dir.join("client.key"), key.serialize_pem()).unwrap();
    dir.join("client-ca.crt")
}

#[test]
fn a_panel_that_does_not_answer_gets_the_restarting_page_not_a_bare_502() {
    let mut w = world();
    let clients = w.root.join("clients");
    w.input.client_ca = client_certificate(&clients);
    // Nothing listens where the panel should: it is restarting.
    w.input.upstreams.panel = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let a = applier(&w, None);
    let _nginx = start(&w, &a);
    wait_for("nginx answers", Duration::from_secs(10), || (curl_with_client(&w, &clients, "/").0 != 0).then_some(()));

    for path in ["/", "/tunnels?flash=tunnel_saved"] {
        let (status, body) = curl_with_client(&w, &clients, path);
        assert_eq!(status, 503, "{path}: {body}");
        assert!(body.contains("The panel is restarting"), "{path}: {body}");
        assert!(body.contains("<meta http-equiv=\"refresh\" content=\"5\">"), "it reloads itself");
        assert!(!body.contains("nginx"), "not nginx's own page: {body}");
    }
    // Without a certificate the gate still answers first, with its help page.
    let (status, body) = curl(&w.ca, &format!("panel.{DOMAIN}"), w.input.ports.https, "/");
    assert_eq!(status, 403);
    assert!(String::from_utf8(body).unwrap().contains("Client certificate required"));
    // API clients keep a plain status, not an HTML page meant for people.
    let (status, body) = curl_with_client(&w, &clients, "/api/tunnels");
    assert_eq!(status, 502, "{body}");
    assert!(!body.contains("The panel is restarting"));
}
