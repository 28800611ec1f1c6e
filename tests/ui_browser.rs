//! The web UI in real headless Chromium (Debian's `chromium` +
//! `chromium-driver`), driven over WebDriver with fantoccini. The test starts
//! the panel and chromedriver on loopback itself. In front of the panel sits
//! a small middleware playing nginx (it adds the admin certificate's
//! `X-SSL-Client-*` headers) or the Home Assistant Supervisor (it strips
//! the ingress prefix and adds `X-Ingress-Path`; any URL outside the prefix
//! gets 404, so a link that escapes it fails visibly).
//!
//! Onboarding provisions for real: pebble issues the certificates, with
//! HTTP-01 answered by a real nginx that the panel renders and reloads.
//!
//! Screenshots go to `target/ui-screenshots/`. Skips with a message only
//! when chromium, chromedriver, pebble or nginx is not installed.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::{Next, from_fn};
use actix_web::{App, HttpResponse, HttpServer, web};
use chromium::{Driver, Nginx, Session, browser_with, screenshots_dir, tool};
use fantoccini::{Client, Locator};
use portico::onboarding::OnboardingState;
use portico::panel::{AppState, Channel, configure};
use portico::settings::Settings;
use time::OffsetDateTime;

#[path = "support/chromium.rs"]
mod chromium;
#[path = "../src/testing/dns.rs"]
#[allow(dead_code)]
mod dns;
#[path = "../src/acme/pebble.rs"]
#[allow(dead_code)]
mod pebble;

const INGRESS: &str = "/api/hassio_ingress/abc";
const PUBLIC_IP: &str = "203.0.113.10";

async fn browser(driver: &Driver, chromium: &Path, profile: &Path) -> Client {
    browser_with(driver, chromium, profile, &[]).await
}

/// The panel's data dir and state, on a loopback port behind `front`, with
/// pebble as its ACME server and nginx answering HTTP-01 on loopback.
struct Panel {
    state: web::Data<AppState>,
    addr: SocketAddr,
    _nginx: Nginx,
    _pebble: pebble::Pebble,
    _dns: dns::Server,
    _run: tempfile::TempDir,
    _dir: tempfile::TempDir,
}

#[derive(Clone, Copy)]
enum Front {
    /// Plays nginx with the admin client certificate.
    Nginx,
    /// Plays the Home Assistant Supervisor's ingress proxy.
    Ingress,
}

