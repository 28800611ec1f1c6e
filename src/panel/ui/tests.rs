//! Render tests of every page through `actix_web::test`, with the real
//! identity chain, store and PKI: key content, form errors that keep the
//! user's input, CSRF refusal, and URLs under an ingress base path. The
//! other topics live in `ui/tests/<topic>.rs` and share the [`Ui`] helpers
//! of this file; `bench` is the page render benchmark.

use std::net::SocketAddr;

use actix_web::App;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::test::{TestRequest, init_service, read_body};
use actix_web::web;

use crate::onboarding::{self, OnboardingState};
use crate::panel::{AppState, Channel, configure};
use crate::settings::Settings;
use crate::store::{AuditQuery, NewAuditEntry};
use crate::testing::{self, dns};

mod bench;
mod guard;
mod nginx;
mod onboarding_restore;
mod ops;
mod pages;
mod restore;
mod runtime;
mod second_factor;
mod sites_certs;
mod wording;

pub(super) const LOOPBACK: &str = "127.0.0.1:50000";
pub(super) const SUPERVISOR: &str = "172.30.32.2:50000";
pub(super) const INGRESS: &str = "/api/hassio_ingress/abc";

pub(super) struct Ui {
    _dir: tempfile::TempDir,
    pub state: web::Data<AppState>,
    serial: String,
    /// `Some(user)`: requests come through the ingress listener as that user.
    ingress: Option<&'static str>,
}

pub(super) async fn ui_with(configure_settings: impl FnOnce(&mut Settings)) -> Ui {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = testing::panel_settings(dir.path());
    configure_settings(&mut settings);
    let state = testing::init_panel(settings).await;
    let serial = state.pki.admin_info().unwrap().serial;
    Ui { _dir: dir, state, serial, ingress: None }
}

pub(super) async fn completed_ui() -> Ui {
    let ui = ui_with(|_| {}).await;
    ui.set_state(OnboardingState::Completed).await;
    ui.state.store.put_settings(vec![(onboarding::keys::DOMAIN, "example.com".into())]).await.unwrap();
    ui
}

pub(super) struct Page {
    pub status: StatusCode,
    pub body: String,
    pub location: Option<String>,
    /// `Set-Cookie` headers of the response.
    pub cookies: Vec<String>,
}

impl Page {
    /// The CSRF token of the first form on the page.
    pub fn csrf(&self) -> String {
        let at = self.body.find("name=\"_csrf\" value=\"").expect("page has a form") + 20;
        self.body[at..].split('"').next().unwrap().to_string()
    }
}

impl Ui {
    /// The same panel seen through the ingress listener as `user`.
    pub fn as_ingress(&self, user: &'static str) -> Ui {
        Ui { ingress: Some(user), ..ui_with_same(self) }
    }

    /// The same data dir served by `state`, a panel started again on it: its
    /// admin certificate is the one in the data dir now (a restore replaces it).
    pub fn restarted(&self, state: web::Data<AppState>) -> Ui {
        let serial = state.pki.admin_info().unwrap().serial;
        Ui { _dir: tempfile::tempdir().unwrap(), state, serial, ingress: self.ingress }
    }

    pub async fn set_state(&self, s: OnboardingState) {
        self.state.store.put_settings(vec![(onboarding::keys::STATE, s.as_str().to_string())]).await.unwrap();
        self.state.set_onboarding_state(s);
    }

    pub fn dress(&self, req: TestRequest) -> (Channel, TestRequest) {
        let peer = |s: &str| s.parse::<SocketAddr>().unwrap();
        match self.ingress {
            Some(user) => (
                Channel::Ingress,
                req.peer_addr(peer(SUPERVISOR))
                    .insert_header(("X-Remote-User-Name", user))
                    .insert_header(("X-Ingress-Path", INGRESS)),
            ),
            None => (
                Channel::Panel,
                req.peer_addr(peer(LOOPBACK))
                    .insert_header(("X-SSL-Client-Verify", "SUCCESS"))
                    .insert_header(("X-SSL-Client-DN", "CN=admin,O=Portico"))
                    .insert_header(("X-SSL-Client-Serial", self.serial.clone())),
            ),
        }
    }

    pub async fn send(&self, channel: Channel, req: TestRequest) -> Page {
        let app = init_service(App::new().configure(configure(self.state.clone(), channel))).await;
        let resp: ServiceResponse = app.call(req.to_request()).await.unwrap();
        let status = resp.status();
        let location = resp.headers().get("location").map(|l| l.to_str().unwrap().to_string());
        let cookies = resp.headers().get_all("set-cookie").map(|c| c.to_str().unwrap().to_string()).collect();
        let body = String::from_utf8_lossy(&read_body(resp).await).into_owned();
        Page { status, body, location, cookies }
    }

