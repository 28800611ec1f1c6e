//! The visitor login portal in real headless Chromium, behind the real nginx
//! as Portico renders it (TLS, `auth_request`, `error_page 403`) with authd
//! on loopback: an invitee signs up from an invitation link for one app,
//! lands back on it with the signup code, meets an app not shared with
//! them, signs out, and someone else signs in there.
//!
//! Every page is shot at desktop (1400×1000) and phone (390×844) size into
//! `target/ui-screenshots/portal-*.png`; at phone size the page must not
//! scroll sideways, its buttons are as wide as its inputs and inputs use
//! 16px text. Skips with a message only when chromium, chromedriver or
//! nginx is not installed.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::Locator;
use portico::authd::{AuthdState, Clock, configure};
use portico::settings::Settings;
use portico::store::{SiteFields, Store};
use time::OffsetDateTime;

#[path = "support/chromium.rs"]
#[allow(dead_code)]
mod chromium;
use chromium::{Driver, Nginx, Session, browser_with, screenshots_dir, tool};

const DOMAIN: &str = "example.test";
const PASSWORD: &str = "a long enough passphrase";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The appliance's visitor side: store, authd on its own thread, nginx.
struct World {
    store: Store,
    port: u16,
    _nginx: Nginx,
    _run: tempfile::TempDir,
    _dir: tempfile::TempDir,
}

/// One certificate for `*.example.test`; the browser ignores who signed it.
fn write_wildcard_cert(data_dir: &Path) {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec![format!("*.{DOMAIN}")]).unwrap().self_signed(&key).unwrap();
    let paths = portico::nginx::state::cert_paths(data_dir, &format!("*.{DOMAIN}"));
    std::fs::create_dir_all(paths.fullchain.parent().unwrap()).unwrap();
    std::fs::write(&paths.fullchain, cert.pem()).unwrap();
    std::fs::write(&paths.key, key.serialize_pem()).unwrap();
}

fn start_authd(settings: Settings) {
    let listener = TcpListener::bind(settings.authd.listen).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let store = Store::open(&settings.db_path()).unwrap();
            let state = actix_web::web::Data::new(AuthdState::new(settings, store, Clock::default()).await.unwrap());
            let server = actix_web::HttpServer::new(move || actix_web::App::new().configure(configure(state.clone())))
                .workers(1)
                .listen(listener)
                .unwrap()
                .run();
            tx.send(()).unwrap();
            server.await.unwrap();
        })
    });
    rx.recv().unwrap();
}

async fn site(store: &Store, data_dir: &Path, name: &str, access: &str, groups: &[&str], title: &str) {
    let fields = SiteFields {
        name: name.into(),
        spa_fallback: false,
        access: access.into(),
        allowed_users: vec![],
        allowed_groups: groups.iter().map(|g| g.to_string()).collect(),
        max_bytes: 1 << 20,
    };
    store.insert_site(fields, OffsetDateTime::now_utc()).await.unwrap();
    let dir = data_dir.join("sites").join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("index.html"), format!("<!doctype html><title>{title}</title><h1>{title}</h1>")).unwrap();
}

