//! authd through `actix_web::test` with a small cookie jar: the login flow,
//! session lifetimes (injectable clock), the policy matrix, regulation and
//! the attack table (open redirects, forwarded-header spoofing, session
//! fixation, replayed TOTP, CSRF, forged pending cookie).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use actix_web::http::header::HeaderMap;
use actix_web::test::{TestRequest, call_service, init_service, read_body};
use actix_web::{App, web};
use time::OffsetDateTime;

use super::*;
use crate::store::{ClientCert, TunnelFields};
use crate::users::{NewUser, create_user};

const DOMAIN: &str = "example.test";
const PASSWORD: &str = "correct horse battery";
const LOOPBACK: &str = "127.0.0.1:40000";
const OUTSIDER: &str = "203.0.113.7:40000";

struct World {
    _dir: tempfile::TempDir,
    settings: Settings,
    store: Store,
    clock: Clock,
    state: web::Data<AuthdState>,
    secrets: BTreeMap<String, String>,
}

async fn tunnel(store: &Store, name: &str, access: &str, users: &[&str], groups: &[&str], enabled: bool) {
    let fields = TunnelFields {
        name: name.into(),
        agent: "home".into(),
        target: "127.0.0.1:8080".into(),
        enabled,
        access: access.into(),
        allowed_users: users.iter().map(|s| s.to_string()).collect(),
        allowed_groups: groups.iter().map(|s| s.to_string()).collect(),
        description: String::new(),
    };
    store.insert_tunnel(fields, OffsetDateTime::now_utc()).await.unwrap();
}

/// Users alice (family), bob, carol, dave (disabled); tunnels `pub`
/// (public), `vault` (authenticated), `wiki` (restricted to bob + family),
/// `off` (authenticated, disabled).
async fn world() -> World {
    world_with(|_| {}).await
}

/// [`world`] with changed settings. The per-user slow-down is capped at
/// 20 ms here so attack loops stay quick; its curve is a unit test.
async fn world_with(change: impl FnOnce(&mut Settings)) -> World {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = Settings { data_dir: dir.path().to_path_buf(), ..Default::default() };
    settings.authd.slowdown_max_ms = 20;
    change(&mut settings);
    let store = Store::open(&dir.path().join("portico.db")).unwrap();
    store.put_settings(vec![(crate::onboarding::keys::DOMAIN, DOMAIN.into())]).await.unwrap();
    let now = OffsetDateTime::now_utc();
    let cert = ClientCert {
        serial: "0A".into(),
        kind: "agent".into(),
        label: Some("home".into()),
        fingerprint: "F".into(),
        not_after: now,
        revoked_at: None,
    };
    store.create_agent(vec![], cert, now).await.unwrap();
    tunnel(&store, "pub", "public", &[], &[], true).await;
    tunnel(&store, "vault", "authenticated", &[], &[], true).await;
    tunnel(&store, "wiki", "restricted", &["bob"], &["family"], true).await;
    tunnel(&store, "off", "authenticated", &[], &[], false).await;
    store.insert_group("family".into(), String::new(), now).await.unwrap();
    let mut secrets = BTreeMap::new();
    for (name, groups) in [("alice", vec!["family"]), ("bob", vec![]), ("carol", vec![]), ("dave", vec![])] {
        let new = NewUser {
            username: name.into(),
            display_name: format!("{name} example"),
            email: format!("{name}@example.test"),
            password: PASSWORD.into(),
            groups: groups.into_iter().map(String::from).collect(),
            totp: true,
        };
        let created = create_user(&store, new).await.unwrap();
        secrets.insert(name.to_string(), created.totp.unwrap().totp_secret);
    }
    let update = crate::store::UserUpdate { disabled: Some(true), ..Default::default() };
    store.update_user("dave".into(), update, now).await.unwrap();
    let clock = Clock::default();
    let state = web::Data::new(AuthdState::new(settings.clone(), store.clone(), clock.clone()).await.unwrap());
    World { _dir: dir, settings, store, clock, state, secrets }
}

/// Cookies by name, as a browser on `auth.example.test` would keep them.
#[derive(Default, Clone)]
struct Jar(BTreeMap<String, String>);

impl Jar {
    fn absorb(&mut self, headers: &HeaderMap) {
        for v in headers.get_all("set-cookie") {
            let v = v.to_str().unwrap();
            let (pair, attrs) = v.split_once(';').unwrap_or((v, ""));
            let (k, val) = pair.split_once('=').unwrap();
            if attrs.contains("Max-Age=0") {
                self.0.remove(k);
            } else {
                self.0.insert(k.to_string(), val.to_string());
            }
        }
    }
    fn header(&self) -> String {
        self.0.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ")
    }
    fn session(&self) -> Option<&String> {
        self.0.get(SESSION_COOKIE)
    }
}

fn csrf_from(body: &str) -> String {
    field(body, "csrf")
}

/// The value of the first form field called `name`, as the page has it.
fn field(body: &str, name: &str) -> String {
    let attr = format!("name=\"{name}\" value=\"");
    let start = body.find(&attr).unwrap_or_else(|| panic!("no {name} field in {body}")) + attr.len();
    body[start..].split('"').next().unwrap().to_string()
}

struct Client {
    state: web::Data<AuthdState>,
    jar: Jar,
    peer: SocketAddr,
    real_ip: Option<String>,
}

type Resp = (StatusCode, String, HeaderMap);

impl Client {
    fn new(state: web::Data<AuthdState>) -> Client {
        Client { state, jar: Jar::default(), peer: LOOPBACK.parse().unwrap(), real_ip: None }
    }

