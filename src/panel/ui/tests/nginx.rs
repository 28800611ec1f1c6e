//! Render tests of the nginx page: live tree, snapshots, diff and rollback
//! (refused while nginx is not managed here; a failed reload shows nginx's
//! lines and leaves the live tree as it was).

use actix_web::http::StatusCode;

use super::{INGRESS, Ui, assert_urls_under, ui_with};
use crate::onboarding::OnboardingState;

/// Installs two trees (checked by the real `nginx -t`), so one snapshot
/// exists; returns its id. The second tree changes nginx.conf's first line
/// (a comment) and appends one.
async fn with_snapshot(ui: &Ui) -> String {
    let settings = &ui.state.settings;
    let first = crate::nginx::state::render_state(settings, &ui.state.store).await.unwrap();
    let mut second = first.clone();
    let conf = second.files.get_mut(std::path::Path::new("nginx.conf")).expect("nginx.conf rendered");
    *conf = conf.replacen("# Rendered by Portico;", "# Rendered <again> by Portico;", 1);
    conf.push_str("# second tree\n");
    let applier = crate::nginx::state::applier(settings);
    applier.install(&first, "first start").unwrap();
    let out = applier.install(&second, "tunnel created").unwrap();
    out.snapshot.expect("the first tree was snapshotted")
}

async fn ready(enabled: bool) -> Ui {
    let ui = ui_with(|s| {
        s.nginx.enabled = enabled;
        s.nginx.run_dir = s.data_dir.join("nginx-run");
        s.nginx.bind = "127.0.0.1".parse().unwrap();
    })
    .await;
    std::fs::create_dir_all(&ui.state.settings.nginx.run_dir).unwrap();
    ui.set_state(OnboardingState::Completed).await;
    ui
}

#[actix_web::test]
async fn nginx_page_lists_the_live_tree_and_snapshots_with_their_diff() {
    let ui = ready(false).await;
    let empty = ui.get("/nginx").await;
    assert_eq!(empty.status, StatusCode::OK);
    assert!(empty.body.contains("No snapshots yet."), "{}", empty.body);
    assert!(empty.body.contains("aria-current=\"page\">nginx</a>"));

    let id = with_snapshot(&ui).await;
    let page = ui.get("/nginx").await;
    assert!(page.body.contains(&format!("href=\"/nginx/snapshots/{id}\"")), "{}", page.body);
    assert!(page.body.contains("<td>tunnel created</td>"));
    assert!(page.body.contains("<summary><code>nginx.conf</code></summary>"));
    assert!(page.body.contains("# second tree"), "live contents shown");

    // Side by side: old left, new right; the changed first line on one row.
    let diff = ui.get(&format!("/nginx/snapshots/{id}")).await;
    assert_eq!(diff.status, StatusCode::OK);
    assert!(
        diff.body.contains("<h4><code>nginx.conf</code> <span class=\"badge\">modified</span></h4>"),
        "{}",
        diff.body
    );
    assert!(diff.body.contains(&format!(
        "<th scope=\"col\" colspan=\"2\">Snapshot {id}</th><th scope=\"col\" colspan=\"2\">Live configuration</th>"
    )));
    let changed = "<tr class=\"sbs-chg\">\n    <td class=\"num\">1</td><td class=\"old\"><del># Rendered by Portico;";
    assert!(diff.body.contains(changed), "{}", diff.body);
    let right = "<td class=\"num\">1</td><td class=\"new\"><ins># Rendered &#60;again&#62; by Portico;";
    assert!(diff.body.contains(right), "new text escaped, on the same row: {}", diff.body);
    assert!(diff.body.contains("<td class=\"num\"></td><td class=\"old empty\"></td>"), "added line: empty left");
    assert!(diff.body.contains("<ins># second tree</ins>"));
    assert!(diff.body.contains("unchanged lines</td>"), "long unchanged stretches fold");
    assert!(!diff.body.contains("Compare with"), "no other snapshot to compare with");
    assert!(diff.body.contains(&format!("action=\"/nginx/snapshots/{id}/rollback\"")));
    assert!(diff.body.contains("<details class=\"confirm danger\">"), "rollback needs a second click");

    assert_eq!(ui.get("/nginx/snapshots/nope").await.status, StatusCode::NOT_FOUND);
    let unknown = ui.get(&format!("/nginx/snapshots/{id}?against=nope")).await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
    assert!(unknown.body.contains("no other snapshot with that id"), "{}", unknown.body);
    assert_eq!(ui.get("/nginx/snapshots/..%2Fetc").await.status, StatusCode::NOT_FOUND);

    let forged = ui.post(&format!("/nginx/snapshots/{id}/rollback"), Some("forged"), &[]).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let refused = ui.post(&format!("/nginx/snapshots/{id}/rollback"), Some(&diff.csrf()), &[]).await;
    assert_eq!(refused.status, StatusCode::CONFLICT);
    assert!(refused.body.contains("nginx management is disabled"), "{}", refused.body);
    assert!(ui.state.nginx.live_tree().await.unwrap().files.values().any(|f| f.contains("# second tree")));
    assert_eq!(ui.audit_actions().await.iter().filter(|a| *a == "nginx.rollback").count(), 1);

    let ingress = ui.as_ingress("alice");
    for path in ["/nginx".to_string(), format!("/nginx/snapshots/{id}")] {
        let page = ingress.get(&path).await;
        assert_eq!(page.status, StatusCode::OK);
        assert_urls_under(&page.body, INGRESS);
    }
}

