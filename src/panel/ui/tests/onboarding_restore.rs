//! Restore from a backup in the onboarding wizard: a fresh panel takes the
//! backup of another, completed one. Refused uploads change nothing; a good
//! one is staged, confirmed and applied at the next start (called directly
//! here, as `portico serve` does before opening the store), after which the
//! panel is COMPLETED with the backup's state.

use actix_web::http::StatusCode;
use time::OffsetDateTime;

use super::restore::{PASS, take_backup, upload_to, user, without_audit};
use super::{INGRESS, Page, Ui, assert_urls_under, completed_ui, ui_with};
use crate::backup::staged;
use crate::onboarding::{self, OnboardingState};
use crate::store::{AuditQuery, CertRecord, Store, TunnelFields};
use crate::testing;

const UPLOAD: &str = "/onboarding/restore";

/// A completed panel with a user, an agent and its tunnel, a certificate and a site file;
/// returns it, its backup and its store's rows at the time of the backup.
async fn old_server() -> (Ui, Vec<u8>, Vec<String>) {
    let old = completed_ui().await;
    let now = OffsetDateTime::now_utc();
    let store = &old.state.store;
    store.insert_user(user("alice"), now).await.unwrap();
    crate::agents::issue(old.state.pki.clone(), store, "garage".into(), vec![]).await.unwrap();
    let tunnel =
        TunnelFields { description: "the NAS".into(), ..testing::tunnel_fields("nas", "garage", "127.0.0.1:5000") };
    store.insert_tunnel(tunnel, now).await.unwrap();
    let cert = CertRecord {
        name: "panel.example.com".into(),
        source: "acme".into(),
        issuer: "Test CA".into(),
        not_before: now,
        not_after: now + time::Duration::days(60),
        installed_at: now,
    };
    store.put_certificate(cert).await.unwrap();
    let site = old.state.settings.data_dir.join("sites/blog/index.html");
    std::fs::create_dir_all(site.parent().unwrap()).unwrap();
    std::fs::write(&site, "from the old server").unwrap();
    let archive = take_backup(&old).await;
    let rows = store.dump().unwrap();
    (old, archive, rows)
}

async fn stage_audit(ui: &Ui) -> Vec<(String, String)> {
    let q = AuditQuery { action: Some("backup.restore.stage".into()), limit: 100, ..Default::default() };
    ui.state.store.audit_entries(q).await.unwrap().0.into_iter().map(|e| (e.target, e.outcome)).collect()
}

fn nothing_staged(ui: &Ui) {
    let dir = &ui.state.settings.data_dir;
    assert_eq!(staged::staged(dir).unwrap(), None, "nothing staged");
    assert_eq!(staged::pending(dir).unwrap(), None, "nothing pending");
}

fn offers_upload(page: &Page, base: &str) -> bool {
    page.body.contains(&format!("action=\"{base}{UPLOAD}\" enctype=\"multipart/form-data\""))
}

#[actix_web::test]
async fn the_first_screen_offers_a_restore_and_bad_archives_change_nothing() {
    let (_old, archive, _) = old_server().await;
    let ui = ui_with(|_| {}).await;
    let page = ui.get("/onboarding").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("<h2 id=\"restore-title\">Or restore from a backup</h2>"), "{}", page.body);
    assert!(offers_upload(&page, ""), "{}", page.body);
    assert!(page.body.contains("(<strong>203.0.113.10</strong>)"), "where the DNS records must point now");
    let before = without_audit(&ui.state.store);

    let wrong = upload_to(&ui, UPLOAD, &page.csrf(), "not the passphrase at all", &archive).await;
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST, "{}", wrong.body);
    assert!(wrong.body.contains("role=\"alert\" id=\"restore-error\">Wrong passphrase, or not an archive for this passphrase. Nothing was changed."));
    assert!(wrong.body.contains("<label for=\"domain\">Domain</label>"), "still the wizard");
    assert!(offers_upload(&wrong, ""), "the form stays for another try");

    let damaged = upload_to(&ui, UPLOAD, &page.csrf(), PASS, &archive[..archive.len() / 2]).await;
    assert_eq!(damaged.status, StatusCode::BAD_REQUEST, "{}", damaged.body);
    assert!(
        damaged.body.contains("The archive is damaged or not a Portico backup")
            && damaged.body.contains("Nothing was changed."),
        "{}",
        damaged.body
    );

    nothing_staged(&ui);
    assert_eq!(without_audit(&ui.state.store), before, "the store is untouched");
    assert_eq!(ui.state.onboarding_state(), OnboardingState::Fresh);
    let failures = vec![("onboarding".to_string(), "failure".to_string()); 2];
    assert_eq!(stage_audit(&ui).await, failures);

    // Once onboarding has begun, the wizard no longer offers it.
    ui.set_state(OnboardingState::DomainSet).await;
    ui.state.store.put_settings(vec![(onboarding::keys::DOMAIN, "new.example".into())]).await.unwrap();
    let page = ui.get("/onboarding").await;
    assert!(!offers_upload(&page, "") && !page.body.contains("restore-title"), "{}", page.body);
}

