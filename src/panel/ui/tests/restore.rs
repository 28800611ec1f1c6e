//! Restore from the Backups page: uploads that must be refused change
//! nothing; a good one is staged, confirmed, and applied at the next start
//! (called directly here, as `portico serve` does before opening the store).

use actix_web::http::StatusCode;
use actix_web::test::TestRequest;

use super::{INGRESS, Page, Ui, assert_urls_under, completed_ui, ui_with};
use crate::backup::{self, staged};
use crate::onboarding::OnboardingState;
use crate::settings::Secret;
use crate::store::{AuditQuery, NewUserRow, Store};

pub(super) const PASS: &str = "correct horse battery staple";
/// Low scrypt cost, so tests decrypt quickly.
const TEST_WORK: u8 = 10;

/// A backup of the panel's data dir; returns the archive's bytes.
pub(super) async fn take_backup(ui: &Ui) -> Vec<u8> {
    let secret = Secret::new(PASS);
    let info = backup::create_with(&ui.state.store, &ui.state.settings, &secret, Some(TEST_WORK)).await.unwrap();
    std::fs::read(backup::archive_path(&ui.state.settings.backup_dir(), &info.id).unwrap()).unwrap()
}

/// Posts the Backups page's restore form.
async fn upload(ui: &Ui, csrf: &str, passphrase: &str, archive: &[u8]) -> Page {
    upload_to(ui, "/backups/restore", csrf, passphrase, archive).await
}

/// Posts a restore form at `path` as a browser does: the CSRF token, the
/// passphrase and the archive as multipart parts, in the form's order.
pub(super) async fn upload_to(ui: &Ui, path: &str, csrf: &str, passphrase: &str, archive: &[u8]) -> Page {
    let boundary = "RsToReBoUnDaRy";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"_csrf\"\r\n\r\n{csrf}\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"passphrase\"\r\n\r\n{passphrase}\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"archive\"; filename=\"b.tar.zst.age\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(archive);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let req = TestRequest::post()
        .uri(path)
        .insert_header(("Content-Type", format!("multipart/form-data; boundary={boundary}")))
        .set_payload(body);
    let (channel, req) = ui.dress(req);
    ui.send(channel, req).await
}

async fn stage_outcomes(ui: &Ui) -> Vec<String> {
    let q = AuditQuery { action: Some("backup.restore.stage".into()), limit: 100, ..Default::default() };
    ui.state.store.audit_entries(q).await.unwrap().0.into_iter().map(|e| e.outcome).collect()
}

/// The store's rows, except the audit log (where refusals are recorded).
pub(super) fn without_audit(store: &Store) -> Vec<String> {
    store.dump().unwrap().into_iter().filter(|row| !row.starts_with("audit_log:")).collect()
}

pub(super) fn user(name: &str) -> NewUserRow {
    NewUserRow {
        username: name.into(),
        display_name: name.into(),
        email: String::new(),
        password_hash: "x".into(),
        totp_secret: None,
        groups: vec![],
    }
}

