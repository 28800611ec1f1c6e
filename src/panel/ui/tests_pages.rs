//! Render tests of the tunnel, user, group, invitation, site and settings
//! pages (helpers in [`super::tests`]): field errors next to fields with the
//! user's input kept, results in the lists, and the same domain effects as
//! the API.

use actix_web::http::StatusCode;

use super::tests::{Ui, assert_labelled, assert_urls_under, completed_ui};
use crate::identity::Capability;

async fn agent(ui: &Ui, label: &str) {
    crate::agents::issue(ui.state.pki.clone(), &ui.state.store, label.into(), vec![Capability::TunnelsRead])
        .await
        .unwrap();
}

#[actix_web::test]
async fn tunnels_create_validate_edit_toggle_and_delete() {
    let ui = completed_ui().await;
    agent(&ui, "home").await;
    let page = ui.get("/tunnels").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("No tunnels yet."));
    assert!(page.body.contains("<option value=\"home\" selected>home</option>"), "{}", page.body);
    let csrf = page.csrf();

    let bad = ui
        .post(
            "/tunnels",
            Some(&csrf),
            &[("name", "Panel"), ("agent", "home"), ("target", "nas:0"), ("access", "public")],
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.body.contains("id=\"name-error\">a lowercase DNS label"), "{}", bad.body);
    assert!(bad.body.contains("id=\"target-error\">host:port with a port from 1 to 65535"));
    assert!(bad.body.contains("value=\"Panel\"") && bad.body.contains("value=\"nas:0\""), "input kept");
    assert!(ui.state.store.tunnels().await.unwrap().is_empty());

    let reserved =
        ui.post("/tunnels", Some(&csrf), &[("name", "panel"), ("agent", "home"), ("target", "nas:80")]).await;
    assert!(reserved.body.contains("&#x27;panel&#x27; is reserved") || reserved.body.contains("is reserved"));

    let created = ui
        .post(
            "/tunnels",
            Some(&csrf),
            &[("name", "nas"), ("agent", "home"), ("target", "127.0.0.1:5000"), ("access", "public")],
        )
        .await;
    let t =
        ui.state.store.tunnels().await.unwrap().pop().unwrap_or_else(|| panic!("{} {}", created.status, created.body));
    assert_eq!(created.location.as_deref(), Some(&*format!("/tunnels/{}?flash=tunnel_created", t.id)));
    assert_eq!((t.name.as_str(), t.access.as_str(), t.enabled), ("nas", "public", true));

    let detail = ui.get(&format!("/tunnels/{}?flash=tunnel_created", t.id)).await;
    assert!(detail.body.contains("Tunnel created."));
    assert!(detail.body.contains("https://nas.example.com"));
    assert!(detail.body.contains("portico agent enroll --panel https://panel.example.com"), "{}", detail.body);
    assert!(detail.body.contains("ExecStart=/usr/local/bin/portico agent run"));
    let unit = ui.get(&format!("/tunnels/{}/agent/systemd", t.id)).await;
    assert_eq!(unit.status, StatusCode::OK);
    assert!(unit.body.starts_with("[Unit]"));

    let list = ui.get("/tunnels").await;
    assert!(list.body.contains(">nas</a>") && list.body.contains("127.0.0.1:5000"));
    assert!(list.body.contains("badge bad\">offline"), "no agent connected");

    let edit_bad = ui
        .post(
            &format!("/tunnels/{}", t.id),
            Some(&csrf),
            &[("name", "nas"), ("agent", "home"), ("target", "127.0.0.1:5000"), ("access", "sometimes")],
        )
        .await;
    assert_eq!(edit_bad.status, StatusCode::BAD_REQUEST);
    assert!(edit_bad.body.contains("id=\"access-error\">one of public, authenticated, restricted"));
    let saved = ui
        .post(
            &format!("/tunnels/{}", t.id),
            Some(&csrf),
            &[
                ("name", "files"),
                ("agent", "home"),
                ("target", "nas.lan:443"),
                ("access", "authenticated"),
                ("enabled", "on"),
                ("allowedUsers", "ignored-unless-restricted"),
            ],
        )
        .await;
    assert_eq!(saved.location.as_deref(), Some(&*format!("/tunnels/{}?flash=tunnel_saved", t.id)));
    let t = ui.state.store.tunnel(t.id).await.unwrap().unwrap();
    assert_eq!((t.name.as_str(), t.target.as_str(), t.access.as_str()), ("files", "nas.lan:443", "authenticated"));
    assert!(t.allowed_users.is_empty());

    let off = ui.post(&format!("/tunnels/{}/toggle", t.id), Some(&csrf), &[]).await;
    assert_eq!(off.location.as_deref(), Some("/tunnels?flash=tunnel_disabled"));
    assert!(!ui.state.store.tunnel(t.id).await.unwrap().unwrap().enabled);
    assert!(ui.get("/tunnels").await.body.contains(">disabled</span>"));
    ui.post(&format!("/tunnels/{}/toggle", t.id), Some(&csrf), &[("from", "tunnel")]).await;
    assert!(ui.state.store.tunnel(t.id).await.unwrap().unwrap().enabled);

    let unconfirmed = ui.post(&format!("/tunnels/{}/delete", t.id), Some(&csrf), &[]).await;
    assert_eq!(unconfirmed.status, StatusCode::BAD_REQUEST);
    let deleted = ui.post(&format!("/tunnels/{}/delete", t.id), Some(&csrf), &[("confirm", "yes")]).await;
    assert_eq!(deleted.location.as_deref(), Some("/tunnels?flash=tunnel_deleted"));
    assert!(ui.state.store.tunnels().await.unwrap().is_empty());
    let missing = ui.get(&format!("/tunnels/{}", t.id)).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    let actions = ui.audit_actions().await;
    for a in ["tunnel.create", "tunnel.update", "tunnel.delete"] {
        assert!(actions.contains(&a.to_string()), "{a} audited: {actions:?}");
    }
}

#[actix_web::test]
async fn new_pages_keep_urls_under_ingress_and_label_every_control() {
    let ui = completed_ui().await;
    agent(&ui, "home").await;
    let csrf = ui.get("/tunnels").await.csrf();
    let fields = [("name", "nas"), ("agent", "home"), ("target", "127.0.0.1:5000"), ("access", "public")];
    ui.post("/tunnels", Some(&csrf), &fields).await;
    let id = ui.state.store.tunnels().await.unwrap()[0].id;
    let paths = vec!["/tunnels".to_string(), format!("/tunnels/{id}")];
    for path in &paths {
        let page = ui.get(path).await;
        assert_eq!(page.status, StatusCode::OK, "{path}");
        assert_labelled(&page.body, path);
    }
    let ingress = ui.as_ingress("alice");
    for path in &paths {
        let page = ingress.get(path).await;
        assert_eq!(page.status, StatusCode::OK, "{path}");
        assert_urls_under(&page.body, super::tests::INGRESS);
    }
}
