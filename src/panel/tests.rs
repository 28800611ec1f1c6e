//! Handler tests through `actix_web::test`: the authorization matrix,
//! onboarding guards, enrollment and the other flows of the panel core.

use std::net::SocketAddr;

use actix_web::dev::{Service, ServiceResponse};
use actix_web::test::{TestRequest, call_service, init_service, read_body};
use actix_web::{App, web};
use serde_json::{Value, json};
use time::OffsetDateTime;

use super::*;
use crate::onboarding::{self, OnboardingState};
use crate::store::{NewApiKey, NewEnrollmentToken};
use crate::testing::{self, dns};

mod agents;
mod cross_site;
mod downloads;
mod full_disk;
mod install;
mod nginx;
mod ops;
mod provision;
mod runtime_settings;
mod sites;
mod tunnels;
mod two_factor;
mod users;

const LOOPBACK: &str = "127.0.0.1:50000";
const OUTSIDER: &str = "10.9.9.9:50000";
const SUPERVISOR: &str = "172.30.32.2:50000";

/// A data dir with a CA, a rotated admin cert (so a revoked serial exists),
/// two agents, and API keys of every scope plus an expired one.
struct World {
    _dir: tempfile::TempDir,
    state: web::Data<AppState>,
    admin_serial: String,
    old_admin_serial: String,
    reader_serial: String,
    nocaps_serial: String,
    key_read: String,
    key_write: String,
    key_admin: String,
    key_expired: String,
}

async fn world_with(configure: impl FnOnce(&mut Settings)) -> World {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = testing::panel_settings(dir.path());
    configure(&mut settings);
    let state = testing::init_panel(settings).await;
    let old_admin_serial = state.pki.admin_info().unwrap().serial;
    let (_, new) = crate::agents::rotate_admin(state.pki.clone(), &state.store).await.unwrap();
    let reader = agent(&state, "reader", &["system:read", "tunnels:read"]).await;
    let nocaps = agent(&state, "nocaps", &[]).await;
    let key = |scope: &'static str| {
        let state = state.clone();
        async move {
            let scopes = vec![crate::identity::Scope::parse(scope).unwrap()];
            crate::apikeys::create(&state.store, scope, scopes, None).await.unwrap().key
        }
    };
    let (key_read, key_write, key_admin) = (key("read").await, key("write").await, key("admin").await);
    let key_expired = expired_key(&state).await;
    World {
        _dir: dir,
        state,
        admin_serial: new.serial,
        old_admin_serial,
        reader_serial: reader,
        nocaps_serial: nocaps,
        key_read,
        key_write,
        key_admin,
        key_expired,
    }
}

async fn world() -> World {
    world_with(|_| {}).await
}

async fn completed_world() -> World {
    let w = world().await;
    w.set_state(OnboardingState::Completed).await;
    w
}

impl World {
    async fn set_state(&self, s: OnboardingState) {
        self.state.store.put_settings(vec![(onboarding::keys::STATE, s.as_str().to_string())]).await.unwrap();
        self.state.set_onboarding_state(s);
    }
}

/// Issues an agent certificate; returns its serial.
async fn agent(state: &web::Data<AppState>, label: &str, caps: &[&str]) -> String {
    let caps: Vec<String> = caps.iter().map(|c| c.to_string()).collect();
    let caps = crate::agents::validate(Some(label), &caps).unwrap();
    crate::agents::issue(state.pki.clone(), &state.store, label.to_string(), caps).await.unwrap().agent.serial.unwrap()
}

async fn expired_key(state: &web::Data<AppState>) -> String {
    let secret = crate::token::random_token(32);
    let id = "00000000000000ee".to_string();
    let now = OffsetDateTime::now_utc();
    state
        .store
        .insert_api_key(NewApiKey {
            id: id.clone(),
            name: "old".into(),
            hash: bcrypt::hash(&secret, 4).unwrap(),
            scopes: vec!["admin".into()],
            created_at: now - time::Duration::days(40),
            expires_at: Some(now - time::Duration::days(1)),
        })
        .await
        .unwrap();
    format!("pk_{id}_{secret}")
}

/// Who calls, and through which listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    Nobody,
    Admin,
    AdminFromOutsider,
    AgentWithCap,
    AgentWithoutCap,
    RevokedSerial,
    KeyRead,
    KeyWrite,
    KeyAdmin,
    KeyExpired,
    IngressUser,
    IngressFromOutsider,
    /// The admin's browser on a foreign page: client certificate,
    /// `Sec-Fetch-Site: cross-site`, a foreign `Origin`.
    CrossSiteBrowser,
    /// The same from a browser without fetch metadata: only `Origin`.
    CrossOriginBrowser,
    /// A page on a sibling name (a tunnel under the same domain).
    SameSiteBrowser,
    /// A foreign page in the browser of a Home Assistant user.
    IngressCrossSite,
}

/// Browsers on foreign pages: refused on every route but GET/HEAD, where
/// they get what their identity gets (`as` names that column).
const CROSS_SITE: [(Who, Who); 4] = [
    (Who::CrossSiteBrowser, Who::Admin),
    (Who::CrossOriginBrowser, Who::Admin),
    (Who::SameSiteBrowser, Who::Admin),
    (Who::IngressCrossSite, Who::IngressUser),
];

const COLUMNS: [Who; 12] = [
    Who::Nobody,
    Who::Admin,
    Who::AdminFromOutsider,
    Who::AgentWithCap,
    Who::AgentWithoutCap,
    Who::RevokedSerial,
    Who::KeyRead,
    Who::KeyWrite,
    Who::KeyAdmin,
    Who::KeyExpired,
    Who::IngressUser,
    Who::IngressFromOutsider,
];

fn cert_headers(req: TestRequest, cn: &str, serial: &str) -> TestRequest {
    req.insert_header(("X-SSL-Client-Verify", "SUCCESS"))
        .insert_header(("X-SSL-Client-DN", format!("CN={cn},O=Portico")))
        .insert_header(("X-SSL-Client-Serial", serial.to_string()))
}

fn bearer(req: TestRequest, key: &str) -> TestRequest {
    req.peer_addr(LOOPBACK.parse().unwrap()).insert_header(("Authorization", format!("Bearer {key}")))
}

