//! Static sites: list, create, delete, and a page per site (files, upload,
//! delete a file, edit). Same domain functions as `/api/sites` and
//! `/api/sites/{id}/files` (nginx apply with undo, streamed all-or-nothing
//! uploads).

use actix_web::http::StatusCode;
use actix_web::http::header::CONTENT_TYPE;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use askama::Template;

use super::form::UiForm;
use super::{Chrome, FieldErrors, PageError, UiAdmin};
use crate::nginx::Access;
use crate::panel::error::ApiError;
use crate::panel::routes::{site_files, sites as api};
use crate::sites::files::{self, FileEntry};
use crate::sites::{self, NewSite, SitePatch, site_dir};
use crate::store::Site;

#[derive(Template)]
#[template(path = "sites.html")]
pub struct SitesPage {
    pub chrome: Chrome,
    pub sites: Vec<Site>,
    /// The last probe of the public names.
    pub health: Option<std::sync::Arc<crate::probe::Report>>,
    pub domain: Option<String>,
    pub form: NewSite,
    pub errors: FieldErrors,
    pub error: Option<String>,
}

impl SitesPage {
    pub fn access(&self) -> Vec<(&'static str, String)> {
        super::access_choices(&Access::ALL[..2])
    }

    pub fn address(&self, name: &str) -> Option<String> {
        super::address(self.domain.as_deref(), name)
    }

    pub fn host(&self, name: &str) -> String {
        match &self.domain {
            Some(d) => format!("{name}.{d}"),
            None => name.to_string(),
        }
    }

    pub fn size(&self, bytes: &u64) -> String {
        format!("{} MB", bytes / (1024 * 1024))
    }

    /// The last probe of a site's name.
    pub fn site_health(&self, site: &Site) -> Option<crate::probe::NameHealth> {
        self.health.as_ref()?.get(&format!("site:{}", site.id)).cloned()
    }
}

async fn page(ui: &UiAdmin) -> Result<SitesPage, PageError> {
    Ok(SitesPage {
        chrome: ui.chrome("/sites", "Static sites").await?,
        sites: ui.state.store.sites().await?,
        health: ui.state.health.get(),
        domain: ui.state.store.setting(crate::onboarding::keys::DOMAIN).await?,
        form: NewSite { access: Some("authenticated".into()), ..NewSite::default() },
        errors: FieldErrors::default(),
        error: None,
    })
}

async fn show(ui: UiAdmin) -> Result<HttpResponse, PageError> {
    super::ok(&page(&ui).await?)
}

async fn create(form: UiForm) -> Result<HttpResponse, PageError> {
    let ui = &form.ui;
    let new = NewSite {
        name: form.get("name").trim().to_string(),
        spa_fallback: form.get("spaFallback") == "on",
        access: Some(form.get("access").to_string()),
        ..NewSite::default()
    };
    match api::create_site(&ui.state, &ui.who, new.clone()).await {
        Ok((_, kept)) => {
            let flash = if kept.warning().is_some() { "site_created_down" } else { "site_created" };
            Ok(ui.redirect(&format!("/sites?flash={flash}")))
        }
        Err(e) => {
            let status =
                if matches!(e, ApiError::NamesBroken(_)) { StatusCode::CONFLICT } else { StatusCode::BAD_REQUEST };
            let (errors, error) = super::form_error(e)?;
            let mut p = page(ui).await?;
            p.form = new;
            p.errors = errors;
            p.error = error;
            super::render(status, &p)
        }
    }
}

async fn delete(form: UiForm, id: web::Path<String>) -> Result<HttpResponse, PageError> {
    let ui = &form.ui;
    let id: i64 = id.parse().map_err(|_| ApiError::NotFound("No such site".into()))?;
    if !form.confirmed() {
        return Err(ApiError::field("confirm", "Confirm the deletion").into());
    }
    api::delete_site(&ui.state, &ui.who, id).await?;
    Ok(ui.redirect("/sites?flash=site_deleted"))
}

/// The edit form of a site, as typed.
#[derive(Default)]
pub struct SiteForm {
    pub name: String,
    pub access: String,
    pub spa_fallback: bool,
}

#[derive(Template)]
#[template(path = "site.html")]
pub struct SitePage {
    pub chrome: Chrome,
    pub site: Site,
    /// `https://<name>.<domain>/`, once a domain is set.
    pub address: Option<String>,
    pub files: Vec<FileEntry>,
    pub total_bytes: u64,
    pub form: SiteForm,
    pub errors: FieldErrors,
    pub error: Option<String>,
    /// A refused upload: the API's field error (bad path, too many files) or message.
    pub upload_error: Option<String>,
}

impl SitePage {
    pub fn access(&self) -> Vec<(&'static str, String)> {
        super::access_choices(&Access::ALL[..2])
    }

