//! Provisioning end to end: a real pebble validates HTTP-01 through a real
//! nginx rendered by Portico; progress is read over the WebSocket by a client
//! connected from the start and by one joining late.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest};

use super::nginx::{Nginx, world_with_nginx_and};
use super::*;
use crate::acme::pebble::{self, Pebble};
use crate::testing::s6::{self, Scan};

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Serves the world's panel on a loopback port; stopped on drop.
pub(super) struct Server {
    addr: SocketAddr,
    handle: actix_web::dev::ServerHandle,
}

impl Drop for Server {
    fn drop(&mut self) {
        let handle = self.handle.clone();
        actix_web::rt::spawn(async move { handle.stop(false).await });
    }
}

/// Serves the panel on `panel.listen`, where nginx proxies to.
pub(super) fn serve(w: &World) -> Server {
    let state = w.state.clone();
    let listener = std::net::TcpListener::bind(w.state.settings.panel.listen).unwrap();
    let addr = listener.local_addr().unwrap();
    let server = actix_web::HttpServer::new(move || App::new().configure(configure(state.clone(), Channel::Panel)))
        .workers(1)
        .listen(listener)
        .unwrap()
        .disable_signals()
        .run();
    let handle = server.handle();
    actix_web::rt::spawn(server);
    Server { addr, handle }
}

async fn connect(w: &World, server: &Server) -> Ws {
    let mut req = format!("ws://{}/api/onboarding/provision/stream", server.addr).into_client_request().unwrap();
    let h = req.headers_mut();
    h.insert("X-SSL-Client-Verify", "SUCCESS".parse().unwrap());
    h.insert("X-SSL-Client-DN", "CN=admin,O=Portico".parse().unwrap());
    h.insert("X-SSL-Client-Serial", w.admin_serial.parse().unwrap());
    let (ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    ws
}

/// The next JSON message, within 60 s.
async fn next(ws: &mut Ws) -> Value {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(60), ws.next())
            .await
            .expect("no progress within 60 s")
            .expect("stream ended")
            .unwrap();
        if let Message::Text(t) = msg {
            return serde_json::from_str(&t).unwrap();
        }
    }
}

/// Events until one whose status is `failed`, or the `complete` step is done.
async fn until_the_end(ws: &mut Ws) -> Vec<Value> {
    let mut seen = Vec::new();
    loop {
        let m = next(ws).await;
        assert_eq!(m["type"], "event", "{m}");
        let end = m["status"] == "failed" || (m["task"] == "complete" && m["status"] == "done");
        seen.push(m);
        if end {
            return seen;
        }
    }
}

fn steps(events: &[Value]) -> Vec<String> {
    events.iter().map(|e| format!("{} {}", e["task"].as_str().unwrap(), e["status"].as_str().unwrap())).collect()
}

async fn post_provision(w: &World) -> u16 {
    w.call(Who::Admin, TestRequest::post().uri("/api/onboarding/provision")).await.status().as_u16()
}

/// A real s6-svscan supervising `relay` (up) and `authd` (down) that sleep,
/// once s6 reports both.
fn s6_scan() -> Option<Scan> {
    if !std::path::Path::new("/usr/bin/s6-svscan").exists() {
        eprintln!("s6 is not installed: provisioning runs without a supervisor");
        return None;
    }
    let scan = s6::start(&[("relay", false), ("authd", true)]);
    let sup = crate::supervisor::Supervisor::S6 { service_dir: scan.dir.path().to_path_buf() };
    let deadline = Instant::now() + Duration::from_secs(10);
    while !sup.status("relay").is_ok_and(|s| s.up) || sup.status("authd").is_err() {
        assert!(Instant::now() < deadline, "s6 did not start the services");
        std::thread::sleep(Duration::from_millis(20)); // poll interval
    }
    Some(scan)
}

async fn provisioning_world(run: &std::path::Path, scan: Option<&Scan>) -> (Pebble, World, Nginx) {
    let http_port = pebble::free_port();
    let pebble = Pebble::start(http_port, None);
    let (directory, bundle) = (pebble.directory.clone(), pebble.ca_bundle.clone());
    let service_dir = scan.map(|s| s.dir.path().to_path_buf());
    let (w, nginx) = world_with_nginx_and(run, move |s| {
        s.nginx.http_port = http_port;
        s.panel.listen = SocketAddr::from(([127, 0, 0, 1], pebble::free_port()));
        s.acme.directory = directory;
        s.acme.ca_bundle = Some(bundle);
        if let Some(dir) = service_dir {
            s.supervisor.kind = crate::settings::SupervisorKind::S6;
            s.supervisor.service_dir = dir;
        }
    })
    .await;
    w.state
        .store
        .put_settings(vec![
            (onboarding::keys::DOMAIN, "example.test".into()),
            (onboarding::keys::EMAIL, "Jane@example.test".into()),
        ])
        .await
        .unwrap();
    w.set_state(OnboardingState::DnsReady).await;
    w.state.apply_config("domain set").await.unwrap();
    (pebble, w, nginx)
}