impl World {
    /// Dresses `req` as `who` and says which listener it goes to.
    fn as_who(&self, who: Who, req: TestRequest) -> (Channel, TestRequest) {
        let peer = |s: &str| s.parse::<SocketAddr>().unwrap();
        match who {
            Who::Nobody => (Channel::Panel, req.peer_addr(peer(LOOPBACK))),
            Who::Admin => (Channel::Panel, cert_headers(req.peer_addr(peer(LOOPBACK)), "admin", &self.admin_serial)),
            Who::AdminFromOutsider => {
                (Channel::Panel, cert_headers(req.peer_addr(peer(OUTSIDER)), "admin", &self.admin_serial))
            }
            Who::AgentWithCap => {
                (Channel::Panel, cert_headers(req.peer_addr(peer(LOOPBACK)), "agent:reader", &self.reader_serial))
            }
            Who::AgentWithoutCap => {
                (Channel::Panel, cert_headers(req.peer_addr(peer(LOOPBACK)), "agent:nocaps", &self.nocaps_serial))
            }
            Who::RevokedSerial => {
                (Channel::Panel, cert_headers(req.peer_addr(peer(LOOPBACK)), "admin", &self.old_admin_serial))
            }
            Who::KeyRead => (Channel::Panel, bearer(req, &self.key_read)),
            Who::KeyWrite => (Channel::Panel, bearer(req, &self.key_write)),
            Who::KeyAdmin => (Channel::Panel, bearer(req, &self.key_admin)),
            Who::KeyExpired => (Channel::Panel, bearer(req, &self.key_expired)),
            Who::IngressUser => (
                Channel::Ingress,
                req.peer_addr(peer(SUPERVISOR))
                    .insert_header(("X-Remote-User-Id", "8f3a"))
                    .insert_header(("X-Remote-User-Name", "alice"))
                    .insert_header(("X-Remote-User-Display-Name", "Alice")),
            ),
            Who::IngressFromOutsider => {
                (Channel::Ingress, req.peer_addr(peer(OUTSIDER)).insert_header(("X-Remote-User-Name", "mallory")))
            }
            Who::CrossSiteBrowser => {
                let (channel, req) = self.as_who(Who::Admin, req);
                let req = req.insert_header(("Sec-Fetch-Site", "cross-site"));
                (channel, req.insert_header(("Origin", "https://evil.example")))
            }
            Who::CrossOriginBrowser => {
                let (channel, req) = self.as_who(Who::Admin, req);
                (channel, req.insert_header(("Origin", "https://evil.example")))
            }
            Who::SameSiteBrowser => {
                let (channel, req) = self.as_who(Who::Admin, req);
                let req = req.insert_header(("Sec-Fetch-Site", "same-site"));
                (channel, req.insert_header(("Origin", "https://app.example.com")))
            }
            Who::IngressCrossSite => {
                let (channel, req) = self.as_who(Who::IngressUser, req);
                let req = req.insert_header(("X-Forwarded-Host", "ha.example:8123"));
                (channel, req.insert_header(("Origin", "https://evil.example")))
            }
        }
    }

    async fn call(&self, who: Who, req: TestRequest) -> ServiceResponse {
        let (channel, req) = self.as_who(who, req);
        let app = init_service(App::new().configure(configure(self.state.clone(), channel))).await;
        app.call(req.to_request()).await.unwrap()
    }
}

/// A route under test: method, path, and a body made per cell (so creating
/// cells never collide on names).
struct Route {
    method: &'static str,
    path: &'static str,
    body: fn(usize) -> Option<Value>,
    expect: [u16; 12],
}

fn no_body(_: usize) -> Option<Value> {
    None
}

fn request(route: &Route, cell: usize) -> TestRequest {
    let req = match route.method {
        "GET" => TestRequest::get(),
        "POST" => TestRequest::post(),
        "DELETE" => TestRequest::delete(),
        "PATCH" => TestRequest::patch(),
        "PUT" => TestRequest::put(),
        other => panic!("method {other}"),
    }
    .uri(route.path);
    match (route.body)(cell) {
        Some(body) => req.set_json(body),
        None => req,
    }
}

//                 none adm  adm@out agCap agNo rev  kRead kWrite kAdmin kExp ing  ing@out
const PUBLIC: [u16; 12] = [200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 403];
const ANY_CALLER: [u16; 12] = [401, 200, 401, 200, 200, 403, 200, 200, 200, 401, 200, 403];
const GONE: [u16; 12] = [401, 410, 401, 410, 410, 403, 410, 410, 410, 401, 410, 403];
const ADMIN_READ: [u16; 12] = [401, 200, 401, 403, 403, 403, 403, 403, 200, 401, 200, 403];
const ADMIN_CREATE: [u16; 12] = [401, 201, 401, 403, 403, 403, 403, 403, 201, 401, 201, 403];
const ADMIN_MISSING: [u16; 12] = [401, 404, 401, 403, 403, 403, 403, 403, 404, 401, 404, 403];
const SERVICES_READ: [u16; 12] = [401, 200, 401, 403, 403, 403, 200, 200, 200, 401, 200, 403];
const SYSTEM_READ: [u16; 12] = [401, 200, 401, 200, 403, 403, 200, 200, 200, 401, 200, 403];
const ENROLL_BAD_TOKEN: [u16; 12] = [403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403];
const ADMIN_CONFLICT: [u16; 12] = [401, 409, 401, 403, 403, 403, 403, 403, 409, 401, 409, 403];
const ADMIN_INVALID: [u16; 12] = [401, 400, 401, 403, 403, 403, 403, 403, 400, 401, 400, 403];
const INVITE_BAD_TOKEN: [u16; 12] = [404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 403];
const UNKNOWN_ROUTE: [u16; 12] = [401, 404, 401, 404, 404, 403, 404, 404, 404, 401, 404, 403];
const TUNNEL_CREATE: [u16; 12] = [401, 201, 401, 403, 403, 403, 403, 201, 201, 401, 201, 403];
const TUNNEL_WRITE_MISSING: [u16; 12] = [401, 404, 401, 403, 403, 403, 403, 404, 404, 401, 404, 403];
const TUNNEL_READ_MISSING: [u16; 12] = [401, 404, 401, 404, 403, 403, 404, 404, 404, 401, 404, 403];
const SITES_READ_MISSING: [u16; 12] = [401, 404, 401, 403, 403, 403, 404, 404, 404, 401, 404, 403];
const SITES_WRITE_MISSING: [u16; 12] = [401, 404, 401, 403, 403, 403, 403, 404, 404, 401, 404, 403];