    pub fn size(&self, bytes: &u64) -> String {
        match *bytes {
            b if b < 1024 => format!("{b} B"),
            b if b < 1024 * 1024 => format!("{:.1} KB", b as f64 / 1024.0),
            b => format!("{:.1} MB", b as f64 / (1024.0 * 1024.0)),
        }
    }

    pub fn when(&self, t: &time::OffsetDateTime) -> String {
        super::when(t)
    }
}

fn site_id(raw: &str) -> Result<i64, PageError> {
    raw.parse().map_err(|_| ApiError::NotFound("No such site".into()).into())
}

async fn site_page(ui: &UiAdmin, id: i64) -> Result<SitePage, PageError> {
    let state = &ui.state;
    let site = sites::get(&state.store, &ui.who, id).await.map_err(ApiError::from)?;
    let files = files::list(site_dir(&state.settings.data_dir, &site.name)).await.map_err(ApiError::from)?;
    let domain = state.store.setting(crate::onboarding::keys::DOMAIN).await?;
    Ok(SitePage {
        chrome: ui.chrome("/sites", &format!("Site {}", site.name)).await?,
        address: super::address(domain.as_deref(), &site.name),
        total_bytes: files.iter().map(|f| f.size).sum(),
        files,
        form: SiteForm { name: site.name.clone(), access: site.access.clone(), spa_fallback: site.spa_fallback },
        site,
        errors: FieldErrors::default(),
        error: None,
        upload_error: None,
    })
}

async fn show_one(ui: UiAdmin, id: web::Path<String>) -> Result<HttpResponse, PageError> {
    super::ok(&site_page(&ui, site_id(&id)?).await?)
}

async fn edit(form: UiForm, id: web::Path<String>) -> Result<HttpResponse, PageError> {
    let ui = &form.ui;
    let id = site_id(&id)?;
    let typed = SiteForm {
        name: form.get("name").trim().to_string(),
        access: form.get("access").to_string(),
        spa_fallback: form.get("spaFallback") == "on",
    };
    let patch = SitePatch {
        name: Some(typed.name.clone()),
        // A restricted site (set through the API) shows no radio checked; it keeps its access.
        access: (!typed.access.is_empty()).then(|| typed.access.clone()),
        spa_fallback: Some(typed.spa_fallback),
        ..SitePatch::default()
    };
    match api::update_site(&ui.state, &ui.who, id, patch).await {
        Ok((_, kept)) => {
            let flash = if kept.warning().is_some() { "site_saved_down" } else { "site_saved" };
            Ok(ui.redirect(&format!("/sites/{id}?flash={flash}")))
        }
        Err(e) => {
            let status = e.status_code();
            let (errors, error) = super::form_error(e)?;
            let mut p = site_page(ui, id).await?;
            p.form = typed;
            p.errors = errors;
            p.error = error;
            super::render(status, &p)
        }
    }
}

/// `multipart/form-data` from `<input type=file multiple>` (or a folder
/// with `webkitdirectory`: each part's filename is its relative path). The
/// CSRF token is the form's first part; the rest of the body streams
/// straight to the same code as `POST /api/sites/{id}/files`.
async fn upload(
    ui: UiAdmin,
    id: web::Path<String>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, PageError> {
    let body = ui.checked_upload(&req, payload).await?;
    let id = site_id(&id)?;
    let site = sites::get(&ui.state.store, &ui.who, id).await.map_err(ApiError::from)?;
    let ctype = req.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    match site_files::store_upload(&ui.state, &ui.who, &site, ctype, body).await {
        Ok(_) => Ok(ui.redirect(&format!("/sites/{id}?flash=files_uploaded"))),
        Err(e) => {
            let status = e.status_code();
            let message = match e {
                ApiError::TooLarge => "the upload would exceed the site's size limit".to_string(),
                other => {
                    let (errors, error) = super::form_error(other)?;
                    error
                        .or_else(|| errors.all().first().map(|f| format!("{}: {}", f.field, f.message)))
                        .unwrap_or_default()
                }
            };
            let mut p = site_page(&ui, id).await?;
            p.upload_error = Some(message);
            super::render(status, &p)
        }
    }
}

async fn delete_file(form: UiForm, id: web::Path<String>) -> Result<HttpResponse, PageError> {
    let ui = &form.ui;
    let id = site_id(&id)?;
    if !form.confirmed() {
        return Err(ApiError::field("confirm", "Confirm the deletion").into());
    }
    let site = sites::get(&ui.state.store, &ui.who, id).await.map_err(ApiError::from)?;
    site_files::delete_file(&ui.state, &ui.who, &site, form.get("path")).await?;
    Ok(ui.redirect(&format!("/sites/{id}?flash=file_deleted")))
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/sites", web::get().to(show))
        .route("/sites", web::post().to(create))
        .route("/sites/{id}", web::get().to(show_one))
        .route("/sites/{id}", web::post().to(edit))
        .route("/sites/{id}/files", web::post().to(upload))
        .route("/sites/{id}/files/delete", web::post().to(delete_file))
        .route("/sites/{id}/delete", web::post().to(delete));
}
