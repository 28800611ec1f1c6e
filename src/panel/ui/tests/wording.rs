//! Render tests of the pages' wording: one name per access mode, public
//! addresses as links, one heading per list, the Renew button, schedules in
//! words, the nginx files listed once and field errors as sentences.

use actix_web::http::StatusCode;

use super::{assert_urls_under, completed_ui, ui_with};
use crate::identity::Capability;
use crate::onboarding::OnboardingState;

/// Every `class="field-error"` message in `body` starts with a capital.
fn assert_errors_are_sentences(body: &str) {
    let mut seen = 0;
    for (i, _) in body.match_indices("class=\"field-error\"") {
        let text = body[i..].split_once('>').unwrap().1;
        let first = text.chars().next().unwrap();
        assert!(first.is_uppercase(), "a field error starts in lowercase: {}", &text[..text.len().min(80)]);
        seen += 1;
    }
    assert!(seen > 0, "no field error rendered: {body}");
}

#[actix_web::test]
async fn tunnel_pages_name_access_once_and_link_the_address() {
    let ui = completed_ui().await;
    crate::agents::issue(ui.state.pki.clone(), &ui.state.store, "home".into(), vec![Capability::TunnelsRead])
        .await
        .unwrap();
    let page = ui.get("/tunnels").await;
    assert_eq!(page.body.matches(">Tunnels</h").count(), 1, "one heading: {}", page.body);
    assert!(page.body.contains("<h1>Tunnels</h1>"));
    for label in ["Public — anyone with the link", "Signed-in visitors — any visitor user", "Restricted — only the"]
    {
        assert!(page.body.contains(label), "{label}: {}", page.body);
    }
    let csrf = page.csrf();

    let bad = ui
        .post("/tunnels", Some(&csrf), &[("name", "Nas"), ("agent", "home"), ("target", "nas"), ("access", "maybe")])
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.body.contains("id=\"access-error\">Choose public, authenticated or restricted"), "{}", bad.body);
    assert_errors_are_sentences(&bad.body);

    let fields = [("name", "nas"), ("agent", "home"), ("target", "127.0.0.1:5000"), ("access", "authenticated")];
    assert_eq!(ui.post("/tunnels", Some(&csrf), &fields).await.status, StatusCode::SEE_OTHER);
    let id = ui.state.store.tunnels().await.unwrap()[0].id;
    let link = "<a class=\"address\" href=\"https://nas.example.com/\" target=\"_blank\" rel=\"noopener\">https://nas.example.com/</a>";
    let list = ui.get("/tunnels").await;
    assert!(list.body.contains(link), "{}", list.body);
    assert!(list.body.contains("<td>Signed-in visitors</td>"), "{}", list.body);
    assert!(!list.body.contains("<td>authenticated"), "the stored value is not shown");
    let detail = ui.get(&format!("/tunnels/{id}")).await;
    assert!(detail.body.contains(&format!("<dt>Address</dt><dd>{link}</dd>")), "{}", detail.body);
    assert!(detail.body.contains("<dt>Access</dt><dd>Signed-in visitors</dd>"));
    assert!(!detail.body.contains("<code>https://nas.example.com"), "an address, not code");
    assert_urls_under(&ui.as_ingress("alice").get("/tunnels").await.body, super::INGRESS);
}

#[actix_web::test]
async fn site_pages_link_the_address_under_one_heading() {
    let ui = completed_ui().await;
    let page = ui.get("/sites").await;
    assert_eq!(page.body.matches("ites</h").count(), 1, "one heading: {}", page.body);
    let made = ui.post("/sites", Some(&page.csrf()), &[("name", "docs"), ("access", "public")]).await;
    assert_eq!(made.status, StatusCode::SEE_OTHER, "{}", made.body);
    let link = "href=\"https://docs.example.com/\" target=\"_blank\" rel=\"noopener\">https://docs.example.com/</a>";
    let list = ui.get("/sites").await;
    assert!(list.body.contains(link) && list.body.contains("<td>Public</td>"), "{}", list.body);
    let id = ui.state.store.sites().await.unwrap()[0].id;
    let site = ui.get(&format!("/sites/{id}")).await;
    assert!(site.body.contains(&format!("Served at <a class=\"address\" {link}.")), "{}", site.body);
}

#[actix_web::test]
async fn schedules_are_said_in_words_with_the_next_run() {
    let ui = ui_with(|s| {
        s.backup.schedule = Some("0 30 3 * * *".into());
        s.backup.passphrase = Some(crate::settings::Secret::new("correct horse battery"));
        s.backup.keep = 5;
    })
    .await;
    ui.set_state(OnboardingState::Completed).await;
    let backups = ui.get("/backups").await;
    let said = "Scheduled backups run <span class=\"schedule\" title=\"cron: 0 30 3 * * *\">daily at 03:30 UTC</span>; next run 20";
    assert!(backups.body.contains(said), "{}", backups.body);
    assert!(backups.body.contains("The newest 5 archives stay."));
    let off = completed_ui().await.get("/backups").await;
    assert!(off.body.contains("Scheduled backups are off;"), "{}", off.body);

    let certs = ui.get("/certs").await;
    let words = "title=\"cron: 0 17 3 * * Mon,Thu\">weekly on Monday and Thursday at 03:17 UTC</span>";
    assert!(certs.body.contains(words), "{}", certs.body);
    assert!(!certs.body.contains("<code>0 17 3 * * Mon,Thu</code>"));
}

#[actix_web::test]
async fn nginx_page_lists_each_file_once() {
    let ui = ui_with(|s| s.nginx.run_dir = s.data_dir.join("nginx-run")).await;
    std::fs::create_dir_all(&ui.state.settings.nginx.run_dir).unwrap();
    ui.set_state(OnboardingState::Completed).await;
    let tree = crate::nginx::state::render_state(&ui.state.settings, &ui.state.store).await.unwrap();
    crate::nginx::state::applier(&ui.state.settings).install(&tree, "first start").unwrap();
    let page = ui.get("/nginx").await;
    assert!(page.body.contains(&format!("{} files, rendered from the store", tree.files.len())), "{}", page.body);
    for path in tree.files.keys() {
        let shown = format!("<code>{}</code>", path.display());
        assert_eq!(page.body.matches(&shown).count(), 1, "{shown} listed once: {}", page.body);
    }
}
