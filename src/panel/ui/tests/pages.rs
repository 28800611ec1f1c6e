//! Render tests of the tunnel, user, group, invitation, site and settings
//! pages (helpers in [`super`]): field errors next to fields with the
//! user's input kept, results in the lists, and the same domain effects as
//! the API.

use actix_web::http::StatusCode;

use super::{Ui, assert_labelled, assert_urls_under, completed_ui};
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
    assert!(bad.body.contains("id=\"name-error\">Use a lowercase DNS label"), "{}", bad.body);
    assert!(bad.body.contains("id=\"target-error\">Give host:port with a port from 1 to 65535"));
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
    let line = "https://203.0.113.10:9292/download/install.sh | sh -s -- --token &#60;token&#62;";
    assert!(detail.body.contains(line), "the one line: {}", detail.body);
    assert!(detail.body.contains("ExecStart=/usr/local/bin/portico agent --config-dir /var/lib/portico-agent run"));
    let unit = ui.get(&format!("/tunnels/{}/agent/systemd", t.id)).await;
    assert_eq!(unit.status, StatusCode::OK);
    assert!(unit.body.starts_with("[Unit]"));

    let list = ui.get("/tunnels").await;
    assert!(list.body.contains(">nas</a>") && list.body.contains("127.0.0.1:5000"));
    let dashboard = ui.get("/").await;
    assert!(
        dashboard.body.contains("tunnels online <small class=\"bad-text\">(1 offline)</small>"),
        "{}",
        dashboard.body
    );
    assert!(list.body.contains("badge bad\">offline"), "no agent connected");

    let edit_bad = ui
        .post(
            &format!("/tunnels/{}", t.id),
            Some(&csrf),
            &[("name", "nas"), ("agent", "home"), ("target", "127.0.0.1:5000"), ("access", "sometimes")],
        )
        .await;
    assert_eq!(edit_bad.status, StatusCode::BAD_REQUEST);
    assert!(edit_bad.body.contains("id=\"access-error\">Choose public, authenticated or restricted"));
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
    let new = crate::users::NewUser {
        username: "erin".into(),
        password: "a long enough secret".into(),
        ..Default::default()
    };
    crate::users::create_user(&ui.state.store, new).await.unwrap();
    ui.state.store.insert_group("family".into(), String::new(), time::OffsetDateTime::now_utc()).await.unwrap();
    let paths = vec![
        "/tunnels".to_string(),
        format!("/tunnels/{id}"),
        "/users".into(),
        "/users/erin".into(),
        "/groups".into(),
        "/invitations".into(),
        "/settings".into(),
        "/sites".into(),
    ];
    for path in &paths {
        let page = ui.get(path).await;
        assert_eq!(page.status, StatusCode::OK, "{path}");
        assert_labelled(&page.body, path);
    }
    let ingress = ui.as_ingress("alice");
    for path in &paths {
        let page = ingress.get(path).await;
        assert_eq!(page.status, StatusCode::OK, "{path}");
        assert_urls_under(&page.body, super::INGRESS);
    }
}