#[actix_web::test]
async fn a_restore_from_the_wizard_comes_back_completed_with_the_backup() {
    let (old, archive, want) = old_server().await;
    let ui = ui_with(|_| {}).await;
    let data_dir = ui.state.settings.data_dir.clone();
    let csrf = ui.get("/onboarding").await.csrf();

    let staged = upload_to(&ui, UPLOAD, &csrf, PASS, &archive).await;
    assert_eq!(staged.status, StatusCode::SEE_OTHER, "{}", staged.body);
    assert_eq!(staged.location.as_deref(), Some("/onboarding?flash=restore_staged"));
    let page = ui.get("/onboarding?flash=restore_staged").await;
    assert!(page.body.contains("Backup decrypted and checked. Nothing has changed yet"), "{}", page.body);
    assert!(page.body.contains("<strong>Ready to restore</strong>"), "{}", page.body);
    assert!(page.body.contains("<details class=\"confirm danger\">"), "a second click confirms");
    assert!(page.body.contains("action=\"/onboarding/restore/apply\""), "{}", page.body);
    assert_eq!(ui.state.onboarding_state(), OnboardingState::Fresh, "nothing applied yet");

    let unconfirmed = ui.post("/onboarding/restore/apply", Some(&csrf), &[]).await;
    assert_eq!(unconfirmed.status, StatusCode::BAD_REQUEST);
    assert_eq!(staged::pending(&data_dir).unwrap(), None);
    let confirmed = ui.post("/onboarding/restore/apply", Some(&csrf), &[("confirm", "yes")]).await;
    assert_eq!(confirmed.status, StatusCode::SEE_OTHER, "{}", confirmed.body);
    // No supervisor here: the page says the panel must be restarted.
    assert_eq!(confirmed.location.as_deref(), Some("/onboarding?flash=restore_pending"));
    let page = ui.get("/onboarding?flash=restore_pending").await;
    assert!(page.body.contains("restart `portico serve` to apply it"), "{}", page.body);
    assert!(page.body.contains("<strong>A restore is confirmed</strong>"), "{}", page.body);
    let confirms = AuditQuery { action: Some("backup.restore.confirm".into()), limit: 10, ..Default::default() };
    let entries = ui.state.store.audit_entries(confirms).await.unwrap().0;
    assert_eq!(entries.iter().map(|e| e.target.as_str()).collect::<Vec<_>>(), ["onboarding"]);

    // The next start: applied before the store opens.
    let Some(staged::Startup::Applied(applied)) = staged::apply_pending(&data_dir).unwrap() else {
        panic!("a pending restore")
    };
    let restored = Store::open(&ui.state.settings.db_path()).unwrap();
    assert_eq!(restored.dump().unwrap(), want, "the store equals the backup");
    drop(restored);
    let site = std::fs::read_to_string(data_dir.join("sites/blog/index.html")).unwrap();
    assert_eq!(site, "from the old server");
    let state = actix_web::web::Data::new(crate::panel::AppState::load((*ui.state.settings).clone()).await.unwrap());
    crate::app::restore::finish_restore(&state, &applied).await;
    assert_eq!(state.onboarding_state(), OnboardingState::Completed);
    let old_admin = old.state.pki.admin_info().unwrap().serial;
    assert_eq!(state.pki.admin_info().unwrap().serial, old_admin, "the old admin certificate opens the panel");
    assert_eq!(state.store.tunnels().await.unwrap()[0].name, "nas");
    assert_eq!(state.store.certificates().await.unwrap()[0].name, "panel.example.com");
    assert!(state.store.user("alice".into()).await.unwrap().is_some());

    let restarted = ui.restarted(state);
    let wizard = restarted.get("/onboarding").await;
    assert_eq!(wizard.location.as_deref(), Some("/"), "onboarding is over");
    let dashboard = restarted.get("/").await;
    assert_eq!(dashboard.status, StatusCode::OK, "{}", dashboard.body);
    assert!(dashboard.body.contains("example.com"), "{}", dashboard.body);
    assert!(restarted.audit_actions().await.contains(&"backup.restore".to_string()));
}

