//! The audit log: filterable by actor, action and time, paginated.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{Chrome, FieldErrors, PageError, Pager, UiAdmin};
use crate::model::FieldError;
use crate::store::{AuditEntry, AuditQuery};

const PER_PAGE: u32 = 50;

#[derive(Deserialize, Serialize, Default, Clone)]
pub struct Filter {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub actor: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub action: String,
    /// RFC 3339 or `YYYY-MM-DD`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub since: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub until: String,
    /// Kept as text so a mangled page number falls back to page 1.
    #[serde(default, skip_serializing)]
    pub page: String,
}

#[derive(Template)]
#[template(path = "audit.html")]
pub struct AuditPage {
    pub chrome: Chrome,
    pub filter: Filter,
    pub errors: FieldErrors,
    pub entries: Vec<AuditEntry>,
    pub pager: Pager,
}

impl AuditPage {
    pub fn when(&self, t: &OffsetDateTime) -> String {
        super::when(t)
    }

    /// The details as key/value pairs: an object's fields by key (nested
    /// values as compact JSON, strings without quotes); anything else under `value`.
    pub fn details(&self, e: &AuditEntry) -> Vec<(String, String)> {
        let text = |v: &serde_json::Value| match v {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        match &e.details {
            None | Some(serde_json::Value::Null) => Vec::new(),
            Some(serde_json::Value::Object(map)) => map.iter().map(|(k, v)| (k.clone(), text(v))).collect(),
            Some(other) => vec![("value".into(), text(other))],
        }
    }
}

/// Parses an RFC 3339 time or a plain date (midnight UTC).
fn parse_time(field: &str, value: &str) -> Result<Option<OffsetDateTime>, FieldError> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    let rfc = OffsetDateTime::parse(value, &time::format_description::well_known::Rfc3339);
    let date = || {
        time::Date::parse(value, time::macros::format_description!("[year]-[month]-[day]"))
            .map(|d| d.midnight().assume_utc())
    };
    rfc.or_else(|_| date())
        .map(Some)
        .map_err(|_| FieldError::new(field, "Use a date like 2026-01-31 or a time like 2026-01-31T12:00:00Z"))
}

async fn show(ui: UiAdmin, query: web::Query<Filter>) -> Result<HttpResponse, PageError> {
    let filter = query.into_inner();
    let page = filter.page.trim().parse::<u32>().unwrap_or(1).clamp(1, 1_000_000);
    let mut errors = Vec::new();
    let since = parse_time("since", &filter.since).unwrap_or_else(|e| {
        errors.push(e);
        None
    });
    let until = parse_time("until", &filter.until).unwrap_or_else(|e| {
        errors.push(e);
        None
    });
    let some = |s: &str| Some(s.trim().to_string()).filter(|s| !s.is_empty());
    let (entries, total) = if errors.is_empty() {
        let q = AuditQuery {
            actor: some(&filter.actor),
            action: some(&filter.action),
            since,
            until,
            limit: PER_PAGE,
            offset: (page - 1).saturating_mul(PER_PAGE),
        };
        ui.state.store.audit_entries(q).await?
    } else {
        (vec![], 0)
    };
    let base = format!("{}/audit?", ui.base);
    let query_of = serde_urlencoded::to_string(&filter).unwrap_or_default();
    let link = |p: u32| {
        if query_of.is_empty() { format!("{base}page={p}") } else { format!("{base}{query_of}&page={p}") }
    };
    let pager = Pager::new(page, PER_PAGE, total, link);
    let status = if errors.is_empty() { StatusCode::OK } else { StatusCode::BAD_REQUEST };
    let page = AuditPage {
        chrome: ui.chrome("/audit", "Audit log").await?,
        filter,
        errors: FieldErrors(errors),
        entries,
        pager,
    };
    super::render(status, &page)
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/audit", web::get().to(show));
}