#[actix_web::test]
async fn users_create_with_totp_once_edit_reset_and_delete() {
    let ui = completed_ui().await;
    let page = ui.get("/users").await;
    assert!(page.body.contains("No visitor users yet."));
    let csrf = page.csrf();

    let bad = ui
        .post(
            "/users",
            Some(&csrf),
            &[("username", "Alice!"), ("email", "nope"), ("password", "short"), ("totp", "on")],
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.body.contains("id=\"username-error\">Use 1–32 characters"), "{}", bad.body);
    assert!(bad.body.contains("id=\"email-error\">This is not an email address"));
    assert!(bad.body.contains("id=\"password-error\">Use at least 12 characters"));
    assert!(bad.body.contains("value=\"Alice!\"") && !bad.body.contains("value=\"short\""), "password not echoed");
    assert!(ui.state.store.users().await.unwrap().is_empty());

    let created = ui
        .post(
            "/users",
            Some(&csrf),
            &[("username", "alice"), ("displayName", "Alice"), ("password", "a long enough secret"), ("totp", "on")],
        )
        .await;
    let created = ui.follow(&created).await;
    assert!(created.body.contains("<svg") && created.body.contains("otpauth://totp/"), "QR shown");
    let user = ui.state.store.user("alice".into()).await.unwrap().unwrap();
    let secret = user.totp_secret.clone().unwrap();
    assert!(created.body.contains(&secret));
    assert!(!created.body.contains("id=\"new-password\""), "a chosen password is not shown");
    let list = ui.get("/users").await;
    assert!(!list.body.contains(&secret), "the secret is shown only once");
    assert!(list.body.contains(">alice</a>") && list.body.contains(">enrolled</span>"));

    let generated = ui.post("/users", Some(&csrf), &[("username", "bob")]).await;
    let generated = ui.follow(&generated).await;
    let at = generated.body.find("id=\"new-password\">").expect("generated password shown") + 18;
    let password: String = generated.body[at..].chars().take_while(|c| *c != '<').collect();
    let bob = ui.state.store.user("bob".into()).await.unwrap().unwrap();
    assert!(crate::users::verify_password(password, Some(bob.password_hash)).await);
    assert!(!bob.totp_enrolled, "TOTP only when asked for");

    let edit_bad = ui.post("/users/alice", Some(&csrf), &[("displayName", "A"), ("password", "tiny")]).await;
    assert_eq!(edit_bad.status, StatusCode::BAD_REQUEST);
    assert!(edit_bad.body.contains("id=\"password-error\""));
    let saved = ui.post("/users/alice", Some(&csrf), &[("displayName", "Alice B."), ("disabled", "on")]).await;
    assert_eq!(saved.location.as_deref(), Some("/users/alice?flash=user_saved"));
    let alice = ui.state.store.user("alice".into()).await.unwrap().unwrap();
    assert!(alice.disabled && alice.display_name == "Alice B." && alice.password_hash == user.password_hash);

    let reset = ui.post("/users/alice/reset-totp", Some(&csrf), &[("confirm", "yes")]).await;
    let reset_location = reset.location.clone();
    let other = ui.get(&reset_location.clone().unwrap().replace("/users/alice", "/users/bob")).await;
    assert!(!other.body.contains("<svg"), "another user's page does not show it");
    let reset = ui.follow(&reset).await;
    let new_secret = ui.state.store.user("alice".into()).await.unwrap().unwrap().totp_secret.unwrap();
    assert_ne!(new_secret, secret);
    assert!(reset.body.contains(&new_secret) && reset.body.contains("<svg"));
    let reload = ui.get(reset_location.as_deref().unwrap()).await;
    assert!(!reload.body.contains(&new_secret), "the new secret is shown once");

    let deleted = ui.post("/users/bob/delete", Some(&csrf), &[("confirm", "yes")]).await;
    assert_eq!(deleted.location.as_deref(), Some("/users?flash=user_deleted"));
    assert!(ui.state.store.user("bob".into()).await.unwrap().is_none());
    assert_eq!(ui.get("/users/bob").await.status, StatusCode::NOT_FOUND);
    let actions = ui.audit_actions().await;
    for a in ["user.create", "user.update", "user.reset_totp", "user.delete"] {
        assert!(actions.contains(&a.to_string()), "{a} audited");
    }
}

