//! Precedence (explicit bootstrap key > stored > default), the views the
//! API and the page show, the update use case's domain half, and the
//! holders through which the panel and authd see the current values.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use serde_json::Value;
use time::OffsetDateTime;

use super::fields::{FIELDS, Kind, field};
use super::{Patch, RuntimeSettingsError, Values};
use crate::model::FieldError;
use crate::settings::{Origin, Settings};
use crate::store::{Store, StoreError};

/// Where a field's value comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// The built-in default.
    Default,
    /// Changed in the panel (or the API) and stored.
    Stored,
    /// Set in a settings file (config.yaml, the add-on options); read-only here.
    Config,
    /// Set by a `PORTICO__…` environment variable; read-only here.
    Environment,
}

/// One field as the API and the page show it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FieldView {
    /// The field's name in `PATCH` bodies.
    pub name: String,
    /// The bootstrap key that sets it in config.yaml.
    pub key: String,
    pub section: String,
    pub label: String,
    pub help: String,
    /// The effective value: a whole number or a string, by field.
    pub value: Value,
    /// The built-in default.
    pub default: Value,
    pub source: Source,
    /// False when config.yaml or the environment sets the key.
    pub editable: bool,
    /// Where a read-only value is set, e.g. "set by PORTICO__AUTHD__SESSION_HOURS in the environment".
    pub set_by: Option<String>,
    /// When a change takes effect: "now", "at the next sign-in", …
    pub takes_effect: String,
    pub minimum: Option<u32>,
    pub maximum: Option<u32>,
    /// Unit of a number ("hours", "days", …).
    pub unit: Option<String>,
}

/// Every runtime setting, in page order.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RuntimeView {
    pub fields: Vec<FieldView>,
}

impl RuntimeView {
    pub fn get(&self, name: &str) -> Option<&FieldView> {
        self.fields.iter().find(|f| f.name == name)
    }
}

/// Values and views from the bootstrap settings and the stored rows. A
/// stored value that no longer checks (a range changed, the passphrase was
/// removed) is ignored with a warning.
fn resolve(settings: &Settings, stored: &[(String, String)]) -> (Values, RuntimeView) {
    let base = Values::from_settings(settings);
    let defaults = Values::from_settings(&Settings::default()).to_map();
    let mut map = base.to_map();
    let stored: BTreeMap<&str, &str> = stored.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut fields = Vec::with_capacity(FIELDS.len());
    for f in FIELDS {
        let origin = settings.origins.of(f.key);
        let saved = stored.get(f.name).and_then(|text| serde_json::from_str::<Value>(text).ok());
        let source = match (&origin, saved) {
            (Some(o), _) if o.is_environment() => Source::Environment,
            (Some(_), _) => Source::Config,
            (None, Some(v)) => match f.check(&v, settings) {
                Ok(()) => {
                    map.insert(f.name.into(), v);
                    Source::Stored
                }
                Err(reason) => {
                    tracing::warn!(field = f.name, %reason, "ignoring a stored runtime setting");
                    Source::Default
                }
            },
            (None, None) => Source::Default,
        };
        let (minimum, maximum, unit) = match f.kind {
            Kind::Number { min, max, unit } => (Some(min), Some(max), Some(unit.to_string())),
            Kind::Schedule | Kind::Level => (None, None, None),
        };
        fields.push(FieldView {
            name: f.name.into(),
            key: f.key.into(),
            section: f.section.into(),
            label: f.label.into(),
            help: f.help.into(),
            value: map.get(f.name).cloned().unwrap_or(Value::Null),
            default: defaults.get(f.name).cloned().unwrap_or(Value::Null),
            source,
            editable: origin.is_none(),
            set_by: origin.as_ref().map(Origin::describe),
            takes_effect: f.effect.into(),
            minimum,
            maximum,
            unit,
        });
    }
    let values = serde_json::from_value(Value::Object(map)).unwrap_or(base);
    (values, RuntimeView { fields })
}

/// The current values and their views.
pub async fn load(store: &Store, settings: &Settings) -> Result<(Values, RuntimeView), StoreError> {
    Ok(resolve(settings, &store.runtime_settings().await?))
}

