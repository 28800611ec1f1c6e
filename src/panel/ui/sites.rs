//! Static sites: list, create, delete, and a page per site (files, upload,
//! delete a file, edit). Same use cases as `/api/sites` and
//! `/api/sites/{id}/files` (`app::sites`: nginx apply with undo, proof,
//! streamed all-or-nothing uploads, audit); the forms decode into the API's
//! site fields.

use actix_web::http::StatusCode;
use actix_web::http::header::CONTENT_TYPE;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use askama::Template;
use serde::Deserialize;

use super::form::{self, UiForm};
use super::{Chrome, FieldErrors, PageError, UiAdmin};
use crate::app;
use crate::model::Access;
use crate::panel::error::ApiError;
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
    let new = form.decode::<SiteForm>()?.new_site();
    match app::sites::create(&ui.state, &ui.who, new.clone()).await {
        Ok((_, kept)) => {
            let flash = if kept.warning().is_some() { "site_created_down" } else { "site_created" };
            Ok(ui.redirect(&format!("/sites?flash={flash}")))
        }
        Err(e) => {
            let e = ApiError::from(e);
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
    app::sites::delete(&ui.state, &ui.who, id).await.map_err(ApiError::from)?;
    Ok(ui.redirect("/sites?flash=site_deleted"))
}

/// The site forms (create and edit) as the browser posts them and as typed:
/// the API's fields that the pages edit, with `spaFallback` as a checkbox.
#[derive(Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct SiteForm {
    pub name: String,
    pub access: String,
    #[serde(deserialize_with = "form::checkbox")]
    pub spa_fallback: bool,
}

impl SiteForm {
    /// The new site as typed; what the form does not offer takes the API's defaults.
    fn new_site(self) -> NewSite {
        let SiteForm { name, access, spa_fallback } = self;
        NewSite {
            name: name.trim().to_string(),
            spa_fallback,
            access: Some(access),
            allowed_users: Vec::new(),
            allowed_groups: Vec::new(),
            max_bytes: None,
        }
    }

    /// The change as typed; what the form does not offer stays as it is.
    fn patch(&self) -> SitePatch {
        let SiteForm { name, access, spa_fallback } = self;
        SitePatch {
            name: Some(name.clone()),
            // A restricted site (set through the API) shows no radio checked; it keeps its access.
            access: (!access.is_empty()).then(|| access.clone()),
            spa_fallback: Some(*spa_fallback),
            allowed_users: None,
            allowed_groups: None,
            max_bytes: None,
        }
    }
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
        form: SiteForm { name: site.name.clone(), access: site.access.to_string(), spa_fallback: site.spa_fallback },
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
    let typed = form.decode::<SiteForm>()?;
    let typed = SiteForm { name: typed.name.trim().to_string(), ..typed };
    match app::sites::update(&ui.state, &ui.who, id, typed.patch()).await {
        Ok((_, kept)) => {
            let flash = if kept.warning().is_some() { "site_saved_down" } else { "site_saved" };
            Ok(ui.redirect(&format!("/sites/{id}?flash={flash}")))
        }
        Err(e) => {
            let e = ApiError::from(e);
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
    match app::sites::files::upload(&ui.state, &ui.who, &site, ctype, body).await {
        Ok(_) => Ok(ui.redirect(&format!("/sites/{id}?flash=files_uploaded"))),
        Err(e) => {
            let e = ApiError::from(e);
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
    app::sites::files::delete(&ui.state, &ui.who, &site, form.get("path")).await.map_err(ApiError::from)?;
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
