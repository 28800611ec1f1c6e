//! Issuance and renewal against a real pebble; uploads. kill -9 during an
//! issuance is in [`kill`].

use std::sync::Arc;

use time::OffsetDateTime;

use super::pebble::{Pebble, available, free_port, serve_challenges};
use super::*;
use crate::nginx::state::cert_paths;
use crate::settings::AcmeSettings;

mod kill;

struct World {
    _dir: tempfile::TempDir,
    certs: Certs,
    nginx: Pipeline,
    store: Store,
    settings: Arc<Settings>,
}

/// A data dir with a domain and email, ACME pointed at `pebble`, nginx off.
async fn world(pebble: Option<&Pebble>, renew_days: u32) -> World {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = Settings { data_dir: dir.path().to_path_buf(), ..Default::default() };
    settings.nginx.enabled = false;
    if let Some(p) = pebble {
        settings.acme = AcmeSettings {
            directory: p.directory.clone(),
            ca_bundle: Some(p.ca_bundle.clone()),
            renew_days,
            ..Default::default()
        };
    }
    let settings = Arc::new(settings);
    let store = Store::open(&settings.db_path()).unwrap();
    store
        .put_settings(vec![
            (onboarding::keys::DOMAIN, "example.test".into()),
            (onboarding::keys::EMAIL, "ops@example.test".into()),
        ])
        .await
        .unwrap();
    let nginx = Pipeline::new(settings.clone(), store.clone(), crate::nginx::state::applier(&settings));
    World { certs: Certs::new(settings.clone(), store.clone()), nginx, store, settings, _dir: dir }
}

/// Pebble with a challenge server answering from the world's data dir.
async fn pebble_world(validity_secs: Option<u64>, renew_days: u32) -> (Pebble, World) {
    let port = free_port();
    let pebble = Pebble::start(port, validity_secs);
    let w = world(Some(&pebble), renew_days).await;
    serve_challenges(port, files::challenges_dir(&w.settings.data_dir));
    (pebble, w)
}

fn live(w: &World, name: &str) -> (String, String) {
    files::read(&w.settings.data_dir, name).unwrap().expect("certificate installed")
}

#[tokio::test]
async fn issues_and_force_renews_against_pebble() {
    if !available() {
        return;
    }
    let (_pebble, w) = pebble_world(None, 30).await;
    let rec = w.certs.renew(&w.nginx, "panel.example.test", "admin:test").await.unwrap();
    assert_eq!(rec.source, "acme");
    assert!(rec.issuer.to_lowercase().contains("pebble"), "{}", rec.issuer);
    let (chain, key) = live(&w, "panel.example.test");
    let leaf = inspect::validate_upload("panel.example.test", &chain, &key, OffsetDateTime::now_utc()).unwrap();
    assert_eq!(leaf.names, ["panel.example.test"]);
    let key_path = cert_paths(&w.settings.data_dir, "panel.example.test").key;
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&key_path).unwrap().permissions().mode() & 0o777, 0o600);
    let account = w.settings.data_dir.join("acme/account.json");
    assert_eq!(std::fs::metadata(&account).unwrap().permissions().mode() & 0o777, 0o600);
    assert_eq!(std::fs::read_dir(files::challenges_dir(&w.settings.data_dir)).unwrap().count(), 0, "answers removed");

    let listed = w.certs.list(OffsetDateTime::now_utc()).await.unwrap();
    let panel = listed.iter().find(|c| c.name == "panel.example.test").unwrap();
    assert_eq!((panel.state.as_str(), panel.source), ("valid", Source::Auto));
    assert!(panel.days_left.unwrap() > 30);
    let auth = listed.iter().find(|c| c.name == "auth.example.test").unwrap();
    assert_eq!(auth.state, "missing");

    // Forced renewal: a new key and chain, the account reused.
    let again = w.certs.renew(&w.nginx, "panel.example.test", "admin:test").await.unwrap();
    let (chain2, key2) = live(&w, "panel.example.test");
    assert_ne!(chain, chain2);
    assert_ne!(key, key2);
    assert!(again.installed_at >= rec.installed_at);
}

