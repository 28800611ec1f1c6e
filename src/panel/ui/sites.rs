//! Static sites: list, create, delete. Same domain functions as
//! `/api/sites` (nginx apply with undo); files are managed by the sites
//! files API once it exists.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;

use super::form::UiForm;
use super::tunnels::ACCESS;
use super::{Chrome, FieldErrors, PageError, UiAdmin};
use crate::audit::{self, Outcome};
use crate::panel::error::ApiError;
use crate::sites::{self, NewSite};
use crate::store::Site;

#[derive(Template)]
#[template(path = "sites.html")]
pub struct SitesPage {
    pub chrome: Chrome,
    pub sites: Vec<Site>,
    pub domain: Option<String>,
    pub form: NewSite,
    pub errors: FieldErrors,
    pub error: Option<String>,
}

impl SitesPage {
    pub fn access(&self) -> &'static [(&'static str, &'static str)] {
        &ACCESS[..2]
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
}

async fn page(ui: &UiAdmin) -> Result<SitesPage, PageError> {
    Ok(SitesPage {
        chrome: ui.chrome("/sites", "Static sites").await?,
        sites: ui.state.store.sites().await?,
        domain: ui.state.store.setting(crate::onboarding::keys::DOMAIN).await?,
        form: NewSite { access: Some("authenticated".into()), ..NewSite::default() },
        errors: FieldErrors::default(),
        error: None,
    })
}

async fn show(ui: UiAdmin) -> Result<HttpResponse, PageError> {
    if let Some(redirect) = ui.onboarding_redirect() {
        return Ok(redirect);
    }
    super::ok(&page(&ui).await?)
}

async fn create(form: UiForm) -> Result<HttpResponse, PageError> {
    let ui = &form.ui;
    if let Some(redirect) = ui.onboarding_redirect() {
        return Ok(redirect);
    }
    let new = NewSite {
        name: form.get("name").trim().to_string(),
        spa_fallback: form.get("spaFallback") == "on",
        access: Some(form.get("access").to_string()),
        ..NewSite::default()
    };
    let state = &ui.state;
    let result = sites::create(&state.store, &state.nginx, &state.settings.data_dir, &ui.who, new.clone()).await;
    let outcome = if result.is_ok() { Outcome::Success } else { Outcome::Failure };
    audit::record(&state.store, &ui.actor(), "site.create", &new.name, outcome, None).await;
    match result {
        Ok(_) => {
            state.certs.name_added();
            Ok(ui.redirect("/sites?flash=site_created"))
        }
        Err(e) => {
            let (errors, error) = super::form_error(ApiError::from(e))?;
            let mut p = page(ui).await?;
            p.form = new;
            p.errors = errors;
            p.error = error;
            super::render(StatusCode::BAD_REQUEST, &p)
        }
    }
}

async fn delete(form: UiForm, id: web::Path<String>) -> Result<HttpResponse, PageError> {
    let ui = &form.ui;
    if let Some(redirect) = ui.onboarding_redirect() {
        return Ok(redirect);
    }
    let id: i64 = id.parse().map_err(|_| ApiError::NotFound("No such site".into()))?;
    if !form.confirmed() {
        return Err(ApiError::field("confirm", "confirm the deletion").into());
    }
    let state = &ui.state;
    let result = sites::delete(&state.store, &state.nginx, &state.settings.data_dir, &ui.who, id).await;
    let outcome = if result.is_ok() { Outcome::Success } else { Outcome::Failure };
    audit::record(&state.store, &ui.actor(), "site.delete", &id.to_string(), outcome, None).await;
    result.map_err(ApiError::from)?;
    Ok(ui.redirect("/sites?flash=site_deleted"))
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/sites", web::get().to(show))
        .route("/sites", web::post().to(create))
        .route("/sites/{id}/delete", web::post().to(delete));
}
