//! `/api/sites`: static sites (list, create, change, delete, DNS check) and
//! the agents' allowed sites, as thin adapters over `app::sites` and
//! `app::agents` (which apply nginx, undo, prove and audit). Files are in
//! `site_files.rs`.

use actix_web::{HttpResponse, delete, get, patch, post, put, web};
use serde::{Deserialize, Serialize};

use crate::app;
use crate::onboarding::DnsReport;
use crate::panel::AppState;
use crate::panel::auth::{Admin, Cap, SitesRead, SitesWrite};
use crate::panel::error::ApiError;
use crate::panel::extract::ApiJson;
use crate::probe::NameHealth;
use crate::sites::{self, NewSite, SitePatch};
use crate::store::Site;

/// Site ids are integers; anything else names no site.
pub(super) fn site_id(raw: &str) -> Result<i64, ApiError> {
    raw.parse().map_err(|_| ApiError::NotFound("No such site".into()))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct SiteList {
    sites: Vec<SiteWithHealth>,
}

/// Every static site the caller may manage, by name, each with the last
/// probe of its public name (`health`).
#[utoipa::path(tag = "sites", responses((status = 200, body = SiteList)))]
#[get("/sites")]
pub async fn list(state: web::Data<AppState>, who: Cap<SitesRead>) -> Result<HttpResponse, ApiError> {
    let report = state.health.get();
    let sites = sites::list(&state.store, &who.0)
        .await?
        .into_iter()
        .map(|site| SiteWithHealth::new(site, report.as_deref(), None))
        .collect();
    Ok(HttpResponse::Ok().json(SiteList { sites }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CreateSite {
    /// Subdomain label; shares one name space with tunnels.
    name: String,
    /// Serve `/index.html` for unknown paths (single-page apps).
    #[serde(default)]
    spa_fallback: bool,
    /// `public`, `authenticated` (default) or `restricted`.
    access: Option<String>,
    /// Visitors allowed on a `restricted` site.
    #[serde(default)]
    allowed_users: Vec<String>,
    /// Groups allowed on a `restricted` site.
    #[serde(default)]
    allowed_groups: Vec<String>,
    /// Upload cap for the whole site, bytes (default 500 MB).
    max_bytes: Option<u64>,
}

/// Creates a site with a default `index.html` and serves it. An agent may
/// create only sites named in its allowed sites. `warning` says when the new
/// name does not serve yet (no certificate for it yet, typically).
#[utoipa::path(tag = "sites", request_body = CreateSite,
    responses((status = 201, body = SiteWithHealth), (status = 409), (status = 422), (status = 502)))]
#[post("/sites")]
pub async fn create(
    state: web::Data<AppState>,
    who: Cap<SitesWrite>,
    body: ApiJson<CreateSite>,
) -> Result<HttpResponse, ApiError> {
    let CreateSite { name, spa_fallback, access, allowed_users, allowed_groups, max_bytes } = body.0;
    let new = NewSite { name, spa_fallback, access, allowed_users, allowed_groups, max_bytes };
    let (site, kept) = app::sites::create(&state, &who.0, new).await?;
    Ok(HttpResponse::Created().json(SiteWithHealth::new(site, state.health.get().as_deref(), kept.warning())))
}

/// A site with the probe's view of its name, and a warning when it was
/// saved although its name does not serve.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SiteWithHealth {
    #[serde(flatten)]
    #[schema(value_type = Object)]
    site: Site,
    /// The last probe of the site's name (absent before the first probe).
    #[serde(skip_serializing_if = "Option::is_none")]
    health: Option<NameHealth>,
    /// Set when the change was kept although the name does not serve.
    #[serde(skip_serializing_if = "Option::is_none")]
    warning: Option<String>,
}

impl SiteWithHealth {
    pub fn new(site: Site, report: Option<&crate::probe::Report>, warning: Option<String>) -> SiteWithHealth {
        let health = report.and_then(|r| r.get(&format!("site:{}", site.id))).cloned();
        SiteWithHealth { site, health, warning }
    }
}

/// Changes some fields of a site; a new name moves its files.
#[utoipa::path(tag = "sites", params(("id" = i64, Path)), request_body = SitePatch,
    responses((status = 200, body = SiteWithHealth), (status = 409), (status = 422), (status = 502)))]
#[patch("/sites/{id}")]
pub async fn update(
    state: web::Data<AppState>,
    who: Cap<SitesWrite>,
    id: web::Path<String>,
    body: ApiJson<SitePatch>,
) -> Result<HttpResponse, ApiError> {
    let (site, kept) = app::sites::update(&state, &who.0, site_id(&id)?, body.0).await?;
    Ok(HttpResponse::Ok().json(SiteWithHealth::new(site, state.health.get().as_deref(), kept.warning())))
}

/// Deletes a site and its files.
#[utoipa::path(tag = "sites", params(("id" = i64, Path)),
    responses((status = 204), (status = 409), (status = 422), (status = 502)))]
#[delete("/sites/{id}")]
pub async fn remove(
    state: web::Data<AppState>,
    who: Cap<SitesWrite>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    app::sites::delete(&state, &who.0, site_id(&id)?).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SiteDnsCheck {
    /// `<name>.<domain>`.
    name: String,
    report: DnsReport,
}

/// Resolves `<name>.<domain>` and reports whether it points at this server.
#[utoipa::path(tag = "sites", params(("id" = i64, Path)), responses((status = 200, body = SiteDnsCheck)))]
#[post("/sites/{id}/verify-dns")]
pub async fn verify_dns(
    state: web::Data<AppState>,
    who: Cap<SitesRead>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let (_, report) = app::sites::verify_dns(&state, &who.0, site_id(&id)?).await?;
    let name = report.names.first().map(|n| n.name.clone()).unwrap_or_default();
    Ok(HttpResponse::Ok().json(SiteDnsCheck { name, report }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AllowedSites {
    /// Site names (existing or future) the agent may manage with its
    /// `sites:read` / `sites:write` capabilities; empty means none.
    sites: Vec<String>,
}

/// Replaces the sites an agent may manage.
#[utoipa::path(tag = "sites", params(("label" = String, Path)), request_body = AllowedSites,
    responses((status = 200, body = Object)))]
#[put("/agents/{label}/sites")]
pub async fn agent_sites(
    state: web::Data<AppState>,
    admin: Admin,
    label: web::Path<String>,
    body: ApiJson<AllowedSites>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(app::agents::set_allowed_sites(&state, &admin.0.actor(), &label, &body.0.sites).await?))
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(list).service(create).service(update).service(remove).service(verify_dns).service(agent_sites);
}