fn routes() -> Vec<Route> {
    let r = |method, path, body, expect| Route { method, path, body, expect };
    vec![
        r("GET", "/api/health", no_body, PUBLIC),
        r("GET", "/api/health/names", no_body, SYSTEM_READ),
        r("POST", "/api/health/names/probe", no_body, ADMIN_READ),
        r("GET", "/api/doctor", no_body, ADMIN_READ),
        r("POST", "/api/doctor", no_body, ADMIN_READ),
        r("GET", "/api/openapi.json", no_body, PUBLIC),
        r("GET", "/api/onboarding/status", no_body, ANY_CALLER),
        r(
            "POST",
            "/api/onboarding/domain",
            |_| Some(json!({"domain": "example.com", "email": "ops@example.com"})),
            GONE,
        ),
        r("POST", "/api/onboarding/verify-dns", no_body, GONE),
        r("POST", "/api/onboarding/provision", no_body, GONE),
        r(
            "GET",
            "/api/onboarding/provision/stream",
            no_body,
            [401, 400, 401, 403, 403, 403, 403, 403, 400, 401, 400, 403],
        ),
        r("GET", "/api/certs", no_body, ADMIN_READ),
        r("GET", "/api/certs/auto-renew-status", no_body, ADMIN_READ),
        r("POST", "/api/certs/ghost.example.com/renew", no_body, ADMIN_MISSING),
        r(
            "POST",
            "/api/certs/ghost.example.com/upload",
            |_| Some(json!({"fullchain": "x", "key": "y"})),
            ADMIN_MISSING,
        ),
        r("GET", "/api/keys", no_body, ADMIN_READ),
        r("POST", "/api/keys", |i| Some(json!({"name": format!("k{i}"), "scopes": ["read"]})), ADMIN_CREATE),
        r("DELETE", "/api/keys/0123456789abcdef", no_body, ADMIN_MISSING),
        r("GET", "/api/certs/mtls", no_body, ADMIN_READ),
        r("GET", "/api/certs/mtls/download", no_body, ADMIN_READ),
        r("POST", "/api/certs/mtls/rotate", no_body, ADMIN_READ),
        r("GET", "/api/certs/admin/auth-mode", no_body, ADMIN_READ),
        r("POST", "/api/certs/admin/upgrade-to-hardware-bound", |_| Some(json!({"csr": "x"})), ADMIN_INVALID),
        r("GET", "/api/certs/agent", no_body, ADMIN_READ),
        r(
            "POST",
            "/api/certs/agent",
            |i| Some(json!({"label": format!("cell-{i}"), "capabilities": ["tunnels:read"]})),
            ADMIN_CREATE,
        ),
        r(
            "POST",
            "/api/certs/agent/enroll",
            |i| Some(json!({"label": format!("tok-{i}"), "capabilities": []})),
            ADMIN_CREATE,
        ),
        r("GET", "/api/certs/agent/reader/download", no_body, ADMIN_READ),
        r("DELETE", "/api/certs/agent/ghost", no_body, ADMIN_MISSING),
        r("DELETE", "/api/agents/ghost", no_body, ADMIN_MISSING),
        r(
            "PATCH",
            "/api/certs/agent/reader/capabilities",
            |_| Some(json!({"capabilities": ["system:read", "tunnels:read"]})),
            ADMIN_READ,
        ),
        r("POST", "/api/enroll", |_| Some(json!({"token": "not-a-token", "csr": "x"})), ENROLL_BAD_TOKEN),
        r("GET", "/api/audit", no_body, SYSTEM_READ),
        r("GET", "/api/users", no_body, ADMIN_READ),
        r(
            "POST",
            "/api/users",
            |i| Some(json!({"username": format!("user{i}"), "password": "a long enough passphrase"})),
            ADMIN_CREATE,
        ),
        r("PUT", "/api/users/ghost", |_| Some(json!({"disabled": true})), ADMIN_MISSING),
        r("DELETE", "/api/users/ghost", no_body, ADMIN_MISSING),
        r("POST", "/api/users/ghost/reset-totp", no_body, ADMIN_MISSING),
        r("GET", "/api/users/ghost/sessions", no_body, ADMIN_MISSING),
        r("DELETE", "/api/users/ghost/sessions/0011223344556677", no_body, ADMIN_MISSING),
        r("GET", "/api/groups", no_body, ADMIN_READ),
        r("POST", "/api/groups", |i| Some(json!({"name": format!("group{i}")})), ADMIN_CREATE),
        r("DELETE", "/api/groups/ghost", no_body, ADMIN_MISSING),
        r("PUT", "/api/groups/ghost/members/ghost", no_body, ADMIN_MISSING),
        r("DELETE", "/api/groups/ghost/members/ghost", no_body, ADMIN_MISSING),
        r("GET", "/api/invitations", no_body, ADMIN_READ),
        r("POST", "/api/invitations", |i| Some(json!({"username": format!("invitee{i}")})), ADMIN_CREATE),
        r("DELETE", "/api/invitations/ghost", no_body, ADMIN_MISSING),
        r("GET", "/api/invite/not-a-token", no_body, INVITE_BAD_TOKEN),
        r(
            "POST",
            "/api/invite/not-a-token",
            |_| Some(json!({"password": "a long enough passphrase", "code": "123456"})),
            INVITE_BAD_TOKEN,
        ),
        r("GET", "/api/settings/2fa", no_body, ADMIN_READ),
        r("POST", "/api/settings/2fa/setup", no_body, ADMIN_READ),
        r("POST", "/api/settings/2fa/confirm", |_| Some(json!({"code": "123456"})), ADMIN_CONFLICT),
        r("POST", "/api/settings/2fa/verify", |_| Some(json!({"code": "123456"})), ADMIN_CONFLICT),
        r("POST", "/api/settings/2fa/recovery-codes", |_| Some(json!({"code": "123456"})), ADMIN_CONFLICT),
        r("POST", "/api/settings/2fa/disable", |_| Some(json!({"code": "123456"})), ADMIN_CONFLICT),
        r("GET", "/api/settings/runtime", no_body, ADMIN_READ),
        r("PATCH", "/api/settings/runtime", |_| Some(json!({"backupKeep": 7})), ADMIN_READ),
        r("GET", "/api/no-such-route", no_body, UNKNOWN_ROUTE),
        r("GET", "/api/tunnels", no_body, SYSTEM_READ),
        r(
            "POST",
            "/api/tunnels",
            |i| Some(json!({"name": format!("t{i}"), "agent": "reader", "target": "127.0.0.1:8080"})),
            TUNNEL_CREATE,
        ),
        r("PATCH", "/api/tunnels/0123456789abcdef", |_| Some(json!({"enabled": false})), TUNNEL_WRITE_MISSING),
        r("DELETE", "/api/tunnels/0123456789abcdef", no_body, TUNNEL_WRITE_MISSING),
        r("GET", "/api/tunnels/0123456789abcdef/agent-config", no_body, TUNNEL_READ_MISSING),
        r("GET", "/api/agents", no_body, ADMIN_READ),
        r("GET", "/api/nginx/rendered", no_body, ADMIN_READ),
        r("GET", "/api/nginx/snapshots", no_body, ADMIN_READ),
        r("GET", "/api/nginx/snapshots/0123456789abcdef/diff", no_body, ADMIN_MISSING),
        r("POST", "/api/nginx/snapshots/0123456789abcdef/rollback", no_body, ADMIN_MISSING),
        r("GET", "/api/sites", no_body, [401, 200, 401, 403, 403, 403, 200, 200, 200, 401, 200, 403]),
        r(
            "POST",
            "/api/sites",
            |i| Some(json!({"name": format!("site-{i}"), "access": "public"})),
            [401, 201, 401, 403, 403, 403, 403, 201, 201, 401, 201, 403],
        ),
        r(
            "DELETE",
            "/api/sites/0123456789abcdef",
            no_body,
            [401, 404, 401, 403, 403, 403, 403, 404, 404, 401, 404, 403],
        ),
        r("PATCH", "/api/sites/0123456789abcdef", |_| Some(json!({"spaFallback": true})), SITES_WRITE_MISSING),
        r("POST", "/api/sites/0123456789abcdef/verify-dns", no_body, SITES_READ_MISSING),
        r("GET", "/api/sites/0123456789abcdef/files", no_body, SITES_READ_MISSING),
        r("POST", "/api/sites/0123456789abcdef/files", no_body, SITES_WRITE_MISSING),
        r("DELETE", "/api/sites/0123456789abcdef/files?path=index.html", no_body, SITES_WRITE_MISSING),
        r("PUT", "/api/agents/ghost/sites", |_| Some(json!({"sites": ["docs"]})), ADMIN_MISSING),
        r("GET", "/api/services", no_body, SERVICES_READ),
        r("POST", "/api/services/relay/restart", no_body, [401, 409, 401, 403, 403, 403, 403, 409, 409, 401, 409, 403]),
        // Live logs: `logs:read`, which no `read`/`write` key holds.
        r("GET", "/api/services/relay/logs", no_body, [401, 400, 401, 403, 403, 403, 403, 403, 400, 401, 400, 403]),
        r("GET", "/api/system/stats", no_body, SYSTEM_READ),
        r(
            "POST",
            "/api/backup",
            |_| Some(json!({"passphrase": "short"})),
            [401, 400, 401, 403, 403, 403, 403, 403, 400, 401, 400, 403],
        ),
        r("GET", "/api/backup/20260101T000000Z-00000000", no_body, ADMIN_MISSING),
        r("GET", "/metrics", no_body, [401, 200, 401, 200, 403, 403, 200, 200, 200, 401, 200, 403]),
    ]
}

