//! Settings → Runtime through `actix_web::test`: the form shows each value
//! with where it comes from, an environment-set field read-only, bad input
//! re-rendered with what was typed and nothing saved, and a good save
//! redirected with a message (same use case as the API).

use std::collections::HashMap;

use actix_web::http::StatusCode;

use super::{INGRESS, Ui, assert_labelled, assert_urls_under, ui_with};
use crate::onboarding::{self, OnboardingState};
use crate::settings::{Settings, Sources};

/// A completed panel whose environment sets `PORTICO__AUTHD__SESSION_HOURS=8`.
async fn env_ui() -> Ui {
    let ui = ui_with(|s| {
        let env: HashMap<String, String> = [("PORTICO__AUTHD__SESSION_HOURS".into(), "8".into())].into();
        let loaded = Settings::load(&Sources { env, ..Default::default() }).unwrap();
        s.authd = loaded.authd;
        s.origins = loaded.origins;
    })
    .await;
    ui.set_state(OnboardingState::Completed).await;
    ui.state.store.put_settings(vec![(onboarding::keys::DOMAIN, "example.com".into())]).await.unwrap();
    ui
}

/// The `<input>` (or `<select>`) tag of field `name`.
fn input<'a>(body: &'a str, name: &str) -> &'a str {
    let at = body.find(&format!("id=\"{name}\" name=\"{name}\"")).unwrap_or_else(|| panic!("no input {name}"));
    let start = body[..at].rfind('<').unwrap();
    &body[start..start + body[start..].find('>').unwrap()]
}

#[actix_web::test]
async fn runtime_settings_page_shows_saves_and_refuses() {
    let ui = env_ui().await;
    let settings = ui.get("/settings").await;
    assert!(settings.body.contains("href=\"/settings/runtime\""), "the Settings page links to it");

    let page = ui.get("/settings/runtime").await;
    assert_eq!(page.status, StatusCode::OK);
    let hours = input(&page.body, "sessionHours");
    assert!(hours.contains("value=\"8\"") && hours.contains("disabled") && hours.contains("readonly"), "{hours}");
    assert!(page.body.contains("Read-only: set by PORTICO__AUTHD__SESSION_HOURS in the environment."));
    assert!(input(&page.body, "backupKeep").contains("value=\"7\""));
    assert!(!input(&page.body, "backupKeep").contains("disabled"));
    assert!(page.body.contains("Takes effect after restarting relay"), "each row says when it applies");
    assert!(page.body.contains("<option value=\"info\" selected>info</option>"));

    // Bad input: 400, the typed text stays, each error at its field, nothing saved.
    let fields = [("backupKeep", "lots"), ("renewDays", "120"), ("backupSchedule", "0 30 3 * * *"), ("banSecs", "60")];
    let bad = ui.post("/settings/runtime", Some(&page.csrf()), &fields).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.body.contains("must be a whole number from 1 to 1000 (backups)"), "{}", bad.body);
    assert!(input(&bad.body, "backupKeep").contains("value=\"lots\""), "input kept");
    assert!(input(&bad.body, "backupKeep").contains("aria-invalid=\"true\""));
    let bad = ui.post("/settings/runtime", Some(&page.csrf()), &fields[1..]).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.body.contains("must be a whole number from 1 to 89 (days)"), "{}", bad.body);
    assert!(bad.body.contains("scheduled backups need a passphrase"), "{}", bad.body);
    assert!(input(&bad.body, "banSecs").contains("value=\"60\""), "valid input kept too");
    assert!(ui.state.store.runtime_settings().await.unwrap().is_empty(), "nothing saved");

    // A read-only field sent anyway (not by the page's form) is refused.
    let forced = ui.post("/settings/runtime", Some(&page.csrf()), &[("sessionHours", "2"), ("banSecs", "60")]).await;
    assert_eq!(forced.status, StatusCode::BAD_REQUEST);
    assert!(forced.body.contains("sessionHours is set by PORTICO__AUTHD__SESSION_HOURS"), "{}", forced.body);

    let saved = ui
        .post(
            "/settings/runtime",
            Some(&page.csrf()),
            &[("banSecs", "60"), ("panelLogLevel", "debug"), ("backupKeep", "7")],
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER);
    assert_eq!(saved.location.as_deref(), Some("/settings/runtime?flash=runtime_saved"));
    let page = ui.get("/settings/runtime?flash=runtime_saved").await;
    assert!(page.body.contains("Runtime settings saved."));
    assert!(input(&page.body, "banSecs").contains("value=\"60\""));
    assert!(page.body.contains("Changed in the panel (default: 300)."));
    assert!(page.body.contains("<option value=\"debug\" selected>debug</option>"));
    assert_eq!(ui.state.runtime.current().ban_secs, 60);
    assert_eq!(ui.audit_actions().await.iter().filter(|a| *a == "settings.update").count(), 1);

    // Every control labelled; under Home Assistant every URL stays under the ingress path.
    assert_labelled(&page.body, "/settings/runtime");
    let ingress = ui.as_ingress("alice").get("/settings/runtime").await;
    assert_eq!(ingress.status, StatusCode::OK);
    assert_urls_under(&ingress.body, INGRESS);

    // Without the CSRF token nothing is saved.
    let refused = ui.post("/settings/runtime", None, &[("banSecs", "90")]).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(ui.state.runtime.current().ban_secs, 60);
}