    pub async fn get(&self, path: &str) -> Page {
        self.get_with(path, &[]).await
    }

    /// A GET with extra headers (a cookie).
    pub async fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> Page {
        let mut req = TestRequest::get().uri(path);
        for (k, v) in headers {
            req = req.insert_header((k.to_string(), v.to_string()));
        }
        let (channel, req) = self.dress(req);
        self.send(channel, req).await
    }

    /// Posts a form; `csrf` is added as `_csrf` when given.
    pub async fn post(&self, path: &str, csrf: Option<&str>, fields: &[(&str, &str)]) -> Page {
        self.post_with(path, csrf, fields, &[]).await
    }

    /// A form post with extra headers (a cookie).
    pub async fn post_with(
        &self,
        path: &str,
        csrf: Option<&str>,
        fields: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> Page {
        let mut fields: Vec<(&str, &str)> = fields.to_vec();
        if let Some(token) = csrf {
            fields.push(("_csrf", token));
        }
        let body = serde_urlencoded::to_string(&fields).unwrap();
        let req = TestRequest::post()
            .uri(path)
            .insert_header(("Content-Type", "application/x-www-form-urlencoded"))
            .set_payload(body);
        let req = headers.iter().fold(req, |r, (k, v)| r.insert_header((k.to_string(), v.to_string())));
        let (channel, req) = self.dress(req);
        self.send(channel, req).await
    }

    /// Follows a form post's `303` to the page that shows its result, and
    /// checks that the result is there once only: a reload no longer has it.
    pub async fn follow(&self, posted: &Page) -> Page {
        assert_eq!(posted.status, StatusCode::SEE_OTHER, "a post ends in a redirect: {}", posted.body);
        let location = posted.location.as_deref().expect("a Location header");
        // The Supervisor strips the ingress prefix before the panel sees it.
        let location = match self.ingress {
            Some(_) => location.strip_prefix(INGRESS).expect("the redirect stays under the ingress path"),
            None => location,
        };
        self.get(location).await
    }

    pub async fn audit_actions(&self) -> Vec<String> {
        let q = AuditQuery { actor: None, action: None, since: None, until: None, limit: 500, offset: 0 };
        self.state.store.audit_entries(q).await.unwrap().0.into_iter().map(|e| e.action).collect()
    }
}

#[actix_web::test]
async fn onboarding_walks_domain_then_dns() {
    let dns = dns::Server::start("203.0.113.10".parse().unwrap());
    let ui = ui_with(|s| s.dns.resolver = Some(dns.addr)).await;

    let root = ui.get("/").await;
    assert_eq!(root.status, StatusCode::SEE_OTHER);
    assert_eq!(root.location.as_deref(), Some("/onboarding"), "management pages wait for onboarding");

    let page = ui.get("/onboarding").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("<label for=\"domain\">Domain</label>"), "{}", page.body);
    assert!(!page.body.contains("href=\"/keys\""), "no management nav before onboarding");

    let bad = ui.post("/onboarding/domain", Some(&page.csrf()), &[("domain", "203.0.113.7"), ("email", "me@x")]).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.body.contains("An IP address is not a domain"), "{}", bad.body);
    assert!(bad.body.contains("The part after @ must be a domain"));
    assert!(bad.body.contains("value=\"203.0.113.7\""), "input kept");
    assert!(bad.body.contains("value=\"me@x\""), "input kept");
    assert!(bad.body.contains("aria-invalid=\"true\""));
    assert_eq!(ui.state.onboarding_state(), OnboardingState::Fresh);

    let saved = ui
        .post("/onboarding/domain", Some(&page.csrf()), &[("domain", "Example.COM"), ("email", "me@example.com")])
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER);
    assert_eq!(saved.location.as_deref(), Some("/onboarding?flash=domain_saved"));
    let page = ui.get(saved.location.as_deref().unwrap()).await;
    assert!(page.body.contains("Domain saved."));
    for name in ["panel.example.com", "auth.example.com", "tunnel.example.com", "*.example.com"] {
        assert!(page.body.contains(&format!("<code>{name}</code>")), "{name}");
    }
    assert!(page.body.contains("panel.example.com. 300 IN A 203.0.113.10"), "copyable zone snippet");

    let checked = ui.post("/onboarding/dns", Some(&page.csrf()), &[]).await;
    assert_eq!(checked.status, StatusCode::OK);
    assert!(checked.body.contains("all good"), "{}", checked.body);
    assert_eq!(checked.body.matches("<span class=\"badge ok\">ok</span>").count(), 4);
    assert!(checked.body.contains("id=\"provision\" data-base=\"\""), "{}", checked.body);
    assert!(checked.body.contains("Start provisioning"), "{}", checked.body);
    assert!(checked.body.contains("action=\"/onboarding/provision\""), "provisioning can start");
    assert_eq!(ui.state.onboarding_state(), OnboardingState::DnsReady);
    assert!(ui.audit_actions().await.contains(&"onboarding.verify_dns".to_string()));
}

