//! Cross-site requests to the JSON API (the matrix covers every route for
//! foreign pages; here: the panel's own origins still work, refusals are
//! audited without secrets, WebSocket handshakes) and who may stream logs.

use super::*;

fn upgrade(req: TestRequest) -> TestRequest {
    req.insert_header(("Connection", "Upgrade"))
        .insert_header(("Upgrade", "websocket"))
        .insert_header(("Sec-WebSocket-Version", "13"))
        .insert_header(("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="))
}

fn new_key(i: usize) -> TestRequest {
    TestRequest::post().uri("/api/keys").set_json(json!({"name": format!("browser{i}"), "scopes": ["read"]}))
}

async fn cross_site_entries(w: &World) -> Vec<crate::store::AuditEntry> {
    let query = crate::store::AuditQuery { action: Some("request.cross_site".into()), limit: 50, ..Default::default() };
    w.state.store.audit_entries(query).await.unwrap().0
}

/// The UI's own pages and scripts post from the panel's origins: by IP on
/// the admin port, by name once a domain is set, and through Home Assistant
/// from the frontend's origin as the Supervisor forwards it.
#[actix_web::test]
async fn the_panels_own_origins_pass() {
    let w = completed_world().await;
    let own = |i, origin: &str| {
        new_key(i).insert_header(("Origin", origin.to_string())).insert_header(("Sec-Fetch-Site", "same-origin"))
    };
    assert_eq!(w.call(Who::Admin, own(0, "https://203.0.113.10:9292")).await.status(), 201);
    assert_eq!(w.call(Who::Admin, own(1, "https://panel.example.com")).await.status(), 403, "no domain yet");
    w.state.store.put_settings(vec![(onboarding::keys::DOMAIN, "example.com".into())]).await.unwrap();
    assert_eq!(w.call(Who::Admin, own(2, "https://panel.example.com")).await.status(), 201);
    assert_eq!(w.call(Who::Admin, own(3, "https://PANEL.example.com")).await.status(), 201);
    assert_eq!(w.call(Who::Admin, own(4, "https://panel.example.com:8443")).await.status(), 403);
    assert_eq!(w.call(Who::Admin, own(5, "null")).await.status(), 403, "opaque origin");
    // No fetch metadata, no Origin: curl, scripts, keys.
    assert_eq!(w.call(Who::Admin, new_key(6)).await.status(), 201);
    assert_eq!(w.call(Who::KeyAdmin, new_key(7)).await.status(), 201);
    // `none`: the admin typed the address or used a bookmark.
    let typed = new_key(8).insert_header(("Sec-Fetch-Site", "none"));
    assert_eq!(w.call(Who::Admin, typed).await.status(), 201);

    let ingress = |i, origin: &str| {
        own(i, origin)
            .insert_header(("X-Forwarded-Host", "ha.example:8123"))
            .insert_header(("X-Forwarded-Proto", "https"))
    };
    assert_eq!(w.call(Who::IngressUser, ingress(9, "https://ha.example:8123")).await.status(), 201);
    assert_eq!(w.call(Who::IngressUser, ingress(10, "http://ha.example:8123")).await.status(), 403, "scheme");
    // The forwarded host counts only on the ingress listener from the Supervisor.
    assert_eq!(w.call(Who::Admin, ingress(11, "https://ha.example:8123")).await.status(), 403);
    assert!(cross_site_entries(&w).await.len() >= 5);
}

/// A foreign page's form post that would stop the relay is refused before
/// the handler runs, with the usual error body, and audited with the origin
/// and the reason; secrets in the path are masked in the audit entry.
#[actix_web::test]
async fn cross_site_refusals_change_nothing_and_are_audited() {
    let w = completed_world().await;
    let stop = TestRequest::post().uri("/api/services/relay/stop");
    let res = w.call(Who::CrossSiteBrowser, stop).await;
    assert_eq!(res.status(), 403);
    let body = json_body(res).await;
    assert_eq!(body["error"], "Cross-site request refused");
    assert_eq!(body["details"], "Sec-Fetch-Site is cross-site");
    let invite = TestRequest::post().uri("/api/invite/SECRETinvitetoken").set_json(json!({"password": "x"}));
    let res = w.call(Who::CrossOriginBrowser, invite).await;
    assert_eq!(res.status(), 403);
    assert_eq!(json_body(res).await["details"], "Origin https://evil.example is not one of the panel's origins");

    let entries = cross_site_entries(&w).await;
    let targets: Vec<&str> = entries.iter().map(|e| e.target.as_str()).collect();
    assert!(targets.contains(&"/api/services/relay/stop"), "{targets:?}");
    assert!(targets.contains(&"/api/invite/***"), "{targets:?}");
    let stop = entries.iter().find(|e| e.target == "/api/services/relay/stop").unwrap();
    assert_eq!(stop.details.as_ref().unwrap()["origin"], "https://evil.example");
    assert_eq!(stop.outcome, "denied");
    let all = w.state.store.audit_entries(crate::store::AuditQuery { limit: 200, ..Default::default() }).await;
    let all = all.unwrap().0;
    assert!(!all.iter().any(|e| e.action.starts_with("service.")), "the service action ran");
    assert!(!format!("{all:?}").contains("SECRETinvitetoken"), "a token reached the audit log");
}

