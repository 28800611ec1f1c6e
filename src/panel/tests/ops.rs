//! Operations routes with real parts: services under a real s6-svscan, live
//! logs over a real WebSocket, metrics parsed as Prometheus text.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest};

use super::*;
use crate::audit::Outcome;
use crate::testing::s6;

async fn services(w: &World) -> Vec<Value> {
    let res = w.call(Who::Admin, TestRequest::get().uri("/api/services")).await;
    assert_eq!(res.status(), 200);
    json_body(res).await["services"].as_array().unwrap().clone()
}

async fn wait_service(w: &World, name: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(s) = services(w).await.into_iter().find(|s| s["name"] == name)
            && pred(&s)
        {
            return s;
        }
        assert!(Instant::now() < deadline, "{name} never reached the expected state");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn act(w: &World, who: Who, name: &str, action: &str) -> (u16, Value) {
    let res = w.call(who, TestRequest::post().uri(&format!("/api/services/{name}/{action}"))).await;
    let status = res.status().as_u16();
    (status, json_body(res).await)
}

#[actix_web::test]
async fn service_actions_against_real_s6() {
    if !s6::available() {
        eprintln!("skipping: s6 is not installed");
        return;
    }
    let scan = s6::appliance();
    let scan_dir = scan.dir.path().to_path_buf();
    let w = world_with(move |s| {
        s.supervisor.kind = crate::settings::SupervisorKind::S6;
        s.supervisor.service_dir = scan_dir;
    })
    .await;
    w.set_state(OnboardingState::Completed).await;

    for name in crate::services::MANAGED {
        wait_service(&w, name, |s| s["state"] == "up" && s["pid"].is_u64()).await;
    }
    let names: Vec<Value> = services(&w).await.iter().map(|s| s["name"].clone()).collect();
    assert_eq!(names, ["nginx", "relay", "authd", "panel"]);

    // Restart changes the pid and counts a restart.
    let before = wait_service(&w, "relay", |s| s["state"] == "up").await;
    let (status, body) = act(&w, Who::Admin, "relay", "restart").await;
    assert_eq!(status, 200, "{body}");
    let after =
        wait_service(&w, "relay", |s| s["state"] == "up" && s["pid"].is_u64() && s["pid"] != before["pid"]).await;
    assert!(after["uptimeSeconds"].is_u64());
    wait_service(&w, "relay", |s| s["restarts"] == 1).await;

    // Stop, then start.
    assert_eq!(act(&w, Who::KeyWrite, "relay", "stop").await.0, 200);
    let down = wait_service(&w, "relay", |s| s["state"] == "down").await;
    assert_eq!(down["wantedUp"], false);
    assert!(down["pid"].is_null());
    assert_eq!(act(&w, Who::Admin, "relay", "start").await.0, 200);
    wait_service(&w, "relay", |s| s["state"] == "up").await;

    // The panel never stops itself; reload only where it means something.
    let (status, body) = act(&w, Who::Admin, "panel", "stop").await;
    assert_eq!(status, 409);
    assert!(body["error"].as_str().unwrap().contains("cannot stop itself"), "{body}");
    wait_service(&w, "panel", |s| s["state"] == "up").await;
    assert_eq!(act(&w, Who::Admin, "relay", "reload").await.0, 400);
    assert_eq!(act(&w, Who::Admin, "nginx", "reload").await.0, 200);
    assert_eq!(act(&w, Who::Admin, "sshd", "start").await.0, 404);
    assert_eq!(act(&w, Who::Admin, "relay", "explode").await.0, 400);
    assert_eq!(act(&w, Who::KeyRead, "relay", "stop").await.0, 403);

    // Every action is audited, refusals included.
    let (entries, _) =
        w.state.store.audit_entries(crate::store::AuditQuery { limit: 100, ..Default::default() }).await.unwrap();
    let seen: Vec<(String, String, String)> = entries
        .iter()
        .filter(|e| e.action.starts_with("service."))
        .map(|e| (e.action.clone(), e.target.clone(), e.outcome.clone()))
        .collect();
    for want in [
        ("service.restart", "relay", "success"),
        ("service.stop", "relay", "success"),
        ("service.start", "relay", "success"),
        ("service.stop", "panel", "failure"),
        ("service.reload", "nginx", "success"),
    ] {
        assert!(
            seen.iter().any(|(a, t, o)| (a.as_str(), t.as_str(), o.as_str()) == want),
            "{want:?} not audited: {seen:?}"
        );
    }
    drop(scan);
}

/// The panel on a real loopback listener; returns its address.
fn serve(state: web::Data<AppState>) -> std::net::SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = actix_web::HttpServer::new(move || App::new().configure(configure(state.clone(), Channel::Panel)))
        .workers(1)
        .listen(listener)
        .unwrap()
        .run();
    actix_web::rt::spawn(server);
    addr
}

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn open_logs(addr: std::net::SocketAddr, key: &str, query: &str) -> Socket {
    let mut req = format!("ws://{addr}/api/services/relay/logs{query}").into_client_request().unwrap();
    req.headers_mut().insert("Authorization", format!("Bearer {key}").parse().unwrap());
    let (socket, _) = tokio_tungstenite::connect_async(req).await.expect("websocket upgrade");
    socket
}

