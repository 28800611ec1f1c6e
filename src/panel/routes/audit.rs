use actix_web::{HttpResponse, get, web};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::panel::AppState;
use crate::panel::auth::{Cap, SystemRead};
use crate::panel::error::ApiError;
use crate::panel::extract::ApiQuery;
use crate::store::{AuditEntry, AuditQuery};

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct Filter {
    actor: Option<String>,
    action: Option<String>,
    /// RFC 3339; entries at or after.
    since: Option<String>,
    /// RFC 3339; entries before.
    until: Option<String>,
    /// 1-based page number.
    page: Option<u32>,
    /// 1–500, default 50.
    per_page: Option<u32>,
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditPage {
    entries: Vec<AuditEntry>,
    total: u64,
    page: u32,
    per_page: u32,
}

fn parse_time(field: &str, value: Option<String>) -> Result<Option<OffsetDateTime>, ApiError> {
    value
        .map(|v| {
            OffsetDateTime::parse(&v, &time::format_description::well_known::Rfc3339)
                .map_err(|_| ApiError::field(field, "Use an RFC 3339 time such as 2026-01-31T12:00:00Z"))
        })
        .transpose()
}

/// The audit log, newest first, filtered and paginated.
#[utoipa::path(tag = "audit", params(Filter), responses((status = 200, body = AuditPage), (status = 400)))]
#[get("/audit")]
pub async fn list(
    state: web::Data<AppState>,
    _who: Cap<SystemRead>,
    filter: ApiQuery<Filter>,
) -> Result<HttpResponse, ApiError> {
    let f = filter.0;
    let page = f.page.unwrap_or(1);
    let per_page = f.per_page.unwrap_or(50);
    if page == 0 || page > 1_000_000 {
        return Err(ApiError::field("page", "Use a page between 1 and 1000000"));
    }
    if !(1..=500).contains(&per_page) {
        return Err(ApiError::field("perPage", "Use between 1 and 500 per page"));
    }
    let query = AuditQuery {
        actor: f.actor,
        action: f.action,
        since: parse_time("since", f.since)?,
        until: parse_time("until", f.until)?,
        limit: per_page,
        offset: (page - 1).saturating_mul(per_page),
    };
    let (entries, total) = state.store.audit_entries(query).await?;
    Ok(HttpResponse::Ok().json(AuditPage { entries, total, page, per_page }))
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(list);
}