    async fn send(&mut self, req: TestRequest) -> Resp {
        let app = init_service(App::new().configure(configure(self.state.clone()))).await;
        let mut req = req.peer_addr(self.peer);
        if !self.jar.0.is_empty() {
            req = req.insert_header(("cookie", self.jar.header()));
        }
        if let Some(ip) = &self.real_ip {
            req = req.insert_header(("x-real-ip", ip.clone()));
        }
        let res = call_service(&app, req.to_request()).await;
        self.jar.absorb(res.headers());
        let (status, headers) = (res.status(), res.headers().clone());
        let body = String::from_utf8(read_body(res).await.to_vec()).unwrap();
        (status, body, headers)
    }

    async fn csrf(&mut self) -> String {
        let (status, body, _) = self.send(TestRequest::get().uri("/")).await;
        assert_eq!(status, 200);
        csrf_from(&body)
    }

    async fn password(&mut self, user: &str, password: &str, rd: &str, remember: bool) -> Resp {
        let csrf = self.csrf().await;
        let mut form = vec![("username", user), ("password", password), ("rd", rd), ("csrf", csrf.as_str())];
        if remember {
            form.push(("remember", "1"));
        }
        self.send(TestRequest::post().uri("/login").set_form(form)).await
    }

    async fn totp(&mut self, code: &str, rd: &str) -> Resp {
        let csrf = self.csrf().await;
        self.send(TestRequest::post().uri("/totp").set_form([("code", code), ("rd", rd), ("csrf", csrf.as_str())]))
            .await
    }

    async fn authz(&mut self, resource: &str) -> Resp {
        let req = TestRequest::get()
            .uri("/api/authz/nginx")
            .insert_header(("x-portico-resource", resource))
            .insert_header(("x-forwarded-host", format!("{resource}.{DOMAIN}")));
        self.send(req).await
    }
}

impl World {
    async fn client(&self) -> Client {
        Client::new(self.state.clone())
    }

    fn code(&self, user: &str) -> String {
        crate::totp::code_now(&self.secrets[user], self.clock.now().unix_timestamp()).unwrap()
    }

    /// The next step's code: moves the clock a step so a fresh code exists.
    fn fresh_code(&self, user: &str) -> String {
        self.clock.advance(crate::totp::STEP);
        self.code(user)
    }
}

fn location(res: &HeaderMap) -> String {
    res.get("location").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default()
}

/// A full sign-in; returns the session cookie value.
async fn sign_in(w: &World, c: &mut Client, user: &str, remember: bool) -> String {
    let (status, body, _) = c.password(user, PASSWORD, "", remember).await;
    assert_eq!(status, 303, "{body}");
    let (status, body, _) = c.totp(&w.fresh_code(user), "").await;
    assert_eq!(status, 303, "{body}");
    c.jar.session().cloned().expect("session cookie")
}

#[actix_web::test]
async fn full_login_flow() {
    let w = world().await;
    let mut c = w.client().await;
    let rd = "https://vault.example.test/notes?x=1&y=2";

    assert_eq!(c.authz("vault").await.0, 401, "no cookie");

    let (status, body, _) = c.password("alice", "wrong password!!", rd, false).await;
    assert_eq!(status, 401);
    assert!(body.contains("Wrong username or password"));
    assert!(!c.jar.0.contains_key("__Host-portico_pending"));

    let (status, _, res) = c.password("alice", PASSWORD, rd, false).await;
    assert_eq!(status, 303);
    assert!(location(&res).starts_with("/totp?rd=https%3A%2F%2Fvault.example.test"));
    let (status, body, _) = c.totp("000000", rd).await;
    assert_eq!(status, 401, "bad TOTP");
    assert!(body.contains("not valid"));
    assert!(c.jar.session().is_none());

    let code = w.fresh_code("alice");
    let (status, _, res) = c.totp(&code, rd).await;
    assert_eq!(status, 303);
    assert_eq!(location(&res), rd, "back to the app");
    let set = res.get_all("set-cookie").map(|v| v.to_str().unwrap().to_string()).collect::<Vec<_>>();
    let session = set.iter().find(|v| v.starts_with(SESSION_COOKIE)).unwrap();
    for attr in ["Domain=.example.test", "Secure", "HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(session.contains(attr), "{session} lacks {attr}");
    }
    assert!(!session.contains("Max-Age"), "not remembered: a browser-session cookie");
    assert_eq!(c.jar.session().unwrap().len(), 43, "256-bit id");

    let (status, _, res) = c.authz("vault").await;
    assert_eq!(status, 200);
    let h = |n: &str| res.get(n).unwrap().to_str().unwrap().to_string();
    assert_eq!(h("remote-user"), "alice");
    assert_eq!(h("remote-groups"), "family");
    assert_eq!(h("remote-name"), "alice example");
    assert_eq!(h("remote-email"), "alice@example.test");

    // The same code again, in a second browser: replay refused.
    let mut other = w.client().await;
    assert_eq!(other.password("alice", PASSWORD, rd, false).await.0, 303);
    let (status, _, _) = other.totp(&code, rd).await;
    assert_eq!(status, 401, "replayed TOTP");
    assert!(other.jar.session().is_none());

    // The session id is stored hashed, never as the cookie value.
    let cookie = c.jar.session().unwrap().clone();
    assert!(w.store.session(cookie.clone()).await.unwrap().is_none());
    assert!(w.store.session(crate::token::sha256_hex(cookie.as_bytes())).await.unwrap().is_some());

    // Logout ends the session server-side and clears the cookie.
    let csrf = c.csrf().await;
    let (status, _, _) = c.send(TestRequest::post().uri("/logout").set_form([("csrf", csrf)])).await;
    assert_eq!(status, 303);
    assert!(c.jar.session().is_none());
    c.jar.0.insert(SESSION_COOKIE.into(), cookie);
    assert_eq!(c.authz("vault").await.0, 401, "old cookie is dead after logout");
}