#[actix_web::test]
async fn the_wizard_takes_a_restore_until_provisioning_and_refuses_it_after_completion() {
    let (_old, archive, _) = old_server().await;
    let ui = ui_with(|_| {}).await;
    let csrf = ui.get("/onboarding").await.csrf();

    ui.set_state(OnboardingState::Provisioning).await;
    let running = upload_to(&ui, UPLOAD, &csrf, PASS, &archive).await;
    assert_eq!(running.status, StatusCode::CONFLICT, "{}", running.body);
    assert!(running.body.contains("Provisioning is running"), "{}", running.body);
    nothing_staged(&ui);

    // DNS_READY: nothing of value exists yet, the restore replaces the domain typed in.
    ui.set_state(OnboardingState::DnsReady).await;
    let staged = upload_to(&ui, UPLOAD, &csrf, PASS, &archive).await;
    assert_eq!(staged.location.as_deref(), Some("/onboarding?flash=restore_staged"), "{}", staged.body);
    let page = ui.get("/onboarding").await;
    assert!(page.body.contains("<strong>Ready to restore</strong>") && !offers_upload(&page, ""), "{}", page.body);

    ui.set_state(OnboardingState::Completed).await;
    let late = upload_to(&ui, UPLOAD, &csrf, PASS, &archive).await;
    assert_eq!(late.status, StatusCode::GONE, "{}", late.body);
    assert!(late.body.contains("Restore a backup from the Backups page"), "{}", late.body);
    for path in ["/onboarding/restore/apply", "/onboarding/restore/discard"] {
        let refused = ui.post(path, Some(&csrf), &[("confirm", "yes")]).await;
        assert_eq!(refused.status, StatusCode::GONE, "{path}: {}", refused.body);
    }
    let dir = &ui.state.settings.data_dir;
    assert!(staged::staged(dir).unwrap().is_some(), "left for the Backups page");
    assert_eq!(staged::pending(dir).unwrap(), None, "not confirmed");
    let page = ui.get("/backups").await;
    assert!(page.body.contains("action=\"/backups/restore/apply\""), "{}", page.body);
}

#[actix_web::test]
async fn a_restore_from_the_wizard_needs_the_csrf_token() {
    let (_old, archive, _) = old_server().await;
    let ui = ui_with(|_| {}).await;
    let foreign = ui.as_ingress("alice").get("/onboarding").await.csrf();
    for token in ["", "1.00", foreign.as_str()] {
        let refused = upload_to(&ui, UPLOAD, token, PASS, &archive).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
        assert!(refused.body.contains("did not come from this panel"), "{}", refused.body);
    }
    nothing_staged(&ui);
    assert!(stage_audit(&ui).await.is_empty(), "refused before the upload is read");
    let staged = upload_to(&ui, UPLOAD, &ui.get("/onboarding").await.csrf(), PASS, &archive).await;
    assert_eq!(staged.status, StatusCode::SEE_OTHER, "{}", staged.body);
    for path in ["/onboarding/restore/apply", "/onboarding/restore/discard"] {
        for token in [None, Some("1.00")] {
            let forged = ui.post(path, token, &[("confirm", "yes")]).await;
            assert_eq!(forged.status, StatusCode::FORBIDDEN, "{path} {token:?}");
        }
    }
    let dir = &ui.state.settings.data_dir;
    assert!(staged::staged(dir).unwrap().is_some(), "still staged, not confirmed");
    assert_eq!(staged::pending(dir).unwrap(), None);
    assert!(ui.audit_actions().await.contains(&"ui.csrf_refused".to_string()));
}

#[actix_web::test]
async fn the_wizard_restore_stays_under_the_ingress_path() {
    let (_old, archive, _) = old_server().await;
    let ui = ui_with(|_| {}).await;
    let ingress = ui.as_ingress("alice");
    let page = ingress.get("/onboarding").await;
    assert!(offers_upload(&page, INGRESS), "{}", page.body);
    assert_urls_under(&page.body, INGRESS);
    let wrong = upload_to(&ingress, UPLOAD, &page.csrf(), "not the passphrase at all", &archive).await;
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST);
    assert_urls_under(&wrong.body, INGRESS);
    let staged = upload_to(&ingress, UPLOAD, &page.csrf(), PASS, &archive).await;
    assert_eq!(staged.location, Some(format!("{INGRESS}/onboarding?flash=restore_staged")));
    let page = ingress.get("/onboarding").await;
    assert!(page.body.contains(&format!("action=\"{INGRESS}/onboarding/restore/apply\"")));
    assert_urls_under(&page.body, INGRESS);
    let discarded = ingress.post("/onboarding/restore/discard", Some(&page.csrf()), &[]).await;
    assert_eq!(discarded.location, Some(format!("{INGRESS}/onboarding?flash=restore_discarded")));
    let staged = upload_to(&ingress, UPLOAD, &page.csrf(), PASS, &archive).await;
    assert_eq!(staged.status, StatusCode::SEE_OTHER);
    let confirmed = ingress.post("/onboarding/restore/apply", Some(&page.csrf()), &[("confirm", "yes")]).await;
    assert_eq!(confirmed.location, Some(format!("{INGRESS}/onboarding?flash=restore_pending")));
    let page = ingress.get("/onboarding?flash=restore_pending").await;
    assert_urls_under(&page.body, INGRESS);
    assert!(page.body.contains("<strong>A restore is confirmed</strong>"));
}
