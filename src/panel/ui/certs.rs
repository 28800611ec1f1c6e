//! Certificates: the admin client certificate (info, `.p12` download,
//! rotation with confirmation) and the Portico CA.

use actix_web::{HttpResponse, web};
use askama::Template;
use time::OffsetDateTime;

use super::form::UiForm;
use super::{Chrome, PageError, UiAdmin};
use crate::agents;
use crate::audit::{self, Outcome};
use crate::panel::error::ApiError;
use crate::pki::CertInfo;

#[derive(Template)]
#[template(path = "certs.html")]
pub struct CertsPage {
    pub chrome: Chrome,
    pub admin: CertInfo,
    pub ca: CertInfo,
    pub now: OffsetDateTime,
    /// After a rotation: (old serial, new `.p12` password), shown once.
    pub rotated: Option<(String, String)>,
}

impl CertsPage {
    pub fn when(&self, t: &OffsetDateTime) -> String {
        super::when(t)
    }

    pub fn days_left(&self, c: &CertInfo) -> i64 {
        (c.not_after - self.now).whole_days()
    }
}

async fn page(ui: &UiAdmin) -> Result<CertsPage, PageError> {
    let pki = ui.state.pki.clone();
    let (admin, ca) = web::block(move || Ok::<_, crate::pki::PkiError>((pki.admin_info()?, pki.ca_info()?)))
        .await
        .map_err(|e| ApiError::internal("pki task", e))?
        .map_err(ApiError::from)?;
    Ok(CertsPage {
        chrome: ui.chrome("/certs", "Certificates").await?,
        admin,
        ca,
        now: OffsetDateTime::now_utc(),
        rotated: None,
    })
}

async fn show(ui: UiAdmin) -> Result<HttpResponse, PageError> {
    if let Some(redirect) = ui.onboarding_redirect() {
        return Ok(redirect);
    }
    super::ok(&page(&ui).await?)
}

async fn rotate(form: UiForm) -> Result<HttpResponse, PageError> {
    let ui = &form.ui;
    if let Some(redirect) = ui.onboarding_redirect() {
        return Ok(redirect);
    }
    if !form.confirmed() {
        return Err(ApiError::field("confirm", "confirm the rotation").into());
    }
    let (old, new) = agents::rotate_admin(ui.state.pki.clone(), &ui.state.store).await.map_err(ApiError::from)?;
    let pki = ui.state.pki.clone();
    let password = web::block(move || pki.admin_p12_password())
        .await
        .map_err(|e| ApiError::internal("pki task", e))?
        .map_err(ApiError::from)?;
    let details = serde_json::json!({ "oldSerial": old.serial, "newSerial": new.serial });
    audit::record(&ui.state.store, &ui.actor(), "cert.mtls.rotate", "admin", Outcome::Success, Some(details)).await;
    let mut p = page(ui).await?;
    p.rotated = Some((old.serial, password));
    super::ok(&p)
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/certs", web::get().to(show)).route("/certs/rotate", web::post().to(rotate));
}