#[actix_web::test]
async fn wrong_passphrase_damaged_or_oversized_archives_change_nothing() {
    let ui = ui_with(|s| s.backup.restore_max_bytes = 64 * 1024).await;
    ui.set_state(OnboardingState::Completed).await;
    let archive = take_backup(&ui).await;
    let data_dir = ui.state.settings.data_dir.clone();
    let csrf = ui.get("/backups").await.csrf();
    let before = without_audit(&ui.state.store);

    let wrong = upload(&ui, &csrf, "not the passphrase at all", &archive).await;
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST, "{}", wrong.body);
    assert!(
        wrong.body.contains("Wrong passphrase, or not an archive for this passphrase. Nothing was changed."),
        "{}",
        wrong.body
    );
    assert!(wrong.body.contains("role=\"alert\" id=\"restore-error\""));

    let truncated = upload(&ui, &csrf, PASS, &archive[..archive.len() * 2 / 3]).await;
    assert_eq!(truncated.status, StatusCode::BAD_REQUEST, "{}", truncated.body);
    assert!(
        truncated.body.contains("The archive is damaged or not a Portico backup")
            && truncated.body.contains("Nothing was changed."),
        "{}",
        truncated.body
    );

    let none = upload(&ui, &csrf, PASS, b"").await;
    assert_eq!(none.status, StatusCode::BAD_REQUEST);
    assert!(none.body.contains("Choose a backup archive"), "{}", none.body);

    let big = vec![7u8; 80 * 1024];
    let oversized = upload(&ui, &csrf, PASS, &big).await;
    assert_eq!(oversized.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", oversized.body);
    assert!(oversized.body.contains("larger than 64.0 KiB"), "{}", oversized.body);

    assert_eq!(staged::staged(&data_dir).unwrap(), None, "nothing staged");
    let leftovers: Vec<_> = std::fs::read_dir(data_dir.join(".restore")).unwrap().collect();
    assert!(leftovers.is_empty(), "uploads and work trees are removed: {leftovers:?}");
    assert_eq!(without_audit(&ui.state.store), before, "the store is untouched");
    assert_eq!(stage_outcomes(&ui).await, ["failure"; 4]);
    let page = ui.get("/backups").await;
    assert!(!page.body.contains("Ready to restore"), "{}", page.body);
}

#[actix_web::test]
async fn restore_needs_the_csrf_token() {
    let ui = completed_ui().await;
    let archive = take_backup(&ui).await;
    for token in ["", "1.00"] {
        let refused = upload(&ui, token, PASS, &archive).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    }
    // The token in the URL, as forms sent it before, counts for nothing.
    let csrf = ui.get("/backups").await.csrf();
    let in_query = upload_to(&ui, &format!("/backups/restore?_csrf={csrf}"), "", PASS, &archive).await;
    assert_eq!(in_query.status, StatusCode::FORBIDDEN, "{}", in_query.body);
    assert_eq!(staged::staged(&ui.state.settings.data_dir).unwrap(), None);
    let staged = upload(&ui, &ui.get("/backups").await.csrf(), PASS, &archive).await;
    assert_eq!(staged.status, StatusCode::SEE_OTHER, "{}", staged.body);
    for path in ["/backups/restore/apply", "/backups/restore/discard"] {
        let forged = ui.post(path, Some("1.00"), &[("confirm", "yes")]).await;
        assert_eq!(forged.status, StatusCode::FORBIDDEN, "{path}");
    }
    assert!(staged::staged(&ui.state.settings.data_dir).unwrap().is_some(), "still staged, not confirmed");
    assert_eq!(staged::pending(&ui.state.settings.data_dir).unwrap(), None);
}

