//! Render and handler tests of the certificates section (list, auto-renew
//! status, renew, bring-your-own), the site detail page (files, upload,
//! delete, edit) and an agent's allowed sites.

use actix_web::http::StatusCode;
use time::OffsetDateTime;

use super::{INGRESS, Ui, assert_labelled, assert_urls_under, completed_ui, ui_with};
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
        // The row names the host; the button says only what it does, and
        // its accessible name keeps the host.
        let button = format!("aria-label=\"Renew {name} now\">Renew</button>");
        assert!(page.body.contains(&button), "{name}: {}", page.body);
    }
    assert!(!page.body.contains(">Renew panel.example.com"), "the host is not repeated on the button");
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
    assert!(unknown.body.contains("No certificate is managed for nope.example.com"), "{}", unknown.body);

    // No contact email yet: the same readable banner, no 500.
    let bare = completed_ui().await;
    let csrf = bare.get("/certs").await.csrf();
    let refused = bare.post("/certs/renew", Some(&csrf), &[("name", "panel.example.com")]).await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "{}", refused.body);
    assert!(refused.body.contains("Onboarding has no domain and contact email yet"), "{}", refused.body);
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
    assert!(mismatch.body.contains("id=\"key-error\">The key does not match the certificate"), "{}", mismatch.body);
    assert!(mismatch.body.contains("-----BEGIN CERTIFICATE-----"), "the chain is kept");
    assert!(!mismatch.body.contains("PRIVATE KEY"), "the key is not echoed");
    let garbage = ui.post("/certs/upload", Some(&csrf), &[("name", "panel.example.com"), ("fullchain", "x")]).await;
    assert!(garbage.body.contains("id=\"fullchain-error\">"), "{}", garbage.body);
    assert!(ui.state.store.certificates().await.unwrap().is_empty(), "nothing installed");

    let fields = [("name", "panel.example.com"), ("fullchain", chain.as_str()), ("key", key.as_str())];
    let installed = ui.post("/certs/upload", Some(&csrf), &fields).await;
    let installed = ui.follow(&installed).await;
    assert!(installed.body.contains("A new certificate for <code>panel.example.com</code> is live."));
    assert!(installed.body.contains("manual (uploaded)"), "{}", installed.body);
}

/// A multipart upload to the site page, CSRF token as the first part.
async fn upload(ui: &Ui, id: i64, csrf: &str, files: &[(&str, &str)]) -> super::Page {
    let boundary = "XbOuNdArYx";
    let mut body = format!("--{boundary}\r\nContent-Disposition: form-data; name=\"_csrf\"\r\n\r\n{csrf}\r\n");
    for (path, content) in files {
        body.push_str(&format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{path}\"\r\n\
             Content-Type: application/octet-stream\r\n\r\n{content}\r\n"
        ));
    }
    body.push_str(&format!("--{boundary}--\r\n"));
    let req = actix_web::test::TestRequest::post()
        .uri(&format!("/sites/{id}/files"))
        .insert_header(("Content-Type", format!("multipart/form-data; boundary={boundary}")))
        .set_payload(body);
    let (channel, req) = ui.dress(req);
    ui.send(channel, req).await
}

async fn site(ui: &Ui, name: &str) -> (i64, std::path::PathBuf) {
    let csrf = ui.get("/sites").await.csrf();
    let made = ui.post("/sites", Some(&csrf), &[("name", name), ("access", "authenticated")]).await;
    assert_eq!(made.status, StatusCode::SEE_OTHER, "{}", made.body);
    let site = ui.state.store.sites().await.unwrap().into_iter().find(|s| s.name == name).unwrap();
    (site.id, crate::sites::site_dir(&ui.state.settings.data_dir, name))
}