/// Without JavaScript the page shows the run's steps; a failed run leaves
/// its failed step on the page and the button to start again.
#[actix_web::test]
async fn provisioning_starts_from_the_page_and_shows_a_failed_step() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let ui = ui_with(|s| s.acme.directory = format!("https://127.0.0.1:{closed}/dir")).await;
    ui.state
        .store
        .put_settings(vec![
            (crate::onboarding::keys::DOMAIN, "example.com".into()),
            (crate::onboarding::keys::EMAIL, "me@example.com".into()),
            (crate::onboarding::keys::STATE, "DNS_READY".into()),
        ])
        .await
        .unwrap();
    ui.state.set_onboarding_state(OnboardingState::DnsReady);
    let page = ui.get("/onboarding").await;
    assert!(page.body.contains("Start provisioning"));
    assert!(page.body.contains("value=\"me\""), "the username is suggested from the email");
    let started = ui.post("/onboarding/provision", Some(&page.csrf()), &[("username", "me")]).await;
    assert_eq!(started.status, StatusCode::SEE_OTHER);
    assert_eq!(started.location.as_deref(), Some("/onboarding?flash=provisioning"));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while ui.state.provision.status() != crate::app::provision::RunStatus::Failed {
        assert!(std::time::Instant::now() < deadline, "the run did not fail");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await; // poll interval
    }
    let page = ui.get("/onboarding").await;
    assert!(page.body.contains("data-task=\"cert:panel.example.com\" class=\"failed\""), "{}", page.body);
    assert!(page.body.contains("cannot use the ACME directory"), "{}", page.body);
    assert!(page.body.contains("Start provisioning again"));
}

#[actix_web::test]
async fn dns_check_shows_each_failing_name() {
    let dns = dns::Server::start("198.51.100.1".parse().unwrap());
    let ui = ui_with(|s| s.dns.resolver = Some(dns.addr)).await;
    let page = ui.get("/onboarding").await;
    ui.post("/onboarding/domain", Some(&page.csrf()), &[("domain", "example.net"), ("email", "a@example.net")]).await;
    let checked = ui.post("/onboarding/dns", Some(&page.csrf()), &[]).await;
    assert!(checked.body.contains("not ready"));
    assert_eq!(checked.body.matches("points to 198.51.100.1 instead of 203.0.113.10").count(), 4);
    assert_eq!(ui.state.onboarding_state(), OnboardingState::DomainSet);
}

#[actix_web::test]
async fn completed_onboarding_leads_to_the_dashboard() {
    let ui = completed_ui().await;
    let onboarding = ui.get("/onboarding").await;
    assert_eq!(onboarding.location.as_deref(), Some("/"));
    let page = ui.get("/").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Serving <strong>example.com</strong>"));
    assert!(page.body.contains("days left on the admin certificate"));
    for (path, label) in super::NAV {
        assert!(page.body.contains(&format!("href=\"{path}\"")), "{label}");
    }
    assert!(page.body.contains("aria-current=\"page\">Dashboard"));
}

#[actix_web::test]
async fn api_keys_create_once_validate_and_revoke() {
    let ui = completed_ui().await;
    let page = ui.get("/keys").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("No API keys."));

    let bad = ui.post("/keys", Some(&page.csrf()), &[("name", "ci job"), ("expiresInDays", "400")]).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.body.contains("Give at least one scope"), "{}", bad.body);
    assert!(bad.body.contains("Choose between 1 and 365 days"));
    assert!(bad.body.contains("value=\"ci job\""), "name kept");
    assert!(bad.body.contains("value=\"400\""), "days kept");
    assert!(ui.state.store.api_keys().await.unwrap().is_empty());

    let created =
        ui.post("/keys", Some(&page.csrf()), &[("name", "ci job"), ("scopes", "read"), ("scopes", "write")]).await;
    let created = ui.follow(&created).await;
    let at = created.body.find("pk_").expect("key shown");
    let key: String =
        created.body[at..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-').collect();
    let record = ui.state.keys.verify(&ui.state.store, &key, time::OffsetDateTime::now_utc()).await.unwrap();
    assert_eq!(record.scopes, ["read", "write"]);

    let list = ui.get("/keys").await;
    assert!(!list.body.contains(&key), "the key is shown only once");
    assert!(list.body.contains(&record.id));

    let unconfirmed = ui.post(&format!("/keys/{}/revoke", record.id), Some(&list.csrf()), &[]).await;
    assert_eq!(unconfirmed.status, StatusCode::BAD_REQUEST);
    let revoked = ui.post(&format!("/keys/{}/revoke", record.id), Some(&list.csrf()), &[("confirm", "yes")]).await;
    assert_eq!(revoked.location.as_deref(), Some("/keys?flash=key_revoked"));
    assert!(ui.state.keys.verify(&ui.state.store, &key, time::OffsetDateTime::now_utc()).await.is_err());
    let after = ui.get("/keys?flash=key_revoked").await;
    assert!(after.body.contains("API key revoked"));
    assert!(after.body.contains(">revoked</span>"));
    let actions = ui.audit_actions().await;
    assert!(actions.contains(&"key.create".into()) && actions.contains(&"key.revoke".into()));
}