#[actix_web::test]
async fn groups_and_invitations_through_forms() {
    let ui = completed_ui().await;
    let csrf = ui.get("/groups").await.csrf();
    let bad = ui.post("/groups", Some(&csrf), &[("name", "Family Members")]).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.body.contains("id=\"name-error\">Use 1–32 characters"));
    assert!(bad.body.contains("value=\"Family Members\""));
    let made = ui.post("/groups", Some(&csrf), &[("name", "family"), ("description", "at home")]).await;
    assert_eq!(made.location.as_deref(), Some("/groups?flash=group_created"));
    let dup = ui.post("/groups", Some(&csrf), &[("name", "family")]).await;
    assert_eq!(dup.status, StatusCode::BAD_REQUEST);
    assert!(dup.body.contains("id=\"name-error\">"), "conflict shown at the name: {}", dup.body);

    let new = crate::users::NewUser {
        username: "carol".into(),
        password: "a long enough secret".into(),
        ..Default::default()
    };
    crate::users::create_user(&ui.state.store, new).await.unwrap();
    let page = ui.get("/groups").await;
    assert!(page.body.contains("<option value=\"carol\">carol</option>"));
    let added = ui.post("/groups/family/members", Some(&csrf), &[("username", "carol")]).await;
    assert_eq!(added.location.as_deref(), Some("/groups?flash=members_saved"));
    assert_eq!(ui.state.store.groups().await.unwrap()[0].members, ["carol"]);
    ui.post("/groups/family/members/carol/remove", Some(&csrf), &[]).await;
    assert!(ui.state.store.groups().await.unwrap()[0].members.is_empty());

    let page = ui.get("/invitations").await;
    assert!(page.body.contains("No invitations."));
    let bad = ui.post("/invitations", Some(&csrf), &[("username", "dave"), ("expiresInDays", "99")]).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.body.contains("id=\"days-error\">Use 1–30 days"), "{}", bad.body);
    let taken = ui.post("/invitations", Some(&csrf), &[("username", "carol"), ("expiresInDays", "7")]).await;
    assert!(taken.body.contains("already exists"));
    let created = ui
        .post("/invitations", Some(&csrf), &[("username", "dave"), ("groups", "family"), ("expiresInDays", "3")])
        .await;
    let created = ui.follow(&created).await;
    let at = created.body.find("https://auth.example.com/invite/").expect("link shown");
    let link: String = created.body[at..].chars().take_while(|c| *c != '<').collect();
    let token = link.rsplit('/').next().unwrap();
    let view = crate::users::view_invitation(&ui.state.store, token, time::OffsetDateTime::now_utc()).await.unwrap();
    assert_eq!(view.username, "dave");
    let list = ui.get("/invitations").await;
    assert!(!list.body.contains(token), "link shown once");
    assert!(list.body.contains(">pending</span>"));
    let id = ui.state.store.invitations().await.unwrap()[0].id.clone();
    let revoked = ui.post(&format!("/invitations/{id}/revoke"), Some(&csrf), &[("confirm", "yes")]).await;
    assert_eq!(revoked.location.as_deref(), Some("/invitations?flash=invitation_revoked"));
    assert!(crate::users::view_invitation(&ui.state.store, token, time::OffsetDateTime::now_utc()).await.is_err());

    let deleted = ui.post("/groups/family/delete", Some(&csrf), &[("confirm", "yes")]).await;
    assert_eq!(deleted.location.as_deref(), Some("/groups?flash=group_deleted"));
    assert!(ui.state.store.groups().await.unwrap().is_empty());
}

