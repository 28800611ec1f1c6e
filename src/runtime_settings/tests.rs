use std::collections::HashMap;
use std::io::Write;

use serde_json::json;

use super::*;
use crate::settings::{Secret, Sources};
use crate::store::Store;

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("portico.db")).unwrap();
    (dir, store)
}

fn with_passphrase() -> Settings {
    let mut s = Settings::default();
    s.backup.passphrase = Some(Secret::new("correct horse battery staple"));
    s
}

/// Each field's checks, with the message the admin reads.
#[test]
fn validation_table() {
    let settings = with_passphrase();
    let cases: &[(&str, serde_json::Value, Option<&str>)] = &[
        ("sessionHours", json!(1), None),
        ("sessionHours", json!(720), None),
        ("sessionHours", json!(0), Some("from 1 to 720 (hours)")),
        ("sessionHours", json!(721), Some("from 1 to 720")),
        ("sessionHours", json!("12"), Some("whole number")),
        ("sessionHours", json!(-1), Some("whole number")),
        ("inactivityMinutes", json!(43_200), None),
        ("inactivityMinutes", json!(43_201), Some("from 1 to 43200 (minutes)")),
        ("rememberDays", json!(366), Some("from 1 to 365 (days)")),
        ("maxFailures", json!(101), Some("from 1 to 100")),
        ("failureWindowSecs", json!(86_400), None),
        ("banSecs", json!(0), Some("from 1 to 86400")),
        ("backupKeep", json!(1000), None),
        ("backupKeep", json!(0), Some("from 1 to 1000")),
        ("renewDays", json!(89), None),
        ("renewDays", json!(90), Some("from 1 to 89")),
        ("backupSchedule", json!(""), None),
        ("backupSchedule", json!("0 30 3 * * *"), None),
        ("backupSchedule", json!("0 0 */6 * * Mon-Fri"), None),
        ("backupSchedule", json!("every night"), Some("not a cron expression")),
        ("backupSchedule", json!("* * * * * *"), Some("more often than every 15 minutes")),
        ("backupSchedule", json!("0 0 0 1 1 * 2001"), Some("never runs again")),
        ("backupSchedule", json!(format!("0 0 3 * * {}", "Mon,".repeat(30))), Some("at most 100 characters")),
        ("backupSchedule", json!(7), Some("cron expression")),
        ("panelLogLevel", json!("debug"), None),
        ("authdLogLevel", json!("trace"), None),
        ("relayLogLevel", json!("portico=debug"), Some("one of error, warn, info, debug, trace")),
        ("panelLogLevel", json!("DEBUG"), Some("one of error")),
    ];
    for (name, value, expected) in cases {
        let f = fields::field(name).unwrap();
        match (f.check(value, &settings), expected) {
            (Ok(()), None) => {}
            (Err(m), Some(part)) => assert!(m.contains(part), "{name}={value}: {m}"),
            (got, want) => panic!("{name}={value}: got {got:?}, wanted {want:?}"),
        }
    }
    let err = fields::field("backupSchedule").unwrap().check(&json!("0 30 3 * * *"), &Settings::default());
    assert!(err.unwrap_err().contains("need a passphrase"), "a schedule without backup.passphrase");
}

/// Every field of `Values` has a row in `FIELDS` (and no row names a
/// field that does not exist), so a new field cannot be forgotten.
#[test]
fn every_value_has_a_field() {
    let names: Vec<String> = Values::from_settings(&Settings::default()).to_map().keys().cloned().collect();
    let mut fields: Vec<String> = FIELDS.iter().map(|f| f.name.to_string()).collect();
    fields.sort();
    let mut names = names;
    names.sort();
    assert_eq!(names, fields);
}

#[test]
fn forms_name_the_field_that_is_not_a_number() {
    let form: HashMap<&str, &str> =
        [("sessionHours", "twelve"), ("banSecs", " 60 "), ("panelLogLevel", "debug")].into();
    let errors = Patch::from_form(|n| form.get(n).copied()).unwrap_err();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].field, "sessionHours");
    assert!(errors[0].message.contains("whole number from 1 to 720"), "{}", errors[0].message);
    let form: HashMap<&str, &str> = [("banSecs", " 60 "), ("panelLogLevel", "debug")].into();
    let patch = Patch::from_form(|n| form.get(n).copied()).unwrap();
    assert_eq!(patch.changes(), vec![("banSecs", json!(60)), ("panelLogLevel", json!("debug"))]);
}