/// What an update changed.
#[derive(Debug, Clone)]
pub struct Change {
    pub before: Values,
    pub after: Values,
    /// Names of the fields whose value changed.
    pub changed: Vec<&'static str>,
    pub view: RuntimeView,
}

impl Change {
    /// `{"before": {…}, "after": {…}}` of the changed fields, for the audit log.
    pub fn audit_details(&self) -> Value {
        let pick = |v: &Values| {
            let map = v.to_map();
            self.changed.iter().map(|n| (n.to_string(), map.get(*n).cloned().unwrap_or(Value::Null))).collect()
        };
        serde_json::json!({ "before": Value::Object(pick(&self.before)), "after": Value::Object(pick(&self.after)) })
    }
}

/// Validates a patch as a whole (every error at once; nothing is stored
/// when any field fails or is set in config.yaml or the environment) and
/// stores the fields whose value changes.
pub async fn update(
    store: &Store,
    settings: &Settings,
    patch: Patch,
    actor: &str,
) -> Result<Change, RuntimeSettingsError> {
    let (before, view) = load(store, settings).await?;
    let current = before.to_map();
    let mut locked = Vec::new();
    let mut errors = Vec::new();
    let mut rows = Vec::new();
    let mut changed = Vec::new();
    for (name, value) in patch.changes() {
        let Some(f) = field(name) else { continue };
        let value = match value {
            Value::String(s) => Value::String(s.trim().to_string()),
            other => other,
        };
        if let Some(set_by) = view.get(name).and_then(|v| v.set_by.as_deref()) {
            locked.push(format!("{name} is {set_by}"));
        } else if let Err(message) = f.check(&value, settings) {
            errors.push(FieldError::new(name, message));
        } else if current.get(name) != Some(&value) {
            rows.push((name.to_string(), value.to_string()));
            changed.push(f.name);
        }
    }
    if !locked.is_empty() {
        return Err(RuntimeSettingsError::Locked(format!(
            "{}; change it there (the panel cannot override it)",
            locked.join("; ")
        )));
    }
    if !errors.is_empty() {
        return Err(RuntimeSettingsError::Invalid(errors));
    }
    if rows.is_empty() {
        return Ok(Change { after: before.clone(), before, changed, view });
    }
    store.put_runtime_settings(rows, OffsetDateTime::now_utc(), actor.to_string()).await?;
    let (after, view) = load(store, settings).await?;
    Ok(Change { before, after, changed, view })
}

/// The panel's current values: read by the backup task, the renewal check
/// and the pages; replaced by the update use case. Cheap to clone.
#[derive(Clone)]
pub struct Live(Arc<tokio::sync::watch::Sender<Values>>);

impl Live {
    pub fn new(values: Values) -> Live {
        Live(Arc::new(tokio::sync::watch::Sender::new(values)))
    }

    pub fn current(&self) -> Values {
        self.0.borrow().clone()
    }

    /// Replaces the values and wakes every watcher.
    pub fn set(&self, values: Values) {
        self.0.send_replace(values);
    }

    /// A receiver that wakes on every [`Live::set`].
    pub fn watch(&self) -> tokio::sync::watch::Receiver<Values> {
        self.0.subscribe()
    }
}

/// How long [`Cached`] keeps values before reading the store again, seconds.
const CACHE_SECS: i64 = 2;

/// Values read from the store at most every [`CACHE_SECS`] seconds (authd,
/// which does not share the panel's memory). A failed read keeps the last
/// values (or the bootstrap ones).
#[derive(Default)]
pub struct Cached(Mutex<Option<(OffsetDateTime, Values)>>);

impl Cached {
    /// The values as of `now`; `now` comes from the caller's clock.
    pub async fn get(&self, store: &Store, settings: &Settings, now: OffsetDateTime) -> Values {
        let fresh = |at: OffsetDateTime| at <= now && (now - at).whole_seconds() < CACHE_SECS;
        let last = self.0.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if let Some((at, values)) = &last
            && fresh(*at)
        {
            return values.clone();
        }
        let values = match load(store, settings).await {
            Ok((values, _)) => values,
            Err(err) => {
                tracing::error!(%err, "cannot read runtime settings; keeping the last ones");
                last.map(|(_, v)| v).unwrap_or_else(|| Values::from_settings(settings))
            }
        };
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some((now, values.clone()));
        values
    }
}