async fn start_world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let run = tempfile::tempdir().unwrap();
    for d in [dir.path(), run.path()] {
        use std::os::unix::fs::PermissionsExt;
        // nginx's workers read the site files and certificates as another user.
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let mut settings = Settings { data_dir: dir.path().to_path_buf(), ..Default::default() };
    settings.nginx.run_dir = run.path().to_path_buf();
    settings.nginx.bind = "127.0.0.1".parse().unwrap();
    (settings.nginx.http_port, settings.nginx.https_port, settings.nginx.admin_port) =
        (free_port(), free_port(), free_port());
    settings.authd.listen = SocketAddr::from(([127, 0, 0, 1], free_port()));
    settings.panel.visitor_log_port = 0;
    portico::init::run(&settings).unwrap();
    let store = Store::open(&settings.db_path()).unwrap();
    store.put_settings(vec![(portico::onboarding::keys::DOMAIN, DOMAIN.into())]).await.unwrap();
    store.insert_group("staff".into(), String::new(), OffsetDateTime::now_utc()).await.unwrap();
    site(&store, dir.path(), "docs", "authenticated", &[], "Family docs").await;
    site(&store, dir.path(), "wiki", "restricted", &["staff"], "Staff wiki").await;
    write_wildcard_cert(dir.path());
    start_authd(settings.clone());

    let tree = portico::nginx::state::render_state(&settings, &store).await.unwrap();
    portico::nginx::state::applier(&settings).install(&tree, "first start").unwrap();
    let child = Command::new(&settings.nginx.bin)
        .arg("-p")
        .arg(run.path())
        .arg("-c")
        .arg(settings.nginx_live_dir().join("nginx.conf"))
        .args(["-g", "daemon off;"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start nginx");
    let nginx = Nginx(child);
    let port = settings.nginx.https_port;
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nginx did not start");
        std::thread::sleep(Duration::from_millis(20)); // poll interval
    }
    World { store, port, _nginx: nginx, _run: run, _dir: dir }
}

/// Desktop and phone sizes, as `(width, height, suffix)`.
const SIZES: [(u32, u32, &str); 2] = [(1400, 1000, "desktop"), (390, 844, "phone")];

/// At phone width: no sideways scrolling; the form's first input and its
/// button are equally wide; inputs use 16px text (no zoom on focus).
const PHONE_LAYOUT: &str = "
    if (document.documentElement.scrollWidth > window.innerWidth) return 'the page scrolls sideways';
    const f = document.querySelector('main form');
    const i = f && f.querySelector('input:not([type=hidden]):not([type=checkbox]):not([hidden])');
    const b = f && f.querySelector('button');
    if (!i || !b) return 'ok';
    const iw = i.getBoundingClientRect().width, bw = b.getBoundingClientRect().width;
    if (Math.abs(iw - bw) > 0.5) return `button ${bw}px wide, input ${iw}px`;
    const size = parseFloat(getComputedStyle(i).fontSize);
    return size < 16 ? `input text ${size}px` : 'ok';";

async fn layout_problem(s: &Session) -> String {
    s.client.execute(PHONE_LAYOUT, vec![]).await.unwrap().as_str().unwrap_or("no answer").to_string()
}

/// Sizes the window so the page itself (the viewport) is `w`×`h`.
async fn viewport(s: &Session, w: u32, h: u32) {
    s.client.set_window_size(w, h).await.unwrap();
    let inner = s.client.execute("return [window.innerWidth, window.innerHeight]", vec![]).await.unwrap();
    let (iw, ih) = (inner[0].as_u64().unwrap_or(0) as u32, inner[1].as_u64().unwrap_or(0) as u32);
    if (iw, ih) != (w, h) {
        s.client.set_window_size(2 * w - iw.min(w), 2 * h - ih.min(h)).await.unwrap();
    }
}

/// Shots of the current page at both sizes, checking the phone layout.
async fn shots(s: &Session, name: &str) {
    for (w, h, suffix) in SIZES {
        viewport(s, w, h).await;
        if suffix == "phone" {
            assert_eq!(layout_problem(s).await, "ok", "{name} at {w}×{h}");
        }
        s.shot(&format!("{name}-{suffix}")).await;
    }
    viewport(s, SIZES[0].0, SIZES[0].1).await;
}

async fn attr(s: &Session, css: &str, name: &str) -> String {
    s.client.find(Locator::Css(css)).await.unwrap().attr(name).await.unwrap().unwrap_or_default()
}

async fn text_of(s: &Session, css: &str) -> String {
    s.client.find(Locator::Css(css)).await.unwrap().text().await.unwrap()
}

fn code_now(secret: &str) -> String {
    portico::totp::code_now(secret, OffsetDateTime::now_utc().unix_timestamp()).unwrap()
}

#[actix_web::test]
async fn visitor_walks_the_login_portal_in_chromium() {
    let (Some(chromium), Some(chromedriver)) = (tool("chromium"), tool("chromedriver")) else {
        eprintln!("SKIPPED: chromium and chromium-driver are not installed (apt-get install chromium chromium-driver)");
        return;
    };
    if !Path::new(&Settings::default().nginx.bin).exists() {
        eprintln!("SKIPPED: the portal runs behind nginx (apt-get install nginx)");
        return;
    }
    let w = start_world().await;
    let port = w.port;
    let driver = Driver::start(&chromedriver);
    let profile = tempfile::tempdir().unwrap();
    let resolve = format!("--host-resolver-rules=MAP *.{DOMAIN} 127.0.0.1");
    let client =
        browser_with(&driver, &chromium, profile.path(), &["--ignore-certificate-errors", resolve.as_str()]).await;
    let origin = format!("https://auth.{DOMAIN}:{port}");
    let s = Session { client, origin: origin.clone(), shots: screenshots_dir(), prefix: "portal-" };
    let docs = format!("https://docs.{DOMAIN}:{port}/");
    let wiki = format!("https://wiki.{DOMAIN}:{port}/");

    // An invitation link for the docs site: the QR code, the key by hand,
    // and a weak password refused next to its field.
    let inv =
        portico::users::create_invitation(&w.store, "admin", "erin".into(), String::new(), vec![], None).await.unwrap();
    let secret = inv.invitation.totp_secret.clone();
    s.goto(&format!("/invite/{}?rd={docs}", inv.token)).await;
    let text = s.wait_text("Set up your account").await;
    assert!(text.contains("Welcome, erin"), "{text}");
    assert_eq!(text_of(&s, "#site").await, DOMAIN, "the operator's domain in the header");
    assert!(s.client.find(Locator::Css(".qr svg")).await.unwrap().is_displayed().await.unwrap());
    assert_eq!(attr(&s, "#password", "autocomplete").await, "new-password");
    assert_eq!(attr(&s, "#code", "inputmode").await, "numeric");
    assert_eq!(attr(&s, "#code", "autocomplete").await, "one-time-code");
    shots(&s, "invite").await;
    s.fill("#password", "short").await;
    s.fill("#code", &code_now(&secret)).await;
    s.click("main form button").await;
    s.wait_text("Use at least 12 characters.").await;
    assert_eq!(attr(&s, "#password", "aria-describedby").await, "password-error");
    shots(&s, "invite-error").await;

    // Account created, with the way back to the app the invitation is for.
    let signup_code = code_now(&secret);
    s.fill("#password", PASSWORD).await;
    s.fill("#code", &signup_code).await;
    s.click("main form button").await;
    let text = s.wait_text("Account created").await;
    assert!(text.contains(&format!("Continue to docs.{DOMAIN}:{port}")), "{text}");
    assert_eq!(attr(&s, "#continue", "href").await, docs);
    shots(&s, "created").await;

    // Back to the app: nginx sends erin to sign in, and the code she used
    // at signup a moment ago signs her in (no wait for the next one).
    s.click("#continue").await;
    let text = s.wait_text(&format!("to continue to docs.{DOMAIN}:{port}")).await;
    assert!(text.contains("Sign in"), "{text}");
    s.fill("#username", "erin").await;
    s.fill("#password", PASSWORD).await;
    s.click("main form button").await;
    s.wait_text("Signing in as erin").await;
    s.fill("#code", &signup_code).await;
    s.click("main form button").await;
    s.wait_text("Family docs").await;
    assert_eq!(s.client.current_url().await.unwrap().as_str(), docs);

    // An app not shared with erin: the portal's page on the app's own name,
    // styled from the portal's origin, with a way to switch accounts.
    s.client.goto(&wiki).await.unwrap();
    let text = s.wait_text("Not shared with you").await;
    assert!(text.contains("Signed in as erin"), "{text}");
    let radius = "return getComputedStyle(document.querySelector('.portal-card')).borderTopLeftRadius";
    assert_eq!(s.client.execute(radius, vec![]).await.unwrap(), "12px", "portal.css loads on the app's name");
    shots(&s, "denied").await;
    s.click("#switch").await;
    let text = s.wait_text("Sign out").await;
    assert!(text.contains("Signed in as erin"), "{text}");
    shots(&s, "signout").await;
    s.click("main form button").await;
    s.wait_text("You are signed out").await;
    shots(&s, "signed-out").await;

    // Someone else signs in for the wiki: a typo first, then the two-step
    // page, where "sign in as someone else" is one link away.
    s.click("#signin").await;
    s.wait_text(&format!("to continue to wiki.{DOMAIN}:{port}")).await;
    assert_eq!(attr(&s, "#username", "autocomplete").await, "username");
    assert_eq!(attr(&s, "#password", "autocomplete").await, "current-password");
    shots(&s, "signin").await;
    let new = portico::users::NewUser {
        username: "bob".into(),
        password: PASSWORD.into(),
        groups: vec!["staff".into()],
        totp: true,
        ..Default::default()
    };
    let bob = portico::users::create_user(&w.store, new).await.unwrap().totp.unwrap().totp_secret;
    s.fill("#username", "erin").await;
    s.fill("#password", PASSWORD).await;
    s.click("main form button").await;
    s.wait_text("Signing in as erin").await;
    s.click("#switch").await;
    s.wait_text(&format!("to continue to wiki.{DOMAIN}:{port}")).await;
    s.fill("#username", "bob").await;
    s.fill("#password", "not the password").await;
    s.click("main form button").await;
    s.wait_text("Wrong username or password.").await;
    let kept = s.client.find(Locator::Css("#username")).await.unwrap().prop("value").await.unwrap();
    assert_eq!(kept.as_deref(), Some("bob"), "the username is kept");
    assert_eq!(attr(&s, "#password", "aria-invalid").await, "true");
    shots(&s, "signin-error").await;
    s.fill("#password", PASSWORD).await;
    s.click("main form button").await;
    s.wait_text("Signing in as bob").await;
    assert_eq!(attr(&s, "#code", "autocomplete").await, "one-time-code");
    shots(&s, "totp").await;
    let code = code_now(&bob);
    s.fill("#code", if code == "000000" { "111111" } else { "000000" }).await;
    s.click("main form button").await;
    s.wait_text("That code is not valid or was already used.").await;
    shots(&s, "totp-error").await;
    s.fill("#code", &code).await;
    s.click("main form button").await;
    s.wait_text("Staff wiki").await;
    assert_eq!(s.client.current_url().await.unwrap().as_str(), wiki);
    s.client.close().await.unwrap();

    // Dark, as the system says.
    let dark = tempfile::tempdir().unwrap();
    let args = ["--ignore-certificate-errors", resolve.as_str(), "--force-dark-mode"];
    let client = browser_with(&driver, &chromium, dark.path(), &args).await;
    let s = Session { client, ..s };
    s.goto("/").await;
    s.wait_text("Sign in").await;
    let bg = s.client.execute("return getComputedStyle(document.body).backgroundColor", vec![]).await.unwrap();
    assert_eq!(bg, "rgb(17, 20, 24)", "dark background");
    shots(&s, "signin-dark").await;
    s.client.close().await.unwrap();
}