#[actix_web::test]
async fn failed_rollback_shows_nginx_lines_and_keeps_the_live_tree() {
    // nginx is managed but not running: `nginx -t` accepts the snapshot, the
    // reload fails, and the previous tree is restored.
    let ui = ready(true).await;
    let id = with_snapshot(&ui).await;
    let before = ui.state.nginx.live_tree().await.unwrap();
    let csrf = ui.get(&format!("/nginx/snapshots/{id}")).await.csrf();
    let failed = ui.post(&format!("/nginx/snapshots/{id}/rollback"), Some(&csrf), &[]).await;
    assert_eq!(failed.status, StatusCode::BAD_GATEWAY, "{}", failed.body);
    assert!(failed.body.contains("Rollback refused:</strong> nginx reload failed"), "{}", failed.body);
    assert!(failed.body.contains("<pre class=\"code nginx-error\">"), "nginx's lines shown");
    let lines = failed.body.split("<pre class=\"code nginx-error\">").nth(1).unwrap().split("</pre>").next().unwrap();
    assert!(!lines.contains(&ui.state.settings.data_dir.display().to_string()), "no file paths: {lines}");
    assert_eq!(ui.state.nginx.live_tree().await.unwrap(), before);
}

#[actix_web::test]
async fn two_snapshots_compare_side_by_side() {
    let ui = ready(false).await;
    let older = with_snapshot(&ui).await;
    let settings = &ui.state.settings;
    let mut third = ui.state.nginx.live_tree().await.unwrap();
    third.files.get_mut(std::path::Path::new("nginx.conf")).unwrap().push_str("# third tree\n");
    let newer = crate::nginx::state::applier(settings).install(&third, "site created").unwrap().snapshot.unwrap();

    let page = ui.get(&format!("/nginx/snapshots/{older}")).await;
    assert!(page.body.contains("<label for=\"against\">Compare with</label>"), "{}", page.body);
    assert!(page.body.contains(&format!("<option value=\"{newer}\">Snapshot {newer}")));
    assert!(!page.body.contains(&format!("<option value=\"{older}\"")), "not offered against itself");

    // The newer snapshot holds the second tree: only the first two changes show.
    let both = ui.get(&format!("/nginx/snapshots/{older}?against={newer}")).await;
    assert_eq!(both.status, StatusCode::OK);
    assert!(both.body.contains(&format!("colspan=\"2\">Snapshot {newer}</th>")), "{}", both.body);
    assert!(both.body.contains(&format!("<option value=\"{newer}\" selected>")));
    assert!(both.body.contains("<ins># second tree</ins>"));
    assert!(!both.body.contains("third tree"), "{}", both.body);
    let live = ui.get(&format!("/nginx/snapshots/{older}")).await;
    assert!(live.body.contains("<ins># third tree</ins>"));

    let ingress = ui.as_ingress("alice");
    let page = ingress.get(&format!("/nginx/snapshots/{older}?against={newer}")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert_urls_under(&page.body, INGRESS);
}
