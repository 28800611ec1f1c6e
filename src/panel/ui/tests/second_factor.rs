//! The panel's second factor in the UI: the warning before turning it on,
//! recovery codes shown once and accepted on the code page, the return to
//! the page asked for; removing revoked agents; naming the first visitor.

use actix_web::http::StatusCode;

use super::{Ui, completed_ui, ui_with};
use crate::onboarding::{OnboardingState, keys as onboarding_keys};
use crate::two_factor::keys;

fn totp(secret: &str, steps_ahead: i64) -> String {
    let now = time::OffsetDateTime::now_utc().unix_timestamp() + steps_ahead * crate::totp::STEP;
    crate::totp::code_now(secret, now).unwrap()
}

/// The codes in the "shown once" box.
fn codes_in(body: &str) -> Vec<String> {
    let Some(at) = body.find("id=\"recovery-codes-list\">") else { return Vec::new() };
    let rest = &body[at + 25..];
    rest[..rest.find("</code>").unwrap()].lines().map(str::to_string).collect()
}

/// Turns 2FA on through the pages; returns the secret, the session cookie
/// and the recovery codes.
async fn enable(ui: &Ui) -> (String, String, Vec<String>) {
    let page = ui.get("/settings").await;
    let warning = "two-factor login closes the by-IP address <code>https://203.0.113.10:9292</code>";
    assert!(page.body.contains(warning), "warned before setup: {}", page.body);
    assert!(page.body.contains("<code>https://panel.example.com</code>"), "and told where the panel stays");
    let csrf = page.csrf();
    let started = ui.post("/settings/2fa/setup", Some(&csrf), &[]).await;
    let started = ui.follow(&started).await;
    assert!(started.body.contains(warning), "and again next to the code that turns it on");
    let secret = ui.state.store.settings(&[keys::PENDING]).await.unwrap()[0].clone().unwrap();
    let on = ui.post("/settings/2fa/confirm", Some(&csrf), &[("code", &totp(&secret, 0))]).await;
    assert_eq!(on.status, StatusCode::SEE_OTHER, "{}", on.body);
    let cookie = on.cookies.iter().find(|c| c.starts_with("portico_panel_2fa=")).expect("session cookie");
    let cookie = cookie.split(';').next().unwrap().to_string();
    let shown = ui.get_with(on.location.as_deref().unwrap(), &[("Cookie", cookie.as_str())]).await;
    assert!(shown.body.contains("<strong>Shown once.</strong> Your recovery codes"), "{}", shown.body);
    assert!(!shown.body.contains(warning), "the warning is for before");
    let codes = codes_in(&shown.body);
    assert_eq!(codes.len(), 10, "{}", shown.body);
    (secret, cookie, codes)
}

#[actix_web::test]
async fn recovery_codes_are_shown_once_counted_and_renewed() {
    let ui = completed_ui().await;
    let (secret, cookie, codes) = enable(&ui).await;
    let with = [("Cookie", cookie.as_str())];
    let settings = ui.get_with("/settings", &with).await;
    assert!(!settings.body.contains(&codes[0]), "shown once");
    assert!(settings.body.contains("<strong>10</strong> of 10 recovery codes left"), "{}", settings.body);
    assert!(!settings.body.contains("recovery codes left:"), "no warning with ten");

    for code in &codes[..7] {
        let verify = ui.get("/settings/2fa/verify").await;
        let fields = [("kind", "recovery"), ("recovery_code", code.as_str())];
        assert_eq!(ui.post("/settings/2fa/verify", Some(&verify.csrf()), &fields).await.location.as_deref(), Some("/"));
    }
    let settings = ui.get_with("/settings", &with).await;
    assert!(settings.body.contains("<strong>3</strong> of 10"), "{}", settings.body);
    assert!(settings.body.contains("Only 3 recovery codes left: make a new set below"), "{}", settings.body);

    let csrf = settings.csrf();
    let wrong = ui.post_with("/settings/2fa/recovery-codes", Some(&csrf), &[("code", &codes[0])], &with).await;
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST, "a spent code does not make new ones");
    assert!(wrong.body.contains("id=\"regen-code-error\">Wrong or already used code"), "{}", wrong.body);
    let renewed =
        ui.post_with("/settings/2fa/recovery-codes", Some(&csrf), &[("code", &totp(&secret, 1))], &with).await;
    let renewed = ui.get_with(renewed.location.as_deref().expect("a redirect"), &with).await;
    assert!(renewed.body.contains("New recovery codes made; the old ones no longer work."));
    let fresh = codes_in(&renewed.body);
    assert_eq!(fresh.len(), 10);
    assert!(renewed.body.contains("<strong>10</strong> of 10"));
    let verify = ui.get("/settings/2fa/verify").await;
    let old = [("kind", "recovery"), ("recovery_code", codes[8].as_str())];
    let refused = ui.post("/settings/2fa/verify", Some(&verify.csrf()), &old).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "the old set is gone");
    assert!(refused.body.contains("id=\"recovery-code-error\">Wrong or already used code"), "{}", refused.body);
    assert!(refused.body.contains("<details class=\"confirm\" open>"), "the recovery form stays open");

    let actions = ui.audit_actions().await;
    assert_eq!(actions.iter().filter(|a| *a == "2fa.recovery_used").count(), 7);
    assert!(actions.contains(&"2fa.recovery_regenerate".to_string()));
}