/// WebSocket handshakes are GETs no CORS rule guards: a foreign page must
/// not read the live logs with the admin's certificate. The UI's own page
/// (`Sec-Fetch-Site: same-origin`) may, from whatever address it was opened.
#[actix_web::test]
async fn cross_site_websocket_handshakes_are_refused() {
    let w = completed_world().await;
    let logs = || upgrade(TestRequest::get().uri("/api/services/relay/logs"));
    let res = w.call(Who::CrossOriginBrowser, logs()).await;
    assert_eq!(res.status(), 403);
    assert_eq!(w.call(Who::CrossSiteBrowser, logs()).await.status(), 403);
    let stream = upgrade(TestRequest::get().uri("/api/onboarding/provision/stream"));
    assert_eq!(w.call(Who::CrossOriginBrowser, stream).await.status(), 403);
    let from_ui =
        logs().insert_header(("Origin", "http://127.0.0.1:8080")).insert_header(("Sec-Fetch-Site", "same-origin"));
    assert_eq!(w.call(Who::Admin, from_ui).await.status(), 101);
    // Browsers without fetch metadata on WebSockets: the Origin names the Host.
    let same_host = logs().insert_header(("Origin", "http://127.0.0.1:8080")).insert_header(("Host", "127.0.0.1:8080"));
    assert_eq!(w.call(Who::Admin, same_host).await.status(), 101);
    let foreign = logs().insert_header(("Origin", "https://evil.example")).insert_header(("Host", "127.0.0.1:8080"));
    assert_eq!(w.call(Who::Admin, foreign).await.status(), 403);
    // State-changing requests stay with the panel's own origins.
    let post = TestRequest::post()
        .uri("/api/services/relay/stop")
        .insert_header(("Origin", "http://127.0.0.1:8080"))
        .insert_header(("Host", "127.0.0.1:8080"));
    assert_eq!(w.call(Who::Admin, post).await.status(), 403);
    let own = logs().insert_header(("Origin", "https://203.0.113.10:9292"));
    assert_eq!(w.call(Who::Admin, own).await.status(), 101);
    assert_eq!(w.call(Who::Admin, logs()).await.status(), 101, "no browser headers: a script");
}

/// Live logs need `logs:read`: not in the `read` or `write` key scopes,
/// not implied by `services:read`; an agent granted it explicitly may.
#[actix_web::test]
async fn live_logs_need_logs_read() {
    let w = completed_world().await;
    let logs = || upgrade(TestRequest::get().uri("/api/services/relay/logs"));
    for who in [Who::KeyRead, Who::KeyWrite] {
        let res = w.call(who, logs()).await;
        assert_eq!(res.status(), 403, "{who:?}");
        assert_eq!(json_body(res).await["error"], "Insufficient API key scope");
    }
    assert_eq!(w.call(Who::KeyAdmin, logs()).await.status(), 101);
    assert_eq!(w.call(Who::KeyRead, TestRequest::get().uri("/api/services")).await.status(), 200);

    let services = agent(&w.state, "svc", &["services:read", "services:write"]).await;
    let logger = agent(&w.state, "logger", &["logs:read"]).await;
    let as_agent = |label: &str, serial: &str| {
        cert_headers(logs().peer_addr(LOOPBACK.parse().unwrap()), &format!("agent:{label}"), serial)
    };
    let (channel, _) = w.as_who(Who::Admin, TestRequest::get());
    let app = init_service(App::new().configure(configure(w.state.clone(), channel))).await;
    let res = app.call(as_agent("svc", &services).to_request()).await.unwrap();
    assert_eq!(res.status(), 403, "services:read alone");
    let res = app.call(as_agent("logger", &logger).to_request()).await.unwrap();
    assert_eq!(res.status(), 101, "granted logs:read");
}
