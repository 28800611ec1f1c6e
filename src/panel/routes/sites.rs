//! `/api/sites`: static sites (list, create, change, delete, DNS check) and
//! the agents' allowed sites. Creating, changing or deleting a site goes
//! through the nginx pipeline; the store change is undone when nginx refuses
//! it. Files are in `site_files.rs`.

use actix_web::{HttpResponse, delete, get, patch, post, put, web};
use serde::{Deserialize, Serialize};

use crate::app::{Change, Kept};
use crate::audit::{self, Outcome};
use crate::identity::Identity;
use crate::onboarding::DnsReport;
use crate::panel::AppState;
use crate::panel::auth::{Admin, Cap, SitesRead, SitesWrite};
use crate::panel::error::ApiError;
use crate::panel::extract::ApiJson;
use crate::probe::NameHealth;
use crate::sites::{self, NewSite, SitePatch};
use crate::store::{Agent, Site};

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
    let body = body.0;
    let new = NewSite {
        name: body.name,
        spa_fallback: body.spa_fallback,
        access: body.access,
        allowed_users: body.allowed_users,
        allowed_groups: body.allowed_groups,
        max_bytes: body.max_bytes,
    };
    let (site, kept) = create_site(&state, &who.0, new).await?;
    Ok(HttpResponse::Created().json(SiteWithHealth::new(site, state.health.get().as_deref(), kept.warning())))
}

/// Creates a site and proves it: when a name that served before stops
/// serving, the site is removed again (row, files, nginx), the rollback is
/// audited and the caller gets 409. Audits `site.create`. The API and the
/// sites page both call this.
pub(crate) async fn create_site(state: &AppState, who: &Identity, new: NewSite) -> Result<(Site, Kept), ApiError> {
    let name = new.name.clone();
    let before = state.health_before().await;
    let data_dir = &state.settings.data_dir;
    let result = sites::create(&state.store, &state.nginx, data_dir, who, new).await;
    let proved = match result {
        Ok(site) => {
            let (actor, key) = (who.actor(), format!("site:{}", site.id));
            let change = Change { reason: "site.create", actor: &actor, target: &site.name, key: &key };
            let undo = || async {
                match sites::delete(&state.store, &state.nginx, who, site.id).await {
                    Ok(gone) => sites::remove_files(data_dir, &gone).await,
                    Err(e) => tracing::error!(error = %e, site = site.id, "undoing the site creation failed"),
                }
            };
            state.prove_applied(change, before, undo).await.map(|kept| (site.clone(), kept))
        }
        Err(e) => Err(e.into()),
    };
    let outcome = if proved.is_ok() { Outcome::Success } else { Outcome::Failure };
    audit::record(&state.store, &who.actor(), "site.create", &name, outcome, None).await;
    let (site, kept) = proved?;
    state.certs.name_added();
    Ok((site, kept))
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
    let (site, kept) = update_site(&state, &who.0, site_id(&id)?, body.0).await?;
    Ok(HttpResponse::Ok().json(SiteWithHealth::new(site, state.health.get().as_deref(), kept.warning())))
}