#[actix_web::test]
async fn agents_enrollment_token_capabilities_and_revoke() {
    let ui = completed_ui().await;
    let page = ui.get("/agents").await;
    assert!(page.body.contains("No agents yet."));

    let bad = ui.post("/agents/enroll", Some(&page.csrf()), &[("label", "Home NAS"), ("capabilities", "root")]).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.body.contains("1–63 lowercase letters"));
    assert!(bad.body.contains("Unknown capability"));
    assert!(bad.body.contains("value=\"Home NAS\""));

    let ok =
        ui.post("/agents/enroll", Some(&page.csrf()), &[("label", "home-nas"), ("capabilities", "tunnels:read")]).await;
    let shown = ui.follow(&ok).await;
    // No certificate for panel.example.com yet: the panel by IP, pinned.
    assert!(shown.body.contains("id=\"install-cmd\">curl -fsS -k --pinnedpubkey sha256//"), "{}", shown.body);
    assert!(
        shown.body.contains(" https://203.0.113.10:9292/download/install.sh | sh -s -- --token "),
        "{}",
        shown.body
    );
    assert!(shown.body.contains("enroll --panel https://203.0.113.10:9292 --token "), "{}", shown.body);
    let reload = ui.get(ok.location.as_deref().unwrap()).await;
    assert!(!reload.body.contains("--token "), "a reload does not show the token again");
    let dup = ui.post("/agents/enroll", Some(&page.csrf()), &[("label", "home-nas")]).await;
    assert_eq!(dup.status, StatusCode::SEE_OTHER, "a pending token does not create the agent yet");

    let issued = ui.post("/agents/enroll", Some(&page.csrf()), &[("label", "garage"), ("mode", "certificate")]).await;
    let issued = ui.follow(&issued).await;
    assert!(issued.body.contains("-----BEGIN PRIVATE KEY-----"), "key shown once: {}", issued.body);
    assert!(issued.body.contains("-----BEGIN CERTIFICATE-----"));
    for file in ["agent.crt", "ca.crt", "agent.key", "agent.json"] {
        let name = format!("<code>/var/lib/portico-agent/{file}</code>");
        assert!(issued.body.contains(&name), "which file to create where: {file}");
    }
    assert!(issued.body.contains("wss://tunnel.example.com/"), "agent.json names the relay");
    let garage = ui.state.store.agent("garage".into()).await.unwrap().expect("agent created");
    assert!(garage.serial.is_some() && garage.capabilities.is_empty());
    let list = ui.get("/agents").await;
    assert!(!list.body.contains("PRIVATE KEY"), "the key is not kept");
    assert!(list.body.contains("<code>garage</code>"));
    assert!(list.body.contains("href=\"/agents/garage\""));
    // Connection state, live: never connected, then what the relay reports.
    assert!(
        list.body.contains("<span class=\"badge bad\">offline</span> <small>never connected</small>"),
        "{}",
        list.body
    );
    assert!(list.body.contains("id=\"agents\" data-refresh=\"/agents\""), "the table refreshes itself");
    let since = time::OffsetDateTime::now_utc() - time::Duration::minutes(5);
    let status = crate::store::AgentStatus {
        label: "garage".into(),
        connected_since: since,
        remote_addr: "198.51.100.7:40000".into(),
        protocol_version: 2,
        bytes_in: 0,
        bytes_out: 0,
        open_streams: 0,
        rtt_ms: Some(12.4),
        last_contact: Some(time::OffsetDateTime::now_utc()),
    };
    ui.state.store.put_relay_status(vec![status]).await.unwrap();
    let online = ui.get("/agents").await;
    let expected = format!(
        "<span class=\"badge ok\">online</span> <small>since {} from 198.51.100.7:40000, protocol v2, round trip 12 ms</small>",
        super::when(&since)
    );
    assert!(online.body.contains(&expected), "{}", online.body);
    ui.state.store.put_relay_status(vec![]).await.unwrap();
    let caps = ui
        .post(
            "/agents/garage/capabilities",
            Some(&list.csrf()),
            &[("capabilities", "sites:read"), ("capabilities", "system:read")],
        )
        .await;
    assert_eq!(caps.location.as_deref(), Some("/agents/garage?flash=caps_saved"));
    let detail = ui.get("/agents/garage?flash=caps_saved").await;
    assert!(detail.body.contains("Capabilities saved"));
    assert!(detail.body.contains("value=\"sites:read\" checked"));
    assert!(detail.body.contains("href=\"/api/certs/agent/garage/download\""));
    assert_eq!(ui.get("/agents/nobody").await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        ui.state.store.agent("garage".into()).await.unwrap().unwrap().capabilities,
        ["sites:read", "system:read"]
    );
    let revoked = ui.post("/agents/garage/revoke", Some(&list.csrf()), &[("confirm", "yes")]).await;
    assert_eq!(revoked.location.as_deref(), Some("/agents?flash=agent_revoked"));
    assert!(ui.state.store.agent("garage".into()).await.unwrap().unwrap().revoked_at.is_some());
    let again = ui.post("/agents/garage/revoke", Some(&list.csrf()), &[("confirm", "yes")]).await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
    assert!(again.body.contains("No such active agent"));
}