#[actix_web::test]
async fn expiry_inactivity_and_remember_me() {
    let w = world().await;
    let mut c = w.client().await;
    sign_in(&w, &mut c, "bob", false).await;
    // Used every 119 minutes: stays alive…
    for _ in 0..6 {
        w.clock.advance(119 * 60);
        assert_eq!(c.authz("vault").await.0, 200);
    }
    // …until the 12-hour absolute limit (idle only 10 minutes here).
    w.clock.advance(10 * 60);
    assert_eq!(c.authz("vault").await.0, 401, "absolute expiry");

    let mut idle = w.client().await;
    sign_in(&w, &mut idle, "bob", false).await;
    w.clock.advance(2 * 3600);
    assert_eq!(idle.authz("vault").await.0, 401, "2 h inactivity");

    let mut remembered = w.client().await;
    let (status, _, _) = remembered.password("bob", PASSWORD, "", true).await;
    assert_eq!(status, 303);
    let (_, _, res) = remembered.totp(&w.fresh_code("bob"), "").await;
    let set = res.get("set-cookie").unwrap().to_str().unwrap().to_string();
    assert!(set.contains(&format!("Max-Age={}", 30 * 86400)), "{set}");
    w.clock.advance(5 * 3600);
    assert_eq!(remembered.authz("vault").await.0, 200, "remember me ignores inactivity");
    w.clock.advance(30 * 86400);
    assert_eq!(remembered.authz("vault").await.0, 401, "remember me ends after 30 days");
}

#[actix_web::test]
async fn sessions_survive_a_restart() {
    let w = world().await;
    let mut c = w.client().await;
    let cookie = sign_in(&w, &mut c, "alice", false).await;
    let store = Store::open(&w.settings.db_path()).unwrap();
    let restarted = web::Data::new(AuthdState::new(w.settings.clone(), store, w.clock.clone()).await.unwrap());
    let mut again = Client::new(restarted);
    again.jar.0.insert(SESSION_COOKIE.into(), cookie);
    assert_eq!(again.authz("vault").await.0, 200);
}

