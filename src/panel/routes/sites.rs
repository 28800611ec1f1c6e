//! `/api/sites`: static sites (list, create, delete). Creating or deleting a
//! site goes through the nginx pipeline; the store change is undone when
//! nginx refuses it.

use actix_web::{HttpResponse, delete, get, post, web};
use serde::{Deserialize, Serialize};

use crate::audit::{self, Outcome};
use crate::panel::AppState;
use crate::panel::auth::{Cap, SitesRead, SitesWrite};
use crate::panel::error::ApiError;
use crate::panel::extract::ApiJson;
use crate::sites::{self, NewSite, SiteError};
use crate::store::Site;

impl From<SiteError> for ApiError {
    fn from(e: SiteError) -> Self {
        match e {
            SiteError::Invalid(details) => ApiError::invalid(details),
            SiteError::Store(s) => s.into(),
            SiteError::Nginx(n) => n.into(),
            SiteError::Io(io) => ApiError::internal("site files", io),
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct SiteList {
    #[schema(value_type = Vec<Object>)]
    sites: Vec<Site>,
}

/// Every static site, by name.
#[utoipa::path(tag = "sites", responses((status = 200, body = SiteList)))]
#[get("/sites")]
pub async fn list(state: web::Data<AppState>, _who: Cap<SitesRead>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(SiteList { sites: state.store.sites().await? }))
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
}

/// Creates a site with a default `index.html` and serves it.
#[utoipa::path(tag = "sites", request_body = CreateSite,
    responses((status = 201, body = Object), (status = 422), (status = 502)))]
#[post("/sites")]
pub async fn create(
    state: web::Data<AppState>,
    who: Cap<SitesWrite>,
    body: ApiJson<CreateSite>,
) -> Result<HttpResponse, ApiError> {
    let body = body.0;
    let new = NewSite {
        name: body.name.clone(),
        spa_fallback: body.spa_fallback,
        access: body.access.unwrap_or_else(|| "authenticated".into()),
    };
    let result = sites::create(&state.store, &state.nginx, &state.settings.data_dir, new).await;
    let outcome = if result.is_ok() { Outcome::Success } else { Outcome::Failure };
    audit::record(&state.store, &who.0.actor(), "site.create", &body.name, outcome, None).await;
    let site = result?;
    state.certs.name_added();
    Ok(HttpResponse::Created().json(site))
}

/// Deletes a site and its files.
#[utoipa::path(tag = "sites", params(("id" = i64, Path)), responses((status = 204), (status = 422), (status = 502)))]
#[delete("/sites/{id}")]
pub async fn remove(
    state: web::Data<AppState>,
    who: Cap<SitesWrite>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id: i64 = id.parse().map_err(|_| ApiError::NotFound("No such site".into()))?;
    let result = sites::delete(&state.store, &state.nginx, &state.settings.data_dir, id).await;
    let outcome = if result.is_ok() { Outcome::Success } else { Outcome::Failure };
    audit::record(&state.store, &who.0.actor(), "site.delete", &id.to_string(), outcome, None).await;
    result?;
    Ok(HttpResponse::NoContent().finish())
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(list).service(create).service(remove);
}