#[actix_web::test]
async fn a_restore_is_staged_confirmed_and_applied_at_the_next_start() {
    let ui = completed_ui().await;
    let data_dir = ui.state.settings.data_dir.clone();
    ui.state.store.insert_user(user("alice"), time::OffsetDateTime::now_utc()).await.unwrap();
    let site_file = data_dir.join("sites/blog/index.html");
    std::fs::create_dir_all(site_file.parent().unwrap()).unwrap();
    std::fs::write(&site_file, "backed up").unwrap();
    let csrf = ui.get("/backups").await.csrf();
    let archive = take_backup(&ui).await;
    let want = ui.state.store.dump().unwrap();

    // Changes after the backup.
    ui.state.store.insert_user(user("mallory"), time::OffsetDateTime::now_utc()).await.unwrap();
    std::fs::write(&site_file, "changed since").unwrap();
    std::fs::write(data_dir.join("sites/blog/new.html"), "new").unwrap();

    let staged = upload(&ui, &csrf, PASS, &archive).await;
    assert_eq!(staged.status, StatusCode::SEE_OTHER, "{}", staged.body);
    assert_eq!(staged.location.as_deref(), Some("/backups?flash=restore_staged"));
    let page = ui.get("/backups?flash=restore_staged").await;
    assert!(page.body.contains("Backup decrypted and checked. Nothing has changed yet"), "{}", page.body);
    assert!(page.body.contains("<strong>Ready to restore</strong>"), "{}", page.body);
    assert!(page.body.contains("<details class=\"confirm danger\">"), "a second click confirms");
    assert!(page.body.contains("action=\"/backups/restore/apply\""));
    assert_eq!(std::fs::read_to_string(&site_file).unwrap(), "changed since", "nothing applied yet");
    assert_eq!(stage_outcomes(&ui).await, ["success"]);

    let unconfirmed = ui.post("/backups/restore/apply", Some(&page.csrf()), &[]).await;
    assert_eq!(unconfirmed.status, StatusCode::BAD_REQUEST);
    assert_eq!(staged::pending(&data_dir).unwrap(), None);
    let confirmed = ui.post("/backups/restore/apply", Some(&page.csrf()), &[("confirm", "yes")]).await;
    assert_eq!(confirmed.status, StatusCode::SEE_OTHER, "{}", confirmed.body);
    // No supervisor here: the page says the panel must be restarted.
    assert_eq!(confirmed.location.as_deref(), Some("/backups?flash=restore_pending"));
    let page = ui.get("/backups?flash=restore_pending").await;
    assert!(page.body.contains("restart `portico serve` to apply it"), "{}", page.body);
    assert!(page.body.contains("<strong>A restore is confirmed</strong>"), "{}", page.body);
    assert!(ui.audit_actions().await.contains(&"backup.restore.confirm".to_string()));
    assert_eq!(std::fs::read_to_string(&site_file).unwrap(), "changed since", "applied only at the next start");

    // The next start: applied before the store opens.
    let Some(staged::Startup::Applied(applied)) = staged::apply_pending(&data_dir).unwrap() else {
        panic!("a pending restore")
    };
    assert!(applied.actor.starts_with("admin"), "{}", applied.actor);
    let restored = Store::open(&ui.state.settings.db_path()).unwrap();
    assert_eq!(restored.dump().unwrap(), want, "the store equals the backup");
    assert_eq!(std::fs::read_to_string(&site_file).unwrap(), "backed up");
    assert!(!data_dir.join("sites/blog/new.html").exists());
    assert!(!data_dir.join(".restore").exists());
    assert!(data_dir.join(".restore-previous").is_dir(), "the replaced data stays until the restore proves healthy");
    let again = staged::apply_pending(&data_dir).unwrap();
    assert!(matches!(again, Some(staged::Startup::Checking(_))), "applied once, still checked: {again:?}");

    // The restarted panel records the restore in the restored audit log.
    let state = crate::panel::AppState::load((*ui.state.settings).clone()).await.unwrap();
    crate::app::restore::finish_restore(&state, &applied).await;
    let q = AuditQuery { action: Some("backup.restore".into()), limit: 10, ..Default::default() };
    let entries = state.store.audit_entries(q).await.unwrap().0;
    assert_eq!(entries.len(), 1);
    assert_eq!((entries[0].actor.as_str(), entries[0].outcome.as_str()), (applied.actor.as_str(), "success"));
    assert!(!data_dir.join(".restore-previous").exists(), "healthy: the replaced data went");
    assert_eq!(staged::apply_pending(&data_dir).unwrap(), None);
    assert!(state.store.user("mallory".into()).await.unwrap().is_none());
}

#[actix_web::test]
async fn a_staged_restore_can_be_discarded_and_works_under_ingress() {
    let ui = completed_ui().await;
    let archive = take_backup(&ui).await;
    let ingress = ui.as_ingress("alice");
    let page = ingress.get("/backups").await;
    assert!(page.body.contains(&format!("action=\"{INGRESS}/backups/restore\"")), "{}", page.body);
    assert!(!page.body.contains("?_csrf="), "no token in a URL: {}", page.body);
    assert_urls_under(&page.body, INGRESS);
    let staged = upload(&ingress, &page.csrf(), PASS, &archive).await;
    assert_eq!(staged.status, StatusCode::SEE_OTHER, "{}", staged.body);
    assert_eq!(staged.location, Some(format!("{INGRESS}/backups?flash=restore_staged")));
    let page = ingress.get("/backups").await;
    assert_urls_under(&page.body, INGRESS);
    let wrong = upload(&ingress, &page.csrf(), "not the passphrase at all", &archive).await;
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST);
    assert_urls_under(&wrong.body, INGRESS);
    assert!(staged::staged(&ui.state.settings.data_dir).unwrap().is_some(), "a refused upload keeps the staged one");

    let discarded = ingress.post("/backups/restore/discard", Some(&page.csrf()), &[]).await;
    assert_eq!(discarded.location, Some(format!("{INGRESS}/backups?flash=restore_discarded")));
    assert_eq!(staged::staged(&ui.state.settings.data_dir).unwrap(), None);
    assert!(ui.audit_actions().await.contains(&"backup.restore.discard".to_string()));
}