/// Every route of the panel core × every kind of caller, after onboarding.
/// Cross-site browsers come first: a refused request has no effect, and a
/// GET has none either, so the columns after them see the same world.
#[actix_web::test]
async fn authorization_matrix() {
    let mut failures = Vec::new();
    for route in routes() {
        let w = completed_world().await;
        for (who, like) in CROSS_SITE {
            let safe = route.method == "GET" || route.method == "HEAD";
            let like = COLUMNS.iter().position(|c| *c == like).unwrap();
            let want = if safe { route.expect[like] } else { 403 };
            let res = w.call(who, request(&route, COLUMNS.len() + like)).await;
            let got = res.status().as_u16();
            let body = String::from_utf8_lossy(&read_body(res).await).to_string();
            if got != want || (!safe && !body.contains("Cross-site request refused")) {
                failures.push(format!("{} {} as {who:?}: want {want}, got {got} {body}", route.method, route.path));
            }
        }
        for (cell, who) in COLUMNS.iter().enumerate() {
            let res = w.call(*who, request(&route, cell)).await;
            let got = res.status().as_u16();
            if got != route.expect[cell] {
                let body = String::from_utf8_lossy(&read_body(res).await).to_string();
                failures.push(format!(
                    "{} {} as {who:?}: want {}, got {got} {body}",
                    route.method, route.path, route.expect[cell]
                ));
            }
        }
    }
    assert!(failures.is_empty(), "authorization matrix mismatches:\n{}", failures.join("\n"));
}

#[actix_web::test]
async fn denials_name_their_reason_and_are_audited() {
    let w = completed_world().await;
    let res = w.call(Who::RevokedSerial, TestRequest::get().uri("/api/keys")).await;
    assert_eq!(res.status(), 403);
    assert_eq!(json_body(res).await["error"], "Certificate has been revoked");
    let res = w.call(Who::AgentWithoutCap, TestRequest::get().uri("/api/keys")).await;
    assert_eq!(json_body(res).await["error"], "Insufficient certificate scope");
    let res = w.call(Who::KeyRead, TestRequest::get().uri("/api/keys")).await;
    assert_eq!(json_body(res).await["error"], "Insufficient API key scope");
    // The extractor writes its audit entry from a spawned task; poll briefly.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let (entries, _) = w
            .state
            .store
            .audit_entries(crate::store::AuditQuery {
                action: Some("request.denied".into()),
                limit: 50,
                ..Default::default()
            })
            .await
            .unwrap();
        let actors: Vec<&str> = entries.iter().map(|e| e.actor.as_str()).collect();
        if actors.contains(&"agent:nocaps")
            && actors.iter().any(|a| a.starts_with("key:"))
            && actors.contains(&"peer:127.0.0.1")
        {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "denials not audited: {actors:?}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

async fn json_body(res: ServiceResponse) -> Value {
    let bytes = read_body(res).await;
    serde_json::from_slice(&bytes).unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&bytes)))
}

/// Before onboarding completes, management routes answer 503 with the state;
/// onboarding routes work; afterwards onboarding routes answer 410.
#[actix_web::test]
async fn onboarding_guards() {
    let w = world().await;
    for path in ["/api/keys", "/api/certs/mtls", "/api/audit", "/api/certs/agent"] {
        let res = w.call(Who::Admin, TestRequest::get().uri(path)).await;
        assert_eq!(res.status(), 503, "{path}");
        let body = json_body(res).await;
        assert_eq!(body["error"], "Onboarding not complete");
        assert_eq!(body["onboardingStatus"], "FRESH");
        let res = w.call(Who::Nobody, TestRequest::get().uri(path)).await;
        assert_eq!(res.status(), 401, "{path} without identity");
    }
    let res = w.call(Who::Admin, TestRequest::get().uri("/api/onboarding/status")).await;
    assert_eq!(json_body(res).await["status"], "FRESH");
    // Public routes are untouched by the guard.
    let res =
        w.call(Who::Nobody, TestRequest::post().uri("/api/enroll").set_json(json!({"token": "x", "csr": "y"}))).await;
    assert_eq!(res.status(), 403);

    w.set_state(OnboardingState::Completed).await;
    let res = w
        .call(
            Who::Admin,
            TestRequest::post().uri("/api/onboarding/domain").set_json(json!({"domain": "a.com", "email": "o@a.com"})),
        )
        .await;
    assert_eq!(res.status(), 410);
    let res = w.call(Who::Admin, TestRequest::get().uri("/api/onboarding/status")).await;
    assert_eq!(json_body(res).await["status"], "COMPLETED");
}