/// config.yaml and the environment win over the store, which wins over the
/// default; the view says where each value comes from.
#[actix_web::test]
async fn precedence_environment_then_config_then_stored_then_default() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yaml");
    std::fs::File::create(&config).unwrap().write_all(b"backup:\n  keep: 3\n").unwrap();
    let env: HashMap<String, String> = [("PORTICO__AUTHD__SESSION_HOURS".to_string(), "8".to_string())].into();
    let sources = Sources { config_file: Some(config.clone()), env, ..Default::default() };
    let settings = Settings::load(&sources).unwrap();
    let (_d, store) = store();
    let rows = [("sessionHours", "20"), ("backupKeep", "9"), ("rememberDays", "10")];
    let rows = rows.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    store.put_runtime_settings(rows, time::OffsetDateTime::now_utc(), "admin".into()).await.unwrap();

    let (values, view) = load(&store, &settings).await.unwrap();
    assert_eq!(values.session_hours, 8, "the environment wins over the store");
    assert_eq!(values.backup_keep, 3, "config.yaml wins over the store");
    assert_eq!(values.remember_days, 10, "the store wins over the default");
    assert_eq!(values.ban_secs, 300, "the default");
    let field = |n: &str| view.get(n).unwrap().clone();
    let hours = field("sessionHours");
    assert_eq!(
        (hours.source, hours.editable, hours.value, hours.default),
        (Source::Environment, false, json!(8), json!(12))
    );
    assert_eq!(hours.set_by.as_deref(), Some("set by PORTICO__AUTHD__SESSION_HOURS in the environment"));
    let keep = field("backupKeep");
    assert_eq!((keep.source, keep.editable), (Source::Config, false));
    assert_eq!(keep.set_by, Some(format!("set in {}", config.display())));
    assert_eq!((field("rememberDays").source, field("rememberDays").editable), (Source::Stored, true));
    assert_eq!((field("banSecs").source, field("banSecs").set_by), (Source::Default, None));

    // A change to an explicit key is refused as a whole, naming where it is set.
    let patch = Patch { session_hours: Some(4), ban_secs: Some(60), ..Default::default() };
    let err = update(&store, &settings, patch, "admin").await.unwrap_err();
    match err {
        RuntimeSettingsError::Locked(m) => {
            assert!(m.contains("sessionHours is set by PORTICO__AUTHD__SESSION_HOURS"), "{m}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(load(&store, &settings).await.unwrap().0.ban_secs, 300, "nothing stored");
}

#[actix_web::test]
async fn updates_are_all_or_nothing_and_say_what_changed() {
    let (_d, store) = store();
    let settings = Settings::default();
    let patch = Patch { session_hours: Some(6), remember_days: Some(0), renew_days: Some(200), ..Default::default() };
    match update(&store, &settings, patch, "admin").await.unwrap_err() {
        RuntimeSettingsError::Invalid(errors) => {
            let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
            assert_eq!(fields, ["rememberDays", "renewDays"]);
        }
        other => panic!("{other:?}"),
    }
    assert!(store.runtime_settings().await.unwrap().is_empty(), "nothing stored");

    let patch = Patch {
        session_hours: Some(6),
        inactivity_minutes: Some(120), // the default: not a change
        panel_log_level: Some(" debug ".into()),
        ..Default::default()
    };
    let change = update(&store, &settings, patch, "admin").await.unwrap();
    assert_eq!(change.changed, ["sessionHours", "panelLogLevel"]);
    assert_eq!(
        change.audit_details(),
        json!({"before": {"sessionHours": 12, "panelLogLevel": "info"}, "after": {"sessionHours": 6, "panelLogLevel": "debug"}})
    );
    assert_eq!((change.after.session_hours, change.after.panel_log_level.as_str()), (6, "debug"));
    assert_eq!(change.view.get("sessionHours").unwrap().source, Source::Stored);
    let again = update(&store, &settings, Patch { session_hours: Some(6), ..Default::default() }, "admin").await;
    assert!(again.unwrap().changed.is_empty(), "the same value again changes nothing");
}

/// A stored value that no longer checks is ignored, not trusted.
#[actix_web::test]
async fn stored_values_that_no_longer_check_are_ignored() {
    let (_d, store) = store();
    let rows = vec![
        ("sessionHours".to_string(), "5000".to_string()),
        ("backupSchedule".to_string(), "\"0 30 3 * * *\"".to_string()),
        ("banSecs".to_string(), "not json".to_string()),
    ];
    store.put_runtime_settings(rows, time::OffsetDateTime::now_utc(), "admin".into()).await.unwrap();
    let (values, view) = load(&store, &Settings::default()).await.unwrap();
    assert_eq!(values, Values::from_settings(&Settings::default()), "no passphrase: no schedule");
    assert!(view.fields.iter().all(|f| f.source == Source::Default));
    let (values, _) = load(&store, &with_passphrase()).await.unwrap();
    assert_eq!(values.backup_schedule, "0 30 3 * * *");
}

/// authd's cache reads the store again once its clock moved on.
#[actix_web::test]
async fn the_cache_reads_the_store_again_after_two_seconds() {
    let (_d, store) = store();
    let settings = Settings::default();
    let cache = Cached::default();
    let t0 = time::OffsetDateTime::now_utc();
    assert_eq!(cache.get(&store, &settings, t0).await.ban_secs, 300);
    update(&store, &settings, Patch { ban_secs: Some(60), ..Default::default() }, "admin").await.unwrap();
    assert_eq!(cache.get(&store, &settings, t0 + time::Duration::seconds(1)).await.ban_secs, 300, "cached");
    assert_eq!(cache.get(&store, &settings, t0 + time::Duration::seconds(2)).await.ban_secs, 60);
    let authd = cache.get(&store, &settings, t0 + time::Duration::seconds(2)).await.authd(&settings.authd);
    assert_eq!((authd.ban_secs, authd.listen), (60, settings.authd.listen));
}