/// No form or link of the upload pages carries the CSRF token in its URL
/// (request logs, the browser's history and `Referer` would keep it): the
/// token is the first part of the multipart body.
#[actix_web::test]
async fn no_upload_form_puts_the_csrf_token_in_a_url() {
    let fresh = super::ui_with(|_| {}).await;
    let ui = completed_ui().await;
    let csrf = ui.get("/sites").await.csrf();
    let made = ui.post("/sites", Some(&csrf), &[("name", "docs"), ("access", "public")]).await;
    assert_eq!(made.status, StatusCode::SEE_OTHER, "{}", made.body);
    let id = ui.state.store.sites().await.unwrap()[0].id;
    for page in [fresh.get("/onboarding").await, ui.get("/backups").await, ui.get(&format!("/sites/{id}")).await] {
        assert_eq!(page.status, StatusCode::OK);
        assert!(page.body.contains("enctype=\"multipart/form-data\""), "an upload form: {}", page.body);
        assert!(!page.body.contains("_csrf="), "a token in a URL: {}", page.body);
        for form in page.body.split("enctype=\"multipart/form-data\">").skip(1) {
            let first = form.trim_start().split('\n').next().unwrap_or_default();
            assert!(first.contains("name=\"_csrf\""), "the token leads the form: {form}");
        }
    }
}

/// Stages and confirms a restore of `archive` through the page, then applies
/// it as the next start does; returns the restarted panel.
async fn restored_ui(ui: &Ui, archive: &[u8]) -> Ui {
    let data_dir = ui.state.settings.data_dir.clone();
    let staged = upload(ui, &ui.get("/backups").await.csrf(), PASS, archive).await;
    assert_eq!(staged.status, StatusCode::SEE_OTHER, "{}", staged.body);
    let page = ui.get("/backups").await;
    let confirmed = ui.post("/backups/restore/apply", Some(&page.csrf()), &[("confirm", "yes")]).await;
    assert_eq!(confirmed.status, StatusCode::SEE_OTHER, "{}", confirmed.body);
    let startup = staged::apply_pending(&data_dir).unwrap();
    assert!(matches!(startup, Some(staged::Startup::Applied(_))), "{startup:?}");
    let state = crate::panel::AppState::load((*ui.state.settings).clone()).await.unwrap();
    ui.restarted(actix_web::web::Data::new(state))
}

