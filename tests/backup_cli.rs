//! `portico backup` and `portico restore` as an operator runs them: backup →
//! wipe → restore gives back the same database and the same PKI files; an
//! onboarded appliance comes back identical (full listing and database
//! dump) through the CLI and through the panel's staged restore.

#[path = "support/listing.rs"]
mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn portico(data_dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_portico"));
    cmd.env_clear()
        .env("PORTICO__DATA_DIR", data_dir)
        .env("PORTICO_OPTIONS", data_dir.join("options.json"))
        .env("PORTICO__LOG__LEVEL", "warn");
    cmd
}

fn ok(out: Output) -> String {
    assert!(out.status.success(), "failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn tree(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap()) {
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else {
                out.insert(e.path().strip_prefix(root).unwrap().to_path_buf(), std::fs::read(e.path()).unwrap());
            }
        }
    }
    out
}

fn dump(data_dir: &Path) -> Vec<String> {
    portico::store::Store::open(&data_dir.join("portico.db")).unwrap().dump().unwrap()
}

#[test]
fn backup_wipe_restore_gives_back_the_same_appliance() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    let pass = work.path().join("pass");
    std::fs::write(&pass, "a passphrase for the test\n").unwrap();
    ok(portico(&data).arg("init").output().unwrap());
    std::fs::create_dir_all(data.join("sites/blog")).unwrap();
    std::fs::write(data.join("sites/blog/index.html"), "<p>hi</p>").unwrap();

    let archive =
        PathBuf::from(ok(portico(&data).arg("backup").arg("--passphrase-file").arg(&pass).output().unwrap()).trim());
    assert!(archive.starts_with(data.join("backups")) && archive.is_file(), "{}", archive.display());
    let pki = tree(&data.join("pki"));
    let sites = tree(&data.join("sites"));
    let db = dump(&data);

    // Wrong passphrase: exit non-zero, nothing written.
    let fresh = work.path().join("fresh");
    let wrong = work.path().join("wrong");
    std::fs::write(&wrong, "this is not the passphrase").unwrap();
    let out = portico(&fresh).arg("restore").arg(&archive).arg("--passphrase-file").arg(&wrong).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("Wrong passphrase"));
    assert!(!fresh.join("portico.db").exists());

    // A fresh data dir: same CA, admin certificate, database and sites.
    let printed = ok(portico(&fresh)
        .arg("restore")
        .arg(&archive)
        .env("PORTICO_BACKUP_PASSPHRASE", "a passphrase for the test")
        .output()
        .unwrap());
    assert!(printed.starts_with("restored "), "{printed}");
    assert_eq!(tree(&fresh.join("pki")), pki);
    assert_eq!(tree(&fresh.join("sites")), sites);
    assert_eq!(dump(&fresh), db);

    // In use: refused without --force.
    let out = portico(&fresh).arg("restore").arg(&archive).arg("--passphrase-file").arg(&pass).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--force"));
    ok(portico(&fresh)
        .arg("restore")
        .arg(&archive)
        .arg("--force")
        .arg("--passphrase-file")
        .arg(&pass)
        .output()
        .unwrap());
    assert_eq!(tree(&fresh.join("pki")), pki);
}

/// An onboarded appliance: domain, tunnels, a site with files, users and
/// issued certificates (the ACME store's links, one renewed).
async fn onboarded(data: &Path) {
    use portico::onboarding::{OnboardingState, keys};
    let settings = portico::settings::Settings { data_dir: data.to_path_buf(), ..Default::default() };
    portico::init::run(&settings).unwrap();
    let state = portico::panel::AppState::load(settings).await.unwrap();
    let rows = vec![
        (keys::STATE, OnboardingState::Completed.as_str().to_string()),
        (keys::DOMAIN, "example.com".to_string()),
        (keys::EMAIL, "ops@example.com".to_string()),
    ];
    state.store.put_settings(rows).await.unwrap();
    let caps = vec![portico::identity::Capability::TunnelsRead];
    portico::agents::issue(portico::pki::Pki::new(data), &state.store, "home".into(), caps).await.unwrap();
    let now = time::OffsetDateTime::now_utc();
    for (name, target) in [("nas", "192.168.1.10:5000"), ("cam", "192.168.1.11:80")] {
        let tunnel = portico::store::TunnelFields {
            name: name.into(),
            agent: "home".into(),
            target: target.into(),
            enabled: true,
            access: "authenticated".into(),
            allowed_users: vec!["alice".into()],
            allowed_groups: vec![],
            description: format!("the {name}"),
        };
        state.store.insert_tunnel(tunnel, now).await.unwrap();
    }
    let site = portico::store::SiteFields {
        name: "blog".into(),
        spa_fallback: false,
        access: "public".into(),
        allowed_users: vec![],
        allowed_groups: vec![],
        max_bytes: 1 << 20,
    };
    state.store.insert_site(site, now).await.unwrap();
    std::fs::create_dir_all(data.join("sites/blog/img")).unwrap();
    std::fs::write(data.join("sites/blog/index.html"), "<h1>blog</h1>").unwrap();
    std::fs::write(data.join("sites/blog/img/logo.svg"), "<svg/>").unwrap();
    for user in ["alice", "bob"] {
        let row = portico::store::NewUserRow {
            username: user.into(),
            display_name: user.to_uppercase(),
            email: format!("{user}@example.com"),
            password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
            totp_secret: Some("JBSWY3DPEHPK3PXP".into()),
            groups: vec![],
        };
        state.store.insert_user(row, now).await.unwrap();
    }
    for name in ["panel.example.com", "auth.example.com", "nas.example.com", "cam.example.com", "blog.example.com"] {
        portico::acme::files::install(data, name, &format!("CHAIN {name}\n"), &format!("KEY {name}\n")).unwrap();
        let record = portico::store::CertRecord {
            name: name.into(),
            source: "acme".into(),
            issuer: "Pebble Intermediate CA".into(),
            not_before: now,
            not_after: now + time::Duration::days(90),
            installed_at: now,
        };
        state.store.put_certificate(record).await.unwrap();
    }
    portico::acme::files::install(data, "nas.example.com", "CHAIN renewed\n", "KEY renewed\n").unwrap();
}

