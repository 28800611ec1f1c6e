//! Moving to a new server under a real s6-svscan: a fresh `portico serve`
//! supervised as the `panel` service takes a backup of another, completed
//! installation from the onboarding wizard. Confirming makes s6 restart the
//! panel, which applies the restore at its start and comes back COMPLETED
//! with the old installation's state (and its admin certificate). The same
//! from the Backups page of a completed installation: "Restore now" answers
//! the restarting page, whose health poll sees a new panel process, and the
//! data dir then equals the backup (full listing and database dump).

#[path = "support/listing.rs"]
mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use portico::onboarding::{OnboardingState, keys};
use portico::panel::AppState;
use portico::settings::{Secret, Settings};

const PASS: &str = "a passphrase for the move";

/// s6-svscan over `panel` (the real binary) and `relay`/`authd` (`sleep`),
/// stopped on drop.
struct Scan {
    dir: tempfile::TempDir,
    child: Child,
}

impl Drop for Scan {
    fn drop(&mut self) {
        let _ = Command::new("s6-svscanctl").arg("-t").arg(self.dir.path()).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline && !matches!(self.child.try_wait(), Ok(Some(_))) {
            std::thread::sleep(Duration::from_millis(20)); // poll interval
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_scan(data_dir: &Path, listen: SocketAddr) -> Scan {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let panel = format!("#!/bin/sh\nexec 2>&1\nexec {} serve\n", env!("CARGO_BIN_EXE_portico"));
    for (name, run) in
        [("panel", panel.as_str()), ("relay", "#!/bin/sh\nexec sleep 300\n"), ("authd", "#!/bin/sh\nexec sleep 300\n")]
    {
        let svc = dir.path().join(name);
        std::fs::create_dir(&svc).unwrap();
        std::fs::write(svc.join("run"), run).unwrap();
        std::fs::set_permissions(svc.join("run"), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let child = Command::new("s6-svscan")
        .arg(dir.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("PORTICO__DATA_DIR", data_dir)
        .env("PORTICO_OPTIONS", data_dir.join("options.json"))
        .env("PORTICO__LOG__LEVEL", "warn")
        .env("PORTICO__PANEL__LISTEN", listen.to_string())
        .env("PORTICO__PANEL__VISITOR_LOG_PORT", "0")
        .env("PORTICO__NGINX__ENABLED", "false")
        .env("PORTICO__PUBLIC_IP", "203.0.113.10")
        .env("PORTICO__SUPERVISOR__KIND", "s6")
        .env("PORTICO__SUPERVISOR__SERVICE_DIR", dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Scan { dir, child }
}

fn settings(data_dir: &Path) -> Settings {
    Settings { data_dir: data_dir.to_path_buf(), ..Default::default() }
}

/// The admin certificate's serial of the installation in `data_dir`.
async fn admin_serial(data_dir: &Path) -> String {
    AppState::load(settings(data_dir)).await.unwrap().pki.admin_info().unwrap().serial
}

struct Reply {
    status: u16,
    location: Option<String>,
    body: String,
}

/// One HTTP/1.1 request as nginx forwards it for the admin certificate `serial`.
fn request(addr: SocketAddr, method: &str, path: &str, serial: &str, body: Option<(&str, &[u8])>) -> Reply {
    try_request(addr, method, path, serial, body).unwrap()
}

fn try_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    serial: &str,
    body: Option<(&str, &[u8])>,
) -> std::io::Result<Reply> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nX-SSL-Client-Verify: SUCCESS\r\n\
         X-SSL-Client-DN: CN=admin,O=Portico\r\nX-SSL-Client-Serial: {serial}\r\n"
    );
    if let Some((ctype, bytes)) = body {
        head.push_str(&format!("Content-Type: {ctype}\r\nContent-Length: {}\r\n", bytes.len()));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    if let Some((_, bytes)) = body {
        stream.write_all(bytes)?;
    }
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let location = head.lines().find_map(|l| {
        l.split_once(": ").filter(|(k, _)| k.eq_ignore_ascii_case("location")).map(|(_, v)| v.to_string())
    });
    Ok(Reply { status, location, body: body.to_string() })
}

/// Polls until the panel answers `GET /onboarding` for `serial` with `pred`.
fn wait_panel(addr: SocketAddr, serial: &str, pred: impl Fn(&Reply) -> bool) -> Reply {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        // Refused or reset while the panel (re)starts.
        if let Ok(reply) = try_request(addr, "GET", "/onboarding", serial, None)
            && pred(&reply)
        {
            return reply;
        }
        assert!(Instant::now() < deadline, "the panel never answered as expected");
        std::thread::sleep(Duration::from_millis(50)); // poll interval
    }
}

fn csrf(body: &str) -> String {
    let at = body.find("name=\"_csrf\" value=\"").expect("a form") + 20;
    body[at..].split('"').next().unwrap().to_string()
}

fn panel_pid(scan: &Scan) -> String {
    let out = Command::new("s6-svstat").args(["-o", "pid"]).arg(scan.dir.path().join("panel")).output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[actix_web::test]
async fn confirming_a_restore_in_the_wizard_restarts_the_panel_under_s6_and_applies_it() {
    if Command::new("s6-svscan").arg("-h").stdout(Stdio::null()).stderr(Stdio::null()).status().is_err() {
        eprintln!("SKIPPED: s6 is not installed (apt-get install s6)");
        return;
    }
    let work = tempfile::tempdir().unwrap();

    // The old server: onboarded for example.com, with a user; its backup.
    let old = work.path().join("old");
    portico::init::run(&settings(&old)).unwrap();
    let old_state = AppState::load(settings(&old)).await.unwrap();
    let rows = vec![
        (keys::STATE, OnboardingState::Completed.as_str().to_string()),
        (keys::DOMAIN, "example.com".to_string()),
        (keys::EMAIL, "ops@example.com".to_string()),
    ];
    old_state.store.put_settings(rows).await.unwrap();
    let info = portico::backup::create(&old_state.store, &old_state.settings, &Secret::new(PASS)).await.unwrap();
    let archive = std::fs::read(portico::backup::archive_path(&old_state.settings.backup_dir(), &info.id).unwrap());
    let archive = archive.unwrap();
    let old_serial = old_state.pki.admin_info().unwrap().serial;
    drop(old_state);

    // The new server: fresh, its panel supervised by s6.
    let fresh = work.path().join("fresh");
    portico::init::run(&settings(&fresh)).unwrap();
    let new_serial = admin_serial(&fresh).await;
    let addr = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let scan = start_scan(&fresh, addr);
    let page = wait_panel(addr, &new_serial, |r| r.status == 200);
    assert!(page.body.contains("Or restore from a backup"), "{}", page.body);
    let token = csrf(&page.body);

    let boundary = "MoVeBoUnDaRy";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"_csrf\"\r\n\r\n{token}\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"passphrase\"\r\n\r\n{PASS}\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"archive\"; filename=\"b.tar.zst.age\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(&archive);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let ctype = format!("multipart/form-data; boundary={boundary}");
    let staged = request(addr, "POST", "/onboarding/restore", &new_serial, Some((&ctype, &body)));
    assert_eq!((staged.status, staged.location.as_deref()), (303, Some("/onboarding?flash=restore_staged")));

    let before = panel_pid(&scan);
    let form = format!("confirm=yes&_csrf={token}");
    let confirm = ("application/x-www-form-urlencoded", form.as_bytes());
    let confirmed = request(addr, "POST", "/onboarding/restore/apply", &new_serial, Some(confirm));
    assert_eq!((confirmed.status, confirmed.location.as_deref()), (303, Some("/onboarding?flash=restore_restarting")));

    // s6 restarts the panel; it applies the restore and onboarding is over.
    let done = wait_panel(addr, &old_serial, |r| r.status == 303);
    assert_eq!(done.location.as_deref(), Some("/"));
    assert_ne!(panel_pid(&scan), before, "a new panel process");
    let dashboard = request(addr, "GET", "/", &old_serial, None);
    assert_eq!(dashboard.status, 200, "{}", dashboard.body);
    assert!(dashboard.body.contains("example.com"), "{}", dashboard.body);
    let refused = request(addr, "GET", "/", &new_serial, None);
    assert!(matches!(refused.status, 401 | 403), "the new installation's certificate went with its PKI");

    let restored = portico::store::Store::open(&fresh.join("portico.db")).unwrap();
    let rows = restored.settings(&[keys::STATE, keys::DOMAIN]).await.unwrap();
    assert_eq!(rows, [Some("COMPLETED".to_string()), Some("example.com".to_string())]);
    let audit = restored.dump().unwrap();
    assert!(audit.iter().any(|r| r.starts_with("audit_log:") && r.contains("backup.restore")), "audited");
    assert!(!fresh.join(".restore").exists(), "nothing left pending");
}

/// Database rows a restore brings back: all but what the restarted panel
/// itself records (its audit entries, its first ACME run, which fails here
/// without a network, the CSRF secret its first page creates).
fn restorable(rows: Vec<String>) -> Vec<String> {
    let own = ["audit_log:", "acme_runs:", "certificate_failures:", "settings: Text(\"ui.csrf_secret\")"];
    rows.into_iter().filter(|r| !own.iter().any(|t| r.starts_with(t))).collect()
}

fn boot_of(addr: SocketAddr, serial: &str) -> Option<String> {
    let reply = try_request(addr, "GET", "/api/health", serial, None).ok()?;
    let v: serde_json::Value = serde_json::from_str(&reply.body).ok()?;
    v["boot"].as_str().map(String::from)
}

#[actix_web::test]
async fn restore_now_on_the_backups_page_shows_the_restarting_page_and_restores_exactly() {
    if Command::new("s6-svscan").arg("-h").stdout(Stdio::null()).stderr(Stdio::null()).status().is_err() {
        eprintln!("SKIPPED: s6 is not installed (apt-get install s6)");
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    portico::init::run(&settings(&data)).unwrap();
    let state = AppState::load(settings(&data)).await.unwrap();
    let rows = vec![
        (keys::STATE, OnboardingState::Completed.as_str().to_string()),
        (keys::DOMAIN, "example.com".to_string()),
        (keys::EMAIL, "ops@example.com".to_string()),
    ];
    state.store.put_settings(rows).await.unwrap();
    portico::acme::files::install(&data, "panel.example.com", "CHAIN\n", "KEY\n").unwrap();
    std::fs::create_dir_all(data.join("sites/blog")).unwrap();
    std::fs::write(data.join("sites/blog/index.html"), "backed up").unwrap();
    let info = portico::backup::create(&state.store, &state.settings, &Secret::new(PASS)).await.unwrap();
    let archive = std::fs::read(portico::backup::archive_path(&state.settings.backup_dir(), &info.id).unwrap());
    let archive = archive.unwrap();
    let want = support::listing(&data);
    let want_db = restorable(state.store.dump().unwrap());
    let serial = state.pki.admin_info().unwrap().serial;
    drop(state);
    // Changes after the backup, which the restore undoes.
    std::fs::write(data.join("sites/blog/index.html"), "changed since").unwrap();
    std::fs::write(data.join("sites/blog/new.html"), "new").unwrap();

    let addr = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let scan = start_scan(&data, addr);
    let page = wait_panel(addr, &serial, |r| r.status == 303);
    assert_eq!(page.location.as_deref(), Some("/"));
    let page = request(addr, "GET", "/backups", &serial, None);
    assert_eq!(page.status, 200, "{}", page.body);
    let token = csrf(&page.body);

    let boundary = "BaCkUpSbOuNdArY";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"_csrf\"\r\n\r\n{token}\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"passphrase\"\r\n\r\n{PASS}\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"archive\"; filename=\"b.tar.zst.age\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(&archive);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let ctype = format!("multipart/form-data; boundary={boundary}");
    let staged = request(addr, "POST", "/backups/restore", &serial, Some((&ctype, &body)));
    assert_eq!((staged.status, staged.location.as_deref()), (303, Some("/backups?flash=restore_staged")));

    let boot = boot_of(addr, &serial).expect("a boot id on /api/health");
    let form = format!("confirm=yes&_csrf={token}");
    let confirm = ("application/x-www-form-urlencoded", form.as_bytes());
    let applied = request(addr, "POST", "/backups/restore/apply", &serial, Some(confirm));
    let restarting = format!("/backups/restarting?from={boot}");
    assert_eq!((applied.status, applied.location.as_deref()), (303, Some(restarting.as_str())), "{}", applied.body);
    // The old panel may still answer the redirect (the page that waits) or
    // be gone already (in the container nginx answers its own restarting
    // page, which reloads this address).
    if let Ok(page) = try_request(addr, "GET", &restarting, &serial, None)
        && page.status == 200
    {
        assert!(page.body.contains("id=\"restarting\""), "{}", page.body);
        assert!(page.body.contains(&format!("data-boot=\"{boot}\"")), "{}", page.body);
        assert!(page.body.contains("data-next=\"/backups?flash=restore_back\""), "{}", page.body);
    }

    // What the page's script does: poll /api/health until a new process answers.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if boot_of(addr, &serial).is_some_and(|b| b != boot) {
            break;
        }
        assert!(Instant::now() < deadline, "the panel never came back");
        std::thread::sleep(Duration::from_millis(50)); // poll interval
    }
    // The new panel sends the same address straight on.
    let reloaded = request(addr, "GET", &restarting, &serial, None);
    assert_eq!((reloaded.status, reloaded.location.as_deref()), (303, Some("/backups?flash=restore_back")));
    let back = request(addr, "GET", "/backups?flash=restore_back", &serial, None);
    assert_eq!(back.status, 200, "{}", back.body);
    assert!(back.body.contains("The panel restarted."), "{}", back.body);
    drop(scan);

    assert_eq!(support::listing(&data), want, "the data dir equals the backup");
    let got = restorable(portico::store::Store::open(&data.join("portico.db")).unwrap().dump().unwrap());
    assert_eq!(got, want_db, "the database equals the backup");
    let audit = portico::store::Store::open(&data.join("portico.db")).unwrap().dump().unwrap();
    assert!(audit.iter().any(|r| r.starts_with("audit_log:") && r.contains("backup.restore") && r.contains("success")));
    assert!(!data.join(".restore-previous").exists(), "healthy: the replaced data went");
    assert!(!data.join(".restore").exists());
}