#[actix_web::test]
async fn a_restore_that_breaks_names_shows_why_and_goes_back_in_one_click() {
    let ui = completed_ui().await;
    let data_dir = ui.state.settings.data_dir.clone();
    let site_file = data_dir.join("sites/blog/index.html");
    std::fs::create_dir_all(site_file.parent().unwrap()).unwrap();
    std::fs::write(&site_file, "backed up").unwrap();
    let archive = take_backup(&ui).await;
    std::fs::write(&site_file, "changed since").unwrap();
    ui.get("/backups").await; // the first page creates the CSRF secret
    let want_before = without_audit(&ui.state.store);

    let restarted = restored_ui(&ui, &archive).await;
    assert_eq!(std::fs::read_to_string(&site_file).unwrap(), "backed up");
    // What the start-up check records when a name that served no longer does.
    let reasons = vec!["app.example.com: tls: the served certificate is for panel.example.com".to_string()];
    staged::set_verdict(&data_dir, staged::Verdict::Unhealthy { reasons }).unwrap();
    let page = restarted.get("/backups").await;
    assert!(page.body.contains("id=\"restore-applied\""), "{}", page.body);
    assert!(page.body.contains("does not serve every name that served before"), "{}", page.body);
    assert!(page.body.contains("app.example.com: tls: the served certificate is for panel.example.com"));
    assert!(page.body.contains("action=\"/backups/restore/rollback\""));
    assert!(page.body.contains("action=\"/backups/restore/accept\""));

    // One click: the previous data comes back at the next start.
    let back = restarted.post("/backups/restore/rollback", Some(&page.csrf()), &[]).await;
    assert_eq!(back.status, StatusCode::SEE_OTHER, "{}", back.body);
    assert_eq!(back.location.as_deref(), Some("/backups?flash=rollback_pending"), "no supervisor here");
    let page = restarted.get("/backups?flash=rollback_pending").await;
    assert!(page.body.contains("Going back to the previous data"), "{}", page.body);
    assert!(restarted.audit_actions().await.contains(&"backup.restore.rollback".to_string()));
    drop(restarted);
    let startup = staged::apply_pending(&data_dir).unwrap();
    assert!(matches!(startup, Some(staged::Startup::RolledBack(_))), "{startup:?}");
    assert_eq!(std::fs::read_to_string(&site_file).unwrap(), "changed since");
    let store = Store::open(&ui.state.settings.db_path()).unwrap();
    assert_eq!(without_audit(&store), want_before, "the previous database is back");
    assert!(!data_dir.join(".restore-previous").exists() && staged::applied(&data_dir).unwrap().is_none());
}

#[actix_web::test]
async fn keeping_the_restored_data_deletes_what_it_replaced() {
    let ui = completed_ui().await;
    let data_dir = ui.state.settings.data_dir.clone();
    let archive = take_backup(&ui).await;
    let restarted = restored_ui(&ui, &archive).await;
    let reasons = vec!["cam.example.com: http: 502".to_string()];
    staged::set_verdict(&data_dir, staged::Verdict::Unhealthy { reasons }).unwrap();
    let page = restarted.get("/backups").await;
    let kept = restarted.post("/backups/restore/accept", Some(&page.csrf()), &[]).await;
    assert_eq!(kept.location.as_deref(), Some("/backups?flash=restore_accepted"), "{}", kept.body);
    assert!(!data_dir.join(".restore-previous").exists());
    let page = restarted.get("/backups?flash=restore_accepted").await;
    assert!(!page.body.contains("id=\"restore-applied\""), "{}", page.body);
    assert!(restarted.audit_actions().await.contains(&"backup.restore.accept".to_string()));
    let again = restarted.post("/backups/restore/accept", Some(&page.csrf()), &[]).await;
    assert_eq!(again.status, StatusCode::CONFLICT, "nothing left to decide");
}

#[actix_web::test]
async fn a_backup_that_fails_says_why_keeps_nothing_and_is_audited() {
    let ui = completed_ui().await;
    let data_dir = ui.state.settings.data_dir.clone();
    std::fs::create_dir_all(data_dir.join("sites/blog")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", data_dir.join("sites/blog/passwd")).unwrap();
    let page = ui.get("/backups").await;
    let failed = ui.post("/backups", Some(&page.csrf()), &[("passphrase", PASS)]).await;
    assert_eq!(failed.status, StatusCode::CONFLICT, "{}", failed.body);
    assert!(failed.body.contains("id=\"backup-error\""), "{}", failed.body);
    assert!(failed.body.contains("sites/blog/passwd links to /etc/passwd"), "{}", failed.body);
    let left: Vec<_> = std::fs::read_dir(ui.state.settings.backup_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n != ".lock")
        .collect();
    assert!(left.is_empty(), "nothing kept: {left:?}");
    let q = AuditQuery { action: Some("backup.create".into()), limit: 10, ..Default::default() };
    let entries = ui.state.store.audit_entries(q).await.unwrap().0;
    assert_eq!(entries.iter().map(|e| e.outcome.as_str()).collect::<Vec<_>>(), ["failure"]);
}
