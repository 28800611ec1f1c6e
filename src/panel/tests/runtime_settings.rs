//! `/api/settings/runtime`: values and where they come from, all-or-nothing
//! changes with field errors, refusal of keys set in the environment, the
//! audit entry, and changes in force at once in this process.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::*;
use crate::settings::Sources;

fn patch(body: Value) -> TestRequest {
    TestRequest::patch().uri("/api/settings/runtime").set_json(body)
}

/// A completed panel whose environment sets `PORTICO__AUTHD__SESSION_HOURS=8`.
async fn env_world() -> World {
    let w = world_with(|s| {
        let env: HashMap<String, String> = [("PORTICO__AUTHD__SESSION_HOURS".into(), "8".into())].into();
        let loaded = Settings::load(&Sources { env, ..Default::default() }).unwrap();
        s.authd = loaded.authd;
        s.origins = loaded.origins;
    })
    .await;
    w.set_state(OnboardingState::Completed).await;
    w
}

fn field<'a>(view: &'a Value, name: &str) -> &'a Value {
    view["fields"].as_array().unwrap().iter().find(|f| f["name"] == name).unwrap()
}

#[actix_web::test]
async fn values_sources_and_changes_through_the_api() {
    let w = env_world().await;
    let view = json_body(w.call(Who::Admin, TestRequest::get().uri("/api/settings/runtime")).await).await;
    let hours = field(&view, "sessionHours");
    assert_eq!(hours["value"], 8);
    assert_eq!(hours["default"], 12);
    assert_eq!(hours["source"], "environment");
    assert_eq!(hours["editable"], false);
    assert_eq!(hours["setBy"], "set by PORTICO__AUTHD__SESSION_HOURS in the environment");
    assert_eq!(hours["takesEffect"], "at the next sign-in (sessions keep the lifetime they started with)");
    let keep = field(&view, "backupKeep");
    assert_eq!((&keep["value"], &keep["source"], &keep["editable"]), (&json!(7), &json!("default"), &json!(true)));

    // All or nothing: one bad field and nothing changes; each error names its field.
    let res = w.call(Who::Admin, patch(json!({"backupKeep": 3, "renewDays": 0, "panelLogLevel": "loud"}))).await;
    assert_eq!(res.status(), 400);
    let body = json_body(res).await;
    let fields: Vec<&str> = body["details"].as_array().unwrap().iter().map(|d| d["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["renewDays", "panelLogLevel"], "{body}");
    let res = w.call(Who::Admin, patch(json!({"backupKeep": 3, "sessionHours": 4}))).await;
    assert_eq!(res.status(), 409);
    let body = json_body(res).await;
    assert!(body["error"].as_str().unwrap().contains("sessionHours is set by PORTICO__AUTHD__SESSION_HOURS"), "{body}");
    let res = w.call(Who::Admin, patch(json!({"backupKeep": 3, "keepForever": true}))).await;
    assert_eq!(res.status(), 400, "unknown fields are refused");
    assert!(json_body(res).await["error"].as_str().unwrap().contains("keepForever"));
    let res = w.call(Who::Admin, patch(json!({"backupKeep": "3"}))).await;
    assert_eq!(res.status(), 400, "a string is not a number");
    assert_eq!(w.state.runtime.current().backup_keep, 7, "nothing changed");
    assert!(w.state.store.runtime_settings().await.unwrap().is_empty());

    let res = w.call(Who::Admin, patch(json!({"backupKeep": 3, "renewDays": 21}))).await;
    assert_eq!(res.status(), 200);
    let view = json_body(res).await;
    assert_eq!(
        (&field(&view, "backupKeep")["value"], &field(&view, "backupKeep")["source"]),
        (&json!(3), &json!("stored"))
    );
    assert_eq!(w.state.runtime.current().backup_keep, 3, "in force in the panel");
    assert_eq!(w.state.certs.renew_days(), 21, "the next renewal check uses it");
    let status = json_body(w.call(Who::Admin, TestRequest::get().uri("/api/certs/auto-renew-status")).await).await;
    assert_eq!(status["renewDays"], 21);
    let q = crate::store::AuditQuery {
        actor: None,
        action: Some("settings.update".into()),
        since: None,
        until: None,
        limit: 10,
        offset: 0,
    };
    let (entries, _) = w.state.store.audit_entries(q).await.unwrap();
    assert_eq!(entries.len(), 1);
    assert!(entries[0].actor.starts_with("admin"), "{}", entries[0].actor);
    assert_eq!(
        entries[0].details,
        Some(json!({"before": {"backupKeep": 7, "renewDays": 30}, "after": {"backupKeep": 3, "renewDays": 21}}))
    );

    // A panel started again on the same data keeps the stored values.
    let again = AppState::load((*w.state.settings).clone()).await.unwrap();
    assert_eq!((again.runtime.current().backup_keep, again.certs.renew_days()), (3, 21));
}

#[derive(Clone, Default)]
struct Lines(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Lines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Lines {
    fn health_lines(&self) -> usize {
        String::from_utf8_lossy(&self.0.lock().unwrap()).matches("path=/api/health").count()
    }
}

/// The panel's log level changes at once: health checks log at DEBUG, so
/// they appear in the panel's log only after the switch to `debug`.
#[actix_web::test]
async fn the_panel_log_level_changes_at_once() {
    let w = completed_world().await;
    let lines = Lines::default();
    let writer = lines.clone();
    let (subscriber, handle) = crate::logging::reloadable("info", move || writer.clone());
    let _guard = tracing::subscriber::set_default(subscriber);
    w.state.log.attach(handle, "info");
    let app = init_service(
        App::new()
            .wrap(actix_web::middleware::from_fn(crate::http::log_request))
            .configure(configure(w.state.clone(), Channel::Panel)),
    )
    .await;
    let send = |req: TestRequest| {
        let (_, req) = w.as_who(Who::Admin, req);
        app.call(req.to_request())
    };
    assert_eq!(send(TestRequest::get().uri("/api/health")).await.unwrap().status(), 200);
    assert_eq!(lines.health_lines(), 0, "not at info");

    assert_eq!(send(patch(json!({"panelLogLevel": "debug"}))).await.unwrap().status(), 200);
    assert_eq!(w.state.log.current().as_deref(), Some("debug"));
    assert_eq!(send(TestRequest::get().uri("/api/health")).await.unwrap().status(), 200);
    assert_eq!(lines.health_lines(), 1, "debug lines appear without a restart");

    assert_eq!(send(patch(json!({"panelLogLevel": "warn"}))).await.unwrap().status(), 200);
    assert_eq!(send(TestRequest::get().uri("/api/health")).await.unwrap().status(), 200);
    assert_eq!(lines.health_lines(), 1, "and go again");
}