#[actix_web::test]
async fn after_the_code_the_page_asked_for_opens() {
    let ui = completed_ui().await;
    let (secret, _, codes) = enable(&ui).await;
    let gated = ui.get("/audit?action=2fa.enable").await;
    let location = gated.location.expect("sent to the code page");
    assert_eq!(location, "/settings/2fa/verify?next=%2Faudit%3Faction%3D2fa.enable");
    let verify = ui.get(&location).await;
    assert!(verify.body.contains("name=\"next\" value=\"/audit?action=2fa.enable\""), "{}", verify.body);
    let fields = [("next", "/audit?action=2fa.enable"), ("code", &totp(&secret, 1))];
    let back = ui.post("/settings/2fa/verify", Some(&verify.csrf()), &fields).await;
    assert_eq!(back.location.as_deref(), Some("/audit?action=2fa.enable"));

    // A form post is not replayed: the code page, then the dashboard.
    let post = ui.post("/keys", Some(&verify.csrf()), &[("name", "x")]).await;
    assert_eq!(post.location.as_deref(), Some("/settings/2fa/verify"));

    // Anything but a page of this panel lands on the dashboard.
    let bad = ["https://evil.example/", "//evil.example/", "/\\evil.example", "/%2f%2fevil.example", "/static/app.css"];
    for (next, code) in bad.iter().zip(&codes) {
        let query = serde_urlencoded::to_string([("next", next)]).unwrap();
        let page = ui.get(&format!("/settings/2fa/verify?{query}")).await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(!page.body.contains("name=\"next\""), "{next} is not carried");
        let fields = [("next", *next), ("kind", "recovery"), ("recovery_code", code.as_str())];
        let done = ui.post("/settings/2fa/verify", Some(&page.csrf()), &fields).await;
        assert_eq!(done.location.as_deref(), Some("/"), "{next}");
    }
    // A wrong code keeps the page asked for.
    let fields = [("next", "/tunnels"), ("code", "000000")];
    let wrong = ui.post("/settings/2fa/verify", Some(&verify.csrf()), &fields).await;
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST);
    assert!(wrong.body.contains("name=\"next\" value=\"/tunnels\""));
}

#[actix_web::test]
async fn a_revoked_agent_leaves_the_list_after_a_confirmation() {
    let ui = completed_ui().await;
    let caps = crate::agents::validate(Some("old-nas"), &[]).unwrap();
    crate::agents::issue(ui.state.pki.clone(), &ui.state.store, "old-nas".into(), caps).await.unwrap();
    let page = ui.get("/agents").await;
    assert!(!page.body.contains("/agents/old-nas/remove"), "no Remove for an active agent");
    let csrf = page.csrf();
    let active = ui.post("/agents/old-nas/remove", Some(&csrf), &[("confirm", "yes")]).await;
    assert_eq!(active.status, StatusCode::CONFLICT);
    assert!(
        active.body.contains("agent &#x27;old-nas&#x27; is active; revoke it first")
            || active.body.contains("is active; revoke it first"),
        "{}",
        active.body
    );

    ui.state.store.revoke_agent("old-nas".into(), time::OffsetDateTime::now_utc()).await.unwrap();
    let page = ui.get("/agents").await;
    assert!(page.body.contains("action=\"/agents/old-nas/remove\""), "{}", page.body);
    let unconfirmed = ui.post("/agents/old-nas/remove", Some(&csrf), &[]).await;
    assert_eq!(unconfirmed.status, StatusCode::BAD_REQUEST);
    assert!(ui.state.store.agent("old-nas".into()).await.unwrap().is_some());
    let removed = ui.post("/agents/old-nas/remove", Some(&csrf), &[("confirm", "yes")]).await;
    assert_eq!(removed.location.as_deref(), Some("/agents?flash=agent_removed"));
    let page = ui.get("/agents?flash=agent_removed").await;
    assert!(page.body.contains("Agent removed from the list.") && !page.body.contains("old-nas"), "{}", page.body);
    assert!(ui.audit_actions().await.contains(&"cert.agent.remove".to_string()));
}

#[actix_web::test]
async fn the_first_visitor_is_named_in_the_form() {
    let ui = ui_with(|_| {}).await;
    let rows = vec![
        (onboarding_keys::DOMAIN, "example.com".to_string()),
        (onboarding_keys::EMAIL, "Jane.Doe+ops@example.com".to_string()),
    ];
    ui.state.store.put_settings(rows).await.unwrap();
    ui.set_state(OnboardingState::DnsReady).await;
    let page = ui.get("/onboarding").await;
    assert!(page.body.contains("Username of your first visitor login"), "{}", page.body);
    assert!(page.body.contains("id=\"username\" name=\"username\" value=\"jane.doeops\""), "{}", page.body);

    let csrf = page.csrf();
    let bad = ui.post("/onboarding/provision", Some(&csrf), &[("username", "Jane Doe")]).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.body.contains("id=\"username-error\">use 1–32 characters"), "{}", bad.body);
    assert!(bad.body.contains("value=\"Jane Doe\""), "the input is kept");
    let new = crate::users::NewUser {
        username: "jane".into(),
        display_name: "Jane".into(),
        email: String::new(),
        password: "a long enough password 1".into(),
        groups: Vec::new(),
        totp: false,
    };
    crate::users::create_user(&ui.state.store, new).await.unwrap();
    let taken = ui.post("/onboarding/provision", Some(&csrf), &[("username", "jane")]).await;
    assert_eq!(taken.status, StatusCode::BAD_REQUEST);
    assert!(
        taken.body.contains("a user named &#x27;jane&#x27; already exists")
            || taken.body.contains("already exists; pick another name"),
        "{}",
        taken.body
    );
    assert_eq!(ui.state.provision.status(), crate::app::provision::RunStatus::Idle, "nothing started");
    assert_eq!(ui.state.onboarding_state(), OnboardingState::DnsReady);
}
