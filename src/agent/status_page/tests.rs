//! The agent-mode add-on: its ingress page over a real socket, the target
//! check against stand-ins that behave like Home Assistant, and enrollment
//! from the add-on options against the real panel.

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use super::*;
use crate::agent::config::{AgentConfig, AgentState, Status};
use crate::protocol::Route;
use crate::settings::{AgentAddonSettings, Secret, Settings};

fn page(dir: &Path, trusted: IpAddr) -> Arc<Page> {
    Arc::new(Page {
        dir: dir.to_path_buf(),
        trusted_peers: vec![trusted],
        panel_url: Some("https://panel.example.com".into()),
        phase: Mutex::new(Phase::Starting),
    })
}

/// Starts the page on 127.0.0.1:0; returns its address.
async fn start(page: Arc<Page>) -> (std::net::SocketAddr, watch::Sender<bool>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = watch::channel(false);
    tokio::spawn(serve(listener, page, rx));
    (addr, tx)
}

async fn get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: addon\r\n\r\n").as_bytes()).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    let code = out.split_whitespace().nth(1).unwrap().parse().unwrap();
    (code, out)
}

/// A stand-in for Home Assistant's HTTP server: 400 to a request with
/// `X-Forwarded-For` unless `trusting`, else 200.
async fn home_assistant(trusting: bool) -> String {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let n = s.read(&mut buf).await.unwrap_or(0);
                let head = String::from_utf8_lossy(&buf[..n]).to_ascii_lowercase();
                let code = if head.contains("x-forwarded-for:") && !trusting { "400 Bad Request" } else { "200 OK" };
                let _ = s.write_all(format!("HTTP/1.1 {code}\r\nContent-Length: 0\r\n\r\n").as_bytes()).await;
            });
        }
    });
    addr.to_string()
}

fn write_state(dir: &Path, tunnels: Vec<Route>) {
    AgentConfig {
        label: "ha".into(),
        serial: "0A".into(),
        relay: "wss://tunnel.example.com/".into(),
        panel: "https://panel.example.com".into(),
    }
    .save(dir)
    .unwrap();
    Status {
        state: AgentState::Connected,
        relay: "wss://tunnel.example.com/".into(),
        since: time::OffsetDateTime::now_utc(),
        detail: None,
        tunnels,
    }
    .write(dir)
    .unwrap();
}