#[actix_web::test]
async fn certificates_page_and_confirmed_rotation() {
    let ui = completed_ui().await;
    let page = ui.get("/certs").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains(&format!("<code>{}</code>", ui.serial)));
    assert!(page.body.contains("href=\"/api/certs/mtls/download\""));
    let unconfirmed = ui.post("/certs/rotate", Some(&page.csrf()), &[]).await;
    assert_eq!(unconfirmed.status, StatusCode::BAD_REQUEST);
    assert_eq!(ui.state.pki.admin_info().unwrap().serial, ui.serial, "nothing rotated without confirmation");
    let rotated = ui.post("/certs/rotate", Some(&page.csrf()), &[("confirm", "yes")]).await;
    assert_eq!(rotated.status, StatusCode::OK);
    let password = ui.state.pki.admin_p12_password().unwrap();
    assert!(rotated.body.contains(&password), "new password shown once");
    assert_ne!(ui.state.pki.admin_info().unwrap().serial, ui.serial);
    assert_eq!(ui.get("/certs").await.status, StatusCode::UNAUTHORIZED, "the old certificate is refused at once");
}

/// With an external forward-auth service, the pages where visitor access is
/// set say who decides, and link its portal; other pages and the builtin
/// mode say nothing.
#[actix_web::test]
async fn pages_say_when_an_external_service_decides_for_visitors() {
    let ui = ui_with(|s| {
        s.authd.mode = crate::settings::AuthdMode::External;
        s.authd.external.verify_url = Some("http://127.0.0.1:9191/api/verify".into());
        s.authd.external.portal_url = Some("https://login.example.org/".into());
    })
    .await;
    ui.set_state(OnboardingState::Completed).await;
    ui.state.store.put_settings(vec![(onboarding::keys::DOMAIN, "example.com".into())]).await.unwrap();
    for path in ["/tunnels", "/sites", "/users"] {
        let page = ui.get(path).await;
        assert_eq!(page.status, StatusCode::OK, "{path}");
        assert!(page.body.contains("authd.mode: external"), "{path} does not say so");
        assert!(page.body.contains("href=\"https://login.example.org/\""), "{path}");
    }
    assert!(!ui.get("/certs").await.body.contains("authd.mode: external"));
    assert!(!completed_ui().await.get("/tunnels").await.body.contains("authd.mode: external"));
}