#[actix_web::test]
async fn panel_two_factor_setup_confirm_gate_and_disable() {
    use crate::two_factor::keys;
    let ui = completed_ui().await;
    let page = ui.get("/settings").await;
    assert!(page.body.contains("Set up two-factor"), "{}", page.body);
    let csrf = page.csrf();
    let started = ui.post("/settings/2fa/setup", Some(&csrf), &[]).await;
    let started = ui.follow(&started).await;
    assert!(started.body.contains("<svg") && started.body.contains("Turn on two-factor"));
    let pending = ui.state.store.settings(&[keys::PENDING]).await.unwrap()[0].clone().unwrap();
    assert!(started.body.contains(&pending), "secret shown with the QR code");
    assert!(!ui.get("/settings").await.body.contains(&pending), "shown once");

    let wrong = ui.post("/settings/2fa/confirm", Some(&csrf), &[("code", "000000")]).await;
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST);
    assert!(wrong.body.contains("id=\"code-error\">Wrong or already used code"), "{}", wrong.body);

    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let code = crate::totp::code_now(&pending, now).unwrap();
    let on = ui.post("/settings/2fa/confirm", Some(&csrf), &[("code", &code)]).await;
    assert_eq!(on.status, StatusCode::SEE_OTHER, "{}", on.body);
    let cookie = on.cookies.iter().find(|c| c.starts_with("portico_panel_2fa=")).expect("session cookie").clone();
    let cookie = cookie.split(';').next().unwrap().to_string();
    let shown = ui.get_with(on.location.as_deref().unwrap(), &[("Cookie", cookie.as_str())]).await;
    assert!(
        shown.body.contains("Two-factor login is on") && shown.body.contains("Your recovery codes"),
        "{}",
        shown.body
    );
    assert!(ui.state.store.settings(&[keys::ENABLED]).await.unwrap()[0].as_deref() == Some("1"));

    // Without the session, every page asks for the code first.
    let gated = ui.get("/tunnels").await;
    assert_eq!(gated.location.as_deref(), Some("/settings/2fa/verify?next=%2Ftunnels"));
    let ingress = ui.as_ingress("alice").get("/tunnels").await;
    assert_eq!(ingress.status, StatusCode::OK, "ingress users never present the admin certificate");
    let verify = ui.get("/settings/2fa/verify").await;
    assert!(verify.body.contains("Enter your code"));
    let bad = ui.post("/settings/2fa/verify", Some(&verify.csrf()), &[("code", &code)]).await;
    assert!(bad.body.contains("Wrong or already used code"), "a code works once");
    ui.state.store.put_settings(vec![(keys::LAST_STEP, "0".into())]).await.unwrap();
    let ok = ui.post("/settings/2fa/verify", Some(&verify.csrf()), &[("code", &code)]).await;
    assert_eq!(ok.location.as_deref(), Some("/"));
    assert!(ok.cookies.iter().any(|c| c.starts_with("portico_panel_2fa=")));
    let with = [("Cookie", cookie.as_str())];
    let settings = ui.get_with("/settings", &with).await;
    assert_eq!(settings.status, StatusCode::OK);
    assert!(settings.body.contains("Turn off two-factor"));

    ui.state.store.put_settings(vec![(keys::LAST_STEP, "0".into())]).await.unwrap();
    let off = ui.post_with("/settings/2fa/disable", Some(&csrf), &[("code", &code)], &with).await;
    assert_eq!(off.location.as_deref(), Some("/settings?flash=2fa_disabled"));
    assert_eq!(ui.get("/tunnels").await.status, StatusCode::OK, "no code needed any more");
    let actions = ui.audit_actions().await;
    for a in ["2fa.setup", "2fa.enable", "2fa.verify", "2fa.disable"] {
        assert!(actions.contains(&a.to_string()), "{a} audited");
    }
}

#[actix_web::test]
async fn sites_create_validate_and_delete() {
    let ui = completed_ui().await;
    let page = ui.get("/sites").await;
    assert!(page.body.contains("No static sites yet."));
    let csrf = page.csrf();
    let bad = ui.post("/sites", Some(&csrf), &[("name", "My Docs"), ("access", "public")]).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.body.contains("id=\"name-error\">Use a lowercase DNS label"), "{}", bad.body);
    assert!(bad.body.contains("value=\"My Docs\""));
    let reserved = ui.post("/sites", Some(&csrf), &[("name", "auth"), ("access", "public")]).await;
    assert!(reserved.body.contains("id=\"name-error\">This name is reserved"));
    let made = ui.post("/sites", Some(&csrf), &[("name", "docs"), ("access", "public"), ("spaFallback", "on")]).await;
    assert_eq!(made.location.as_deref(), Some("/sites?flash=site_created"));
    let site = ui.state.store.sites().await.unwrap().pop().expect("created");
    assert!(site.spa_fallback && site.access == crate::model::Access::Public);
    let dir = crate::sites::site_dir(&ui.state.settings.data_dir, "docs");
    assert!(dir.join("index.html").exists());
    let list = ui.get("/sites?flash=site_created").await;
    assert!(list.body.contains("Site created") && list.body.contains("docs.example.com"));
    let deleted = ui.post(&format!("/sites/{}/delete", site.id), Some(&csrf), &[("confirm", "yes")]).await;
    assert_eq!(deleted.location.as_deref(), Some("/sites?flash=site_deleted"));
    assert!(ui.state.store.sites().await.unwrap().is_empty() && !dir.exists());
}

