//! The onboarding guard of the page scope (helpers in [`super`]):
//! until onboarding is complete the admin lands on the wizard from every
//! management route, anyone else is refused exactly as after completion, and
//! a post without a valid CSRF token changes nothing.

use actix_web::http::StatusCode;
use actix_web::test::TestRequest;

use super::{INGRESS, LOOPBACK, Page, SUPERVISOR, Ui, ui_with};
use crate::onboarding::{self, OnboardingState};
use crate::panel::Channel;

/// Every GET route of the page scope outside onboarding and the 2FA code page.
const MANAGEMENT_GETS: &[&str] = &[
    "/",
    "/tunnels",
    "/tunnels/1",
    "/tunnels/1/agent/portico-agent.service",
    "/sites",
    "/sites/1",
    "/agents",
    "/agents/garage",
    "/users",
    "/users/bob",
    "/groups",
    "/invitations",
    "/certs",
    "/keys",
    "/services",
    "/services/nginx/logs",
    "/system",
    "/backups",
    "/nginx",
    "/nginx/snapshots/1",
    "/settings",
    "/audit?action=key.create",
];

/// Every form route of the page scope outside onboarding and the 2FA code page.
const MANAGEMENT_POSTS: &[&str] = &[
    "/tunnels",
    "/tunnels/1",
    "/tunnels/1/toggle",
    "/tunnels/1/delete",
    "/sites",
    "/sites/1",
    "/sites/1/files",
    "/sites/1/files/delete",
    "/sites/1/delete",
    "/agents/enroll",
    "/agents/garage/revoke",
    "/agents/garage/capabilities",
    "/agents/garage/sites",
    "/users",
    "/users/bob",
    "/users/bob/reset-totp",
    "/users/bob/delete",
    "/users/bob/sessions/1/revoke",
    "/groups",
    "/groups/family/delete",
    "/groups/family/members",
    "/groups/family/members/bob/remove",
    "/invitations",
    "/invitations/1/revoke",
    "/certs/rotate",
    "/certs/renew",
    "/certs/upload",
    "/keys",
    "/keys/1/revoke",
    "/services/nginx/restart",
    "/backups",
    "/nginx/snapshots/1/rollback",
    "/settings/2fa/setup",
    "/settings/2fa/confirm",
    "/settings/2fa/disable",
];

/// Fields that would create something if a handler ran.
const FIELDS: &[(&str, &str)] = &[
    ("name", "evil"),
    ("scopes", "admin"),
    ("agent", "garage"),
    ("target", "127.0.0.1:80"),
    ("access", "public"),
    ("username", "mallory"),
    ("password", "correct horse battery staple"),
    ("passphrase", "correct horse battery staple"),
    ("confirm", "yes"),
];

fn assert_to_onboarding(page: &Page, base: &str, what: &str) {
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{what}: {}", page.body);
    assert_eq!(page.location.as_deref(), Some(&*format!("{base}/onboarding")), "{what}");
}

/// Nothing a management form could have done happened.
async fn assert_untouched(ui: &Ui) {
    let store = &ui.state.store;
    assert!(store.tunnels().await.unwrap().is_empty(), "no tunnel");
    assert!(store.api_keys().await.unwrap().is_empty(), "no API key");
    assert!(store.groups().await.unwrap().is_empty(), "no group");
    let actions = ui.audit_actions().await;
    assert!(actions.iter().all(|a| a.starts_with("ui.") || a.starts_with("request.")), "{actions:?}");
}

#[actix_web::test]
async fn admin_is_sent_to_onboarding_from_every_management_route() {
    let ui = ui_with(|_| {}).await;
    let ingress = ui.as_ingress("alice");
    let tokens = [ui.get("/onboarding").await.csrf(), ingress.get("/onboarding").await.csrf()];
    for state in [OnboardingState::Fresh, OnboardingState::DomainSet, OnboardingState::Provisioning] {
        ui.set_state(state).await;
        for ((who, base), csrf) in [(&ui, ""), (&ingress, INGRESS)].into_iter().zip(&tokens) {
            for path in MANAGEMENT_GETS {
                assert_to_onboarding(&who.get(path).await, base, &format!("{state:?} GET {base}{path}"));
            }
            for path in MANAGEMENT_POSTS {
                let page = who.post(path, Some(csrf), FIELDS).await;
                assert_to_onboarding(&page, base, &format!("{state:?} POST {base}{path}"));
            }
        }
    }
    assert_untouched(&ui).await;

    // The wizard, the 2FA code page and the static files answer.
    for (who, base) in [(&ui, ""), (&ingress, INGRESS)] {
        for path in [
            "/onboarding",
            "/onboarding?flash=domain_saved",
            "/settings/2fa/verify",
            crate::panel::ui::assets::url("app.css"),
        ] {
            assert_eq!(who.get(path).await.status, StatusCode::OK, "{base}{path}");
        }
    }

    ui.set_state(OnboardingState::Completed).await;
    ui.state.store.put_settings(vec![(onboarding::keys::DOMAIN, "example.com".into())]).await.unwrap();
    for (who, base) in [(&ui, ""), (&ingress, INGRESS)] {
        for path in ["/", "/tunnels", "/keys", "/settings"] {
            assert_eq!(who.get(path).await.status, StatusCode::OK, "{base}{path} after completion");
        }
        assert_eq!(who.get("/onboarding").await.location.as_deref(), Some(&*format!("{base}/")));
    }
}