/// Certificates → "Bind to a hardware key…": the form refuses what it must
/// (no confirmation, a bad CSR, shown next to the field with the CSR kept),
/// then binds, shows the new certificate once, and the page the bound
/// certificate opens offers no `.p12` and no rotation.
#[actix_web::test]
async fn admin_certificate_bound_to_a_hardware_key_from_the_page() {
    let ui = completed_ui().await;
    let page = ui.get("/certs").await;
    assert!(page.body.contains("Bind to a hardware key"), "{}", page.body);
    let csr = crate::testing::openssl_csr_p256();
    let unconfirmed = ui.post("/certs/hardware", Some(&page.csrf()), &[("csr", csr.as_str())]).await;
    assert_eq!(unconfirmed.status, StatusCode::BAD_REQUEST);
    let bad = ui.post("/certs/hardware", Some(&page.csrf()), &[("csr", "not a csr"), ("confirm", "yes")]).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.body.contains("id=\"hw-csr-error\"") && bad.body.contains(">not a csr</textarea>"), "{}", bad.body);
    assert_eq!(ui.state.pki.admin_info().unwrap().serial, ui.serial, "nothing bound yet");

    let bound = ui.post("/certs/hardware", Some(&page.csrf()), &[("csr", csr.as_str()), ("confirm", "yes")]).await;
    assert_eq!(bound.status, StatusCode::OK);
    let pem = std::fs::read_to_string(ui.state.pki.dir().join("admin.crt")).unwrap();
    assert!(bound.body.contains(pem.lines().nth(1).unwrap()), "the new certificate is shown");
    assert!(bound.body.contains(&format!("<code>{}</code> no longer opens the panel", ui.serial)));
    assert!(!bound.body.contains("/api/certs/mtls/download"), "a .p12 is still offered");
    assert!(!bound.body.contains("/certs/rotate"), "rotation is still offered");
    assert!(bound.body.contains("hardware-bound"));
    assert_eq!(ui.get("/certs").await.status, StatusCode::UNAUTHORIZED, "the .p12 certificate is refused at once");
}

#[actix_web::test]
async fn audit_log_filters_and_pages() {
    let ui = completed_ui().await;
    let now = time::OffsetDateTime::now_utc();
    for i in 0..120 {
        let action = if i % 2 == 0 { "tunnel.create" } else { "key.create" };
        let entry = NewAuditEntry {
            at: now - time::Duration::minutes(i),
            actor: "admin:1".into(),
            action: action.into(),
            target: format!("t{i}"),
            outcome: "success".into(),
            details: None,
        };
        ui.state.store.append_audit(entry).await.unwrap();
    }
    let details = serde_json::json!({"name": "monitoring", "caps": ["read", "logs:read"], "note": "a long value"});
    let entry = NewAuditEntry {
        at: now,
        actor: "admin:1".into(),
        action: "key.create".into(),
        target: "monitoring".into(),
        outcome: "success".into(),
        details: Some(details),
    };
    ui.state.store.append_audit(entry).await.unwrap();
    let keys = ui.get("/audit?action=key.create").await;
    assert!(
        keys.body.contains("<dl class=\"kv\"><dt>caps</dt><dd>[&#34;read&#34;,&#34;logs:read&#34;]</dd><dt>name</dt><dd>monitoring</dd><dt>note</dt><dd>a long value</dd></dl>"),
        "details as key/value: {}",
        keys.body
    );
    let page = ui.get("/audit?action=tunnel.create").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Page 1 of 2 (60 entries)"), "{}", page.body);
    assert!(
        page.body.contains("href=\"/audit?action=tunnel.create&#38;page=2\""),
        "pager keeps the filter: {}",
        page.body
    );
    assert!(!page.body.contains("<code>key.create</code>"));
    let second = ui.get("/audit?action=tunnel.create&page=2").await;
    assert!(second.body.contains("Page 2 of 2"));
    assert_eq!(second.body.matches("<code>tunnel.create</code>").count(), 10);

    let mangled = ui.get("/audit?action=tunnel.create&page=x").await;
    assert!(mangled.body.contains("Page 1 of 2"), "a mangled page number shows page 1");
    let bad = ui.get("/audit?since=yesterday&actor=bob").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.body.contains("Use a date like 2026-01-31"));
    assert!(bad.body.contains("value=\"yesterday\"") && bad.body.contains("value=\"bob\""));
    let dated = ui.get(&format!("/audit?since={}", (now + time::Duration::days(1)).date())).await;
    assert!(dated.body.contains("No entries match."));
}

#[actix_web::test]
async fn forms_without_a_valid_csrf_token_are_refused() {
    let ui = completed_ui().await;
    for token in [None, Some("garbage"), Some("99999999999.00")] {
        let resp = ui.post("/keys", token, &[("name", "evil"), ("scopes", "admin")]).await;
        assert_eq!(resp.status, StatusCode::FORBIDDEN, "{token:?}");
        assert!(resp.body.contains("did not come from this panel"));
    }
    assert!(ui.state.store.api_keys().await.unwrap().is_empty(), "nothing created");
    assert!(ui.audit_actions().await.contains(&"ui.csrf_refused".to_string()));

    // A token rendered for one identity does not work for another.
    let admin_token = ui.get("/keys").await.csrf();
    let ingress = Ui { ingress: Some("alice"), ..ui_with_same(&ui) };
    let resp = ingress.post("/keys", Some(&admin_token), &[("name", "x"), ("scopes", "read")]).await;
    assert_eq!(resp.status, StatusCode::FORBIDDEN);
    let own = ingress.get("/keys").await.csrf();
    let resp = ingress.post("/keys", Some(&own), &[("name", "x"), ("scopes", "read")]).await;
    assert_eq!(resp.status, StatusCode::SEE_OTHER);
    assert!(ingress.follow(&resp).await.body.contains("pk_"), "the key, under the ingress path");
}