#[actix_web::test]
async fn onboarding_transitions_with_a_real_dns_check() {
    let good = dns::Server::start("203.0.113.10".parse().unwrap());
    let w = world_with(|s| s.dns.resolver = Some(good.addr)).await;
    let post = |uri: &str, body: Option<Value>| {
        let req = TestRequest::post().uri(uri);
        match body {
            Some(b) => req.set_json(b),
            None => req,
        }
    };
    // verify-dns needs a domain first.
    let res = w.call(Who::Admin, post("/api/onboarding/verify-dns", None)).await;
    assert_eq!(res.status(), 409);

    // Invalid input names every bad field and changes nothing.
    let res =
        w.call(Who::Admin, post("/api/onboarding/domain", Some(json!({"domain": "10.0.0.1", "email": "nope"})))).await;
    assert_eq!(res.status(), 400);
    let body = json_body(res).await;
    let fields: Vec<&str> = body["details"].as_array().unwrap().iter().map(|d| d["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["domain", "email"]);
    let res = w.call(Who::Admin, post("/api/onboarding/domain", Some(json!({"domain": "example.test"})))).await;
    assert_eq!(json_body(res).await["details"][0]["field"], "email");
    let res = w.call(Who::Admin, TestRequest::get().uri("/api/onboarding/status")).await;
    assert_eq!(json_body(res).await["status"], "FRESH");

    let res = w
        .call(
            Who::Admin,
            post("/api/onboarding/domain", Some(json!({"domain": "Bücher.Example.", "email": "ops@example.test"}))),
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(json_body(res).await["status"], "DOMAIN_SET");
    let res = w.call(Who::Admin, TestRequest::get().uri("/api/onboarding/status")).await;
    let status = json_body(res).await;
    assert_eq!(status["domain"], "xn--bcher-kva.example");
    assert_eq!(status["publicIp"], "203.0.113.10");

    let res = w.call(Who::Admin, post("/api/onboarding/verify-dns", None)).await;
    assert_eq!(res.status(), 200);
    let body = json_body(res).await;
    assert_eq!(body["status"], "DNS_READY", "{body}");
    let names: Vec<&str> =
        body["report"]["names"].as_array().unwrap().iter().map(|n| n["name"].as_str().unwrap()).collect();
    assert_eq!(
        &names[..3],
        ["panel.xn--bcher-kva.example", "auth.xn--bcher-kva.example", "tunnel.xn--bcher-kva.example"]
    );
    assert!(good.queries().iter().any(|q| q.starts_with("check-")), "random name queried: {:?}", good.queries());

    // A resolver that answers with another address sends it back to DOMAIN_SET.
    let wrong = dns::Server::start("198.51.100.7".parse().unwrap());
    let w2 = World { state: web::Data::new(reload_with_resolver(&w, wrong.addr).await), ..w };
    let res = w2.call(Who::Admin, post("/api/onboarding/verify-dns", None)).await;
    let body = json_body(res).await;
    assert_eq!(body["status"], "DOMAIN_SET");
    assert_eq!(body["report"]["ok"], false);
    assert!(body["report"]["names"][0]["message"].as_str().unwrap().contains("198.51.100.7"), "{body}");

    // During provisioning the domain cannot change.
    w2.set_state(OnboardingState::Provisioning).await;
    let res = w2
        .call(
            Who::Admin,
            post("/api/onboarding/domain", Some(json!({"domain": "other.test", "email": "ops@other.test"}))),
        )
        .await;
    assert_eq!(res.status(), 409);
}

async fn reload_with_resolver(w: &World, resolver: SocketAddr) -> AppState {
    let mut settings = (*w.state.settings).clone();
    settings.dns.resolver = Some(resolver);
    AppState::load(settings).await.unwrap()
}

fn csr(cn: &str) -> (rcgen::KeyPair, String) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(rcgen::DnType::CommonName, cn);
    let pem = params.serialize_request(&key).unwrap().pem().unwrap();
    (key, pem)
}

async fn enroll_token(w: &World, label: &str) -> String {
    let res = w
        .call(
            Who::Admin,
            TestRequest::post()
                .uri("/api/certs/agent/enroll")
                .set_json(json!({"label": label, "capabilities": ["tunnels:read"]})),
        )
        .await;
    assert_eq!(res.status(), 201);
    let body = json_body(res).await;
    let token = body["token"].as_str().unwrap().to_string();
    let install = body["install"].as_str().unwrap();
    assert!(install.ends_with(&format!("/download/install.sh | sh -s -- --token {token}")), "{body}");
    assert!(body["enroll"].as_str().unwrap().contains(&format!(" --token {token} --fingerprint ")), "{body}");
    token
}

fn subject_and_serial(cert_pem: &str) -> (String, String) {
    let (_, pem) = x509_parser::pem::parse_x509_pem(cert_pem.as_bytes()).unwrap();
    let cert = pem.parse_x509().unwrap();
    let cn = cert.subject().iter_common_name().next().unwrap().as_str().unwrap().to_string();
    (cn, crate::pki::normalize_serial(&cert.raw_serial_as_string()))
}

#[actix_web::test]
async fn enrollment_flow() {
    let w = completed_world().await;
    let enroll =
        |token: &str, csr: &str| TestRequest::post().uri("/api/enroll").set_json(json!({"token": token, "csr": csr}));

    // A malformed CSR is refused without spending the token.
    let token = enroll_token(&w, "garage").await;
    let res = w
        .call(
            Who::Nobody,
            enroll(&token, "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"),
        )
        .await;
    assert_eq!(res.status(), 400);
    assert_eq!(json_body(res).await["details"][0]["field"], "csr");

    // A CSR asking to be `admin` still gets only `agent:garage`.
    let (_key, pem) = csr("admin");
    let res = w.call(Who::Nobody, enroll(&token, &pem)).await;
    assert_eq!(res.status(), 200);
    let body = json_body(res).await;
    let (cn, serial) = subject_and_serial(body["certPem"].as_str().unwrap());
    assert_eq!(cn, "agent:garage");
    assert!(body["caPem"].as_str().unwrap().contains("BEGIN CERTIFICATE"));

    // The new certificate authenticates as the agent with the granted capability.
    let as_agent = |req: TestRequest| cert_headers(req.peer_addr(LOOPBACK.parse().unwrap()), "agent:garage", &serial);
    let app = init_service(App::new().configure(configure(w.state.clone(), Channel::Panel))).await;
    let res = call_service(&app, as_agent(TestRequest::get().uri("/api/onboarding/status")).to_request()).await;
    assert_eq!(res.status(), 200);
    let res = call_service(&app, as_agent(TestRequest::get().uri("/api/audit")).to_request()).await;
    assert_eq!(res.status(), 403, "tunnels:read does not grant system:read");

    // The token works once.
    let (_key, pem) = csr("agent:garage");
    let res = w.call(Who::Nobody, enroll(&token, &pem)).await;
    assert_eq!(res.status(), 403);

    // An expired token is refused.
    let expired = crate::token::random_token(32);
    let now = OffsetDateTime::now_utc();
    w.state
        .store
        .insert_enrollment_token(NewEnrollmentToken {
            token_hash: crate::token::sha256_hex(expired.as_bytes()),
            label: "late".into(),
            capabilities: vec![],
            created_at: now - time::Duration::hours(2),
            expires_at: now - time::Duration::hours(1),
        })
        .await
        .unwrap();
    let res = w.call(Who::Nobody, enroll(&expired, &pem)).await;
    assert_eq!(res.status(), 403);
    assert!(w.state.store.agent("late".into()).await.unwrap().is_none());

    // Bad input shapes.
    let res = w.call(Who::Nobody, TestRequest::post().uri("/api/enroll").set_json(json!({"token": token}))).await;
    assert_eq!(res.status(), 400);
    assert_eq!(json_body(res).await["details"][0]["field"], "csr");
    let res = w
        .call(
            Who::Nobody,
            TestRequest::post().uri("/api/enroll").insert_header(("content-type", "text/plain")).set_payload("x"),
        )
        .await;
    assert_eq!(res.status(), 415);

    // A token for a label that is already enrolled cannot be created.
    let res = w
        .call(
            Who::Admin,
            TestRequest::post().uri("/api/certs/agent/enroll").set_json(json!({"label": "garage", "capabilities": []})),
        )
        .await;
    assert_eq!(res.status(), 409);
}

#[actix_web::test]
async fn revoking_an_agent_locks_it_out() {
    let w = completed_world().await;
    let res = w.call(Who::AgentWithCap, TestRequest::get().uri("/api/audit")).await;
    assert_eq!(res.status(), 200);
    let res = w.call(Who::Admin, TestRequest::delete().uri("/api/certs/agent/reader")).await;
    assert_eq!(res.status(), 200);
    assert!(json_body(res).await["revokedAt"].is_string());
    let res = w.call(Who::AgentWithCap, TestRequest::get().uri("/api/audit")).await;
    assert_eq!(res.status(), 403);
    assert_eq!(json_body(res).await["error"], "Certificate has been revoked");
    let res = w.call(Who::Admin, TestRequest::delete().uri("/api/certs/agent/reader")).await;
    assert_eq!(res.status(), 404, "revoking twice");
}

#[actix_web::test]
async fn capabilities_can_be_changed() {
    let w = completed_world().await;
    let patch = |caps: Value| {
        TestRequest::patch().uri("/api/certs/agent/nocaps/capabilities").set_json(json!({ "capabilities": caps }))
    };
    let res = w.call(Who::AgentWithoutCap, TestRequest::get().uri("/api/audit")).await;
    assert_eq!(res.status(), 403);
    let res = w.call(Who::Admin, patch(json!(["system:read"]))).await;
    assert_eq!(res.status(), 200);
    let res = w.call(Who::AgentWithoutCap, TestRequest::get().uri("/api/audit")).await;
    assert_eq!(res.status(), 200);
    let res = w.call(Who::Admin, patch(json!(["system:read", "root:all"]))).await;
    assert_eq!(res.status(), 400);
    assert_eq!(json_body(res).await["details"][0]["field"], "capabilities[1]");
    let res = w
        .call(
            Who::Admin,
            TestRequest::patch().uri("/api/certs/agent/ghost/capabilities").set_json(json!({"capabilities": []})),
        )
        .await;
    assert_eq!(res.status(), 404);
}

#[actix_web::test]
async fn api_keys_lifecycle() {
    let w = completed_world().await;
    let res = w
        .call(
            Who::Admin,
            TestRequest::post()
                .uri("/api/keys")
                .set_json(json!({"name": "ci", "scopes": ["read"], "expiresInDays": 30})),
        )
        .await;
    assert_eq!(res.status(), 201);
    let created = json_body(res).await;
    let key = created["key"].as_str().unwrap().to_string();
    let id = created["record"]["id"].as_str().unwrap().to_string();
    assert!(created["record"].get("hash").is_none(), "hash never leaves the store");

    // The key works for reads, not for admin routes, and its use is recorded.
    let res = w.call(Who::Nobody, bearer(TestRequest::get().uri("/api/audit"), &key)).await;
    assert_eq!(res.status(), 200);
    let res = w.call(Who::Nobody, bearer(TestRequest::get().uri("/api/keys"), &key)).await;
    assert_eq!(res.status(), 403);
    let record = w.state.store.api_key(id.clone()).await.unwrap().unwrap();
    assert!(record.last_used_at.is_some());

    // The listing never shows secrets.
    let res = w.call(Who::Admin, TestRequest::get().uri("/api/keys")).await;
    let listing = String::from_utf8(read_body(res).await.to_vec()).unwrap();
    assert!(!listing.contains(key.rsplit('_').next().unwrap()));

    // Revocation is immediate, even for a key whose check is cached.
    let res = w.call(Who::Admin, TestRequest::delete().uri(&format!("/api/keys/{id}"))).await;
    assert_eq!(res.status(), 200);
    let res = w.call(Who::Nobody, bearer(TestRequest::get().uri("/api/audit"), &key)).await;
    assert_eq!(res.status(), 401);

    // A tampered secret with a valid id is refused.
    let tampered = format!("{}x", &key[..key.len() - 1]);
    let res = w
        .call(
            Who::Nobody,
            bearer(TestRequest::get().uri("/api/audit"), &w.key_read.replace(&w.key_read[20..24], "AAAA")),
        )
        .await;
    assert_eq!(res.status(), 401);
    let res = w.call(Who::Nobody, bearer(TestRequest::get().uri("/api/audit"), &tampered)).await;
    assert_eq!(res.status(), 401);

    for (body, field) in [
        (json!({"name": "x", "scopes": ["read"], "expiresInDays": 400}), "expiresInDays"),
        (json!({"name": "x", "scopes": ["superuser"]}), "scopes[0]"),
        (json!({"name": "", "scopes": ["read"]}), "name"),
        (json!({"name": "x", "scopes": "read"}), "scopes"),
        (json!({"name": "x", "scopes": ["read"], "extra": 1}), "extra"),
    ] {
        let res = w.call(Who::Admin, TestRequest::post().uri("/api/keys").set_json(&body)).await;
        assert_eq!(res.status(), 400, "{body}");
        let err = json_body(res).await;
        assert!(err["details"][0]["field"].as_str().unwrap().contains(field), "{body}: {err}");
    }
}

#[actix_web::test]
async fn admin_rotation_revokes_the_old_certificate() {
    let w = completed_world().await;
    let res = w.call(Who::Admin, TestRequest::get().uri("/api/certs/mtls")).await;
    let info = json_body(res).await;
    assert_eq!(info["certificate"]["serial"], w.admin_serial.as_str());
    assert!(info["daysLeft"].as_i64().unwrap() > 700);
    assert_eq!(info["downloadUrl"], "/api/certs/mtls/download");

    let res = w.call(Who::Admin, TestRequest::post().uri("/api/certs/mtls/rotate")).await;
    assert_eq!(res.status(), 200);
    let rotated = json_body(res).await;
    let new_serial = rotated["new"]["serial"].as_str().unwrap().to_string();
    assert_ne!(new_serial, w.admin_serial);
    assert!(rotated["p12Password"].as_str().unwrap().len() >= 20);

    let res = w.call(Who::Admin, TestRequest::get().uri("/api/certs/mtls")).await;
    assert_eq!(res.status(), 403, "the old admin certificate stops working");
    let app = init_service(App::new().configure(configure(w.state.clone(), Channel::Panel))).await;
    let req = cert_headers(
        TestRequest::get().uri("/api/certs/mtls").peer_addr(LOOPBACK.parse().unwrap()),
        "admin",
        &new_serial,
    );
    let res = call_service(&app, req.to_request()).await;
    assert_eq!(res.status(), 200);
}

#[actix_web::test]
async fn ingress_paths_prefix_generated_urls_only_from_the_supervisor() {
    let w = completed_world().await;
    let req = TestRequest::get().uri("/api/certs/mtls").insert_header(("X-Ingress-Path", "/api/hassio_ingress/abc"));
    let res = w.call(Who::IngressUser, req).await;
    assert_eq!(json_body(res).await["downloadUrl"], "/api/hassio_ingress/abc/api/certs/mtls/download");
    // The same header on the mTLS listener is ignored.
    let req = TestRequest::get().uri("/api/certs/mtls").insert_header(("X-Ingress-Path", "/api/hassio_ingress/abc"));
    let res = w.call(Who::Admin, req).await;
    assert_eq!(json_body(res).await["downloadUrl"], "/api/certs/mtls/download");
    // A hostile prefix is dropped.
    let req = TestRequest::get().uri("/api/certs/mtls").insert_header(("X-Ingress-Path", "//evil.example/x"));
    let res = w.call(Who::IngressUser, req).await;
    assert_eq!(json_body(res).await["downloadUrl"], "/api/certs/mtls/download");
    // Ingress users are recorded by name.
    let _ = w
        .call(
            Who::IngressUser,
            TestRequest::post().uri("/api/keys").set_json(json!({"name": "ha", "scopes": ["read"]})),
        )
        .await;
    let (entries, _) = w
        .state
        .store
        .audit_entries(crate::store::AuditQuery { action: Some("key.create".into()), limit: 5, ..Default::default() })
        .await
        .unwrap();
    assert_eq!(entries[0].actor, "ingress:alice");
}

#[actix_web::test]
async fn admin_bound_to_a_hardware_key_has_no_p12_and_the_old_certificate_stops() {
    let w = completed_world().await;
    let res = w.call(Who::Admin, TestRequest::get().uri("/api/certs/admin/auth-mode")).await;
    assert_eq!(json_body(res).await["mode"], "p12");

    // A bad CSR: a field error, nothing changed.
    let upgrade = |csr: &str| {
        TestRequest::post().uri("/api/certs/admin/upgrade-to-hardware-bound").set_json(json!({ "csr": csr }))
    };
    let res = w.call(Who::Admin, upgrade("-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n")).await;
    assert_eq!(res.status(), 400);
    assert_eq!(json_body(res).await["details"][0]["field"], "csr");
    let res = w.call(Who::Admin, upgrade(&"x".repeat(20_000))).await;
    assert_eq!(res.status(), 400);
    let res = w.call(Who::Admin, TestRequest::get().uri("/api/certs/mtls/download")).await;
    assert_eq!(res.status(), 200, "a refused CSR left the .p12 in place");

    // An admin certificate left active by an interrupted change: the binding stops it too.
    let stray = crate::store::ClientCert {
        serial: "0BADC0DE".into(),
        kind: "admin".into(),
        label: None,
        fingerprint: "F".into(),
        not_after: time::OffsetDateTime::now_utc() + time::Duration::days(30),
        revoked_at: None,
    };
    w.state.store.record_admin_cert_blocking(&stray, time::OffsetDateTime::now_utc()).unwrap();

    let res = w.call(Who::Admin, upgrade(&crate::testing::openssl_csr_p256())).await;
    assert_eq!(res.status(), 200);
    let bound = json_body(res).await;
    assert_eq!(bound["mode"], "hardware-bound");
    assert_eq!(bound["revokedSerial"], w.admin_serial.as_str());
    assert!(bound["certificate"].as_str().unwrap().starts_with("-----BEGIN CERTIFICATE-----"));
    assert!(bound["caCertificate"].as_str().unwrap().starts_with("-----BEGIN CERTIFICATE-----"));
    let new_serial = bound["admin"]["serial"].as_str().unwrap().to_string();
    assert_ne!(new_serial, w.admin_serial);

    // The certificate that asked is refused from now on; the bound one opens the panel.
    let res = w.call(Who::Admin, TestRequest::get().uri("/api/certs/mtls")).await;
    assert_eq!(res.status(), 403, "the .p12 certificate still works");
    let app = init_service(App::new().configure(configure(w.state.clone(), Channel::Panel))).await;
    let as_bound = |req: TestRequest| cert_headers(req.peer_addr(LOOPBACK.parse().unwrap()), "admin", &new_serial);
    let res = call_service(&app, as_bound(TestRequest::get().uri("/api/certs/admin/auth-mode")).to_request()).await;
    assert_eq!(res.status(), 200);
    let mode = json_body(res).await;
    assert_eq!(mode["mode"], "hardware-bound");
    assert!(mode["since"].as_str().is_some());
    assert_eq!(mode["certificate"]["serial"], new_serial.as_str());
    let res = call_service(&app, as_bound(TestRequest::get().uri("/api/certs/mtls")).to_request()).await;
    let info = json_body(res).await;
    assert_eq!(info["mode"], "hardware-bound");
    assert!(info.get("downloadUrl").is_none(), "{info}");
    // No .p12 any more, and none is made by a rotation.
    for req in [TestRequest::get().uri("/api/certs/mtls/download"), TestRequest::post().uri("/api/certs/mtls/rotate")] {
        let res = call_service(&app, as_bound(req).to_request()).await;
        assert_eq!(res.status(), 409);
        assert!(json_body(res).await["error"].as_str().unwrap().contains("hardware-bound"));
    }
    assert!(!w.state.pki.dir().join("admin.p12").exists());
    let stray = w.state.store.client_cert("0BADC0DE".into()).await.unwrap().unwrap();
    assert!(stray.revoked_at.is_some(), "another admin certificate stayed active");

    let (entries, _) = w
        .state
        .store
        .audit_entries(crate::store::AuditQuery {
            action: Some("cert.admin.hardware-bound".into()),
            limit: 5,
            ..Default::default()
        })
        .await
        .unwrap();
    let ok: Vec<_> = entries.iter().filter(|e| e.outcome == "success").collect();
    assert_eq!(ok.len(), 1, "{entries:?}");
    let details = ok[0].details.as_ref().unwrap();
    assert_eq!((details["oldSerial"].as_str(), details["from"].as_str()), (Some(w.admin_serial.as_str()), Some("p12")));
    assert_eq!(details["newSerial"], new_serial.as_str());
}

#[actix_web::test]
async fn audit_filters_and_pages() {
    let w = completed_world().await;
    for i in 0..7 {
        let body = json!({"name": format!("k{i}"), "scopes": ["read"]});
        let who = if i % 2 == 0 { Who::Admin } else { Who::KeyAdmin };
        assert_eq!(w.call(who, TestRequest::post().uri("/api/keys").set_json(body)).await.status(), 201);
    }
    let get = |q: &str| TestRequest::get().uri(&format!("/api/audit?{q}"));
    let page = json_body(w.call(Who::Admin, get("action=key.create&perPage=3&page=2")).await).await;
    assert_eq!(page["total"], 7);
    assert_eq!(page["entries"].as_array().unwrap().len(), 3);
    let by_key =
        json_body(w.call(Who::Admin, get(&format!("action=key.create&actor=key:{}", &w.key_admin[3..19]))).await).await;
    assert_eq!(by_key["total"], 3);
    let future = json_body(w.call(Who::Admin, get("since=2999-01-01T00:00:00Z")).await).await;
    assert_eq!(future["total"], 0);
    for (q, field) in
        [("since=yesterday", "since"), ("perPage=0", "perPage"), ("page=0", "page"), ("colour=red", "query")]
    {
        let res = w.call(Who::Admin, get(q)).await;
        assert_eq!(res.status(), 400, "{q}");
        assert_eq!(json_body(res).await["details"][0]["field"], field, "{q}");
    }
}

#[actix_web::test]
async fn bodies_over_the_limit_are_refused() {
    let w = world_with(|s| s.panel.json_limit = 2048).await;
    w.set_state(OnboardingState::Completed).await;
    let big = json!({"name": "x".repeat(4096), "scopes": ["read"]});
    let res = w.call(Who::Admin, TestRequest::post().uri("/api/keys").set_json(big)).await;
    assert_eq!(res.status(), 413);
    let res = w
        .call(
            Who::Admin,
            TestRequest::post()
                .uri("/api/keys")
                .insert_header(("content-type", "application/json"))
                .set_payload("{not json"),
        )
        .await;
    assert_eq!(res.status(), 400);
    assert!(json_body(res).await["error"].as_str().unwrap().starts_with("Invalid"));
}

/// The matrix has a row for every documented route and method, so a route
/// added tomorrow fails here until it has one (and with it the cross-site
/// browser cells).
#[actix_web::test]
async fn matrix_covers_every_documented_route() {
    let w = world().await;
    let doc = json_body(w.call(Who::Nobody, TestRequest::get().uri("/api/openapi.json")).await).await;
    let rows = routes();
    let segments = |p: &str| p.split('?').next().unwrap_or_default().split('/').map(str::to_string).collect::<Vec<_>>();
    let mut missing = Vec::new();
    for (path, entry) in doc["paths"].as_object().unwrap() {
        for method in entry.as_object().unwrap().keys() {
            let covered = rows.iter().any(|r| {
                let (d, m) = (segments(path), segments(r.path));
                r.method.eq_ignore_ascii_case(method)
                    && d.len() == m.len()
                    && d.iter().zip(&m).all(|(d, m)| d == m || d.starts_with('{'))
            });
            if !covered {
                missing.push(format!("{} {path}", method.to_uppercase()));
            }
        }
    }
    assert!(missing.is_empty(), "routes without a row in the authorization matrix: {missing:?}");
}

#[actix_web::test]
async fn openapi_describes_every_route() {
    let w = world().await;
    let doc = json_body(w.call(Who::Nobody, TestRequest::get().uri("/api/openapi.json")).await).await;
    let paths = doc["paths"].as_object().unwrap();
    for route in routes().iter().filter(|r| r.path != "/api/no-such-route") {
        let path = route.path.split('?').next().unwrap_or_default();
        let templated =
            path.replace("0123456789abcdef", "{id}").replace("reader", "{label}").replace("ghost", "{label}");
        // Fallback: any documented path whose `{param}` segments line up.
        let segments = |p: &str| p.split('/').map(str::to_string).collect::<Vec<_>>();
        let fits = |doc: &str| {
            let (d, r) = (segments(doc), segments(path));
            d.len() == r.len() && d.iter().zip(&r).all(|(d, r)| d == r || d.starts_with('{'))
        };
        let entry = paths
            .get(&templated)
            .or_else(|| {
                paths
                    .iter()
                    .filter(|(p, _)| fits(p))
                    .map(|(_, e)| e)
                    .find(|e| e.get(route.method.to_lowercase()).is_some())
            })
            .unwrap_or_else(|| panic!("{templated} missing from openapi"));
        assert!(entry.get(route.method.to_lowercase()).is_some(), "{} {templated}", route.method);
    }
}
