//! Certificates: the served names' TLS certificates (list, auto-renew
//! status, renew now, bring-your-own upload), the admin client certificate
//! (info, `.p12` download, rotation with confirmation, binding to a hardware
//! key from its CSR) and the Portico CA. Renewal, upload, rotation and
//! binding are the use cases of [`crate::app::certs`],
//! as for `/api/certs`.

use actix_web::{HttpResponse, ResponseError, web};
use askama::Template;
use time::OffsetDateTime;

use super::form::UiForm;
use super::{Chrome, FieldErrors, PageError, UiAdmin};
use crate::acme::renewal::AutoRenewStatus;
use crate::acme::{CertStatus, Source};
use crate::panel::error::ApiError;
use crate::pki::{AdminMode, CertInfo};
use crate::schedule::Described;

#[derive(Template)]
#[template(path = "certs.html")]
pub struct CertsPage {
    pub chrome: Chrome,
    pub admin: CertInfo,
    /// `.p12` or hardware-bound, and since when.
    pub mode: AdminMode,
    pub bound_since: Option<OffsetDateTime>,
    /// After a binding: (revoked serial, the new certificate's PEM), shown once.
    pub bound: Option<(String, String)>,
    /// The CSR as pasted, when the binding was refused.
    pub csr: String,
    pub ca: CertInfo,
    pub now: OffsetDateTime,
    /// After a rotation: (old serial, new `.p12` password), shown once.
    pub rotated: Option<(String, String)>,
    /// Every served name and its certificate (`GET /api/certs`).
    pub certs: Vec<CertStatus>,
    /// `GET /api/certs/auto-renew-status`.
    pub renewal: AutoRenewStatus,
    /// The renewal schedule in words.
    pub schedule: Described,
    /// The bring-your-own form: (name, fullchain, key) as typed.
    pub byo: (String, String, String),
    pub errors: FieldErrors,
    /// A failed action (a CA refusal, no CA configured), readable.
    pub error: Option<String>,
    /// A name just renewed or uploaded.
    pub installed: Option<String>,
}

impl CertsPage {
    pub fn hardware_bound(&self) -> bool {
        self.mode == AdminMode::HardwareBound
    }

    pub fn when(&self, t: &OffsetDateTime) -> String {
        super::when(t)
    }

    pub fn days_left(&self, c: &CertInfo) -> i64 {
        (c.not_after - self.now).whole_days()
    }

    pub fn source(&self, s: &Source) -> &'static str {
        match s {
            Source::Auto => "auto (ACME)",
            Source::Manual => "manual (uploaded)",
        }
    }

    /// The certificate's state as the page shows it: a certificate on disk
    /// that the probe saw nginx not serve is never shown as just "valid".
    pub fn state(&self, c: &CertStatus) -> String {
        match &c.health {
            Some(h) if !h.tls.ok && (c.state == "valid" || c.state == "expiring") => format!("{}, not served", c.state),
            _ => c.state.clone(),
        }
    }

    pub fn badge(&self, c: &CertStatus) -> &'static str {
        match (c.state.as_str(), c.health.as_ref().is_none_or(|h| h.tls.ok)) {
            (_, false) => "bad",
            ("valid", _) => "ok",
            ("expiring", _) => "warn",
            _ => "bad",
        }
    }
}

async fn page(ui: &UiAdmin) -> Result<CertsPage, PageError> {
    let now = OffsetDateTime::now_utc();
    // Each name with the last probe's view: the certificate nginx really serves.
    let health = ui.state.health.get();
    let certs = crate::acme::with_health(ui.state.certs.list(now).await?, health.as_deref());
    let renewal = ui.state.certs.auto_renew_status(now).await?;
    let pki = ui.state.pki.clone();
    let (admin, ca, bound_since) =
        web::block(move || Ok::<_, crate::pki::PkiError>((pki.admin_info()?, pki.ca_info()?, pki.bound_since()?)))
            .await
            .map_err(|e| ApiError::internal("pki task", e))?
            .map_err(ApiError::from)?;
    Ok(CertsPage {
        chrome: ui.chrome("/certs", "Certificates").await?,
        admin,
        mode: if bound_since.is_some() { AdminMode::HardwareBound } else { AdminMode::P12 },
        bound_since,
        bound: None,
        csr: String::new(),
        ca,
        now,
        rotated: None,
        certs,
        schedule: crate::schedule::describe(&renewal.schedule, now),
        renewal,
        byo: Default::default(),
        errors: FieldErrors::default(),
        error: None,
        installed: None,
    })
}