fn entries_of(listing: &[String], kind: &str) -> usize {
    listing.iter().filter(|l| l.split(' ').nth(1) == Some(kind)).count()
}

#[actix_web::test]
async fn an_onboarded_appliance_restores_identically_by_cli_and_by_the_panel() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    onboarded(&data).await;
    let archive = PathBuf::from(
        ok(portico(&data)
            .arg("backup")
            .env("PORTICO_BACKUP_PASSPHRASE", "a passphrase for the test")
            .output()
            .unwrap())
        .trim(),
    );
    let want = support::listing(&data);
    let want_db = dump(&data);
    assert!(entries_of(&want, "link") >= 5, "the certificates are links: {want:#?}");
    assert!(want_db.iter().any(|r| r.starts_with("users:") && r.contains("alice")));

    // The CLI onto a fresh volume.
    let fresh = work.path().join("fresh");
    ok(portico(&fresh)
        .arg("restore")
        .arg(&archive)
        .env("PORTICO_BACKUP_PASSPHRASE", "a passphrase for the test")
        .output()
        .unwrap());
    assert_eq!(support::listing(&fresh), want, "CLI restore: listing differs");
    assert_eq!(dump(&fresh), want_db, "CLI restore: database differs");

    // The panel's path onto another installation: staged, confirmed, swapped
    // in at the next start.
    use portico::backup::staged;
    let other = work.path().join("other");
    portico::init::run(&portico::settings::Settings { data_dir: other.clone(), ..Default::default() }).unwrap();
    let pass = portico::settings::Secret::new("a passphrase for the test");
    staged::stage(&archive, &other, &pass, "admin").unwrap();
    staged::confirm(&other, vec![]).unwrap();
    let startup = staged::apply_pending(&other).unwrap();
    assert!(matches!(startup, Some(staged::Startup::Applied(_))), "{startup:?}");
    assert_eq!(support::listing(&other), want, "panel restore: listing differs");
    assert_eq!(dump(&other), want_db, "panel restore: database differs");

    // The restored certificates are served from the restored files.
    let (chain, key) = portico::acme::files::read(&other, "nas.example.com").unwrap().unwrap();
    assert_eq!((chain.as_str(), key.as_str()), ("CHAIN renewed\n", "KEY renewed\n"));
}

/// The stock `age` tool opens an archive with the passphrase (skipped when
/// `age` is not installed).
#[test]
fn the_age_tool_opens_an_archive() {
    if Command::new("age").arg("--version").output().is_err() {
        eprintln!("SKIPPED: the age tool is not installed (apt-get install age)");
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    ok(portico(&data).arg("init").output().unwrap());
    let archive = PathBuf::from(
        ok(portico(&data)
            .arg("backup")
            .env("PORTICO_BACKUP_PASSPHRASE", "a passphrase for the test")
            .output()
            .unwrap())
        .trim(),
    );
    // age reads the passphrase from a terminal only; `script` provides one.
    let out = work.path().join("plain.tar.zst");
    let line = format!(
        "printf 'a passphrase for the test\\n' | script -qec \"age -d -o {} {}\" /dev/null",
        out.display(),
        archive.display()
    );
    let status = Command::new("sh").arg("-c").arg(&line).output().unwrap();
    assert!(out.is_file() && std::fs::metadata(&out).unwrap().len() > 0, "{status:?}");
    let listed = Command::new("sh").arg("-c").arg(format!("zstd -dc {} | tar -t", out.display())).output().unwrap();
    let names = String::from_utf8_lossy(&listed.stdout);
    assert!(names.lines().any(|l| l == "portico.db"), "{names}");
}