/// Another view of the same install (same state and admin serial).
fn ui_with_same(ui: &Ui) -> Ui {
    Ui { _dir: tempfile::tempdir().unwrap(), state: ui.state.clone(), serial: ui.serial.clone(), ingress: None }
}

#[actix_web::test]
async fn pages_are_admin_only() {
    let ui = completed_ui().await;
    let nobody = ui.send(Channel::Panel, TestRequest::get().uri("/keys").peer_addr(LOOPBACK.parse().unwrap())).await;
    assert_eq!(nobody.status, StatusCode::UNAUTHORIZED);
    assert!(nobody.body.contains("<h1>401 Unauthorized</h1>"));
    assert!(nobody.body.contains("href=\"/\">Back to the panel</a>"), "{}", nobody.body);
    let forged = ui
        .send(
            Channel::Panel,
            TestRequest::get()
                .uri("/keys")
                .peer_addr("10.9.9.9:4000".parse().unwrap())
                .insert_header(("X-SSL-Client-Verify", "SUCCESS"))
                .insert_header(("X-SSL-Client-DN", "CN=admin"))
                .insert_header(("X-SSL-Client-Serial", ui.serial.clone())),
        )
        .await;
    assert_eq!(forged.status, StatusCode::UNAUTHORIZED, "identity headers from an untrusted peer are ignored");
    let serial = crate::agents::issue(
        ui.state.pki.clone(),
        &ui.state.store,
        "reader".into(),
        vec![crate::identity::Capability::SystemRead],
    )
    .await
    .unwrap()
    .agent
    .serial
    .unwrap();
    let agent = ui
        .send(
            Channel::Panel,
            TestRequest::get()
                .uri("/audit")
                .peer_addr(LOOPBACK.parse().unwrap())
                .insert_header(("X-SSL-Client-Verify", "SUCCESS"))
                .insert_header(("X-SSL-Client-DN", "CN=agent:reader"))
                .insert_header(("X-SSL-Client-Serial", serial)),
        )
        .await;
    assert_eq!(agent.status, StatusCode::FORBIDDEN);
}

/// Every `href`, `src` and `action` in `body` starts with `base` (or is a
/// fragment, or a public `https://` address opened in a new tab).
pub(super) fn assert_urls_under(body: &str, base: &str) {
    for attr in ["href=\"", "src=\"", "action=\""] {
        for (i, _) in body.match_indices(attr) {
            let url = body[i + attr.len()..].split('"').next().unwrap();
            let public = attr == "href=\"" && url.starts_with("https://") && {
                let tag = &body[i..i + body[i..].find('>').unwrap()];
                tag.contains("target=\"_blank\" rel=\"noopener\"")
            };
            assert!(
                url.starts_with(&format!("{base}/")) || url.starts_with('#') || public,
                "{attr}{url} escapes {base}"
            );
        }
    }
}

#[actix_web::test]
async fn ingress_keeps_every_url_and_redirect_under_the_base_path() {
    let dns = dns::Server::start("203.0.113.10".parse().unwrap());
    let mut ui = ui_with(|s| s.dns.resolver = Some(dns.addr)).await;
    ui.ingress = Some("alice");
    let root = ui.get("/").await;
    assert_eq!(root.location.as_deref(), Some(&*format!("{INGRESS}/onboarding")));
    let page = ui.get("/onboarding").await;
    assert_urls_under(&page.body, INGRESS);
    let saved = ui
        .post("/onboarding/domain", Some(&page.csrf()), &[("domain", "example.org"), ("email", "a@example.org")])
        .await;
    assert_eq!(saved.location.as_deref(), Some(&*format!("{INGRESS}/onboarding?flash=domain_saved")));
    let checked = ui.post("/onboarding/dns", Some(&page.csrf()), &[]).await;
    assert_urls_under(&checked.body, INGRESS);
    ui.set_state(OnboardingState::Completed).await;
    crate::agents::issue(ui.state.pki.clone(), &ui.state.store, "garage".into(), vec![]).await.unwrap();
    let token = ui.get("/keys").await.csrf();
    ui.post("/keys", Some(&token), &[("name", "k"), ("scopes", "read")]).await;
    for path in ["/", "/agents", "/agents/garage", "/certs", "/keys", "/audit", "/audit?page=1&action=key.create"] {
        let page = ui.get(path).await;
        assert_eq!(page.status, StatusCode::OK, "{path}");
        assert_urls_under(&page.body, INGRESS);
    }
    let missing = ui.get("/agents/nobody").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(missing.body.contains(&format!("href=\"{INGRESS}/\">Back to the panel")), "{}", missing.body);
    assert_urls_under(&missing.body, INGRESS);
    let revoked = ui.post("/agents/garage/revoke", Some(&token), &[("confirm", "yes")]).await;
    assert_eq!(revoked.location.as_deref(), Some(&*format!("{INGRESS}/agents?flash=agent_revoked")));
}