#[actix_web::test]
async fn site_page_lists_uploads_and_deletes_files() {
    let ui = completed_ui().await;
    let (id, dir) = site(&ui, "docs").await;
    let list = ui.get("/sites").await;
    assert!(list.body.contains(&format!("href=\"/sites/{id}\"><strong>docs</strong>")), "{}", list.body);
    let page = ui.get(&format!("/sites/{id}")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("<code class=\"wrap\">index.html</code>"), "{}", page.body);
    assert!(page.body.contains("webkitdirectory") && page.body.contains("type=\"file\" name=\"files\" multiple"));
    assert_labelled(&page.body, "/sites/{id}");
    let csrf = page.csrf();

    let forged = upload(&ui, id, "1.abc", &[("x.txt", "x")]).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert!(!dir.join("x.txt").exists());

    let bad = upload(&ui, id, &csrf, &[("good.txt", "fine"), ("../evil.txt", "no")]).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.body);
    assert!(bad.body.contains("id=\"upload-error\">path: ") && bad.body.contains("evil.txt"), "{}", bad.body);
    assert!(!dir.join("good.txt").exists() && !dir.parent().unwrap().join("evil.txt").exists(), "nothing written");

    let done = upload(&ui, id, &csrf, &[("hello.txt", "hello"), ("site/assets/app.js", "let a = 1;")]).await;
    assert_eq!(done.location.as_deref(), Some(&*format!("/sites/{id}?flash=files_uploaded")), "{}", done.body);
    assert_eq!(std::fs::read_to_string(dir.join("site/assets/app.js")).unwrap(), "let a = 1;");
    let listed = ui.get(&format!("/sites/{id}?flash=files_uploaded")).await;
    assert!(listed.body.contains("Files uploaded") && listed.body.contains(">site/assets/app.js</code>"));
    assert!(listed.body.contains("<td>5 B</td>"), "{}", listed.body);

    let unconfirmed = ui.post(&format!("/sites/{id}/files/delete"), Some(&csrf), &[("path", "hello.txt")]).await;
    assert_eq!(unconfirmed.status, StatusCode::BAD_REQUEST);
    assert!(dir.join("hello.txt").exists());
    let fields = [("path", "hello.txt"), ("confirm", "yes")];
    let deleted = ui.post(&format!("/sites/{id}/files/delete"), Some(&csrf), &fields).await;
    assert_eq!(deleted.location.as_deref(), Some(&*format!("/sites/{id}?flash=file_deleted")));
    assert!(!dir.join("hello.txt").exists());
    let actions = ui.audit_actions().await;
    assert!(actions.contains(&"site.files.upload".to_string()) && actions.contains(&"site.files.delete".to_string()));

    let ingress = ui.as_ingress("alice");
    for path in [format!("/sites/{id}"), "/sites".into()] {
        assert_urls_under(&ingress.get(&path).await.body, INGRESS);
    }
    let via_ingress = upload(&ingress, id, &ingress.get(&format!("/sites/{id}")).await.csrf(), &[("b.txt", "b")]).await;
    assert_eq!(via_ingress.location.as_deref(), Some(&*format!("{INGRESS}/sites/{id}?flash=files_uploaded")));
}

#[actix_web::test]
async fn site_page_edits_with_field_errors() {
    let ui = completed_ui().await;
    let (id, _) = site(&ui, "docs").await;
    let csrf = ui.get(&format!("/sites/{id}")).await.csrf();
    let bad = ui.post(&format!("/sites/{id}"), Some(&csrf), &[("name", "My Docs"), ("access", "public")]).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.body.contains("id=\"name-error\">Use a lowercase DNS label"), "{}", bad.body);
    assert!(bad.body.contains("value=\"My Docs\""));
    assert_eq!(ui.state.store.sites().await.unwrap()[0].name, "docs", "nothing changed");
    let fields = [("name", "manual"), ("access", "public"), ("spaFallback", "on")];
    let saved = ui.post(&format!("/sites/{id}"), Some(&csrf), &fields).await;
    assert_eq!(saved.location.as_deref(), Some(&*format!("/sites/{id}?flash=site_saved")), "{}", saved.body);
    let site = ui.state.store.sites().await.unwrap().remove(0);
    assert!(site.name == "manual" && site.access == crate::model::Access::Public && site.spa_fallback);
    assert!(crate::sites::site_dir(&ui.state.settings.data_dir, "manual").join("index.html").exists());
    assert_eq!(ui.get("/sites/999").await.status, StatusCode::NOT_FOUND);
    assert_eq!(ui.get("/sites/abc").await.status, StatusCode::NOT_FOUND);
}