#[actix_web::test]
async fn provisioning_streams_progress_survives_a_failure_and_completes_on_retry() {
    if !pebble::available() {
        return;
    }
    let run = tempfile::tempdir().unwrap();
    let scan = s6_scan();
    let (_pebble, w, _nginx) = provisioning_world(run.path(), scan.as_ref()).await;
    let relay_before = w.state.supervisor.status("relay").ok();
    let server = serve(&w);
    let data_dir = w.state.settings.data_dir.clone();
    let panel_cert = crate::nginx::state::cert_paths(&data_dir, "panel.example.test");

    // Through nginx (admin by IP, client certificate), the stream upgrades.
    let pki = w.state.settings.pki_dir();
    let admin_port = w.state.settings.nginx.admin_port;
    // Off the test's thread: the panel answers on this runtime.
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("curl")
            .args(["-sS", "-k", "--http1.1", "--max-time", "3", "-D", "-", "-o", "/dev/null", "--cert"])
            .arg(pki.join("admin.crt"))
            .arg("--key")
            .arg(pki.join("admin.key"))
            .args(["-H", "Connection: Upgrade", "-H", "Upgrade: websocket", "-H", "Sec-WebSocket-Version: 13"])
            .args(["-H", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="])
            .arg(format!("https://127.0.0.1:{admin_port}/api/onboarding/provision/stream"))
            .output()
    })
    .await
    .unwrap()
    .unwrap();
    let head = String::from_utf8_lossy(&out.stdout);
    assert!(head.starts_with("HTTP/1.1 101"), "{head} {}", String::from_utf8_lossy(&out.stderr));

    let mut early = connect(&w, &server).await;
    let first = next(&mut early).await;
    assert_eq!((first["type"].as_str(), first["status"].as_str()), (Some("state"), Some("idle")), "{first}");

    // nginx refuses the configuration: the run stops at the nginx step.
    w.state.nginx.inject_for_tests(Some("this_is_not_a_directive;".into()));
    let live_before = w.state.nginx.live_tree().await.unwrap();
    assert_eq!(post_provision(&w).await, 202);
    assert_eq!(post_provision(&w).await, 409, "one run at a time");
    let failed = until_the_end(&mut early).await;
    let expected = [
        "cert:panel.example.test running",
        "cert:panel.example.test done",
        "cert:auth.example.test running",
        "cert:auth.example.test done",
        "cert:tunnel.example.test running",
        "cert:tunnel.example.test done",
        "nginx running",
        "nginx failed",
    ];
    assert_eq!(steps(&failed), expected);
    let progress: Vec<u64> = failed.iter().map(|e| e["progress"]["current"].as_u64().unwrap()).collect();
    assert_eq!(progress, [1, 1, 2, 2, 3, 3, 4, 4]);
    assert!(failed.iter().all(|e| e["progress"]["total"] == 7));
    let why = failed.last().unwrap()["message"].as_str().unwrap();
    assert!(why.contains("unknown directive"), "{why}");
    // Nothing half-applied: nginx serves what it served, no certificate files linger.
    assert_eq!(w.state.nginx.live_tree().await.unwrap(), live_before);
    assert!(!panel_cert.fullchain.exists());
    assert_eq!(w.state.onboarding_state(), OnboardingState::DnsReady);

    // A client joining now sees the whole failed run first.
    let mut late = connect(&w, &server).await;
    let state = next(&mut late).await;
    assert_eq!(state["status"], "failed");
    let without_type = |events: &[Value]| -> Vec<Value> {
        events
            .iter()
            .cloned()
            .map(|mut e| {
                e.as_object_mut().unwrap().remove("type");
                e
            })
            .collect()
    };
    assert_eq!(state["events"].as_array().unwrap().clone(), without_type(&failed));

    // Retry once nginx accepts the configuration again.
    w.state.nginx.inject_for_tests(None);
    let started = Instant::now();
    assert_eq!(post_provision(&w).await, 202);
    let mut done = vec![next(&mut early).await, next(&mut early).await];
    // A client joining mid-run: what it was sent first plus what follows is the whole run.
    let mut mid = connect(&w, &server).await;
    let mid_state = next(&mut mid).await;
    assert_eq!(mid_state["status"], "running");
    done.extend(until_the_end(&mut early).await);
    let took = started.elapsed();
    let late_events = until_the_end(&mut late).await;
    let mut mid_events = mid_state["events"].as_array().unwrap().clone();
    mid_events.extend(without_type(&until_the_end(&mut mid).await));
    assert_eq!(mid_events, without_type(&done), "a mid-run joiner sees the same progress");
    for mut ws in [early, late, mid] {
        let _ = ws.close(None).await;
    }
    eprintln!("full provisioning against pebble (3 certificates, nginx, user): {} ms", took.as_millis());

    let mut expected: Vec<String> = expected[..6].iter().map(|s| s.to_string()).collect();
    expected.extend(
        [
            "nginx running",
            "nginx done",
            "services running",
            if scan.is_some() { "services done" } else { "services skipped" },
            "user running",
            "user done",
        ]
        .map(String::from),
    );
    expected.extend(["complete running", "complete done"].map(String::from));
    assert_eq!(steps(&done), expected);
    assert_eq!(steps(&late_events), expected, "both clients see the same progress");
    if scan.is_some() {
        let services = &done[done.len() - 5];
        assert_eq!(services["message"], "relay restarted, authd started", "{services}");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let relay = w.state.supervisor.status("relay").unwrap();
            let authd = w.state.supervisor.status("authd").unwrap();
            if relay.up && relay.pid != relay_before.as_ref().and_then(|r| r.pid) && authd.up {
                break;
            }
            assert!(Instant::now() < deadline, "relay was not restarted or authd not started");
            std::thread::sleep(Duration::from_millis(50)); // poll interval
        }
    }
    let last = done.last().unwrap();
    let user = &last["firstUser"];
    assert_eq!(user["username"], "jane");
    assert!(user["password"].as_str().unwrap().len() >= 20);
    assert!(user["otpauthUri"].as_str().unwrap().starts_with("otpauth://totp/"));
    assert!(user["qrSvg"].as_str().unwrap().contains("<svg"));
    // Only the final event carries the credentials.
    assert!(done[..done.len() - 1].iter().all(|e| e.get("firstUser").is_none()));

    assert_eq!(w.state.onboarding_state(), OnboardingState::Completed);
    let stored = w.state.store.setting(onboarding::keys::STATE).await.unwrap();
    assert_eq!(stored.as_deref(), Some("COMPLETED"));
    assert!(panel_cert.fullchain.exists() && panel_cert.key.exists());
    let live = w.state.nginx.live_tree().await.unwrap();
    let rendered = format!("{live:?}");
    assert!(rendered.contains("panel.example.test/fullchain.pem"), "nginx serves the new certificate");

    // nginx presents the pebble-issued certificate for panel.example.test.
    let https = w.state.settings.nginx.https_port;
    let issuer = super::nginx::poll(
        || {
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(format!(
                    "openssl s_client -connect 127.0.0.1:{https} -servername panel.example.test </dev/null 2>/dev/null | openssl x509 -noout -issuer"
                ))
                .output()
                .unwrap();
            String::from_utf8_lossy(&out.stdout).to_lowercase()
        },
        |s| s.contains("pebble"),
    );
    assert!(issuer.contains("pebble"), "{issuer}");

    // The password never reaches the audit log.
    let password = user["password"].as_str().unwrap();
    let audit = w.call(Who::Admin, TestRequest::get().uri("/api/audit")).await;
    let body = String::from_utf8(read_body(audit).await.to_vec()).unwrap();
    assert!(body.contains("onboarding.provision"));
    assert!(!body.contains(password));

    // Onboarding is over: its routes answer 410; the stream still shows the
    // run, without the login, which was delivered already.
    assert_eq!(post_provision(&w).await, 410);
    let mut after = connect(&w, &server).await;
    let state = next(&mut after).await;
    assert_eq!(state["status"], "completed");
    assert!(!state.to_string().contains(password));
    let _ = after.close(None).await;
}