#[tokio::test]
async fn short_lived_certificates_are_renewed_by_the_check() {
    if !available() {
        return;
    }
    // Pebble issues 10-day certificates; renewal starts 30 days before expiry.
    let (_pebble, w) = pebble_world(Some(10 * 86_400), 30).await;
    let first = w.certs.check(&w.nginx, OffsetDateTime::now_utc()).await.unwrap();
    assert_eq!((first.result.as_str(), first.renewed, first.failed), ("ok", 3, 0), "{}", first.message);
    let before = live(&w, "tunnel.example.test");

    let second = w.certs.check(&w.nginx, OffsetDateTime::now_utc()).await.unwrap();
    assert_eq!(second.renewed, 3, "every 10-day certificate is inside the 30-day window");
    assert_ne!(live(&w, "tunnel.example.test"), before);

    // With a 5-day window nothing is due.
    let relaxed = Certs::new(
        Arc::new(Settings { acme: AcmeSettings { renew_days: 5, ..w.settings.acme.clone() }, ..(*w.settings).clone() }),
        w.store.clone(),
    );
    let third = relaxed.check(&w.nginx, OffsetDateTime::now_utc()).await.unwrap();
    assert_eq!((third.renewed, third.failed), (0, 0));
    let status = relaxed.auto_renew_status(OffsetDateTime::now_utc()).await.unwrap();
    assert_eq!(status.last_run.unwrap().renewed, 0);
    assert!(status.next_run.unwrap() > OffsetDateTime::now_utc());
}

#[tokio::test]
async fn an_unanswered_challenge_fails_with_an_actionable_message() {
    if !available() {
        return;
    }
    // Nothing listens on pebble's HTTP-01 port.
    let pebble = Pebble::start(free_port(), None);
    let w = world(Some(&pebble), 30).await;
    let err = w.certs.renew(&w.nginx, "auth.example.test", "admin:test").await.unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, AcmeError::Challenge(_)), "{msg}");
    assert!(msg.contains("auth.example.test") && msg.contains("port 80"), "{msg}");
    assert!(files::read(&w.settings.data_dir, "auth.example.test").unwrap().is_none());

    // Visible, with a retry time; the scheduled check waits for it.
    let status = w.certs.auto_renew_status(OffsetDateTime::now_utc()).await.unwrap();
    let failing = status.failing.iter().find(|f| f.name == "auth.example.test").unwrap();
    assert_eq!(failing.failures, 1);
    assert!(failing.retry_at > OffsetDateTime::now_utc());
    let listed = w.certs.list(OffsetDateTime::now_utc()).await.unwrap();
    let auth = listed.iter().find(|c| c.name == "auth.example.test").unwrap();
    assert!(auth.last_error.as_deref().unwrap().contains("port 80"));
}

#[tokio::test]
async fn unreachable_directory_is_reported() {
    let w = world(None, 30).await;
    let settings = Settings {
        acme: AcmeSettings { directory: format!("https://127.0.0.1:{}/dir", free_port()), ..Default::default() },
        ..(*w.settings).clone()
    };
    let certs = Certs::new(Arc::new(settings), w.store.clone());
    let msg = certs.issue("panel.example.test").await.err().unwrap().to_string();
    assert!(msg.contains("cannot use the ACME directory"), "{msg}");

    let settings = Settings {
        acme: AcmeSettings { ca_bundle: Some("/nonexistent/ca.pem".into()), ..Default::default() },
        ..(*w.settings).clone()
    };
    let certs = Certs::new(Arc::new(settings), w.store.clone());
    let err = certs.issue("panel.example.test").await.err().unwrap();
    assert!(matches!(err, AcmeError::Setup(_)));
    assert!(err.to_string().contains("acme.ca_bundle /nonexistent/ca.pem"), "{err}");
}

fn self_signed(names: &[&str], days: (i64, i64)) -> (String, String) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    let now = OffsetDateTime::now_utc();
    params.not_before = now + time::Duration::days(days.0);
    params.not_after = now + time::Duration::days(days.1);
    (params.self_signed(&key).unwrap().pem(), key.serialize_pem())
}