#[tokio::test]
async fn the_page_shows_state_tunnels_and_the_panel_link_to_the_ingress_proxy_only() {
    let dir = tempfile::tempdir().unwrap();
    let target = home_assistant(true).await;
    write_state(dir.path(), vec![Route { name: "ha".into(), target: target.clone() }]);

    let (addr, _stop) = start(page(dir.path(), IpAddr::V4(Ipv4Addr::LOCALHOST))).await;
    let (code, body) = get(addr, "/").await;
    assert_eq!(code, 200, "{body}");
    assert!(body.contains(r#"id="state">connected<"#), "{body}");
    assert!(body.contains(&format!("<code>{target}</code>")), "{body}");
    assert!(body.contains(r#"href="https://panel.example.com""#), "{body}");
    assert!(!body.contains("trusted-proxies"), "a trusting target gets no warning: {body}");
    assert_eq!(get(addr, "/other").await.0, 404);

    // Anyone but the Supervisor's proxy is refused.
    let (addr, _stop2) = start(page(dir.path(), "172.30.32.2".parse().unwrap())).await;
    let (code, body) = get(addr, "/").await;
    assert_eq!(code, 403);
    assert!(!body.contains("tunnel.example.com"), "{body}");
}

#[tokio::test]
async fn home_assistant_refusing_forwarded_requests_gets_the_trusted_proxies_advice() {
    let dir = tempfile::tempdir().unwrap();
    let target = home_assistant(false).await;
    assert_eq!(check_target(&target).await, Check::RefusesForwarded { via: IpAddr::V4(Ipv4Addr::LOCALHOST) });
    write_state(dir.path(), vec![Route { name: "ha".into(), target }]);
    let body = render(&page(dir.path(), IpAddr::V4(Ipv4Addr::LOCALHOST))).await;
    assert!(body.contains(r#"id="trusted-proxies""#), "{body}");
    assert!(body.contains("use_x_forwarded_for: true\n  trusted_proxies:\n    - 127.0.0.1"), "{body}");

    // A target that is down says so instead.
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap().to_string();
    assert!(matches!(check_target(&closed).await, Check::Unreachable(_)));
}

fn addon_settings(dir: &Path, agent: AgentAddonSettings) -> Settings {
    Settings {
        data_dir: dir.join("data"),
        agent: AgentAddonSettings { config_dir: dir.join("agent"), ..agent },
        ..Default::default()
    }
}

#[tokio::test]
async fn without_panel_url_and_token_the_page_says_where_to_set_them() {
    let dir = tempfile::tempdir().unwrap();
    let settings = addon_settings(dir.path(), AgentAddonSettings::default());
    let p = page(&settings.agent.config_dir, IpAddr::V4(Ipv4Addr::LOCALHOST));
    let (tx, mut rx) = watch::channel(false);
    let p2 = p.clone();
    let waiting = tokio::spawn(async move { crate::agent::addon::ensure_enrolled(&settings, &p2, &mut rx).await });
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    while *p.phase.lock().unwrap() != Phase::NotConfigured {
        assert!(tokio::time::Instant::now() < deadline, "never reported the missing options");
        tokio::task::yield_now().await;
    }
    let body = render(&p).await;
    assert!(body.contains(r#"id="state">not configured<"#), "{body}");
    assert!(body.contains("Configuration"), "{body}");
    tx.send(true).unwrap();
    assert!(waiting.await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_addon_enrolls_once_from_its_options_and_keeps_its_identity() {
    let dir = tempfile::tempdir().unwrap();
    let (front, fingerprint, state, _) = crate::agent::tests::enroll::panel_behind_tls(&dir.path().join("data")).await;
    let grant = crate::agents::create_enrollment(&state.store, "ha".into(), vec![], 10).await.unwrap();
    let options = AgentAddonSettings {
        panel_url: Some(format!("https://{front}")),
        token: Some(Secret::new(grant.token.clone())),
        fingerprint: Some(fingerprint),
        relay: Some("wss://tunnel.example.com/".into()),
        ..Default::default()
    };
    let settings = addon_settings(dir.path(), options);
    let p = page(&settings.agent.config_dir, IpAddr::V4(Ipv4Addr::LOCALHOST));
    let (_tx, mut rx) = watch::channel(false);
    let cfg = crate::agent::addon::ensure_enrolled(&settings, &p, &mut rx).await.expect("enrolled");
    assert_eq!(cfg.label, "ha");
    assert_eq!(AgentConfig::load(&settings.agent.config_dir).unwrap(), cfg);
    let body = render(&p).await;
    assert!(body.contains("enrolled, connecting"), "{body}");

    // A restart with the same (now spent) token keeps the stored identity.
    let again = crate::agent::addon::ensure_enrolled(&settings, &p, &mut rx).await.expect("still enrolled");
    assert_eq!(again, cfg);

    // A fresh add-on with a spent token shows the panel's refusal.
    let other = addon_settings(&dir.path().join("second"), settings.agent.clone());
    let other =
        Settings { agent: AgentAddonSettings { config_dir: dir.path().join("second/agent"), ..other.agent }, ..other };
    let p2 = page(&other.agent.config_dir, IpAddr::V4(Ipv4Addr::LOCALHOST));
    let (tx2, mut rx2) = watch::channel(false);
    let p3 = p2.clone();
    let task = tokio::spawn(async move { crate::agent::addon::ensure_enrolled(&other, &p3, &mut rx2).await });
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    while !matches!(*p2.phase.lock().unwrap(), Phase::EnrollFailed(_)) {
        assert!(tokio::time::Instant::now() < deadline, "the refusal never showed");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let body = render(&p2).await;
    assert!(body.contains("enrollment failed") && body.contains("refused"), "{body}");
    tx2.send(true).unwrap();
    assert!(task.await.unwrap().is_none());
}

#[tokio::test]
async fn the_healthcheck_of_the_agent_mode_add_on_asks_its_status_page() {
    let dir = tempfile::tempdir().unwrap();
    let (addr, _stop) = start(page(dir.path(), IpAddr::V4(Ipv4Addr::LOCALHOST))).await;
    let mut settings = Settings { mode: crate::settings::Mode::Agent, ..Default::default() };
    settings.ingress.listen = addr;
    let timeout = std::time::Duration::from_secs(2);
    let s = settings.clone();
    tokio::task::spawn_blocking(move || crate::healthcheck::run(&s, timeout)).await.unwrap().expect("healthy");
    settings.ingress.listen = TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
    let err = tokio::task::spawn_blocking(move || crate::healthcheck::run(&settings, timeout)).await.unwrap();
    assert!(err.unwrap_err().to_string().contains("status page"));
}