async fn next_line(socket: &mut Socket) -> String {
    let msg = tokio::time::timeout(Duration::from_secs(10), socket.next()).await.expect("a log line in time");
    match msg {
        Some(Ok(Message::Text(text))) => text.to_string(),
        other => panic!("expected a text message, got {other:?}"),
    }
}

fn append(path: &std::path::Path, text: &str) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path).unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

#[actix_web::test]
async fn live_logs_follow_rotation_filter_and_free_everything() {
    let logs = tempfile::tempdir().unwrap();
    let log_dir = logs.path().to_path_buf();
    let w = world_with(move |s| s.supervisor.log_dir = log_dir).await;
    w.set_state(OnboardingState::Completed).await;
    let relay = logs.path().join("relay");
    std::fs::create_dir(&relay).unwrap();
    let current = relay.join("current");
    append(&relay.join("@400000000000000100000000.s"), "2026-01-01T00:00:00Z  INFO rotated earlier\n");
    append(&current, "2026-01-01T00:00:01Z  INFO one\n2026-01-01T00:00:02Z  WARN two\n");
    let addr = serve(w.state.clone());

    let mut socket = open_logs(addr, &w.key_admin, "?lines=2").await;
    assert!(next_line(&mut socket).await.ends_with("INFO one"));
    assert!(next_line(&mut socket).await.ends_with("WARN two"));
    append(&current, "2026-01-01T00:00:03Z ERROR three\n");
    assert!(next_line(&mut socket).await.ends_with("ERROR three"));
    // s6-log rotation: `current` is renamed and a new one starts.
    append(&current, "2026-01-01T00:00:04Z  INFO last before rotation\n");
    std::fs::rename(&current, relay.join("@400000000000000200000000.s")).unwrap();
    append(&current, "2026-01-01T00:00:05Z  INFO first after rotation\n");
    assert!(next_line(&mut socket).await.ends_with("last before rotation"));
    assert!(next_line(&mut socket).await.ends_with("first after rotation"));
    socket.close(None).await.unwrap();

    // Filters apply to the tail and to followed lines.
    let mut socket = open_logs(addr, &w.key_admin, "?lines=10&level=warn").await;
    assert!(next_line(&mut socket).await.ends_with("WARN two"));
    assert!(next_line(&mut socket).await.ends_with("ERROR three"));
    append(&current, "2026-01-01T00:00:06Z  INFO quiet\n2026-01-01T00:00:07Z  WARN loud\n");
    assert!(next_line(&mut socket).await.ends_with("WARN loud"));
    socket.close(None).await.unwrap();
    let mut socket = open_logs(addr, &w.key_admin, "?lines=10&q=ROTATION").await;
    assert!(next_line(&mut socket).await.ends_with("last before rotation"));
    assert!(next_line(&mut socket).await.ends_with("first after rotation"));
    socket.close(None).await.unwrap();

    // Bad filters are refused before the upgrade.
    let client = reqwest_like_get(addr, "/api/services/relay/logs?level=loud", &w.key_admin).await;
    assert!(client.starts_with("HTTP/1.1 400"), "{client}");

    // 100 connect/disconnect cycles leave no open files behind.
    let cycle = |read: bool| {
        let key = w.key_admin.clone();
        async move {
            let mut socket = open_logs(addr, &key, "?lines=1").await;
            if read {
                next_line(&mut socket).await;
            }
            socket.close(None).await.unwrap();
            // Wait for the server's close frame: the server side has ended then.
            while let Ok(Some(Ok(msg))) = tokio::time::timeout(Duration::from_secs(5), socket.next()).await {
                if msg.is_close() {
                    break;
                }
            }
        }
    };
    for _ in 0..5 {
        cycle(true).await;
    }
    let fds_settled_at = |limit: usize| async move {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let n = open_fds();
            if n <= limit || Instant::now() > deadline {
                return n;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let baseline = fds_settled_at(open_fds().saturating_sub(2)).await.max(1);
    for i in 0..100 {
        cycle(i % 10 == 0).await;
    }
    let after = fds_settled_at(baseline).await;
    assert!(after <= baseline, "open file descriptors grew from {baseline} to {after}");
}

/// A raw HTTP GET, for answers that are not WebSocket upgrades.
async fn reqwest_like_get(addr: std::net::SocketAddr, path: &str, key: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}

fn sample(scrape: &prometheus_parse::Scrape, name: &str, label: Option<(&str, &str)>) -> f64 {
    let s = scrape
        .samples
        .iter()
        .find(|s| s.metric == name && label.is_none_or(|(k, v)| s.labels.get(k) == Some(v)))
        .unwrap_or_else(|| panic!("no sample {name} {label:?}"));
    match s.value {
        prometheus_parse::Value::Counter(v)
        | prometheus_parse::Value::Gauge(v)
        | prometheus_parse::Value::Untyped(v) => v,
        _ => panic!("unexpected value type for {name}"),
    }
}

#[actix_web::test]
async fn metrics_show_exactly_the_recorded_numbers() {
    let w = completed_world().await;
    let now = OffsetDateTime::now_utc();
    let store = &w.state.store;
    for (name, enabled) in [("app", true), ("nas", true), ("old", false)] {
        let fields = crate::store::TunnelFields {
            enabled,
            ..testing::tunnel_fields(name, if name == "nas" { "nocaps" } else { "reader" }, "127.0.0.1:8080")
        };
        store.insert_tunnel(fields, now).await.unwrap();
    }
    store
        .put_relay_status(vec![crate::store::AgentStatus {
            label: "reader".into(),
            connected_since: now,
            remote_addr: "192.0.2.7:40000".into(),
            protocol_version: 1,
            bytes_in: 1234,
            bytes_out: 56789,
            open_streams: 3,
            rtt_ms: None,
            last_contact: None,
        }])
        .await
        .unwrap();
    for outcome in [Outcome::Success, Outcome::Failure, Outcome::Failure] {
        crate::audit::record(store, "visitor:alice", "authd.login", "alice", outcome, None).await;
    }
    let tunnel_row = |name: &str, value| crate::store::ProcessCounter {
        process: crate::relay::PROCESS.into(),
        name: name.into(),
        labels: "tunnel=app".into(),
        value,
    };
    let rows = vec![
        tunnel_row(crate::relay::TUNNEL_BYTES_IN, 4321),
        tunnel_row(crate::relay::TUNNEL_BYTES_OUT, 8765),
        tunnel_row(crate::relay::TUNNEL_OPEN_STREAMS, 2),
    ];
    store.put_process_counters(crate::relay::PROCESS, rows).await.unwrap();
    // nginx's log lines, as datagrams to the panel's visitor-log listener.
    use crate::metrics::visitors;
    let socket = visitors::bind(0).await.unwrap();
    let to = socket.local_addr().unwrap();
    actix_web::rt::spawn(visitors::listen(socket, w.state.visitors.clone()));
    let nginx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    for line in [
        "<190>Mar  9 12:00:00 portico_tunnel: app.example.test 200",
        "<190>Mar  9 12:00:00 portico_tunnel: app.example.test 502",
        "<190>Mar  9 12:00:00 portico_tunnel: app.example.test 204",
        "<190>Mar  9 12:00:00 portico_site: docs.example.test 404",
        "not a log line",
    ] {
        nginx.send_to(line.as_bytes(), to).unwrap();
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while w.state.visitors.snapshot().iter().map(|(_, _, row)| row.iter().sum::<u64>()).sum::<u64>() < 4 {
        assert!(std::time::Instant::now() < deadline, "datagrams not counted");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await; // poll interval
    }

    let res = w.call(Who::KeyRead, TestRequest::get().uri("/metrics")).await;
    assert_eq!(res.status(), 200);
    assert!(res.headers().get("content-type").unwrap().to_str().unwrap().starts_with("application/openmetrics-text"));
    let text = String::from_utf8(read_body(res).await.to_vec()).unwrap();
    println!("{text}");
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).unwrap();
    assert_eq!(sample(&scrape, "portico_agents_connected", None), 1.0);
    assert_eq!(sample(&scrape, "portico_tunnels", Some(("state", "online"))), 1.0);
    assert_eq!(sample(&scrape, "portico_tunnels", Some(("state", "offline"))), 1.0);
    assert_eq!(sample(&scrape, "portico_tunnels", Some(("state", "disabled"))), 1.0);
    assert_eq!(sample(&scrape, "portico_tunnel_up", Some(("tunnel", "app"))), 1.0);
    assert_eq!(sample(&scrape, "portico_tunnel_up", Some(("tunnel", "nas"))), 0.0);
    assert_eq!(sample(&scrape, "portico_relay_bytes_in_total", Some(("agent", "reader"))), 1234.0);
    assert_eq!(sample(&scrape, "portico_relay_bytes_out_total", Some(("agent", "reader"))), 56789.0);
    assert_eq!(sample(&scrape, "portico_relay_open_streams", Some(("agent", "reader"))), 3.0);
    let logins = |outcome: &str| {
        scrape
            .samples
            .iter()
            .find(|s| {
                s.metric == "portico_events_total"
                    && s.labels.get("action") == Some("authd.login")
                    && s.labels.get("outcome") == Some(outcome)
            })
            .map(|s| match s.value {
                prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Untyped(v) => v,
                _ => -1.0,
            })
    };
    assert_eq!(logins("success"), Some(1.0));
    assert_eq!(logins("failure"), Some(2.0));
    assert_eq!(sample(&scrape, "portico_relay_tunnel_bytes_in_total", Some(("tunnel", "app"))), 4321.0);
    assert_eq!(sample(&scrape, "portico_relay_tunnel_bytes_out_total", Some(("tunnel", "app"))), 8765.0);
    assert_eq!(sample(&scrape, "portico_relay_tunnel_open_streams", Some(("tunnel", "app"))), 2.0);
    let requests = |tunnel: &str, class: &str| {
        scrape
            .samples
            .iter()
            .find(|s| {
                s.metric == "portico_visitor_requests_total"
                    && s.labels.get("tunnel") == Some(tunnel)
                    && s.labels.get("class") == Some(class)
            })
            .map(|s| match s.value {
                prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Untyped(v) => v,
                _ => -1.0,
            })
    };
    assert_eq!(requests("app", "2xx"), Some(2.0));
    assert_eq!(requests("app", "5xx"), Some(1.0));
    assert_eq!(requests("nas", "2xx"), Some(0.0), "every tunnel has its series");
    assert_eq!(sample(&scrape, "portico_site_requests_total", Some(("class", "4xx"))), 1.0);
    // nginx is off in this world: nothing applied, nothing renewed, but the series exist.
    assert_eq!(sample(&scrape, "portico_nginx_applies_total", Some(("outcome", "refused"))), 0.0);
    assert_eq!(sample(&scrape, "portico_acme_renewals_total", Some(("outcome", "error"))), 0.0);
    let admin_days = sample(&scrape, "portico_certificate_days_left", Some(("name", "admin")));
    assert!(admin_days > 300.0, "{admin_days}");
    let rss = sample(&scrape, "portico_process_resident_memory_bytes", Some(("pid", &std::process::id().to_string())));
    assert!(rss > 0.0);
}

#[actix_web::test]
async fn health_shows_components_to_an_admin_only() {
    let authd = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let authd_addr = authd.local_addr().unwrap();
    let w = world_with(move |s| s.authd.listen = authd_addr).await;
    let public = json_body(w.call(Who::Nobody, TestRequest::get().uri("/api/health")).await).await;
    assert_eq!(public["status"], "ok");
    assert!(public.get("components").is_none());
    let body = json_body(w.call(Who::Admin, TestRequest::get().uri("/api/health")).await).await;
    let components = body["components"].as_array().unwrap();
    let ok = |name: &str| components.iter().find(|c| c["name"] == name).unwrap()["ok"].as_bool().unwrap();
    assert!(ok("authd") && ok("store"), "{body}");
    // Whether a relay listens on this machine's default port is not ours to
    // decide; the status follows the components either way.
    let all_ok = components.iter().all(|c| c["ok"] == true);
    assert_eq!(body["status"], if all_ok { "ok" } else { "degraded" });
    drop(authd);
}

#[actix_web::test]
async fn scheduled_backups_keep_the_newest() {
    let backups = tempfile::tempdir().unwrap();
    let dir = backups.path().to_path_buf();
    let w = world_with(move |s| {
        s.backup.dir = Some(dir);
        s.backup.keep = 2;
    })
    .await;
    let pass = crate::settings::Secret::new("a scheduled passphrase");
    for _ in 0..3 {
        crate::tasks::run_scheduled_backup(&w.state, &pass).await;
    }
    let archives: Vec<_> = std::fs::read_dir(backups.path())
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(crate::backup::SUFFIX))
        .collect();
    assert_eq!(archives.len(), 2, "{archives:?}");
    let (entries, _) = w
        .state
        .store
        .audit_entries(crate::store::AuditQuery {
            action: Some("backup.create".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(entries.len(), 3);
    assert!(entries.iter().all(|e| e.outcome == "success" && e.actor == "system"));
}

#[actix_web::test]
async fn backup_over_the_api_downloads_the_archive() {
    let w = completed_world().await;
    let res = w
        .call(Who::Admin, TestRequest::post().uri("/api/backup").set_json(json!({"passphrase": "an api passphrase"})))
        .await;
    assert_eq!(res.status(), 201);
    let body = json_body(res).await;
    let link = body["download"].as_str().unwrap().to_string();
    let size = body["backup"]["size"].as_u64().unwrap();
    let res = w.call(Who::Admin, TestRequest::get().uri(&link)).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers().get("content-type").unwrap(), "application/octet-stream");
    let bytes = read_body(res).await;
    assert_eq!(bytes.len() as u64, size);
    assert!(bytes.starts_with(b"age-encryption.org/v1\n"));
    // The download decrypts and restores.
    let work = tempfile::tempdir().unwrap();
    let archive = work.path().join("a.tar.zst.age");
    std::fs::write(&archive, &bytes).unwrap();
    let target = work.path().join("data");
    let pass = crate::settings::Secret::new("an api passphrase");
    crate::backup::restore(&archive, &target, &pass, false).unwrap();
    assert!(target.join("pki").is_dir() && target.join("portico.db").is_file());
}
