//! Render and handler tests of the certificates section (list, auto-renew
//! status, renew, bring-your-own), the site detail page (files, upload,
//! delete, edit) and an agent's allowed sites.

use actix_web::http::StatusCode;
use time::OffsetDateTime;

use super::tests::{INGRESS, Ui, assert_labelled, assert_urls_under, completed_ui, ui_with};
use crate::onboarding::{self, OnboardingState};

fn self_signed(names: &[&str]) -> (String, String) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    let now = OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(60);
    (params.self_signed(&key).unwrap().pem(), key.serialize_pem())
}

/// A completed panel for example.com whose ACME directory does not answer.
async fn ui_without_ca() -> Ui {
    let ui = ui_with(|s| s.acme.directory = "https://127.0.0.1:9/directory".into()).await;
    ui.set_state(OnboardingState::Completed).await;
    ui.state
        .store
        .put_settings(vec![
            (onboarding::keys::DOMAIN, "example.com".into()),
            (onboarding::keys::EMAIL, "ops@example.com".into()),
        ])
        .await
        .unwrap();
    ui
}

#[actix_web::test]
async fn certificates_list_every_name_with_renewal_status() {
    let ui = ui_without_ca().await;
    let page = ui.get("/certs").await;
    assert_eq!(page.status, StatusCode::OK);
    for name in ["panel.example.com", "auth.example.com"] {
        assert!(page.body.contains(&format!("<strong>{name}</strong>")), "{name}: {}", page.body);
        assert!(page.body.contains(&format!("Renew {name} now")), "{name}");
    }
    assert!(page.body.contains("Automatic renewal") && page.body.contains("Next run"), "{}", page.body);
    assert!(page.body.contains("Bring your own certificate"));
    assert_labelled(&page.body, "/certs");
    assert_urls_under(&ui.as_ingress("alice").get("/certs").await.body, INGRESS);
}

#[actix_web::test]
async fn renew_without_a_reachable_ca_shows_a_readable_error() {
    let ui = ui_without_ca().await;
    let csrf = ui.get("/certs").await.csrf();
    let renewed = ui.post("/certs/renew", Some(&csrf), &[("name", "panel.example.com")]).await;
    assert_eq!(renewed.status, StatusCode::BAD_GATEWAY, "{}", renewed.body);
    assert!(renewed.body.contains("class=\"flash error\" role=\"alert\""), "{}", renewed.body);
    assert!(!renewed.body.contains("Internal server error"));
    assert!(renewed.body.contains("TLS certificates"), "the page is shown again");
    assert!(ui.audit_actions().await.contains(&"cert.renew".to_string()));
    let unknown = ui.post("/certs/renew", Some(&csrf), &[("name", "nope.example.com")]).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert!(unknown.body.contains("no certificate is managed for nope.example.com"), "{}", unknown.body);

    // No contact email yet: the same readable banner, no 500.
    let bare = completed_ui().await;
    let csrf = bare.get("/certs").await.csrf();
    let refused = bare.post("/certs/renew", Some(&csrf), &[("name", "panel.example.com")]).await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "{}", refused.body);
    assert!(refused.body.contains("onboarding has no domain and contact email yet"), "{}", refused.body);
}

#[actix_web::test]
async fn bring_your_own_shows_field_errors_then_installs() {
    let ui = ui_without_ca().await;
    let csrf = ui.get("/certs").await.csrf();
    let (chain, key) = self_signed(&["*.example.com"]);
    let (_, other_key) = self_signed(&["*.example.com"]);
    let fields = [("name", "panel.example.com"), ("fullchain", chain.as_str()), ("key", other_key.as_str())];
    let mismatch = ui.post("/certs/upload", Some(&csrf), &fields).await;
    assert_eq!(mismatch.status, StatusCode::BAD_REQUEST);
    assert!(mismatch.body.contains("id=\"key-error\">the key does not match the certificate"), "{}", mismatch.body);
    assert!(mismatch.body.contains("-----BEGIN CERTIFICATE-----"), "the chain is kept");
    assert!(!mismatch.body.contains("PRIVATE KEY"), "the key is not echoed");
    let garbage = ui.post("/certs/upload", Some(&csrf), &[("name", "panel.example.com"), ("fullchain", "x")]).await;
    assert!(garbage.body.contains("id=\"fullchain-error\">"), "{}", garbage.body);
    assert!(ui.state.store.certificates().await.unwrap().is_empty(), "nothing installed");

    let fields = [("name", "panel.example.com"), ("fullchain", chain.as_str()), ("key", key.as_str())];
    let installed = ui.post("/certs/upload", Some(&csrf), &fields).await;
    assert_eq!(installed.status, StatusCode::OK, "{}", installed.body);
    assert!(installed.body.contains("A new certificate for <code>panel.example.com</code> is live."));
    assert!(installed.body.contains("manual (uploaded)"), "{}", installed.body);
}