#[actix_web::test]
async fn provisioning_step_offers_the_run_and_follows_it_under_ingress() {
    use crate::onboarding::OnboardingState;
    let ui = completed_ui().await;
    ui.set_state(OnboardingState::DnsReady).await;
    let page = ui.get("/onboarding").await;
    assert!(page.body.contains("Start provisioning") && page.body.contains("id=\"provision-steps\""));
    assert!(page.body.contains("id=\"provision-done\" class=\"card\" hidden"), "filled in by the stream");
    ui.set_state(OnboardingState::Provisioning).await;
    let running = ui.as_ingress("alice").get("/onboarding").await;
    assert!(
        running.body.contains("id=\"provision-status\" role=\"status\">Provisioning is running"),
        "{}",
        running.body
    );
    assert!(running.body.contains(&format!("data-base=\"{}\"", super::INGRESS)));
    assert_urls_under(&running.body, super::INGRESS);
}

#[actix_web::test]
async fn settings_show_the_acme_settings_read_only() {
    let ui = super::ui_with(|s| {
        s.acme.directory = "https://127.0.0.1:14000/dir".into();
        s.acme.ca_bundle = Some("/secret/place/pebble.minica.pem".into());
        s.acme.renew_days = 21;
    })
    .await;
    ui.set_state(crate::onboarding::OnboardingState::Completed).await;
    let page = ui.get("/settings").await;
    assert_eq!(page.status, actix_web::http::StatusCode::OK);
    assert!(page.body.contains("<h2 id=\"acme-title\">Certificates (ACME)</h2>"), "{}", page.body);
    assert!(page.body.contains("<dd><code>https://127.0.0.1:14000/dir</code></dd>"));
    assert!(page.body.contains("configured (<code>acme.ca_bundle</code>)"));
    assert!(!page.body.contains("/secret/place"), "no file paths");
    // The schedule in words (the expression stays in the title), and the next run.
    let words = "<span class=\"schedule\" title=\"cron: 0 17 3 * * Mon,Thu\">weekly on Monday and Thursday at 03:17 UTC</span>; next run 20";
    assert!(page.body.contains(words), "{}", page.body);
    assert!(!page.body.contains("<code>0 17 3 * * Mon,Thu</code>"), "not the raw expression");
    assert!(page.body.contains("fewer than 21 days remain"));
    assert!(!page.body.contains("<form method=\"post\" action=\"/settings/acme"), "read-only");

    let default = super::completed_ui().await.get("/settings").await;
    assert!(default.body.contains("acme-v02.api.letsencrypt.org/directory"));
    assert!(default.body.contains("<dd>none; the system"), "no CA bundle by default");
}

#[actix_web::test]
async fn a_failed_provisioning_says_so_above_its_steps() {
    use crate::app::provision::RunStatus;
    use crate::onboarding::{OnboardingState, keys};
    // A port nothing listens on: the ACME directory cannot be reached.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let ui = super::ui_with(|s| s.acme.directory = format!("http://{closed}/dir")).await;
    let rows = vec![(keys::DOMAIN, "example.com".to_string()), (keys::EMAIL, "ops@example.com".to_string())];
    ui.state.store.put_settings(rows).await.unwrap();
    ui.set_state(OnboardingState::DnsReady).await;
    let csrf = ui.get("/onboarding").await.csrf();
    let started = ui.post("/onboarding/provision", Some(&csrf), &[("username", "ops")]).await;
    assert_eq!(started.location.as_deref(), Some("/onboarding?flash=provisioning"), "{}", started.body);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while ui.state.provision.status() == RunStatus::Running && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await; // poll interval
    }
    assert_eq!(ui.state.provision.status(), RunStatus::Failed);
    assert_eq!(ui.state.onboarding_state(), OnboardingState::DnsReady);
    let page = ui.get("/onboarding").await;
    let said = "id=\"provision-status\" role=\"alert\">Provisioning failed at “Certificate for panel.example.com”: ";
    assert!(page.body.contains(said), "{}", page.body);
    assert!(!page.body.contains("Provisioning is running"), "{}", page.body);
    assert!(page.body.contains("Start provisioning again"), "{}", page.body);
}