/// A certificate renewed or uploaded and installed for this name, shown
/// once after the post's redirect.
struct Installed(String);

async fn show(ui: UiAdmin) -> Result<HttpResponse, PageError> {
    let mut p = page(&ui).await?;
    p.installed = ui.take_shown::<Installed>().map(|Installed(name)| name);
    super::ok(&p)
}

async fn rotate(form: UiForm) -> Result<HttpResponse, PageError> {
    let ui = &form.ui;
    if !form.confirmed() {
        return Err(ApiError::field("confirm", "Confirm the rotation").into());
    }
    let rotated = crate::app::certs::rotate_admin(&ui.state, &ui.who).await.map_err(ApiError::from)?;
    // The one post answered with a page, not a redirect: the certificate
    // this browser presented is refused from now on, so a GET would be too.
    // Re-sending the form is refused for the same reason.
    let mut p = page(ui).await?;
    p.rotated = Some((rotated.old.serial, rotated.p12_password));
    super::ok(&p)
}

/// Binds the admin certificate to the hardware key whose CSR was pasted.
/// Answered with a page, like a rotation: the certificate this browser
/// presented is refused from the next request on.
async fn bind(form: UiForm) -> Result<HttpResponse, PageError> {
    let ui = &form.ui;
    let csr = form.get("csr").to_string();
    if !form.confirmed() {
        return hardware_refused(ui, ApiError::field("confirm", "Confirm that the key is ready to use"), csr).await;
    }
    match crate::app::certs::bind_admin(&ui.state, &ui.who, csr.clone()).await {
        Ok(bound) => {
            let mut p = page(ui).await?;
            p.bound = Some((bound.old.serial, bound.cert_pem));
            super::ok(&p)
        }
        Err(e) => hardware_refused(ui, ApiError::from(e), csr).await,
    }
}

async fn hardware_refused(ui: &UiAdmin, err: ApiError, csr: String) -> Result<HttpResponse, PageError> {
    let status = err.status_code();
    let (errors, error) = super::form_error(err)?;
    let mut p = page(ui).await?;
    p.errors = errors;
    p.error = error;
    p.csr = csr;
    super::render(status, &p)
}

/// Re-renders the page after a refused renew or upload: field errors next
/// to the fields, anything else (the CA's message) as a banner, with the
/// status the API would answer.
async fn refused(
    ui: &UiAdmin,
    err: crate::app::Error,
    byo: (String, String, String),
) -> Result<HttpResponse, PageError> {
    let err = ApiError::from(err);
    let status = err.status_code();
    let (errors, error) = match err {
        ApiError::CertificateAuthority(m) => (FieldErrors::default(), Some(m)),
        other => super::form_error(other)?,
    };
    let mut p = page(ui).await?;
    p.errors = errors;
    p.error = error;
    p.byo = byo;
    super::render(status, &p)
}

async fn renew(form: UiForm) -> Result<HttpResponse, PageError> {
    let ui = &form.ui;
    let name = form.get("name").to_string();
    match crate::app::certs::renew(&ui.state, &ui.who, &name).await {
        Ok(record) => Ok(ui.redirect_showing("/certs", Installed(record.name))),
        Err(e) => refused(ui, e, Default::default()).await,
    }
}

async fn upload(form: UiForm) -> Result<HttpResponse, PageError> {
    let ui = &form.ui;
    let byo = (form.get("name").to_string(), form.get("fullchain").to_string(), form.get("key").to_string());
    let result = crate::app::certs::upload(&ui.state, &ui.who, &byo.0, byo.1.clone(), byo.2.clone()).await;
    match result {
        Ok(record) => Ok(ui.redirect_showing("/certs", Installed(record.name))),
        // The key is not shown again.
        Err(e) => refused(ui, e, (byo.0, byo.1, String::new())).await,
    }
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/certs", web::get().to(show))
        .route("/certs/rotate", web::post().to(rotate))
        .route("/certs/hardware", web::post().to(bind))
        .route("/certs/renew", web::post().to(renew))
        .route("/certs/upload", web::post().to(upload));
}