#[actix_web::test]
async fn static_assets_are_small_hashed_and_cached() {
    let ui = completed_ui().await;
    assert!(super::assets::total_size() < 100 * 1024, "static assets stay under 100 KB");
    let url = super::assets::url("app.css");
    assert!(url.starts_with("/static/") && url.ends_with("/app.css"));
    let app = init_service(App::new().configure(configure(ui.state.clone(), Channel::Panel))).await;
    let resp = app.call(TestRequest::get().uri(url).to_request()).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers().get("cache-control").unwrap(), "public, max-age=31536000, immutable");
    assert!(resp.headers().get("content-type").unwrap().to_str().unwrap().starts_with("text/css"));
    let stale = app.call(TestRequest::get().uri("/static/000000000000/app.css").to_request()).await.unwrap();
    assert_eq!(stale.headers().get("cache-control").unwrap(), "no-cache");
    let missing = app.call(TestRequest::get().uri("/static/x/../../etc/passwd").to_request()).await.unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    // Every page names the logo as the tab's icon, and it is served.
    let icon = super::assets::url("logo.svg");
    assert!(
        ui.get("/keys").await.body.contains(&format!("<link rel=\"icon\" type=\"image/svg+xml\" href=\"{icon}\">"))
    );
    let resp = app.call(TestRequest::get().uri(icon).to_request()).await.unwrap();
    assert_eq!(resp.headers().get("content-type").unwrap(), "image/svg+xml");
}

#[actix_web::test]
async fn routes_registered_after_the_ui_still_answer() {
    let ui = completed_ui().await;
    let app = init_service(
        App::new()
            .configure(configure(ui.state.clone(), Channel::Panel))
            .route("/elsewhere", web::get().to(|| async { "m" }))
            .route("/keysmith", web::get().to(|| async { "k" })),
    )
    .await;
    for path in ["/elsewhere", "/keysmith"] {
        let resp = app.call(TestRequest::get().uri(path).to_request()).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{path}");
    }
    assert!(super::is_page("/keys/abc/revoke") && super::is_page("/") && super::is_page("/onboarding"));
    assert!(!super::is_page("/keysmith") && !super::is_page("/static/x/app.css"));
}

/// Every visible form control has a label: `<label for=id>` or an enclosing `<label>`.
pub(super) fn assert_labelled(body: &str, page: &str) {
    for (at, _) in body.match_indices("<input ") {
        let tag = &body[at..at + body[at..].find('>').unwrap()];
        if tag.contains("type=\"hidden\"") {
            continue;
        }
        match tag.split("id=\"").nth(1).map(|r| r.split('"').next().unwrap()) {
            Some(id) => assert!(body.contains(&format!("<label for=\"{id}\"")), "{page}: no label for #{id}"),
            None => {
                let before = &body[..at];
                let open = before.rfind("<label").unwrap_or_else(|| panic!("{page}: unlabelled {tag}"));
                assert!(!before[open..].contains("</label>"), "{page}: unlabelled {tag}");
            }
        }
    }
}

#[actix_web::test]
async fn every_form_control_is_labelled() {
    let ui = ui_with(|_| {}).await;
    ui.state.store.put_settings(vec![(onboarding::keys::DOMAIN, "example.com".into())]).await.unwrap();
    ui.set_state(OnboardingState::DomainSet).await;
    assert_labelled(&ui.get("/onboarding").await.body, "/onboarding");
    ui.set_state(OnboardingState::Completed).await;
    crate::agents::issue(ui.state.pki.clone(), &ui.state.store, "garage".into(), vec![]).await.unwrap();
    let token = ui.get("/keys").await.csrf();
    ui.post("/keys", Some(&token), &[("name", "k"), ("scopes", "read")]).await;
    for path in ["/", "/agents", "/agents/garage", "/certs", "/keys", "/audit"] {
        let page = ui.get(path).await;
        assert_eq!(page.status, StatusCode::OK, "{path}");
        assert!(page.body.contains("<main id=\"main\""), "{path}");
        assert_labelled(&page.body, path);
    }
}