/// Applies a partial update and audits it: the API and the site page both call this.
/// A rename that leaves the new name without a certificate (or anything
/// else that stops a name that served) is undone: see [`AppState::prove_applied`].
pub(crate) async fn update_site(
    state: &AppState,
    who: &Identity,
    id: i64,
    patch: SitePatch,
) -> Result<(Site, Kept), ApiError> {
    let before = state.health_before().await;
    let mut kept = Kept::default();
    let data_dir = &state.settings.data_dir;
    let result = sites::update(&state.store, &state.nginx, data_dir, who, id, patch).await;
    if let Ok((old, new)) = &result {
        let (actor, key) = (who.actor(), format!("site:{id}"));
        let change = Change { reason: "site.update", actor: &actor, target: &new.name, key: &key };
        let undo = || async {
            let back = SitePatch {
                name: Some(old.name.clone()),
                spa_fallback: Some(old.spa_fallback),
                access: Some(old.access.clone()),
                allowed_users: Some(old.allowed_users.clone()),
                allowed_groups: Some(old.allowed_groups.clone()),
                max_bytes: Some(old.max_bytes),
            };
            if let Err(e) = sites::update(&state.store, &state.nginx, data_dir, who, id, back).await {
                tracing::error!(error = %e, site = id, "undoing the site change failed");
            }
        };
        match state.prove_applied(change, before, undo).await {
            Ok(k) => kept = k,
            Err(e) => {
                audit::record(&state.store, &who.actor(), "site.update", &id.to_string(), Outcome::Failure, None).await;
                return Err(e.into());
            }
        }
    }
    let (outcome, target, details) = match &result {
        Ok((old, new)) => (
            Outcome::Success,
            new.name.clone(),
            serde_json::to_value(serde_json::json!({ "before": old, "after": new })).ok(),
        ),
        Err(_) => (Outcome::Failure, id.to_string(), None),
    };
    audit::record(&state.store, &who.actor(), "site.update", &target, outcome, details).await;
    let (_, site) = result?;
    // A new name needs its own certificate.
    state.certs.name_added();
    Ok((site, kept))
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
    delete_site(&state, &who.0, site_id(&id)?).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Deletes a site and proves it: when a name that served before stops
/// serving, the row comes back and nginx is applied again (the files were
/// not removed yet), the rollback is audited and the caller gets 409.
/// Otherwise the files go. Audits `site.delete`. The API and the sites page
/// both call this.
pub(crate) async fn delete_site(state: &AppState, who: &Identity, id: i64) -> Result<Site, ApiError> {
    let before = state.health_before().await;
    let result = sites::delete(&state.store, &state.nginx, who, id).await;
    let proved = match result {
        Ok(site) => {
            let (actor, key) = (who.actor(), format!("site:{id}"));
            let change = Change { reason: "site.delete", actor: &actor, target: &site.name, key: &key };
            let undo = || async {
                if let Err(e) = state.store.restore_site(site.clone()).await {
                    tracing::error!(error = %e, site = id, "undoing the site deletion failed");
                }
                if let Err(e) = state.apply_config("site.delete undone: a working name stopped serving").await {
                    tracing::error!(error = %e, site = id, "re-applying nginx after undoing a site deletion failed");
                }
            };
            state.prove_applied(change, before, undo).await.map(|_| site.clone())
        }
        Err(e) => Err(e.into()),
    };
    let outcome = if proved.is_ok() { Outcome::Success } else { Outcome::Failure };
    audit::record(&state.store, &who.actor(), "site.delete", &id.to_string(), outcome, None).await;
    let site = proved?;
    sites::remove_files(&state.settings.data_dir, &site).await;
    Ok(site)
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
    let id = site_id(&id)?;
    let (site, report) =
        sites::verify_dns(&state.store, &who.0, id, state.settings.dns.resolver, state.public_ip()).await?;
    let name = report.names.first().map(|n| n.name.clone()).unwrap_or_default();
    let outcome = if report.ok { Outcome::Success } else { Outcome::Failure };
    audit::record(
        &state.store,
        &who.0.actor(),
        "site.verify_dns",
        &site.name,
        outcome,
        serde_json::to_value(&report).ok(),
    )
    .await;
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
    Ok(HttpResponse::Ok().json(set_allowed_sites(&state, &admin.0.actor(), &label, &body.0.sites).await?))
}

/// Replaces an agent's allowed sites and audits it: the API and the agent
/// page both call this.
pub(crate) async fn set_allowed_sites(
    state: &AppState,
    actor: &str,
    label: &str,
    sites: &[String],
) -> Result<Agent, ApiError> {
    let names = sites::validate_allowed(sites)?;
    let agent = state.store.set_agent_allowed_sites(label.to_string(), names.clone()).await?;
    let details = Some(serde_json::json!({ "sites": names }));
    audit::record(&state.store, actor, "agent.sites", label, Outcome::Success, details).await;
    Ok(agent)
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(list).service(create).service(update).service(remove).service(verify_dns).service(agent_sites);
}