#[actix_web::test]
async fn policy_matrix() {
    let w = world().await;
    // dave is disabled: sign him in before disabling is not possible, so
    // enable, sign in, disable.
    let enable = crate::store::UserUpdate { disabled: Some(false), ..Default::default() };
    w.store.update_user("dave".into(), enable, OffsetDateTime::now_utc()).await.unwrap();
    let mut clients = BTreeMap::new();
    for user in ["alice", "bob", "carol", "dave"] {
        let mut c = w.client().await;
        sign_in(&w, &mut c, user, false).await;
        clients.insert(user, c);
    }
    let disable = crate::store::UserUpdate { disabled: Some(true), ..Default::default() };
    w.store.update_user("dave".into(), disable, OffsetDateTime::now_utc()).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(3);
    while clients.get_mut("dave").unwrap().authz("vault").await.0 != 401 {
        assert!(Instant::now() < deadline, "disabling takes effect within the cache lifetime");
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }
    //                 resource  alice bob  carol dave(disabled)
    let table: &[(&str, [u16; 4])] = &[
        ("pub", [200, 200, 200, 401]),
        ("vault", [200, 200, 200, 401]),
        ("wiki", [200, 200, 403, 401]),  // alice via group family, bob by name
        ("off", [403, 403, 403, 401]),   // disabled tunnel
        ("ghost", [403, 403, 403, 401]), // unknown resource
    ];
    let mut failures = Vec::new();
    for (resource, want) in table {
        for (i, user) in ["alice", "bob", "carol", "dave"].iter().enumerate() {
            let (got, body, _) = clients.get_mut(user).unwrap().authz(resource).await;
            if got != want[i] {
                failures.push(format!("{user} → {resource}: want {}, got {got}", want[i]));
            }
            // nginx shows `/denied` for a 403; the decision itself carries no page.
            assert!(got != 403 || body.is_empty(), "{body}");
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");

    // A removed grant takes effect within the cache lifetime.
    let wiki = w.store.tunnels().await.unwrap().into_iter().find(|t| t.name == "wiki").unwrap();
    let mut fields = TunnelFields::from(&wiki);
    fields.allowed_users.clear();
    w.store.update_tunnel(wiki.id, fields, OffsetDateTime::now_utc()).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(3);
    while clients.get_mut("bob").unwrap().authz("wiki").await.0 != 403 {
        assert!(Instant::now() < deadline, "grant removal takes effect within the cache lifetime");
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }
}

#[actix_web::test]
async fn revoked_session_ends_within_a_second() {
    let w = world().await;
    let mut c = w.client().await;
    sign_in(&w, &mut c, "alice", false).await;
    assert_eq!(c.authz("vault").await.0, 200);
    let sessions = w.store.user_sessions("alice".into()).await.unwrap();
    w.store.revoke_user_session("alice".into(), sessions[0].id.clone()).await.unwrap();
    let revoked = Instant::now();
    while c.authz("vault").await.0 != 401 {
        assert!(revoked.elapsed() < Duration::from_millis(1500), "revocation must apply within ~1 s");
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
}

#[actix_web::test]
async fn regulation_bans_pairs_and_clients() {
    let w = world().await;
    let mut c = w.client().await;
    c.real_ip = Some("198.51.100.1".into());
    for _ in 0..5 {
        assert_eq!(c.password("alice", "wrong password!!", "", false).await.0, 401);
    }
    // Banned pair: right and wrong passwords get the same answer.
    let (s_right, b_right, h_right) = c.password("alice", PASSWORD, "", false).await;
    let (s_wrong, b_wrong, _) = c.password("alice", "wrong password!!", "", false).await;
    assert_eq!((s_right, s_wrong), (StatusCode::TOO_MANY_REQUESTS, StatusCode::TOO_MANY_REQUESTS));
    assert_eq!(b_right, b_wrong, "a banned attempt does not reveal whether the password was right");
    assert!(b_right.contains("Too many failed attempts"));
    let retry: u64 = h_right.get("retry-after").expect("Retry-After").to_str().unwrap().parse().unwrap();
    assert!((1..=300).contains(&retry), "{retry}");
    assert!(!c.jar.0.contains_key("__Host-portico_pending"));
    // The same address may still sign in as someone else.
    sign_in(&w, &mut c, "bob", false).await;
    // The ban expires after 5 minutes.
    w.clock.advance(301);
    sign_in(&w, &mut c, "alice", false).await;

    // Per client across usernames: twice max_failures.
    let mut sprayer = w.client().await;
    sprayer.real_ip = Some("198.51.100.9".into());
    for i in 0..10 {
        assert_eq!(sprayer.password(&format!("u{i}"), "wrong password!!", "", false).await.0, 401);
    }
    assert_eq!(sprayer.password("carol", PASSWORD, "", false).await.0, 429, "client banned for every user");
    let mut honest = w.client().await;
    honest.real_ip = Some("198.51.100.10".into());
    sign_in(&w, &mut honest, "carol", false).await;

    // Wrong TOTP codes count as failures too: the pair, and the user's TOTP
    // step from every client (only a password holder gets there).
    let mut guesser = w.client().await;
    guesser.real_ip = Some("198.51.100.20".into());
    assert_eq!(guesser.password("bob", PASSWORD, "", false).await.0, 303);
    for _ in 0..5 {
        assert_eq!(guesser.totp("000000", "").await.0, 401);
    }
    let (status, _, headers) = guesser.totp(&w.fresh_code("bob"), "").await;
    assert_eq!(status, 429);
    assert!(headers.contains_key("retry-after"));
    let mut second = w.client().await;
    second.real_ip = Some("198.51.100.21".into());
    assert_eq!(second.password("bob", PASSWORD, "", false).await.0, 303, "the password step stays open");
    assert_eq!(second.totp(&w.fresh_code("bob"), "").await.0, 429, "the TOTP step is locked for bob");

    // Every failure is audited, and every ban once; refused attempts are counted, not audited.
    let q = crate::store::AuditQuery { action: Some("authd.login".into()), limit: 1000, ..Default::default() };
    let (entries, _) = w.store.audit_entries(q).await.unwrap();
    let failures = entries.iter().filter(|e| e.outcome == "failure").count();
    let banned = entries.iter().filter(|e| e.details.as_ref().is_some_and(|d| d["reason"] == "banned")).count();
    assert_eq!(failures, 5 + 10 + 5);
    assert_eq!(banned, 3, "alice's pair, the sprayer, bob's TOTP step");
}

/// The attack table: each row is an attack and the outcome we require.
#[actix_web::test]
async fn attack_table() {
    let w = world().await;

    // 1. Open redirects after a real login: refused, sent to the portal.
    for bad in [
        "//evil.tld",
        "https://evil.tld",
        "https://example.test.evil.tld",
        "https:\\\\evil.tld",
        "javascript:alert(1)",
        "https%3A%2F%2Fevil.tld",
    ] {
        let mut c = w.client().await;
        assert_eq!(c.password("bob", PASSWORD, bad, false).await.0, 303);
        let (status, _, res) = c.totp(&w.fresh_code("bob"), bad).await;
        assert_eq!(status, 303);
        assert_eq!(location(&res), "/", "{bad} must not be followed");
    }

    // 2. Forwarded headers from a non-loopback peer: never honoured.
    let mut c = w.client().await;
    let cookie = sign_in(&w, &mut c, "alice", false).await;
    c.peer = OUTSIDER.parse().unwrap();
    let (status, _, res) = c.authz("vault").await;
    assert_eq!(status, 403, "authz from an untrusted peer");
    assert!(res.get("remote-user").is_none());
    // A spoofed X-Real-IP from an outsider does not dodge an IP ban.
    let mut spoofer = w.client().await;
    spoofer.peer = OUTSIDER.parse().unwrap();
    for i in 0..10 {
        spoofer.real_ip = Some(format!("192.0.2.{i}"));
        assert_eq!(spoofer.password(&format!("nobody{i}"), "wrong password!!", "", false).await.0, 401);
    }
    spoofer.real_ip = Some("192.0.2.99".into());
    assert_eq!(spoofer.password("carol", PASSWORD, "", false).await.0, 429, "ban keyed on the real peer");

    // 3. Session fixation: a planted cookie is never upgraded.
    let mut victim = w.client().await;
    let planted = "attacker-chosen-session-id-000000000000000";
    victim.jar.0.insert(SESSION_COOKIE.into(), planted.into());
    let issued = sign_in(&w, &mut victim, "carol", false).await;
    assert_ne!(issued, planted);
    let mut attacker = w.client().await;
    attacker.jar.0.insert(SESSION_COOKIE.into(), planted.into());
    assert_eq!(attacker.authz("vault").await.0, 401);
    // Logging in again while holding a valid session rotates it.
    let second = sign_in(&w, &mut victim, "carol", false).await;
    assert_ne!(second, issued);
    let mut old = w.client().await;
    old.jar.0.insert(SESSION_COOKIE.into(), issued);
    assert_eq!(old.authz("vault").await.0, 401, "the previous id is ended at login");

    // 4. Replayed TOTP (also in full_login_flow): a used code never works twice.
    let code = w.fresh_code("bob");
    let mut a = w.client().await;
    a.password("bob", PASSWORD, "", false).await;
    assert_eq!(a.totp(&code, "").await.0, 303);
    let mut b = w.client().await;
    b.password("bob", PASSWORD, "", false).await;
    assert_eq!(b.totp(&code, "").await.0, 401);

    // 5. CSRF: a form post without the token (or with another's) is refused.
    let mut csrf = w.client().await;
    let form = [("username", "bob"), ("password", PASSWORD), ("rd", ""), ("csrf", "")];
    assert_eq!(csrf.send(TestRequest::post().uri("/login").set_form(form)).await.0, 403);
    let foreign = w.client().await.csrf().await;
    let form = [("username", "bob"), ("password", PASSWORD), ("rd", ""), ("csrf", foreign.as_str())];
    let mut fresh = w.client().await;
    assert_eq!(fresh.send(TestRequest::post().uri("/login").set_form(form)).await.0, 403);

    // 6. A forged pending-login cookie (skipping the password) is ignored.
    let mut forger = w.client().await;
    let token = forger.csrf().await;
    forger.jar.0.insert("__Host-portico_pending".into(), format!("bob.0.{}.{}", i64::MAX, "00".repeat(32)));
    let form = [("code", w.fresh_code("bob")), ("rd", String::new()), ("csrf", token)];
    let (status, _, res) = forger.send(TestRequest::post().uri("/totp").set_form(form)).await;
    assert_eq!((status.as_u16(), location(&res)), (303, "/".to_string()));
    assert!(forger.jar.session().is_none());
    let _ = cookie;
}

#[actix_web::test]
async fn invitation_page_enrolls_and_the_new_user_can_sign_in() {
    let w = world().await;
    let inv =
        crate::users::create_invitation(&w.store, "admin", "erin".into(), String::new(), vec![], None).await.unwrap();
    assert_eq!(inv.url.as_deref(), Some(format!("https://auth.example.test/invite/{}", inv.token).as_str()));
    let path = format!("/invite/{}", inv.token);
    let mut c = w.client().await;
    let (status, body, _) = c.send(TestRequest::get().uri(&path)).await;
    assert_eq!(status, 200);
    assert!(body.contains("<svg") && body.contains(&inv.invitation.totp_secret));
    let csrf = csrf_from(&body);
    let secret = inv.invitation.totp_secret.clone();
    let post = |password: &str, code: &str| {
        TestRequest::post().uri(&path).set_form([("password", password), ("code", code), ("csrf", csrf.as_str())])
    };
    let code = crate::totp::code_now(&secret, w.clock.now().unix_timestamp()).unwrap();
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let (status, body, _) = c.send(post("short", &code)).await;
    assert_eq!(status, 400, "weak password");
    assert!(body.contains("at least 12"));
    let (status, body, _) = c.send(post(PASSWORD, wrong)).await;
    assert_eq!(status, 400, "wrong TOTP");
    assert!(body.contains("code is not valid"));
    let (status, body, _) = c.send(post(PASSWORD, &code)).await;
    assert_eq!(status, 200);
    assert!(body.contains("Account created") && body.contains("href=\"/\""), "{body}");
    let (status, _, _) = c.send(post(PASSWORD, &code)).await;
    assert_eq!(status, 404, "single use");
    let (status, _, _) = c.send(TestRequest::get().uri("/invite/not-a-token")).await;
    assert_eq!(status, 404);
    // The first login takes the very code the signup used (same time step),
    // once: a second login with it is a replay.
    let mut fresh = w.client().await;
    assert_eq!(fresh.password("erin", PASSWORD, "", false).await.0, 303);
    let (status, body, _) = fresh.totp(&code, "").await;
    assert_eq!(status, 303, "the signup code works at the first login: {body}");
    assert_eq!(fresh.authz("vault").await.0, 200);
    let mut again = w.client().await;
    assert_eq!(again.password("erin", PASSWORD, "", false).await.0, 303);
    let (status, body, _) = again.totp(&code, "").await;
    assert_eq!(status, 401, "a code used for a login is spent");
    assert!(body.contains("not valid or was already used"), "{body}");
    let mut secrets = w.secrets.clone();
    secrets.insert("erin".into(), secret);
    let w = World { secrets, ..w };
    sign_in(&w, &mut again, "erin", false).await;
}

/// An invitation link for one app (`?rd=`) ends at "account created" with
/// a way back to that app; an `rd` off the domain is dropped on the way.
#[actix_web::test]
async fn account_created_leads_back_to_the_app_the_invitation_is_for() {
    let w = world().await;
    for (rd, back) in [
        ("https://vault.example.test/notes?x=1", Some("https://vault.example.test/notes?x=1")),
        ("https%3A%2F%2Fvault.example.test%2F", Some("https://vault.example.test/")),
        ("https://evil.tld/", None),
    ] {
        let inv = crate::users::create_invitation(&w.store, "admin", "fay".into(), String::new(), vec![], None)
            .await
            .unwrap();
        let path = format!("/invite/{}", inv.token);
        let mut c = w.client().await;
        let (status, body, _) = c.send(TestRequest::get().uri(&format!("{path}?rd={rd}"))).await;
        assert_eq!(status, 200);
        let kept = field(&body, "rd");
        assert_eq!(kept, back.unwrap_or(""), "{rd}");
        let code = crate::totp::code_now(&inv.invitation.totp_secret, w.clock.now().unix_timestamp()).unwrap();
        let csrf = csrf_from(&body);
        let form = [("password", PASSWORD), ("code", code.as_str()), ("rd", rd), ("csrf", csrf.as_str())];
        let (status, body, _) = c.send(TestRequest::post().uri(&path).set_form(form)).await;
        assert_eq!(status, 200, "{body}");
        match back {
            Some(url) => {
                assert!(body.contains(&format!("href=\"{url}\"")), "{body}");
                assert!(body.contains("Continue to vault.example.test"), "{body}");
            }
            None => assert!(body.contains("href=\"/\"") && !body.contains("evil"), "{body}"),
        }
        w.store.delete_user("fay".into()).await.unwrap();
    }
}

/// Every portal page is a styled page of the operator's domain: the shared
/// stylesheet (served by authd itself), a same-origin-only CSP, no referrer.
#[actix_web::test]
async fn portal_pages_carry_the_domain_the_stylesheets_and_a_strict_csp() {
    let w = world().await;
    let mut c = w.client().await;
    let (status, body, headers) = c.send(TestRequest::get().uri("/")).await;
    assert_eq!(status, 200);
    assert!(body.contains("<span id=\"site\">example.test</span>"), "{body}");
    let csp = headers.get("content-security-policy").unwrap().to_str().unwrap();
    assert!(csp.contains("default-src 'none'") && csp.contains("style-src 'self';"), "{csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(headers.get("referrer-policy").unwrap(), "no-referrer");
    for name in ["app.css", "portal.css", "logo.svg"] {
        let url = crate::assets::url(name);
        assert!(body.contains(url), "{name} linked");
        let (status, served, headers) = c.send(TestRequest::get().uri(url)).await;
        assert_eq!(status, 200, "{url}");
        assert!(!served.is_empty() && headers.get("cache-control").unwrap().to_str().unwrap().contains("immutable"));
    }
    let (status, _, _) = c.send(TestRequest::get().uri(crate::assets::url("app.js"))).await;
    assert_eq!(status, 404, "the portal serves no script");
    assert!(!body.contains("<script") && !body.contains("style="), "no script and no inline style");
    for field in ["autocomplete=\"username\"", "autocomplete=\"current-password\""] {
        assert!(body.contains(field), "{field}");
    }
    // The "not shared" page is shown on the app's name: its stylesheet and
    // "sign in as someone else" point at the portal, back to that app.
    sign_in(&w, &mut c, "carol", false).await;
    let req = TestRequest::get().uri("/denied").insert_header(("x-original-url", "https://wiki.example.test/page"));
    let (status, body, headers) = c.send(req).await;
    assert_eq!(status, 403);
    let css = format!("href=\"https://auth.example.test{}\"", crate::assets::url("portal.css"));
    assert!(body.contains(&css), "{body}");
    assert!(
        body.contains("href=\"https://auth.example.test/logout?rd=https%3A%2F%2Fwiki.example.test%2Fpage\""),
        "{body}"
    );
    let csp = headers.get("content-security-policy").unwrap().to_str().unwrap();
    assert!(csp.contains("style-src 'self' https://auth.example.test;"), "{csp}");
}

#[actix_web::test]
async fn denied_page_names_the_signed_in_user() {
    let w = world().await;
    let mut c = w.client().await;
    let (status, body, _) = c.send(TestRequest::get().uri("/denied")).await;
    assert_eq!((status.as_u16(), body.contains("not shared with you")), (403, true));
    sign_in(&w, &mut c, "carol", false).await;
    assert_eq!(c.authz("wiki").await.0, 403);
    let (status, body, _) = c.send(TestRequest::get().uri("/denied")).await;
    assert_eq!(status, 403);
    assert!(body.contains("Signed in as <strong id=\"who\">carol</strong>"), "{body}");
    assert!(body.contains("This app is not shared with you"), "{body}");
}

#[actix_web::test]
async fn dotted_usernames_sign_in_and_sign_out_from_the_logout_page() {
    let w = world().await;
    let new = NewUser { username: "bob.smith".into(), password: PASSWORD.into(), totp: true, ..Default::default() };
    let secret = create_user(&w.store, new).await.unwrap().totp.unwrap().totp_secret;
    let mut secrets = w.secrets.clone();
    secrets.insert("bob.smith".into(), secret);
    let w = World { secrets, ..w };
    let mut c = w.client().await;
    sign_in(&w, &mut c, "bob.smith", false).await;
    let (_, _, res) = c.authz("vault").await;
    assert_eq!(res.get("remote-user").unwrap(), "bob.smith");
    let (status, body, _) = c.send(TestRequest::get().uri("/logout")).await;
    assert_eq!(status, 200);
    assert!(c.jar.session().is_some(), "GET never signs out (no CSRF on GET)");
    let csrf = csrf_from(&body);
    c.send(TestRequest::post().uri("/logout").set_form([("csrf", csrf)])).await;
    assert_eq!(c.authz("vault").await.0, 401);
}

/// A scripted set of visitor requests: `/metrics` shows exactly those numbers
/// once authd published its counters to the store.
#[actix_web::test]
async fn metrics_count_decisions_logins_and_bans() {
    let w = world().await;
    let mut anon = w.client().await;
    for _ in 0..3 {
        assert_eq!(anon.authz("vault").await.0, 401); // login
    }
    let mut c = w.client().await;
    sign_in(&w, &mut c, "carol", false).await;
    assert_eq!(c.authz("vault").await.0, 200); // allow
    assert_eq!(c.authz("vault").await.0, 200); // allow
    assert_eq!(c.authz("wiki").await.0, 403); // deny: not shared with carol
    let mut attacker = w.client().await;
    attacker.real_ip = Some("198.51.100.66".into());
    for _ in 0..5 {
        assert_eq!(attacker.password("bob", "wrong password!!", "", false).await.0, 401);
    }

    super::counters::publish(&w.state).await.unwrap();
    let text = crate::metrics::render(
        &w.store,
        &crate::supervisor::Supervisor::None,
        &w.settings.data_dir,
        &Default::default(),
    )
    .await
    .unwrap();
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).unwrap();
    let value = |metric: &str, label: Option<(&str, &str)>| {
        let s = scrape
            .samples
            .iter()
            .find(|s| s.metric == metric && label.is_none_or(|(k, v)| s.labels.get(k) == Some(v)))
            .unwrap_or_else(|| panic!("no {metric} {label:?} in\n{text}"));
        match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => panic!("{metric}: unexpected type"),
        }
    };
    assert_eq!(value("portico_authd_decisions_total", Some(("decision", "login"))), 3.0);
    assert_eq!(value("portico_authd_decisions_total", Some(("decision", "allow"))), 2.0);
    assert_eq!(value("portico_authd_decisions_total", Some(("decision", "deny"))), 1.0);
    // Five failures ban the (user, client) pair; the client is not banned for
    // other users yet, and bob is not locked out.
    assert_eq!(value("portico_authd_bans_active", None), 1.0);
    assert_eq!(value("portico_authd_password_checks_total", None), 1.0 + 5.0);
    assert_eq!(value("portico_authd_login_failures_total", Some(("step", "password"))), 5.0);
    assert_eq!(value("portico_authd_login_failures_total", Some(("step", "totp"))), 0.0);
    let logins = |outcome: &str| value("portico_events_total", Some(("outcome", outcome)));
    assert_eq!(logins("failure"), 5.0);
    assert_eq!(logins("success"), 1.0);
}

/// One sample of authd's `/metrics` after publishing its counters.
async fn metric(w: &World, metric: &str, labels: &[(&str, &str)]) -> f64 {
    super::counters::publish(&w.state).await.unwrap();
    let text = crate::metrics::render(
        &w.store,
        &crate::supervisor::Supervisor::None,
        &w.settings.data_dir,
        &Default::default(),
    )
    .await
    .unwrap();
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).unwrap();
    let s = scrape
        .samples
        .iter()
        .find(|s| s.metric == metric && labels.iter().all(|(k, v)| s.labels.get(k) == Some(v)))
        .unwrap_or_else(|| panic!("no {metric} {labels:?} in\n{text}"));
    match s.value {
        prometheus_parse::Value::Counter(v)
        | prometheus_parse::Value::Gauge(v)
        | prometheus_parse::Value::Untyped(v) => v,
        _ => panic!("{metric}: unexpected type"),
    }
}

/// A banned (user, client) pair is answered before bcrypt: 100 more attempts
/// run no password check at all (counted on `/metrics`).
#[actix_web::test]
async fn a_banned_pair_is_refused_without_a_password_check() {
    let w = world().await;
    let mut c = w.client().await;
    c.real_ip = Some("198.51.100.30".into());
    for _ in 0..5 {
        assert_eq!(c.password("alice", "wrong password!!", "", false).await.0, 401);
    }
    assert_eq!(metric(&w, "portico_authd_password_checks_total", &[]).await, 5.0);
    for i in 0..100 {
        let password = if i % 2 == 0 { PASSWORD } else { "wrong password!!" };
        assert_eq!(c.password("alice", password, "", false).await.0, 429);
    }
    assert_eq!(metric(&w, "portico_authd_password_checks_total", &[]).await, 5.0, "no bcrypt for a banned pair");
    let refused = [("reason", "banned"), ("step", "password")];
    assert_eq!(metric(&w, "portico_authd_login_refused_total", &refused).await, 100.0);
    // Refused attempts add no audit rows (five failures and one ban).
    let q = crate::store::AuditQuery { action: Some("authd.login".into()), limit: 1000, ..Default::default() };
    assert_eq!(w.store.audit_entries(q).await.unwrap().1, 6);
}

/// With every password check busy, an attempt waits `password_wait_ms` and
/// gets 429 with `Retry-After`, without being counted as a failure.
#[actix_web::test]
async fn attempts_beyond_the_password_checks_get_429() {
    let w = world_with(|s| s.authd.password_wait_ms = 50).await;
    let mut c = w.client().await;
    let held = w.state.gate.hold_all().await;
    let (status, body, headers) = c.password("alice", PASSWORD, "", false).await;
    assert_eq!(status, 429);
    assert!(body.contains("Too many sign-ins are being checked right now"), "{body}");
    assert_eq!(headers.get("retry-after").unwrap(), "2");
    assert_eq!(metric(&w, "portico_authd_password_checks_total", &[]).await, 0.0);
    assert_eq!(metric(&w, "portico_authd_login_refused_total", &[("reason", "busy")]).await, 1.0);
    drop(held);
    sign_in(&w, &mut c, "alice", false).await;
    assert_eq!(metric(&w, "portico_authd_login_failures_total", &[("step", "password")]).await, 0.0);
}

/// While every check is busy, a client that failed recently is turned away
/// at once (it never queues ahead of a clean visitor); a clean one waits.
#[actix_web::test]
async fn clients_that_failed_do_not_queue_for_a_password_check() {
    let w = world_with(|s| s.authd.password_wait_ms = 60_000).await;
    let mut failed = w.client().await;
    failed.real_ip = Some("198.51.100.40".into());
    assert_eq!(failed.password("alice", "wrong password!!", "", false).await.0, 401);
    let held = w.state.gate.hold_all().await;
    let guard = Duration::from_secs(20); // only against a hang: the answer is immediate
    let (status, _, headers) =
        actix_web::rt::time::timeout(guard, failed.password("alice", PASSWORD, "", false)).await.expect("no queueing");
    assert_eq!(status, 429);
    assert_eq!(headers.get("retry-after").unwrap(), "2");
    let mut clean = w.client().await;
    clean.real_ip = Some("198.51.100.41".into());
    let csrf = clean.csrf().await;
    let form = [("username", "alice"), ("password", PASSWORD), ("rd", ""), ("csrf", csrf.as_str())];
    let release = async move {
        actix_web::rt::task::yield_now().await;
        drop(held);
    };
    let (res, ()) =
        futures_util::future::join(clean.send(TestRequest::post().uri("/login").set_form(form)), release).await;
    assert_eq!(res.0, 303, "the clean visitor waited for a free check");
}

/// Eight sign-ins at once through the portal (a slower hash so they overlap):
/// never more than two bcrypt checks run together, and all are answered.
#[actix_web::test]
async fn at_most_two_password_checks_run_at_once() {
    let w = world_with(|s| s.authd.password_wait_ms = 60_000).await;
    let hash = bcrypt::hash(PASSWORD, 8).unwrap();
    let update = crate::store::UserUpdate { password_hash: Some(hash), ..Default::default() };
    w.store.update_user("bob".into(), update, OffsetDateTime::now_utc()).await.unwrap();
    let mut clients = Vec::new();
    for i in 0..8 {
        let mut c = w.client().await;
        c.real_ip = Some(format!("198.51.100.{}", 100 + i));
        let csrf = c.csrf().await;
        clients.push((c, csrf));
    }
    let attempts = clients.iter_mut().map(|(c, csrf)| {
        let form = [("username", "bob"), ("password", "wrong password!!"), ("rd", ""), ("csrf", csrf.as_str())];
        c.send(TestRequest::post().uri("/login").set_form(form))
    });
    let results = futures_util::future::join_all(attempts).await;
    assert!(results.iter().all(|r| r.0 == 401), "{:?}", results.iter().map(|r| r.0).collect::<Vec<_>>());
    assert_eq!(w.state.gate.checks(), 8);
    assert!(w.state.gate.peak() <= 2, "peak {}", w.state.gate.peak());
}

/// IPv6 clients are counted per /64: addresses in one /64 share a bucket,
/// another /64 is a different client.
#[actix_web::test]
async fn ipv6_clients_are_counted_per_64() {
    let w = world().await;
    let mut c = w.client().await;
    for i in 0..10 {
        c.real_ip = Some(format!("2001:db8:1:2::{:x}", i + 1));
        assert_eq!(c.password(&format!("ghost{i}"), "wrong password!!", "", false).await.0, 401);
    }
    c.real_ip = Some("2001:db8:1:2:ffff:ffff:ffff:fffe".into());
    assert_eq!(c.password("carol", PASSWORD, "", false).await.0, 429, "the same /64 is the same client");
    let mut neighbour = w.client().await;
    neighbour.real_ip = Some("2001:db8:1:3::1".into());
    sign_in(&w, &mut neighbour, "carol", false).await;

    // The pair too: five wrong passwords for alice from five addresses of one /64.
    let mut a = w.client().await;
    for i in 0..5 {
        a.real_ip = Some(format!("2001:db8:9:9::{:x}", i + 1));
        assert_eq!(a.password("alice", "wrong password!!", "", false).await.0, 401);
    }
    a.real_ip = Some("2001:db8:9:9::99".into());
    assert_eq!(a.password("alice", PASSWORD, "", false).await.0, 429);
}

/// Wrong passwords for alice from many other clients slow her sign-in down
/// but never refuse her correct password from her own, clean browser.
#[actix_web::test]
async fn spraying_alice_from_elsewhere_never_locks_her_out() {
    let w = world().await;
    let mut attacker = w.client().await;
    for i in 0..5 {
        attacker.real_ip = Some(format!("203.0.113.{i}"));
        for _ in 0..6 {
            let status = attacker.password("alice", "wrong password!!", "", false).await.0;
            assert!(status == 401 || status == 429);
        }
    }
    for i in 0..20 {
        attacker.real_ip = Some(format!("2001:db8:{i:x}::1"));
        assert_eq!(attacker.password("alice", "wrong password!!", "", false).await.0, 401);
    }
    let now = w.clock.now().unix_timestamp();
    let verdict = w.state.regulator.check("alice", "192.0.2.50", regulation::Step::Password, now, &w.settings.authd);
    assert!(
        matches!(verdict, regulation::Verdict::Allow { delay } if !delay.is_zero()),
        "alice is slowed down: {verdict:?}"
    );
    let mut alice = w.client().await;
    alice.real_ip = Some("192.0.2.50".into());
    sign_in(&w, &mut alice, "alice", false).await;
    assert_eq!(alice.authz("vault").await.0, 200);
    // A client with a failure or two (a typo) is slowed, not refused, either.
    let mut typo = w.client().await;
    typo.real_ip = Some("192.0.2.51".into());
    assert_eq!(typo.password("alice", "wrong password!!", "", false).await.0, 401);
    sign_in(&w, &mut typo, "alice", false).await;
}

/// Attacker-supplied usernames reach the audit log bounded and sanitized,
/// and a name no user can have runs no password check.
#[actix_web::test]
async fn oversized_usernames_leave_bounded_audit_rows() {
    let w = world().await;
    let mut c = w.client().await;
    let long = "a".repeat(15_000); // just under the 16 KiB form limit
    let (status, body, _) = c.password(&long, "wrong password!!", "", false).await;
    assert_eq!(status, 401);
    assert!(body.contains("Wrong username or password"));
    let odd = "<script>x</script>\u{202e}élan\r\nforged";
    assert_eq!(c.password(odd, "wrong password!!", "", false).await.0, 401);
    // 60 KB: over the form limit, a short page and no audit row at all.
    let huge = "b".repeat(60_000);
    let (status, body, _) = c.password(&huge, "wrong password!!", "", false).await;
    assert_eq!(status, 413);
    assert!(body.contains("too large") && !body.contains("16384"), "{body}");
    assert_eq!(metric(&w, "portico_authd_password_checks_total", &[]).await, 0.0, "no bcrypt for invalid names");

    let q = crate::store::AuditQuery { action: Some("authd.login".into()), limit: 1000, ..Default::default() };
    let (entries, total) = w.store.audit_entries(q).await.unwrap();
    assert_eq!(total, 2);
    for e in &entries {
        let size = e.actor.len() + e.target.len() + e.details.as_ref().map_or(0, |d| d.to_string().len());
        assert!(size <= 256, "audit row of {size} bytes: {e:?}");
        assert!(e.target.chars().count() <= 33, "{}", e.target);
        assert!(e.target.chars().all(|ch| matches!(ch, 'a'..='z' | '0'..='9' | '.' | '_' | '-' | '?' | '…')));
    }
    assert!(entries.iter().any(|e| e.target == format!("{}…", "a".repeat(32))));
}

// Runtime settings changed in the panel, seen by a running authd.
mod runtime;