/// A run that completes while no client listens hands its first login to the
/// first client that connects afterwards, and to no other.
#[actix_web::test]
async fn the_first_login_reaches_a_client_that_connects_after_the_run() {
    if !pebble::available() {
        return;
    }
    let run = tempfile::tempdir().unwrap();
    let (_pebble, w, _nginx) = provisioning_world(run.path(), None).await;
    let server = serve(&w);
    assert_eq!(post_provision(&w).await, 202);
    let deadline = Instant::now() + Duration::from_secs(60);
    while w.state.provision.status() != crate::app::provision::RunStatus::Completed {
        assert!(Instant::now() < deadline, "provisioning did not complete");
        tokio::time::sleep(Duration::from_millis(50)).await; // poll interval
    }
    let mut first = connect(&w, &server).await;
    assert_eq!(next(&mut first).await["status"], "completed");
    let last = next(&mut first).await;
    assert_eq!((last["task"].as_str(), last["status"].as_str()), (Some("complete"), Some("done")));
    assert!(last["firstUser"]["password"].is_string(), "{last}");

    let mut second = connect(&w, &server).await;
    let state = next(&mut second).await;
    assert!(!state.to_string().contains("password"), "{state}");
    // Closing: everything the server sent before its close frame is read.
    second.close(None).await.unwrap();
    while let Some(Ok(msg)) = second.next().await {
        assert!(!matches!(msg, Message::Text(_)), "the login is handed out once: {msg:?}");
    }
}