#[actix_web::test]
async fn agent_page_edits_allowed_sites() {
    let ui = completed_ui().await;
    site(&ui, "docs").await;
    crate::agents::issue(ui.state.pki.clone(), &ui.state.store, "garage".into(), vec![]).await.unwrap();
    let page = ui.get("/agents/garage").await;
    assert!(page.body.contains("name=\"sites\" value=\"docs\""), "{}", page.body);
    assert_labelled(&page.body, "/agents/garage");
    let csrf = page.csrf();
    let bad = ui.post("/agents/garage/sites", Some(&csrf), &[("sites", "docs"), ("otherSites", "Bad Name")]).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let error = bad.body.split("id=\"sites-error\">").nth(1).expect("field error").split('<').next().unwrap();
    assert!(error.contains("Bad") && error.ends_with("is not a site name"), "{error}");
    assert!(ui.state.store.agent("garage".into()).await.unwrap().unwrap().allowed_sites.is_empty());
    let fields = [("sites", "docs"), ("otherSites", "blog, wiki")];
    let saved = ui.post("/agents/garage/sites", Some(&csrf), &fields).await;
    assert_eq!(saved.location.as_deref(), Some("/agents/garage?flash=sites_saved"));
    let agent = ui.state.store.agent("garage".into()).await.unwrap().unwrap();
    assert_eq!(agent.allowed_sites, ["docs", "blog", "wiki"]);
    let shown = ui.get("/agents/garage?flash=sites_saved").await;
    assert!(shown.body.contains("value=\"blog, wiki\"") && shown.body.contains("value=\"docs\" checked"));
    assert!(ui.audit_actions().await.contains(&"agent.sites".to_string()));
    assert_urls_under(&ui.as_ingress("alice").get("/agents/garage").await.body, INGRESS);
}

/// The pages and the API show what the last probe saw for each name: a site
/// that does not serve is "down" with why, a certificate on disk that nginx
/// does not serve is never shown as just "valid".
#[actix_web::test]
async fn sites_and_certificates_show_each_names_health_in_the_pages_and_the_api() {
    use crate::probe::tests::{health, report};
    let ui = ui_without_ca().await;
    let admin = crate::testing::admin("admin:test");
    let docs = crate::sites::NewSite { name: "docs".into(), ..Default::default() };
    let (site, _) = crate::app::sites::create(&ui.state, &admin, docs).await.unwrap();
    let now = OffsetDateTime::now_utc();
    ui.state
        .store
        .put_certificate(crate::store::CertRecord {
            name: "auth.example.com".into(),
            source: "acme".into(),
            issuer: "Test CA".into(),
            not_before: now - time::Duration::days(1),
            not_after: now + time::Duration::days(60),
            installed_at: now,
        })
        .await
        .unwrap();
    let mut auth = health("auth", "auth.example.com", false);
    auth.tls.detail = "nginx serves a certificate for panel.example.com instead of auth.example.com".into();
    auth.reason = Some(auth.tls.detail.clone());
    let mut site_health = health(&format!("site:{}", site.id), "docs.example.com", false);
    site_health.reason = Some("HTTP 200; the site's files are missing (upload them again)".into());
    ui.state.health.put(report(vec![health("panel", "panel.example.com", true), auth, site_health]));

    let sites = ui.get("/sites").await;
    assert!(sites.body.contains("badge bad\">down"), "{}", sites.body);
    assert!(sites.body.contains("files are missing (upload them again)"), "{}", sites.body);
    let certs = ui.get("/certs").await;
    assert!(certs.body.contains("valid, not served"), "{}", certs.body);
    assert!(certs.body.contains("instead of auth.example.com"), "{}", certs.body);

    let api: serde_json::Value = serde_json::from_str(&ui.get("/api/sites").await.body).unwrap();
    let row = &api["sites"][0];
    assert_eq!((row["name"].as_str(), row["health"]["serves"].as_bool()), (Some("docs"), Some(false)), "{api}");
    let api: serde_json::Value = serde_json::from_str(&ui.get("/api/certs").await.body).unwrap();
    let auth = api.as_array().unwrap().iter().find(|c| c["name"] == "auth.example.com").unwrap();
    assert_eq!(auth["state"], "valid");
    assert_eq!(auth["health"]["tls"]["ok"], false, "{auth}");
    let panel = api.as_array().unwrap().iter().find(|c| c["name"] == "panel.example.com").unwrap();
    assert_eq!(panel["health"]["serves"], true, "{panel}");
}