#[tokio::test]
async fn uploads_are_validated_then_installed_as_manual() {
    let w = world(None, 30).await;
    let (chain, key) = self_signed(&["*.example.test"], (-1, 60));
    let (_, other_key) = self_signed(&["*.example.test"], (-1, 60));
    let invalid = |r: Result<CertRecord, AcmeError>| match r {
        Err(AcmeError::Invalid(d)) => d.into_iter().map(|e| format!("{}: {}", e.field, e.message)).collect::<Vec<_>>(),
        other => panic!("expected a validation error, got {other:?}"),
    };
    let e = invalid(w.certs.upload(&w.nginx, "panel.example.test", chain.clone(), other_key, "admin:test").await);
    assert!(e.iter().any(|m| m.contains("key: The key does not match")), "{e:?}");
    let e = invalid(w.certs.upload(&w.nginx, "panel.example.test", "garbage".into(), key.clone(), "admin:test").await);
    assert!(e.iter().any(|m| m.starts_with("fullchain:")), "{e:?}");
    let (old, old_key) = self_signed(&["panel.example.test"], (-60, -1));
    let e = invalid(w.certs.upload(&w.nginx, "panel.example.test", old, old_key, "admin:test").await);
    assert!(e.iter().any(|m| m.contains("expired")), "{e:?}");
    let (other, other_key) = self_signed(&["panel.example.org"], (-1, 60));
    let e = invalid(w.certs.upload(&w.nginx, "panel.example.test", other, other_key, "admin:test").await);
    assert!(e.iter().any(|m| m.contains("does not cover panel.example.test")), "{e:?}");
    assert!(matches!(
        w.certs.upload(&w.nginx, "nope.example.test", chain.clone(), key.clone(), "admin:test").await,
        Err(AcmeError::UnknownName(_))
    ));
    assert!(files::read(&w.settings.data_dir, "panel.example.test").unwrap().is_none(), "nothing installed");

    let rec = w.certs.upload(&w.nginx, "panel.example.test", chain.clone(), key.clone(), "admin:test").await.unwrap();
    assert_eq!(rec.source, "manual");
    assert_eq!(live(&w, "panel.example.test"), (chain, key));
    let listed = w.certs.list(OffsetDateTime::now_utc()).await.unwrap();
    let panel = listed.iter().find(|c| c.name == "panel.example.test").unwrap();
    assert_eq!((panel.source, panel.state.as_str()), (Source::Manual, "valid"));
}

#[test]
fn backoff_grows_and_is_capped() {
    assert_eq!(backoff(1), time::Duration::minutes(5));
    assert_eq!(backoff(2), time::Duration::minutes(10));
    assert_eq!(backoff(4), time::Duration::minutes(40));
    assert_eq!(backoff(40), time::Duration::hours(12));
    assert_eq!(rate_limited_backoff(1), time::Duration::hours(1));
    assert_eq!(rate_limited_backoff(40), time::Duration::hours(12));
}

/// The renewal task issues at start, then for a name added later as soon as
/// it is told, without waiting for the schedule.
#[tokio::test]
async fn the_renewal_task_issues_new_names_when_woken() {
    if !available() {
        return;
    }
    let (_pebble, w) = pebble_world(None, 30).await;
    let w = Arc::new(w);
    let task = {
        let w = w.clone();
        tokio::spawn(async move { w.certs.run_forever(&w.nginx, || true).await })
    };
    let valid = |name: &'static str| {
        let w = w.clone();
        async move {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
            loop {
                let list = w.certs.list(OffsetDateTime::now_utc()).await.unwrap();
                if list.iter().any(|c| c.name == name && c.state == "valid") {
                    return true;
                }
                if std::time::Instant::now() > deadline {
                    return false;
                }
                tokio::time::sleep(std::time::Duration::from_millis(100)).await; // poll interval
            }
        }
    };
    assert!(valid("tunnel.example.test").await, "issued at start");
    let fields = crate::store::SiteFields {
        name: "docs".into(),
        spa_fallback: false,
        access: "public".into(),
        allowed_users: vec![],
        allowed_groups: vec![],
        max_bytes: 1 << 20,
    };
    w.store.insert_site(fields, OffsetDateTime::now_utc()).await.unwrap();
    w.certs.name_added();
    assert!(valid("docs.example.test").await, "issued once woken");
    task.abort();
}