/// Requests from callers without the admin identity: nobody (panel and
/// ingress), an agent certificate, and an ingress request from an untrusted peer.
async fn outsiders(ui: &Ui, agent_serial: &str) -> Vec<(String, Page)> {
    let loopback = || LOOPBACK.parse().unwrap();
    let mut answers = Vec::new();
    let routes = [
        (false, "/"),
        (false, "/tunnels"),
        (false, "/onboarding"),
        (false, "/settings/2fa/verify"),
        (true, "/tunnels"),
        (true, "/keys"),
        (true, "/onboarding/domain"),
        (true, "/settings/2fa/verify"),
    ];
    for (post, path) in routes {
        let req = || match post {
            false => TestRequest::get().uri(path),
            true => TestRequest::post()
                .uri(path)
                .insert_header(("Content-Type", "application/x-www-form-urlencoded"))
                .set_payload("name=evil&domain=evil.example&email=a%40evil.example"),
        };
        let cases = [
            ("nobody", Channel::Panel, req().peer_addr(loopback())),
            (
                "nobody via ingress",
                Channel::Ingress,
                req().peer_addr(SUPERVISOR.parse().unwrap()).insert_header(("X-Ingress-Path", INGRESS)),
            ),
            (
                "agent",
                Channel::Panel,
                req()
                    .peer_addr(loopback())
                    .insert_header(("X-SSL-Client-Verify", "SUCCESS"))
                    .insert_header(("X-SSL-Client-DN", "CN=agent:garage"))
                    .insert_header(("X-SSL-Client-Serial", agent_serial)),
            ),
            (
                "untrusted ingress peer",
                Channel::Ingress,
                req()
                    .peer_addr("10.9.9.9:4000".parse().unwrap())
                    .insert_header(("X-Remote-User-Name", "alice"))
                    .insert_header(("X-Ingress-Path", INGRESS)),
            ),
        ];
        for (who, channel, req) in cases {
            let method = if post { "POST" } else { "GET" };
            answers.push((format!("{who} {method} {path}"), ui.send(channel, req).await));
        }
    }
    answers
}

#[actix_web::test]
async fn callers_without_the_admin_identity_are_refused_before_onboarding_as_after() {
    let ui = ui_with(|_| {}).await;
    let serial = crate::agents::issue(ui.state.pki.clone(), &ui.state.store, "garage".into(), vec![])
        .await
        .unwrap()
        .agent
        .serial
        .unwrap();
    let before = outsiders(&ui, &serial).await;
    ui.set_state(OnboardingState::Completed).await;
    let after = outsiders(&ui, &serial).await;
    for ((what, early), (_, late)) in before.iter().zip(&after) {
        assert!(matches!(early.status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN), "{what}: {}", early.status);
        assert_eq!((early.status, &early.location, &early.body), (late.status, &late.location, &late.body), "{what}");
        assert!(early.location.is_none(), "{what}: no redirect");
        assert!(!early.body.contains("onboarding") && !early.body.contains("Set up Portico"), "{what}: {}", early.body);
    }
    assert_eq!(ui.state.store.settings(&[onboarding::keys::DOMAIN]).await.unwrap()[0], None, "no domain set");
}

#[actix_web::test]
async fn forged_posts_before_onboarding_change_nothing() {
    let ui = ui_with(|_| {}).await;
    let ingress = ui.as_ingress("alice");
    let foreign = ingress.get("/onboarding").await.csrf();
    ui.set_state(OnboardingState::DnsReady).await;
    for (who, base, other) in [(&ui, "", &foreign), (&ingress, INGRESS, &"99999999999.00".to_string())] {
        for token in [None, Some("garbage"), Some(other.as_str())] {
            // The wizard's own forms check the token (403) and keep the state.
            for path in ["/onboarding/domain", "/onboarding/dns", "/onboarding/provision"] {
                let fields = [("domain", "evil.example"), ("email", "a@evil.example")];
                let page = who.post(path, token, &fields).await;
                assert_eq!(page.status, StatusCode::FORBIDDEN, "{base}{path} {token:?}");
                assert!(page.body.contains("did not come from this panel"), "{}", page.body);
            }
            // Management forms never reach their handler.
            for path in ["/keys", "/tunnels", "/groups", "/settings/2fa/setup"] {
                assert_to_onboarding(&who.post(path, token, FIELDS).await, base, &format!("{base}{path} {token:?}"));
            }
        }
    }
    assert_eq!(ui.state.onboarding_state(), OnboardingState::DnsReady);
    assert_eq!(ui.state.store.settings(&[onboarding::keys::DOMAIN]).await.unwrap()[0], None, "no domain set");
    assert!(ui.audit_actions().await.contains(&"ui.csrf_refused".to_string()));
    assert_untouched(&ui).await;
    let pending = ui.state.store.settings(&[crate::two_factor::keys::PENDING]).await.unwrap();
    assert_eq!(pending[0], None, "no 2FA setup started");
}

#[actix_web::test]
async fn second_factor_comes_before_onboarding() {
    use crate::two_factor::keys;
    let ui = ui_with(|_| {}).await;
    let secret = crate::totp::generate_secret();
    ui.state.store.put_settings(vec![(keys::ENABLED, "1".into()), (keys::SECRET, secret)]).await.unwrap();
    let gated = ui.get("/tunnels").await;
    assert_eq!(gated.location.as_deref(), Some("/settings/2fa/verify?next=%2Ftunnels"), "the code first");
    let wizard = ui.get("/onboarding").await;
    assert_eq!(wizard.location.as_deref(), Some("/settings/2fa/verify?next=%2Fonboarding"));
    let verify = ui.get("/settings/2fa/verify").await;
    assert_eq!(verify.status, StatusCode::OK, "the code page answers before onboarding");
    assert!(verify.body.contains("Enter your code"));
    let ingress = ui.as_ingress("alice");
    assert_to_onboarding(&ingress.get("/tunnels").await, INGRESS, "ingress users owe no second factor");
}