#[actix_web::test]
async fn provisioning_needs_dns_ready() {
    let w = world().await;
    let res = w.call(Who::Admin, TestRequest::post().uri("/api/onboarding/provision")).await;
    assert_eq!(res.status(), 409);
    let v = json_body(res).await;
    assert!(v["error"].as_str().unwrap().contains("DNS_READY"), "{v}");
    // Not a WebSocket request: a clear 400.
    let res = w.call(Who::Admin, TestRequest::get().uri("/api/onboarding/provision/stream")).await;
    assert_eq!(res.status(), 400);
}

#[actix_web::test]
async fn certificate_routes_answer_after_onboarding() {
    let w = completed_world().await;
    w.state.store.put_settings(vec![(onboarding::keys::DOMAIN, "example.test".into())]).await.unwrap();
    let res = w.call(Who::Admin, TestRequest::get().uri("/api/certs")).await;
    assert_eq!(res.status(), 200);
    let v = json_body(res).await;
    let names: Vec<&str> = v.as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["panel.example.test", "auth.example.test", "tunnel.example.test"]);
    assert_eq!(v[0]["state"], "missing");

    let res = w.call(Who::Admin, TestRequest::get().uri("/api/certs/auto-renew-status")).await;
    assert_eq!(res.status(), 200);
    let v = json_body(res).await;
    assert_eq!(v["schedule"], "0 17 3 * * Mon,Thu");
    assert!(v["nextRun"].is_string());

    // The mTLS routes still answer (literal paths win over `{domain}`).
    assert_eq!(w.call(Who::Admin, TestRequest::get().uri("/api/certs/mtls")).await.status(), 200);
    let res = w.call(Who::Admin, TestRequest::post().uri("/api/certs/elsewhere.org/renew")).await;
    assert_eq!(res.status(), 404);
    let res = w
        .call(
            Who::Admin,
            TestRequest::post()
                .uri("/api/certs/panel.example.test/upload")
                .set_json(json!({"fullchain": "garbage", "key": "garbage"})),
        )
        .await;
    assert_eq!(res.status(), 400);
    let v = json_body(res).await;
    let fields: Vec<&str> = v["details"].as_array().unwrap().iter().map(|d| d["field"].as_str().unwrap()).collect();
    assert!(fields.contains(&"fullchain") && fields.contains(&"key"), "{v}");
    // Agents and non-admin keys are refused.
    assert_eq!(w.call(Who::KeyRead, TestRequest::get().uri("/api/certs")).await.status(), 403);
}

/// The first visitor's name comes from the body when given, checked before
/// anything starts; a bad one leaves onboarding where it was.
#[actix_web::test]
async fn the_first_visitor_name_is_checked_before_the_run() {
    let w = world().await;
    let rows = vec![(onboarding::keys::DOMAIN, "example.com".to_string()), (onboarding::keys::EMAIL, "a@b.c".into())];
    w.state.store.put_settings(rows).await.unwrap();
    w.set_state(OnboardingState::DnsReady).await;
    let post = |body: Value| TestRequest::post().uri("/api/onboarding/provision").set_json(body);
    for (body, field) in [
        (json!({"username": "Not Valid"}), "username"),
        (json!({"username": ""}), "username"),
        (json!({"username": 7}), "username"),
        (json!({"name": "x"}), "name"),
    ] {
        let res = w.call(Who::Admin, post(body.clone())).await;
        assert_eq!(res.status(), 400, "{body}");
        assert_eq!(json_body(res).await["details"][0]["field"], field, "{body}");
    }
    assert_eq!(w.state.provision.status(), crate::app::provision::RunStatus::Idle, "nothing started");
    assert_eq!(w.state.onboarding_state(), OnboardingState::DnsReady);
}
