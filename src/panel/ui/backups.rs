//! Backups: take an encrypted backup of the data directory with a passphrase
//! ([`crate::app::backup::take`], as `POST /api/backup`), then download it;
//! the archives kept on the data volume are listed. A restore is uploaded
//! here too; its other steps are [`super::restore`]'s.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use time::OffsetDateTime;

use super::form::UiForm;
use super::restore::{RestoreView, Staging};
use super::{Chrome, FieldErrors, PageError, UiAdmin};
use crate::backup::{self, BackupInfo};
use crate::panel::error::ApiError;

#[derive(Template)]
#[template(path = "backups.html")]
pub struct BackupsPage {
    pub chrome: Chrome,
    pub backups: Vec<BackupInfo>,
    /// The backup just taken.
    pub created: Option<BackupInfo>,
    pub errors: FieldErrors,
    /// Why the backup just attempted failed, when not a field's fault.
    pub failure: Option<String>,
    pub min_chars: usize,
    /// The restore forms.
    pub restore: RestoreView,
    /// `backup.schedule` in words with its next run; `None` when scheduled
    /// backups are off.
    pub schedule: Option<crate::schedule::Described>,
    /// `backup.keep`: scheduled archives kept.
    pub keep: u32,
}

impl BackupsPage {
    pub fn when(&self, t: &OffsetDateTime) -> String {
        super::when(t)
    }

    pub fn size(&self, bytes: &u64) -> String {
        super::system::size(*bytes)
    }

    /// How many scheduled archives stay: `7 archives`.
    pub fn kept(&self) -> String {
        crate::wording::count(self.keep as usize, "archive", "archives")
    }

    /// The download URL of a backup (the API's download route).
    pub fn download(&self, b: &BackupInfo) -> String {
        format!("{}/api/backup/{}", self.chrome.base, b.id)
    }
}

pub(super) async fn page(ui: &UiAdmin) -> Result<BackupsPage, PageError> {
    let dir = ui.state.settings.backup_dir();
    let backups = web::block(move || backup::list(&dir))
        .await
        .map_err(|e| PageError::internal(&format!("backup list: {e}")))?
        .map_err(ApiError::from)?;
    Ok(BackupsPage {
        chrome: ui.chrome("/backups", "Backups").await?,
        backups,
        created: None,
        errors: FieldErrors::default(),
        failure: None,
        min_chars: backup::MIN_PASSPHRASE_CHARS,
        restore: super::restore::view(ui, "/backups/restore").await?,
        schedule: ui
            .state
            .settings
            .backup
            .schedule
            .as_deref()
            .map(|e| crate::schedule::describe(e, OffsetDateTime::now_utc())),
        keep: ui.state.settings.backup.keep,
    })
}

async fn show(ui: UiAdmin) -> Result<HttpResponse, PageError> {
    let mut p = page(&ui).await?;
    p.created = ui.take_shown::<BackupInfo>();
    super::ok(&p)
}

async fn create(form: UiForm) -> Result<HttpResponse, PageError> {
    let ui = &form.ui;
    match crate::app::backup::take(&ui.state, &ui.who, form.get("passphrase").to_string()).await {
        Ok(info) => Ok(ui.redirect_showing("/backups", info)),
        Err(e) => {
            let e = ApiError::from(e);
            let status =
                if matches!(e, ApiError::Conflict(_)) { StatusCode::CONFLICT } else { StatusCode::BAD_REQUEST };
            let (errors, failure) = super::form_error(e)?;
            let mut p = page(ui).await?;
            p.errors = errors;
            p.failure = failure;
            super::render(status, &p)
        }
    }
}

/// `POST /backups/restore` (multipart: `_csrf` first, then `passphrase`
/// and `archive`). The token is checked before the archive is read.
async fn upload_restore(ui: UiAdmin, req: HttpRequest, payload: web::Payload) -> Result<HttpResponse, PageError> {
    let body = ui.checked_upload(&req, payload).await?;
    match super::restore::stage_request(&ui, &req, body, "").await? {
        Staging::Staged => Ok(ui.redirect("/backups?flash=restore_staged")),
        Staging::Refused(status, message) => {
            let mut p = page(&ui).await?;
            p.restore.error = Some(message);
            super::render(status, &p)
        }
    }
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/backups", web::get().to(show))
        .route("/backups", web::post().to(create))
        .route("/backups/restore", web::post().to(upload_restore));
}