async fn start_panel(front: Front) -> Panel {
    let dns = dns::Server::start(PUBLIC_IP.parse().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let run = tempfile::tempdir().unwrap();
    let http_port = pebble::free_port();
    let pebble = pebble::Pebble::start(http_port, None);
    let mut settings = Settings { data_dir: dir.path().to_path_buf(), ..Default::default() };
    settings.public_ip = Some(PUBLIC_IP.parse().unwrap());
    settings.dns.resolver = Some(dns.addr);
    settings.ingress.trusted_peers = vec!["127.0.0.1".parse().unwrap()];
    settings.supervisor.log_dir = dir.path().join("service-logs");
    settings.nginx.run_dir = run.path().to_path_buf();
    settings.nginx.bind = "127.0.0.1".parse().unwrap();
    (settings.nginx.http_port, settings.nginx.https_port, settings.nginx.admin_port) =
        (http_port, pebble::free_port(), pebble::free_port());
    settings.panel.listen = SocketAddr::from(([127, 0, 0, 1], pebble::free_port()));
    settings.acme.directory = pebble.directory.clone();
    settings.acme.ca_bundle = Some(pebble.ca_bundle.clone());
    append_log(&settings.supervisor.log_dir, "relay", "2026-01-01T00:00:00Z  INFO relay: listening");
    portico::init::run(&settings).unwrap();
    let state = web::Data::new(AppState::load(settings).await.unwrap());
    let nginx = start_nginx(&state).await;
    let serial = state.pki.admin_info().unwrap().serial;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let app_state = state.clone();
    let server = HttpServer::new(move || {
        let serial = serial.clone();
        let channel = match front {
            Front::Nginx => Channel::Panel,
            Front::Ingress => Channel::Ingress,
        };
        App::new()
            .wrap(from_fn(move |req: ServiceRequest, next: Next<_>| {
                let serial = serial.clone();
                async move { front_proxy(front, &serial, req, next).await }
            }))
            .configure(configure(app_state.clone(), channel))
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    actix_web::rt::spawn(server);
    Panel { state, addr, _nginx: nginx, _pebble: pebble, _dns: dns, _run: run, _dir: dir }
}

/// Installs the tree the store renders and starts nginx on it, as the
/// container's entry script does.
async fn start_nginx(state: &AppState) -> Nginx {
    let settings = &state.settings;
    let tree = portico::nginx::state::render_state(settings, &state.store).await.unwrap();
    portico::nginx::state::applier(settings).install(&tree, "first start").unwrap();
    let child = Command::new(&settings.nginx.bin)
        .arg("-p")
        .arg(&settings.nginx.run_dir)
        .arg("-c")
        .arg(settings.nginx_live_dir().join("nginx.conf"))
        .args(["-g", "daemon off;"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start nginx");
    let nginx = Nginx(child);
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", settings.nginx.http_port)).is_err() {
        assert!(Instant::now() < deadline, "nginx did not start");
        std::thread::sleep(Duration::from_millis(20)); // poll interval
    }
    nginx
}

/// Appends a line to a service's log as s6-log writes it.
fn append_log(log_dir: &Path, service: &str, line: &str) {
    use std::io::Write;
    let dir = log_dir.join(service);
    std::fs::create_dir_all(&dir).unwrap();
    let mut file = std::fs::OpenOptions::new().create(true).append(true).open(dir.join("current")).unwrap();
    writeln!(file, "{line}").unwrap();
}

async fn front_proxy(
    front: Front,
    serial: &str,
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<actix_web::body::BoxBody>, actix_web::Error> {
    let set = |req: &mut ServiceRequest, name: &'static str, value: &str| {
        req.headers_mut().insert(HeaderName::from_static(name), HeaderValue::from_str(value).unwrap());
    };
    match front {
        Front::Nginx => {
            set(&mut req, "x-ssl-client-verify", "SUCCESS");
            set(&mut req, "x-ssl-client-dn", "CN=admin,O=Portico");
            set(&mut req, "x-ssl-client-serial", serial);
        }
        Front::Ingress => {
            let path_and_query = req.uri().path_and_query().map(|p| p.as_str().to_string()).unwrap_or_default();
            let Some(rest) = path_and_query.strip_prefix(INGRESS) else {
                let resp = HttpResponse::NotFound().body(format!("outside the ingress path: {path_and_query}"));
                return Ok(req.into_response(resp));
            };
            let rest = if rest.is_empty() || rest.starts_with('?') { format!("/{rest}") } else { rest.to_string() };
            let uri: actix_web::http::Uri = rest.parse().unwrap();
            req.head_mut().uri = uri.clone();
            req.match_info_mut().get_mut().update(&uri);
            set(&mut req, "x-ingress-path", INGRESS);
            set(&mut req, "x-remote-user-name", "alice");
        }
    }
    next.call(req).await.map(ServiceResponse::map_into_boxed_body)
}

fn chromium_tools() -> Option<(PathBuf, PathBuf)> {
    if !pebble::available() || !Path::new(&Settings::default().nginx.bin).exists() {
        eprintln!("SKIPPED: onboarding provisions against pebble and nginx (apt-get install pebble nginx)");
        return None;
    }
    match (tool("chromium"), tool("chromedriver")) {
        (Some(c), Some(d)) => Some((c, d)),
        _ => {
            eprintln!(
                "SKIPPED: chromium and chromium-driver are not installed (apt-get install chromium chromium-driver)"
            );
            None
        }
    }
}

/// Starts provisioning from the onboarding page (under `base`) and follows
/// its live progress to the end: the first visitor login is shown once, and
/// a reload leads to the dashboard without it. Returns its password.
async fn provision(s: &Session, panel: &Panel, base: &str) -> String {
    let suggested = s.client.find(Locator::Css("#username")).await.unwrap().prop("value").await.unwrap();
    assert_eq!(suggested.as_deref(), Some("ops"), "the first visitor's name is shown, from the email");
    s.click("form[action$='/onboarding/provision'] button").await;
    s.wait_path(&format!("{base}/onboarding?flash=provisioning")).await;
    s.wait_text("Certificate for panel.").await;
    s.shot("onboarding-provisioning").await;
    // Three certificates from pebble, nginx reloaded, the first user.
    let text = s.wait_text_within("shown only now", Duration::from_secs(120)).await;
    assert!(text.contains("Portico is ready at https://panel."), "{text}");
    let said = s.client.find(Locator::Css("#provision-status")).await.unwrap().text().await.unwrap();
    assert!(said.starts_with("Provisioning is complete."), "{said}");
    assert!(!text.contains("Provisioning is running"), "{text}");
    for task in ["cert:panel.", "cert:auth.", "cert:tunnel.", "nginx", "services", "user", "complete"] {
        let css = format!("#provision-steps li[data-task^='{task}']");
        let class = s.client.find(Locator::Css(&css)).await.unwrap().attr("class").await.unwrap();
        assert!(matches!(class.as_deref(), Some("done" | "skipped")), "{task}: {class:?}");
    }
    assert!(text.contains("issued by Pebble"), "{text}");
    let user = s.client.find(Locator::Css("#first-user")).await.unwrap().text().await.unwrap();
    let password = s.client.find(Locator::Css("#first-password")).await.unwrap().text().await.unwrap();
    assert_eq!(user, "ops");
    assert!(password.len() >= 20, "{password}");
    let stored = panel.state.store.user(user.clone()).await.unwrap().expect("first user created");
    assert!(portico::users::verify_password(password.clone(), Some(stored.password_hash)).await);
    let qr = s.client.find(Locator::Css("#first-qr")).await.unwrap();
    assert!(qr.attr("src").await.unwrap().unwrap_or_default().starts_with("data:image/svg+xml"));
    let width = s.client.execute("return document.getElementById('first-qr').naturalWidth", vec![]).await.unwrap();
    assert!(width.as_u64().unwrap_or(0) > 0, "the QR code image renders");
    assert!(qr.is_displayed().await.unwrap());
    assert_eq!(panel.state.onboarding_state(), OnboardingState::Completed);
    let under = format!("{}{base}/", s.origin);
    for url in s.urls().await.into_iter().filter(|u| !u.starts_with("data:")) {
        assert!(url.starts_with(&under), "{url} escapes {base}/");
    }
    s.shot("onboarding-done").await;

    // Shown once: a reload goes to the dashboard, without the login.
    s.client.refresh().await.unwrap();
    s.wait_path(&format!("{base}/")).await;
    let source = s.client.source().await.unwrap();
    assert!(!source.contains(&password), "the password is shown only once");
    password
}

#[actix_web::test]
async fn admin_walks_every_page_in_chromium() {
    let Some((chromium, chromedriver)) = chromium_tools() else { return };
    let panel = start_panel(Front::Nginx).await;
    let driver = Driver::start(&chromedriver);
    let profile = tempfile::tempdir().unwrap();
    let client = browser(&driver, &chromium, profile.path()).await;
    let s = Session { client, origin: format!("http://{}", panel.addr), shots: screenshots_dir(), prefix: "" };

    // Onboarding: a bad domain keeps the input and names the problem.
    s.goto("/").await;
    s.wait_path("/onboarding").await;
    s.shot("onboarding-1-domain").await;

    // The first screen offers a restore from a backup; a wrong passphrase
    // is refused with a clear message and changes nothing.
    let elsewhere = tempfile::tempdir().unwrap();
    let secret = portico::settings::Secret::new("correct horse battery");
    let info = portico::backup::create(&panel.state.store, &panel.state.settings, &secret).await.unwrap();
    let old_archive = elsewhere.path().join(format!("{}{}", info.id, portico::backup::SUFFIX));
    std::fs::rename(portico::backup::archive_path(&panel.state.settings.backup_dir(), &info.id).unwrap(), &old_archive)
        .unwrap();
    s.fill("#restore-passphrase", "not the passphrase at all").await;
    let input = s.client.find(Locator::Css("#restore-archive")).await.unwrap();
    input.send_keys(old_archive.to_str().unwrap()).await.unwrap();
    s.click("form[action^='/onboarding/restore'] button[type=submit]").await;
    s.wait_text("Wrong passphrase, or not an archive for this passphrase. Nothing was changed.").await;
    s.shot("onboarding-restore-refused").await;
    assert_eq!(portico::backup::staged::staged(&panel.state.settings.data_dir).unwrap(), None);
    assert_eq!(panel.state.onboarding_state(), OnboardingState::Fresh);
    s.fill("#domain", "http://example.com/x").await;
    s.fill("#email", "ops@example.com").await;
    s.click("form[action='/onboarding/domain'] button").await;
    s.wait_text("Give only the domain name").await;
    let kept = s.client.find(Locator::Css("#email")).await.unwrap().prop("value").await.unwrap();
    assert_eq!(kept.as_deref(), Some("ops@example.com"));
    let focused = s.client.execute("return document.activeElement.id", vec![]).await.unwrap();
    assert_eq!(focused, "domain", "focus moves to the invalid field");
    s.shot("onboarding-1-domain-error").await;
    s.fill("#domain", "example.com").await;
    s.click("form[action='/onboarding/domain'] button").await;
    s.wait_path("/onboarding?flash=domain_saved").await;
    let text = s.body_text().await;
    assert!(text.contains("*.example.com") && text.contains(PUBLIC_IP), "{text}");
    assert!(
        s.client.find(Locator::Css("button[data-copy='zone']:not([hidden])")).await.is_ok(),
        "copy button shown with JS"
    );
    s.shot("onboarding-2-dns-records").await;
    s.click("form[action='/onboarding/dns'] button").await;
    let text = s.wait_text("all good").await;
    assert!(text.contains("Start provisioning"), "{text}");
    assert_eq!(panel.state.onboarding_state(), OnboardingState::DnsReady);
    s.shot("onboarding-3-dns-checked").await;

    provision(&s, &panel, "").await;
    assert!(s.body_text().await.contains("Serving example.com"));
    s.shot("dashboard").await;

    // API key: created and shown once, then revoked after a confirmation.
    s.goto("/keys").await;
    s.fill("#name", "backup script").await;
    s.click("input[name=scopes][value=write]").await;
    s.click("form[action='/keys'] button[type=submit]").await;
    s.wait_text("Shown once").await;
    let key = s.client.find(Locator::Css("#new-key")).await.unwrap().text().await.unwrap();
    assert!(key.starts_with("pk_"), "{key}");
    assert!(panel.state.keys.verify(&panel.state.store, &key, OffsetDateTime::now_utc()).await.is_ok());
    s.shot("keys-created").await;
    // The post ended in a redirect: reloading shows the page, not the key,
    // and creates nothing.
    assert!(s.path().await.starts_with("/keys?shown="), "{}", s.path().await);
    s.client.refresh().await.unwrap();
    assert!(!s.client.source().await.unwrap().contains(&key), "shown only once");
    assert_eq!(panel.state.store.api_keys().await.unwrap().len(), 1, "a reload posts nothing");
    s.click("details.danger summary").await;
    s.shot("keys-revoke-confirm").await;
    s.click("details.danger button.danger").await;
    s.wait_path("/keys?flash=key_revoked").await;
    assert!(s.body_text().await.contains("API key revoked"));
    assert!(panel.state.keys.verify(&panel.state.store, &key, OffsetDateTime::now_utc()).await.is_err());
    s.shot("keys-revoked").await;

    // Agent enrollment: a one-time token and the command; the token enrolls once.
    s.goto("/agents").await;
    s.fill("#label", "home-nas").await;
    s.click("input[name=capabilities][value='tunnels:write']").await;
    s.click("form[action='/agents/enroll'] button").await;
    s.shot("agents-enroll-token").await;
    s.wait_text("Shown once").await;
    let command = s.client.find(Locator::Css("#install-cmd")).await.unwrap().text().await.unwrap();
    assert!(command.starts_with("curl -fsS "), "{command}");
    assert!(command.contains("/download/install.sh | sh -s -- --token "), "{command}");
    s.shot("agents-enroll-token").await;
    let token = command.rsplit(' ').next().unwrap().to_string();
    let key = rcgen::KeyPair::generate().unwrap();
    let csr =
        rcgen::CertificateParams::new(Vec::<String>::new()).unwrap().serialize_request(&key).unwrap().pem().unwrap();
    let now = OffsetDateTime::now_utc();
    let enrolled = portico::agents::enroll(panel.state.pki.clone(), &panel.state.store, &token, csr.clone(), now).await;
    assert_eq!(enrolled.unwrap().capabilities, ["tunnels:read", "tunnels:write"]);
    let again = portico::agents::enroll(panel.state.pki.clone(), &panel.state.store, &token, csr, now).await;
    assert!(again.is_err(), "the token works once");
    assert!(s.path().await.starts_with("/agents?shown="), "{}", s.path().await);
    s.client.refresh().await.unwrap();
    assert!(!s.client.source().await.unwrap().contains(&token), "a reload neither shows nor makes a token");
    let text = s.body_text().await;
    assert!(text.contains("home-nas") && text.contains("offline never connected"), "{text}");
    s.shot("agents-list").await;

    // Visitor users: field errors next to the fields, then a user whose
    // generated password and TOTP QR code are shown once.
    s.click("nav a[href='/users']").await;
    s.wait_path("/users").await;
    s.fill("#username", "Alice!").await;
    s.fill("#password", "short").await;
    s.click("form[action='/users'] button[type=submit]").await;
    let text = s.wait_text("Use 1–32 characters").await;
    assert!(text.contains("Use at least 12 characters"), "{text}");
    s.shot("users-errors").await;
    s.fill("#username", "alice").await;
    s.fill("#displayName", "Alice").await;
    s.click("form[action='/users'] button[type=submit]").await;
    s.wait_text("Shown once").await;
    assert!(s.client.find(Locator::Css(".qr svg")).await.unwrap().is_displayed().await.unwrap(), "QR code");
    let password = s.client.find(Locator::Css("#new-password")).await.unwrap().text().await.unwrap();
    let alice = panel.state.store.user("alice".into()).await.unwrap().expect("alice created");
    assert!(portico::users::verify_password(password.clone(), Some(alice.password_hash.clone())).await);
    s.shot("users-created").await;
    s.goto("/users").await;
    let text = s.body_text().await;
    assert!(text.contains("alice") && text.contains("enrolled") && !text.contains(&password), "{text}");
    s.shot("users-list").await;

    // Groups: a bad name, then a group with alice in it.
    s.click("nav.tabs a[href='/groups']").await;
    s.wait_path("/groups").await;
    s.fill("#name", "Family Members").await;
    s.click("form[action='/groups'] button[type=submit]").await;
    s.wait_text("Use 1–32 characters").await;
    s.fill("#name", "family").await;
    s.click("form[action='/groups'] button[type=submit]").await;
    s.wait_path("/groups?flash=group_created").await;
    s.client.find(Locator::Css("#add-family")).await.unwrap().select_by_value("alice").await.unwrap();
    s.click("form[action='/groups/family/members'] button").await;
    s.wait_path("/groups?flash=members_saved").await;
    assert_eq!(panel.state.store.groups().await.unwrap()[0].members, ["alice"]);
    s.shot("groups").await;

    // Invitations: the link is shown once.
    s.click("nav.tabs a[href='/invitations']").await;
    s.wait_path("/invitations").await;
    s.fill("#username", "dave").await;
    s.fill("#expiresInDays", "99").await;
    s.click("form[action='/invitations'] button[type=submit]").await;
    s.wait_text("Use 1–30 days").await;
    s.fill("#expiresInDays", "7").await;
    s.click("form[action='/invitations'] button[type=submit]").await;
    s.wait_text("Shown once").await;
    let link = s.client.find(Locator::Css("#invite-link")).await.unwrap().text().await.unwrap();
    assert!(link.starts_with("https://auth.example.com/invite/"), "{link}");
    s.shot("invitations").await;

    // Tunnels: errors next to the fields, then a restricted tunnel.
    s.click("nav a[href='/tunnels']").await;
    s.wait_path("/tunnels").await;
    s.shot("tunnels-empty").await;
    s.fill("#name", "My NAS").await;
    s.fill("#target", "nas").await;
    s.click("form[action='/tunnels'] button[type=submit]").await;
    let text = s.wait_text("a lowercase DNS label").await;
    assert!(text.contains("Give host:port with a port from 1 to 65535"), "{text}");
    let kept = s.client.find(Locator::Css("#target")).await.unwrap().prop("value").await.unwrap();
    assert_eq!(kept.as_deref(), Some("nas"), "input kept");
    s.shot("tunnels-errors").await;
    s.fill("#name", "nas").await;
    s.fill("#target", "127.0.0.1:5000").await;
    let alice_box = s.client.find(Locator::Css("input[name=allowedUsers][value=alice]")).await.unwrap();
    assert!(!alice_box.is_displayed().await.unwrap(), "users and groups only matter for restricted access");
    s.click("input[name=access][value=restricted]").await;
    s.click("input[name=allowedUsers][value=alice]").await;
    s.click("input[name=allowedGroups][value=family]").await;
    s.click("form[action='/tunnels'] button[type=submit]").await;
    let text = s.wait_text("Tunnel created").await;
    assert!(text.contains("https://nas.example.com"), "{text}");
    assert!(text.contains("/download/install.sh | sh -s -- --token <token>"), "the one install line: {text}");
    let tunnel = panel.state.store.tunnels().await.unwrap().pop().expect("tunnel created");
    assert_eq!((tunnel.agent.as_str(), tunnel.access.as_str()), ("home-nas", "restricted"));
    assert_eq!(
        (tunnel.allowed_users.clone(), tunnel.allowed_groups.clone()),
        (vec!["alice".into()], vec!["family".into()])
    );
    s.shot("tunnel-detail").await;
    s.click("nav a[href='/tunnels']").await;
    s.wait_path("/tunnels").await;
    s.click(&format!("form[action='/tunnels/{}/toggle'] button", tunnel.id)).await;
    s.wait_path("/tunnels?flash=tunnel_disabled").await;
    assert!(s.body_text().await.contains("disabled"));
    assert!(!panel.state.store.tunnel(tunnel.id).await.unwrap().unwrap().enabled);
    s.shot("tunnels-list").await;

    // Static sites.
    s.click("nav a[href='/sites']").await;
    s.wait_path("/sites").await;
    s.fill("#name", "My Docs").await;
    s.click("form[action='/sites'] button[type=submit]").await;
    s.wait_text("Use a lowercase DNS label").await;
    s.fill("#name", "docs").await;
    s.click("form[action='/sites'] button[type=submit]").await;
    // Created and probed at once: no certificate for the new name yet, so
    // it is kept and flagged, and its health says why.
    s.wait_path("/sites?flash=site_created_down").await;
    let text = s.body_text().await;
    assert!(text.contains("docs.example.com") && text.contains("does not serve yet"), "{text}");
    assert!(text.contains("down") && text.contains("no certificate for docs.example.com"), "{text}");
    s.shot("sites").await;

    // Site detail: upload a file through the browser's file input, see it listed.
    let site = panel.state.store.sites().await.unwrap().into_iter().find(|x| x.name == "docs").unwrap();
    s.click(&format!("a[href='/sites/{}']", site.id)).await;
    s.wait_text("Files of docs").await;
    let upload_dir = tempfile::tempdir().unwrap();
    let file = upload_dir.path().join("hello.txt");
    std::fs::write(&file, "hello from chromium").unwrap();
    let input = s.client.find(Locator::Css("#upload-files")).await.unwrap();
    input.send_keys(file.to_str().unwrap()).await.unwrap();
    s.click("form[enctype='multipart/form-data'] button[type=submit]").await;
    s.wait_path(&format!("/sites/{}?flash=files_uploaded", site.id)).await;
    let text = s.body_text().await;
    assert!(text.contains("hello.txt") && text.contains("index.html"), "{text}");
    let served = portico::sites::site_dir(&panel.state.settings.data_dir, "docs").join("hello.txt");
    assert_eq!(std::fs::read_to_string(served).unwrap(), "hello from chromium");
    s.shot("site-detail").await;

    // Agent detail: change capabilities; revoking needs a second, deliberate click.
    s.goto("/agents").await;
    s.click("a[href='/agents/home-nas']").await;
    s.wait_text("Capabilities").await;
    s.click("input[name=capabilities][value='tunnels:write']").await;
    s.click("input[name=capabilities][value='system:read']").await;
    s.click("form[action='/agents/home-nas/capabilities'] button").await;
    s.wait_path("/agents/home-nas?flash=caps_saved").await;
    let agent = panel.state.store.agent("home-nas".into()).await.unwrap().unwrap();
    assert_eq!(agent.capabilities, ["tunnels:read", "system:read"]);
    s.shot("agent-detail").await;
    let revoke = s.client.find(Locator::Css("details.danger button.danger")).await.unwrap();
    assert!(!revoke.is_displayed().await.unwrap(), "revoke is hidden until asked for");
    s.click("details.danger summary").await;
    s.click("details.danger button.danger").await;
    s.wait_path("/agents?flash=agent_revoked").await;
    assert!(panel.state.store.agent("home-nas".into()).await.unwrap().unwrap().revoked_at.is_some());

    s.goto("/certs").await;
    let text = s.body_text().await;
    assert!(text.contains(&panel.state.pki.admin_info().unwrap().serial));
    assert!(text.contains("panel.example.com") && text.contains("Automatic renewal"), "{text}");
    assert!(text.contains("Bring your own certificate"));
    // What nginx really serves for each name, from the last probe.
    assert!(text.contains("certificate for panel.example.com"), "{text}");
    // Binding to a hardware key: folded until asked for, then the how-to and the form.
    let csr_field = s.client.find(Locator::Css("#hw-csr")).await.unwrap();
    assert!(!csr_field.is_displayed().await.unwrap(), "the CSR form shows before it is asked for");
    s.click("#hardware > summary").await;
    assert!(csr_field.is_displayed().await.unwrap());
    assert!(s.body_text().await.contains("recover-admin"), "the way back is not told");
    s.shot("certs").await;
    s.goto("/audit?action=key.create").await;
    assert!(s.body_text().await.contains("key.create"));
    s.shot("audit").await;

    // nginx: the tree provisioning replaced, side by side with the live one.
    s.click("nav a[href='/nginx']").await;
    s.wait_path("/nginx").await;
    s.click("a[href^='/nginx/snapshots/']").await;
    s.wait_text("Changes from this snapshot").await;
    let diff_page = s.path().await;
    let marked = s.client.find_all(Locator::Css("table.sbs tr.sbs-add, table.sbs tr.sbs-chg")).await.unwrap();
    assert!(!marked.is_empty(), "changed lines are marked");
    assert!(s.body_text().await.contains("Live configuration"));
    s.shot("nginx-diff").await;

    // Operations: services are not supervised here; live logs follow new
    // lines, filter them and hold them while paused.
    s.click("nav a[href='/services']").await;
    s.wait_text("Services are not managed here").await;
    s.shot("services").await;
    let log_dir = panel.state.settings.supervisor.log_dir.clone();
    s.click("a[href='/services/relay/logs']").await;
    s.wait_text("Following").await;
    s.wait_text("relay: listening").await;
    append_log(&log_dir, "relay", "2026-01-01T00:00:01Z  WARN relay: agent garage slow");
    s.wait_text("agent garage slow").await;
    s.fill("#q", "tunnel").await;
    s.click("#log-filters button[type=submit]").await;
    s.wait_path("/services/relay/logs?level=&q=tunnel").await;
    append_log(&log_dir, "relay", "2026-01-01T00:00:02Z ERROR relay: tunnel nas failed");
    s.wait_text("tunnel nas failed").await;
    assert!(!s.body_text().await.contains("agent garage slow"), "filtered out");
    s.click("#log-pause").await;
    s.wait_text("Resume").await;
    append_log(&log_dir, "relay", "2026-01-01T00:00:03Z ERROR relay: tunnel web failed");
    s.click("#log-pause").await;
    s.wait_text("tunnel web failed").await;
    s.shot("logs").await;
    s.click("nav a[href='/system']").await;
    s.wait_text("CPU busy").await;
    assert!(s.body_text().await.contains("512.0 MiB budget"));
    s.shot("system").await;
    // Doctor: a run starts from the page and its findings arrive while it
    // runs (app.js polls /api/doctor), each with a next step.
    s.click("nav a[href='/doctor']").await;
    s.wait_text("No run yet").await;
    s.click("#doctor-run").await;
    let text = s.wait_text_within(" checks, ", Duration::from_secs(30)).await;
    assert!(text.contains(" problems, ") || text.contains(" problem, "), "{text}");
    assert!(s.client.find(Locator::Css("#doctor-findings tbody tr.finding")).await.is_ok(), "findings listed");
    assert!(text.contains("secret files and directories are private"), "{text}");
    s.shot("doctor").await;
    // The dashboard's summary counts names, not only processes.
    s.goto("/").await;
    s.wait_text("public names").await;
    s.click("nav a[href='/backups']").await;
    s.fill("#passphrase", "correct horse battery").await;
    s.click("form[action='/backups'] button[type=submit]").await;
    s.wait_text("Backup taken").await;
    let archives = portico::backup::list(&panel.state.settings.backup_dir()).unwrap();
    assert_eq!(archives.len(), 1);
    assert!(s.body_text().await.contains(&archives[0].id));
    s.shot("backups").await;
    s.client.refresh().await.unwrap();
    s.wait_text("Restore").await;
    let text = s.body_text().await;
    assert!(!text.contains("Backup taken"), "a reload takes no second backup: {text}");
    assert_eq!(portico::backup::list(&panel.state.settings.backup_dir()).unwrap().len(), 1);

    // Restore: a wrong passphrase is refused with a clear message and stages
    // nothing; the right one stages the archive behind a confirmation (the
    // restore itself is discarded here).
    let archive = portico::backup::archive_path(&panel.state.settings.backup_dir(), &archives[0].id).unwrap();
    let pick_archive = || async {
        let input = s.client.find(Locator::Css("#restore-archive")).await.unwrap();
        input.send_keys(archive.to_str().unwrap()).await.unwrap();
    };
    s.fill("#restore-passphrase", "not the passphrase at all").await;
    pick_archive().await;
    s.click("form[action^='/backups/restore'] button[type=submit]").await;
    s.wait_text("Wrong passphrase, or not an archive for this passphrase. Nothing was changed.").await;
    s.shot("backups-restore-refused").await;
    let data_dir = panel.state.settings.data_dir.clone();
    assert_eq!(portico::backup::staged::staged(&data_dir).unwrap(), None);
    s.fill("#restore-passphrase", "correct horse battery").await;
    pick_archive().await;
    s.click("form[action^='/backups/restore'] button[type=submit]").await;
    s.wait_path("/backups?flash=restore_staged").await;
    s.wait_text("Ready to restore").await;
    let restore = s.client.find(Locator::Css("#restore-staged details.danger button.danger")).await.unwrap();
    assert!(!restore.is_displayed().await.unwrap(), "restoring needs a second, deliberate click");
    s.shot("backups-restore-staged").await;
    s.click("#restore-staged form[action='/backups/restore/discard'] button").await;
    s.wait_path("/backups?flash=restore_discarded").await;
    assert_eq!(portico::backup::staged::staged(&data_dir).unwrap(), None);

    // Panel 2FA: set up with a QR code, a wrong code is refused at the field,
    // the right one turns it on; turning it off needs a code too.
    s.click("nav a[href='/settings']").await;
    s.wait_path("/settings").await;
    s.click("form[action='/settings/2fa/setup'] button").await;
    s.wait_text("Shown once").await;
    s.shot("settings-2fa-setup").await;
    let pending = panel.state.store.settings(&["panel.2fa.pending"]).await.unwrap()[0].clone().unwrap();
    s.fill("#code", "000000").await;
    s.click("form[action='/settings/2fa/confirm'] button").await;
    s.wait_text("Wrong or already used code").await;
    let code = portico::totp::code_now(&pending, OffsetDateTime::now_utc().unix_timestamp()).unwrap();
    s.fill("#code", &code).await;
    s.click("form[action='/settings/2fa/confirm'] button").await;
    s.wait_text("Your recovery codes").await;
    assert!(s.body_text().await.contains("Turn off two-factor"));
    s.shot("settings-2fa-on").await;
    panel.state.store.put_settings(vec![("panel.2fa.last_step", "0".into())]).await.unwrap();
    s.click("details.danger summary").await;
    s.fill("#code", &code).await;
    s.click("form[action='/settings/2fa/disable'] button").await;
    s.wait_path("/settings?flash=2fa_disabled").await;

    // CSRF: a form whose token was tampered with is refused and changes nothing.
    s.goto("/keys").await;
    s.fill("#name", "forged").await;
    s.client
        .execute("document.querySelector(\"form[action='/keys'] input[name=_csrf]\").value = '1.00';", vec![])
        .await
        .unwrap();
    s.click("form[action='/keys'] button[type=submit]").await;
    s.wait_text("did not come from this panel").await;
    assert!(!panel.state.store.api_keys().await.unwrap().iter().any(|k| k.name == "forged"));
    s.shot("csrf-refused").await;

    // Wide: the whole navigation, no Menu button.
    s.goto("/agents").await;
    let display = |selector: &str| format!("return getComputedStyle(document.querySelector('{selector}')).display");
    assert_eq!(s.client.execute(&display(".menu-button"), vec![]).await.unwrap(), "none");
    assert_ne!(s.client.execute(&display("#main-nav"), vec![]).await.unwrap(), "none");

    // Phone width: one column, the navigation folded behind a Menu button.
    s.client.set_window_size(390, 1000).await.unwrap();
    s.goto("/agents").await;
    assert_eq!(s.client.execute(&display("#main-nav"), vec![]).await.unwrap(), "none", "folded on a phone");
    s.shot("agents-phone").await;
    s.click(".menu-button").await;
    assert_ne!(s.client.execute(&display("#main-nav"), vec![]).await.unwrap(), "none", "the menu opens");
    let expanded = "return document.querySelector('.menu-button').getAttribute('aria-expanded')";
    assert_eq!(s.client.execute(expanded, vec![]).await.unwrap(), "true");
    s.shot("menu-phone").await;
    // Stacked table cells carry their column's heading; details read as key/value.
    s.goto("/audit").await;
    let label = "return getComputedStyle(document.querySelector('table.audit tbody td'), '::before').content";
    assert_eq!(s.client.execute(label, vec![]).await.unwrap(), "\"When: \"");
    s.shot("audit-phone").await;
    // The diff keeps its two columns and scrolls sideways inside its box.
    s.goto(&diff_page).await;
    let fits = "return document.documentElement.scrollWidth <= window.innerWidth";
    assert_eq!(s.client.execute(fits, vec![]).await.unwrap(), true, "the page itself does not scroll sideways");
    let scrolls = "const b = document.querySelector('.sbs-scroll'); return b.scrollWidth > b.clientWidth";
    assert_eq!(s.client.execute(scrolls, vec![]).await.unwrap(), true);
    s.shot("nginx-diff-phone").await;

    // Every page of the navigation at the two sizes operators use: a laptop
    // (1400×1000) and a phone (390×844). Nothing scrolls sideways.
    s.client.set_window_size(1400, 1000).await.unwrap();
    s.goto("/").await;
    let pages = s
        .client
        .execute("return [...document.querySelectorAll('#main-nav a')].map(a => a.getAttribute('href'))", vec![])
        .await
        .unwrap();
    let pages: Vec<String> = pages.as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect();
    assert!(pages.len() >= 10, "{pages:?}");
    for (size, (w, h)) in [("desktop", (1400, 1000)), ("phone", (390, 844))] {
        s.client.set_window_size(w, h).await.unwrap();
        for page in &pages {
            s.goto(page).await;
            let wide = "const w = document.documentElement.clientWidth; \
                return [document.documentElement.scrollWidth, innerWidth, w].concat([...document.querySelectorAll('*')]\
                .filter(e => e.getBoundingClientRect().right + parseFloat(getComputedStyle(e).marginRight || 0) > w + 1 || e.scrollWidth > e.clientWidth + 1 && getComputedStyle(e).overflowX == 'visible').slice(0, 8).map(e => `${e.tagName}.${e.className}#${e.id} ${Math.round(e.getBoundingClientRect().right)}`))";
            if s.client.execute(fits, vec![]).await.unwrap() != true {
                s.shot(&format!("{size}-overflow")).await;
                panic!("{page} scrolls sideways on a {size}: {:?}", s.client.execute(wide, vec![]).await.unwrap());
            }
            let name = match page.trim_matches('/') {
                "" => "dashboard".to_string(),
                other => other.replace('/', "-"),
            };
            s.shot(&format!("{size}-{name}")).await;
        }
    }

    s.client.close().await.unwrap();

    // Dark colour scheme follows the system setting.
    let dark_profile = tempfile::tempdir().unwrap();
    let client = browser_with(&driver, &chromium, dark_profile.path(), &["--force-dark-mode"]).await;
    let s = Session { client, ..s };
    s.goto("/keys").await;
    let dark = s.client.execute("return matchMedia('(prefers-color-scheme: dark)').matches", vec![]).await.unwrap();
    assert_eq!(dark, true, "--force-dark-mode sets prefers-color-scheme: dark");
    let bg = s.client.execute("return getComputedStyle(document.body).backgroundColor", vec![]).await.unwrap();
    assert_eq!(bg, "rgb(17, 20, 24)", "dark background");
    s.shot("keys-dark").await;
    s.client.close().await.unwrap();
}

#[actix_web::test]
async fn no_link_or_redirect_escapes_the_ingress_path() {
    let Some((chromium, chromedriver)) = chromium_tools() else { return };
    let panel = start_panel(Front::Ingress).await;
    let driver = Driver::start(&chromedriver);
    let profile = tempfile::tempdir().unwrap();
    let client = browser(&driver, &chromium, profile.path()).await;
    let origin = format!("http://{}", panel.addr);
    let s = Session { client, origin: origin.clone(), shots: screenshots_dir(), prefix: "ingress-" };
    let under = format!("{origin}{INGRESS}/");
    let check = |urls: Vec<String>, page: &str| {
        assert!(!urls.is_empty(), "{page}");
        for url in urls.into_iter().filter(|u| !u.starts_with("data:")) {
            assert!(url.starts_with(&under), "{page}: {url} escapes {INGRESS}");
        }
    };

    s.goto(&format!("{INGRESS}/")).await;
    s.wait_path(&format!("{INGRESS}/onboarding")).await;
    check(s.urls().await, "onboarding");
    s.fill("#domain", "example.org").await;
    s.fill("#email", "ops@example.org").await;
    s.click("form[action$='/onboarding/domain'] button").await;
    s.wait_path(&format!("{INGRESS}/onboarding?flash=domain_saved")).await;
    s.click("form[action$='/onboarding/dns'] button").await;
    s.wait_text("all good").await;
    check(s.urls().await, "dns check");
    s.shot("onboarding").await;
    // The progress WebSocket stays under the prefix (the Supervisor
    // stand-in refuses anything else, and the login arrives only over it).
    provision(&s, &panel, INGRESS).await;
    s.goto(&format!("{INGRESS}/keys")).await;
    s.fill("#name", "ha").await;
    s.click("form[action$='/keys'] button[type=submit]").await;
    s.wait_text("Shown once").await;
    s.click("details.danger summary").await;
    s.click("details.danger button.danger").await;
    s.wait_path(&format!("{INGRESS}/keys?flash=key_revoked")).await;

    s.goto(&format!("{INGRESS}/users")).await;
    s.fill("#username", "bob").await;
    s.click("form[action$='/users'] button[type=submit]").await;
    s.wait_text("Shown once").await;
    check(s.urls().await, "user created");
    s.goto(&format!("{INGRESS}/groups")).await;
    s.fill("#name", "family").await;
    s.click("form[action$='/groups'] button[type=submit]").await;
    s.wait_path(&format!("{INGRESS}/groups?flash=group_created")).await;

    for page in [
        "/",
        "/tunnels",
        "/sites",
        "/agents",
        "/users",
        "/users/bob",
        "/groups",
        "/invitations",
        "/certs",
        "/keys",
        "/settings",
        "/services",
        "/services/relay/logs",
        "/system",
        "/backups",
        "/nginx",
        "/audit",
        "/doctor",
    ] {
        s.goto(&format!("{INGRESS}{page}")).await;
        assert!(!s.body_text().await.contains("outside the ingress path"), "{page}");
        check(s.urls().await, page);
        // Every nav link leads to a page that answers under the prefix.
    }
    let nav: Vec<String> = s.urls().await.into_iter().filter(|u| !u.contains("/static/")).collect();
    for url in nav {
        s.client.goto(&url).await.unwrap();
        let text = s.body_text().await;
        assert!(!text.contains("outside the ingress path"), "{url}: {text}");
    }
    s.goto(&format!("{INGRESS}/nginx")).await;
    s.click("a[href*='/nginx/snapshots/']").await;
    s.wait_text("Changes from this snapshot").await;
    check(s.urls().await, "nginx diff");
    s.shot("nginx-diff").await;
    // The live logs follow their WebSocket under the prefix too.
    s.goto(&format!("{INGRESS}/services/relay/logs")).await;
    s.wait_text("Following").await;
    s.wait_text("relay: listening").await;
    s.shot("logs").await;
    s.goto(&format!("{INGRESS}/")).await;
    s.shot("dashboard").await;
    s.client.close().await.unwrap();
}

// ---- Panel 2FA recovery codes, the return to the page asked for, and
// ---- removing a revoked agent (issue 21).

/// The code page, then the page asked for; a recovery code instead of the
/// authenticator, once; a revoked agent leaves the list.
#[actix_web::test]
async fn recovery_codes_and_the_return_after_the_code_in_chromium() {
    use portico::onboarding::keys;
    let Some((chromium, chromedriver)) = chromium_tools() else { return };
    let panel = start_panel(Front::Nginx).await;
    let store = &panel.state.store;
    let completed = [(keys::DOMAIN, "example.com".to_string()), (keys::STATE, "COMPLETED".to_string())];
    store.put_settings(completed.to_vec()).await.unwrap();
    panel.state.set_onboarding_state(OnboardingState::Completed);
    let driver = Driver::start(&chromedriver);
    let profile = tempfile::tempdir().unwrap();
    let client = browser(&driver, &chromium, profile.path()).await;
    let s = Session { client, origin: format!("http://{}", panel.addr), shots: screenshots_dir(), prefix: "2fa-" };

    // A revoked agent: Remove, confirmed, and it leaves the list; an active one has no Remove.
    for label in ["old-nas", "garage"] {
        let caps = portico::agents::validate(Some(label), &[]).unwrap();
        portico::agents::issue(panel.state.pki.clone(), store, label.into(), caps).await.unwrap();
    }
    store.revoke_agent("old-nas".into(), OffsetDateTime::now_utc()).await.unwrap();
    s.goto("/agents").await;
    assert!(s.client.find(Locator::Css("form[action='/agents/garage/remove']")).await.is_err());
    let remove = s.client.find(Locator::Css("form[action='/agents/old-nas/remove'] button")).await.unwrap();
    assert!(!remove.is_displayed().await.unwrap(), "removing needs a second, deliberate click");
    s.click("#agents details.danger summary").await;
    s.shot("agents-remove-confirm").await;
    s.click("form[action='/agents/old-nas/remove'] button").await;
    s.wait_path("/agents?flash=agent_removed").await;
    let text = s.wait_text("Agent removed from the list").await;
    assert!(!text.contains("old-nas") && text.contains("garage"), "{text}");
    assert!(store.agent("old-nas".into()).await.unwrap().is_none());
    s.shot("agents-removed").await;

    // The warning about :9292 comes before two-factor is on, at every step.
    s.goto("/settings").await;
    let warning = format!("closes the by-IP address https://{PUBLIC_IP}:9292");
    assert!(s.body_text().await.contains(&warning));
    s.click("form[action='/settings/2fa/setup'] button").await;
    s.wait_text("Shown once").await;
    assert!(s.body_text().await.contains(&warning), "next to the code that turns it on");
    s.shot("settings-setup-warning").await;
    let pending = store.settings(&["panel.2fa.pending"]).await.unwrap()[0].clone().unwrap();
    let code = portico::totp::code_now(&pending, OffsetDateTime::now_utc().unix_timestamp()).unwrap();
    s.fill("#code", &code).await;
    s.click("form[action='/settings/2fa/confirm'] button").await;
    s.wait_text("Your recovery codes").await;
    let listed = s.client.find(Locator::Css("#recovery-codes-list")).await.unwrap().text().await.unwrap();
    let codes: Vec<String> = listed.lines().map(str::to_string).collect();
    assert_eq!(codes.len(), 10, "{listed}");
    assert!(s.client.find(Locator::Css("button[data-copy='recovery-codes-list']:not([hidden])")).await.is_ok());
    s.shot("settings-recovery-codes").await;
    s.goto("/settings").await;
    let text = s.body_text().await;
    assert!(text.contains("10 of 10 recovery codes left") && !text.contains(&codes[0]), "shown once: {text}");

    // Without the session: the code page, a recovery code, then the page asked for.
    s.client.delete_all_cookies().await.unwrap();
    s.goto("/audit?action=2fa.enable").await;
    s.wait_path("/settings/2fa/verify?next=%2Faudit%3Faction%3D2fa.enable").await;
    s.click("details.confirm summary").await;
    s.fill("#recovery-code", &codes[0]).await;
    s.shot("verify-recovery-code").await;
    s.click("form:has(#recovery-code) button[type=submit]").await;
    s.wait_path("/audit?action=2fa.enable").await;
    s.wait_text("2fa.enable").await;
    s.shot("audit-after-recovery-code").await;
    s.goto("/settings").await;
    s.wait_text("9 of 10 recovery codes left").await;

    // The same code again is refused; the authenticator code returns to the page asked for.
    s.client.delete_all_cookies().await.unwrap();
    s.goto("/tunnels").await;
    s.wait_path("/settings/2fa/verify?next=%2Ftunnels").await;
    s.click("details.confirm summary").await;
    s.fill("#recovery-code", &codes[0]).await;
    s.click("form:has(#recovery-code) button[type=submit]").await;
    s.wait_text("Wrong or already used code").await;
    store.put_settings(vec![("panel.2fa.last_step", "0".into())]).await.unwrap();
    s.fill("#code", &code).await;
    s.click("form:has(#code) button[type=submit]").await;
    s.wait_path("/tunnels").await;
    s.client.close().await.unwrap();
}

// ---- Wording as a new operator reads it (issue 21) ----

/// Texts of every element `css` matches.
async fn texts(s: &Session, css: &str) -> Vec<String> {
    let script = format!("return [...document.querySelectorAll(\"{css}\")].map(e => e.textContent.trim())");
    let found = s.client.execute(&script, vec![]).await.unwrap();
    found.as_array().unwrap().iter().map(|v| v.as_str().unwrap_or_default().to_string()).collect()
}

#[actix_web::test]
async fn pages_say_things_once_in_plain_words() {
    let Some((chromium, chromedriver)) = chromium_tools() else { return };
    let panel = start_panel(Front::Nginx).await;
    let store = &panel.state.store;
    store
        .put_settings(vec![
            (portico::onboarding::keys::DOMAIN, "example.com".into()),
            (portico::onboarding::keys::STATE, OnboardingState::Completed.as_str().into()),
        ])
        .await
        .unwrap();
    panel.state.set_onboarding_state(OnboardingState::Completed);
    let caps = vec![portico::identity::Capability::TunnelsRead];
    portico::agents::issue(panel.state.pki.clone(), store, "home".into(), caps).await.unwrap();
    let driver = Driver::start(&chromedriver);
    let profile = tempfile::tempdir().unwrap();
    let client = browser(&driver, &chromium, profile.path()).await;
    let s = Session { client, origin: format!("http://{}", panel.addr), shots: screenshots_dir(), prefix: "wording-" };

    // One "Tunnels" heading; field errors are sentences.
    s.goto("/tunnels").await;
    assert_eq!(texts(&s, "h1, h2").await.iter().filter(|t| *t == "Tunnels").count(), 1);
    let modes = texts(&s, "fieldset label").await.join("\n");
    assert!(modes.contains("Signed-in visitors — any visitor user"), "{modes}");
    s.fill("#name", "Nas").await;
    s.fill("#target", "nas").await;
    s.click("form[action='/tunnels'] button[type=submit]").await;
    s.wait_text("Use a lowercase DNS label").await;
    let errors = texts(&s, ".field-error").await;
    assert!(errors.len() >= 2, "{errors:?}");
    for e in &errors {
        assert!(e.chars().next().is_some_and(char::is_uppercase), "lowercase error: {e}");
    }
    s.shot("tunnel-errors").await;

    // The address is a link that opens in a new tab; access has one name.
    s.fill("#name", "nas").await;
    s.fill("#target", "127.0.0.1:5000").await;
    s.click("form[action='/tunnels'] button[type=submit]").await;
    s.wait_text("Tunnel created").await;
    let link = s.client.find(Locator::Css("dd a.address")).await.unwrap();
    assert_eq!(link.attr("href").await.unwrap().as_deref(), Some("https://nas.example.com/"));
    assert_eq!(link.attr("target").await.unwrap().as_deref(), Some("_blank"));
    assert_eq!(link.attr("rel").await.unwrap().as_deref(), Some("noopener"));
    assert!(texts(&s, "dd").await.iter().any(|t| t == "Signed-in visitors"), "one name for the access mode");
    s.shot("tunnel-page").await;
    s.goto("/tunnels").await;
    let row = texts(&s, "tbody tr").await.join("\n");
    assert!(row.contains("https://nas.example.com/") && row.contains("Signed-in visitors"), "{row}");
    assert!(!row.contains("authenticated"), "{row}");
    s.shot("tunnels").await;

    // Renew buttons say "Renew"; the row names the host, the accessible name keeps it.
    s.goto("/certs").await;
    let buttons = s.client.find_all(Locator::Css("form[action='/certs/renew'] button")).await.unwrap();
    assert!(buttons.len() >= 3);
    for b in &buttons {
        assert_eq!(b.text().await.unwrap(), "Renew");
        let name = b.attr("aria-label").await.unwrap().unwrap_or_default();
        assert!(name.starts_with("Renew ") && name.ends_with(".example.com now"), "{name}");
    }
    let text = s.body_text().await;
    assert!(text.contains("weekly on Monday and Thursday at 03:17 UTC"), "{text}");
    assert!(!text.contains("0 17 3 * * Mon,Thu"), "the cron expression is not the schedule's words");
    s.shot("certs").await;
    s.goto("/settings").await;
    assert!(s.body_text().await.contains("weekly on Monday and Thursday at 03:17 UTC; next run 20"));
    s.goto("/backups").await;
    assert!(s.body_text().await.contains("Scheduled backups are off"));

    // The nginx page lists each live file once.
    s.goto("/nginx").await;
    let files = texts(&s, "details.config-file summary").await;
    let mut unique = files.clone();
    unique.sort();
    unique.dedup();
    assert!(!files.is_empty() && unique.len() == files.len(), "{files:?}");
    let code = texts(&s, "code").await;
    for f in &files {
        assert_eq!(code.iter().filter(|c| *c == f).count(), 1, "{f} listed once");
    }
    s.shot("nginx").await;

    // Young sparklines: dots on a scale from zero, and a word that it is early.
    s.goto("/").await;
    let text = s.body_text().await;
    assert!(text.contains("collecting: a sample a minute"), "{text}");
    assert!(!s.client.find_all(Locator::Css("svg.spark circle")).await.unwrap().is_empty());
    s.shot("dashboard").await;
    s.client.close().await.unwrap();
}

// ---- Settings → Runtime (runtime settings) --------------------------------

/// A completed panel (no onboarding run: nothing here needs certificates)
/// whose environment sets `PORTICO__AUTHD__SESSION_HOURS`, behind the nginx
/// stand-in. Returns its state, address and data dir.
async fn start_runtime_panel() -> (web::Data<AppState>, SocketAddr, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let env = [("PORTICO__AUTHD__SESSION_HOURS".to_string(), "8".to_string())].into();
    let loaded = Settings::load(&portico::settings::Sources { env, ..Default::default() }).unwrap();
    let mut settings = Settings { data_dir: dir.path().to_path_buf(), ..Default::default() };
    (settings.authd, settings.origins) = (loaded.authd, loaded.origins);
    settings.public_ip = Some(PUBLIC_IP.parse().unwrap());
    settings.nginx.enabled = false;
    portico::init::run(&settings).unwrap();
    let state = web::Data::new(AppState::load(settings).await.unwrap());
    let rows = vec![
        (portico::onboarding::keys::STATE, OnboardingState::Completed.as_str().to_string()),
        (portico::onboarding::keys::DOMAIN, "example.org".to_string()),
    ];
    state.store.put_settings(rows).await.unwrap();
    state.set_onboarding_state(OnboardingState::Completed);
    let serial = state.pki.admin_info().unwrap().serial;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let app_state = state.clone();
    let server = HttpServer::new(move || {
        let serial = serial.clone();
        App::new()
            .wrap(from_fn(move |req: ServiceRequest, next: Next<_>| {
                let serial = serial.clone();
                async move { front_proxy(Front::Nginx, &serial, req, next).await }
            }))
            .configure(configure(app_state.clone(), Channel::Panel))
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    actix_web::rt::spawn(server);
    (state, addr, dir)
}

#[actix_web::test]
async fn admin_changes_runtime_settings_in_chromium() {
    let (Some(chromium), Some(chromedriver)) = (tool("chromium"), tool("chromedriver")) else {
        eprintln!("SKIPPED: chromium and chromium-driver are not installed (apt-get install chromium chromium-driver)");
        return;
    };
    let (state, addr, _dir) = start_runtime_panel().await;
    let driver = Driver::start(&chromedriver);
    let profile = tempfile::tempdir().unwrap();
    let client = browser(&driver, &chromium, profile.path()).await;
    let s = Session { client, origin: format!("http://{addr}"), shots: screenshots_dir(), prefix: "" };

    // From Settings, its tab leads to the runtime settings.
    s.goto("/settings").await;
    s.click("nav.tabs a[href$='/settings/runtime']").await;
    s.wait_path("/settings/runtime").await;
    let text = s.wait_text("Runtime settings").await;
    assert!(text.contains("Read-only: set by PORTICO__AUTHD__SESSION_HOURS in the environment."), "{text}");
    let hours = s.client.find(Locator::Css("#sessionHours")).await.unwrap();
    assert!(!hours.is_enabled().await.unwrap(), "an environment-set field cannot be edited");
    assert_eq!(hours.prop("value").await.unwrap().as_deref(), Some("8"));

    // A value out of range: the page says which and why, keeps the input, saves nothing.
    s.fill("#renewDays", "120").await;
    s.click("form[action$='/settings/runtime'] button[type=submit]").await;
    s.wait_text("must be a whole number from 1 to 89 (days)").await;
    let renew = s.client.find(Locator::Css("#renewDays")).await.unwrap();
    assert_eq!(renew.prop("value").await.unwrap().as_deref(), Some("120"));
    s.shot("runtime-settings-error").await;
    assert!(state.store.runtime_settings().await.unwrap().is_empty());

    // Good values: saved, back on the page (POST, redirect, GET) with a message.
    s.fill("#renewDays", "21").await;
    s.fill("#banSecs", "60").await;
    s.client.find(Locator::Css("#panelLogLevel")).await.unwrap().select_by_value("debug").await.unwrap();
    s.click("form[action$='/settings/runtime'] button[type=submit]").await;
    s.wait_path("/settings/runtime?flash=runtime_saved").await;
    let text = s.wait_text("Runtime settings saved.").await;
    assert!(text.contains("Changed in the panel (default: 300)."), "{text}");
    let value = |css: &'static str| {
        let client = s.client.clone();
        async move { client.find(Locator::Css(css)).await.unwrap().prop("value").await.unwrap() }
    };
    assert_eq!(value("#banSecs").await.as_deref(), Some("60"));
    assert_eq!(value("#renewDays").await.as_deref(), Some("21"));
    assert_eq!(value("#panelLogLevel").await.as_deref(), Some("debug"));
    assert_eq!(value("#sessionHours").await.as_deref(), Some("8"), "the environment still wins");
    assert_eq!(state.certs.renew_days(), 21, "in force in the running panel");
    s.shot("runtime-settings").await;

    // The Settings page shows the renewal days now in force.
    s.goto("/settings").await;
    s.wait_text("fewer than 21 days remain").await;
    s.client.close().await.unwrap();
}
