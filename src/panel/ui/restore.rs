//! Restore from the Backups page (and, with the same steps, from the
//! onboarding wizard: [`super::onboarding_restore`]): upload an archive with
//! its passphrase (streamed to disk, size-limited), which the panel decrypts
//! and checks into a staging directory with the same code as `portico
//! restore`; a confirmation marks it to be applied at the panel's next
//! start, and the panel asks the supervisor to restart it (see
//! [`crate::backup::staged`]) while the browser shows a page that reloads
//! itself once a new panel process answers. The replaced data is kept until
//! every name that served before serves again; if one does not, this page
//! says why and offers to go back to it or to keep the restored data.
//!
//! This module reads the multipart upload and shapes the pages; each step
//! (stage, confirm, discard, roll back, accept) is a use case of
//! [`crate::app::backup`], which audits it.

use std::path::{Path, PathBuf};

use actix_web::http::StatusCode;
use actix_web::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::StreamExt;
use time::OffsetDateTime;
use tokio::io::AsyncWriteExt;

use super::form::UiForm;
use super::upload::Body;
use super::{PageError, UiAdmin};
use crate::app::Error;
use crate::app::backup::Restart;
use crate::backup::staged::{Applied, Verdict};
use crate::backup::{BackupError, StagedRestore, staged};
use crate::panel::error::ApiError;

/// Chunks in flight between the request body and the multipart parser.
const PUMP_DEPTH: usize = 4;
/// Longest accepted passphrase part, bytes.
const MAX_PASSPHRASE: usize = 1024;

/// An upload the page refuses: the status and the message it shows, or
/// the error page of a fault.
fn refusal(e: Error, max: u64) -> Result<(StatusCode, String), PageError> {
    match e {
        Error::TooLarge => Ok((
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("The archive is larger than {} (setting backup.restore_max_bytes).", super::system::size(max)),
        )),
        Error::Invalid(fields) => {
            let message: Vec<&str> = fields.iter().map(|f| f.message.as_str()).collect();
            Ok((StatusCode::BAD_REQUEST, message.join(" ")))
        }
        other => Err(ApiError::from(other).into()),
    }
}

/// A malformed upload, in the page's words.
fn bad(message: &str) -> Error {
    Error::field("archive", message)
}

/// Writes the `archive` part to `dest` (at most `max` bytes) and returns the
/// `passphrase` part; parts may come in either order.
async fn receive(payload: Body, ctype: &str, dest: &Path, max: u64) -> Result<String, Error> {
    let boundary = multer::parse_boundary(ctype)
        .map_err(|_| bad("Send the form as multipart/form-data with the archive and passphrase."))?;
    // The request body is not `Send`; the parser wants a `Send` stream.
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<bytes::Bytes, std::io::Error>>(PUMP_DEPTH);
    let mut payload = payload;
    let pump = async move {
        while let Some(chunk) = payload.next().await {
            if tx.send(chunk.map_err(std::io::Error::other)).await.is_err() {
                break;
            }
        }
    };
    let body = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|c| (c, rx)) });
    let consume = async {
        let mut parts = multer::Multipart::new(body, boundary);
        let (mut passphrase, mut written) = (None, None);
        let bad_body = |e: multer::Error| bad(&format!("The upload was cut off or malformed: {e}."));
        while let Some(mut field) = parts.next_field().await.map_err(bad_body)? {
            match field.name() {
                Some("passphrase") => {
                    let mut text = Vec::new();
                    while let Some(chunk) = field.chunk().await.map_err(bad_body)? {
                        text.extend_from_slice(&chunk);
                        if text.len() > MAX_PASSPHRASE {
                            return Err(bad("The passphrase is too long."));
                        }
                    }
                    let text = String::from_utf8(text).map_err(|_| bad("The passphrase is not text."))?;
                    passphrase = Some(text);
                }
                Some("archive") => {
                    let mut file =
                        tokio::fs::File::create(dest).await.map_err(|e| Error::internal("restore upload", e))?;
                    let mut size = 0u64;
                    while let Some(chunk) = field.chunk().await.map_err(bad_body)? {
                        size += chunk.len() as u64;
                        if size > max {
                            return Err(Error::TooLarge);
                        }
                        file.write_all(&chunk).await.map_err(|e| Error::internal("restore upload", e))?;
                    }
                    file.sync_all().await.map_err(|e| Error::internal("restore upload", e))?;
                    written = Some(size);
                }
                _ => return Err(bad("Unexpected form field.")),
            }
        }
        match (written, passphrase) {
            (None | Some(0), _) => Err(bad("Choose a backup archive (.tar.zst.age) to upload.")),
            (_, None) => Err(bad("Enter the backup's passphrase.")),
            (Some(_), Some(p)) => Ok(p),
        }
    };
    let ((), result) = tokio::join!(pump, consume);
    result
}

/// The restore forms as a page shows them (`restore.html`).
pub struct RestoreView {
    /// Path of the forms under the base: `/backups/restore` or `/onboarding/restore`.
    pub action: &'static str,
    /// Whether the upload form is offered (a staged or pending restore shows regardless).
    pub upload: bool,
    /// A checked restore waiting for confirmation.
    pub staged: Option<StagedRestore>,
    /// A confirmed restore waiting for the panel's next start.
    pub pending: Option<StagedRestore>,
    /// A restore applied whose previous data is still kept.
    pub applied: Option<Applied>,
    /// Why the last upload was refused.
    pub error: Option<String>,
    /// `backup.restore_max_bytes`, formatted.
    pub max: String,
}

impl RestoreView {
    pub fn when(&self, t: &OffsetDateTime) -> String {
        super::when(t)
    }

    pub fn checking(&self) -> bool {
        self.applied.as_ref().is_some_and(|a| a.verdict == Verdict::Checking)
    }

    pub fn rolling_back(&self) -> bool {
        self.applied.as_ref().is_some_and(|a| a.verdict == Verdict::RollbackRequested)
    }

    /// Why the restored data is not accepted (one line per name); empty otherwise.
    pub fn unhealthy(&self) -> &[String] {
        match &self.applied {
            Some(Applied { verdict: Verdict::Unhealthy { reasons }, .. }) => reasons,
            _ => &[],
        }
    }
}

/// The page shown while the panel restarts: it polls `/api/health` and goes
/// on to `next` once a new panel process answers (`web/static/app.js`).
#[derive(askama::Template)]
#[template(path = "restarting.html")]
pub struct RestartingPage {
    pub chrome: super::Chrome,
    /// Where to go once the panel is back (under the base).
    pub next: String,
    /// The boot id of the panel process that renders this page.
    pub boot: &'static str,
}

/// Where a post that restarts the panel goes: the restarting page, which
/// names the process that answered the post, or `next` with `flash` when no
/// supervisor restarts the panel (the flash says what to do).
pub(super) async fn restarting(ui: &UiAdmin, flash: &str, next: &str) -> Result<HttpResponse, PageError> {
    if flash != "restore_restarting" {
        return Ok(ui.redirect(&format!("{next}?flash={flash}")));
    }
    Ok(ui.redirect(&format!("{RESTARTING}?from={}", crate::app::restore::boot_id())))
}

/// The restarting page's address; `?from=` the boot id of the panel that
/// restarts.
const RESTARTING: &str = "/backups/restarting";

#[derive(serde::Deserialize)]
struct RestartingQuery {
    from: Option<String>,
}

/// `GET /backups/restarting?from=<boot>`: while this panel is the one that
/// was asked to restart, the page that waits for the next one; once another
/// process answers (the request came after the restart, or nginx's own
/// restarting page reloaded it), straight on to the Backups page.
async fn show_restarting(ui: UiAdmin, query: web::Query<RestartingQuery>) -> Result<HttpResponse, PageError> {
    let boot = crate::app::restore::boot_id();
    match query.into_inner().from {
        Some(from) if crate::token::constant_time_eq(from.as_bytes(), boot.as_bytes()) => {
            let page = RestartingPage {
                chrome: ui.chrome("/backups", "Restarting").await?,
                next: "/backups?flash=restore_back".into(),
                boot,
            };
            super::ok(&page)
        }
        Some(_) => Ok(ui.redirect("/backups?flash=restore_back")),
        None => Ok(ui.redirect("/backups")),
    }
}

/// The staged and pending restores of the panel, for the forms at `action`.
pub(super) async fn view(ui: &UiAdmin, action: &'static str) -> Result<RestoreView, PageError> {
    let data_dir = ui.state.settings.data_dir.clone();
    let (staged, pending, applied) = web::block(move || {
        Ok::<_, BackupError>((staged::staged(&data_dir)?, staged::pending(&data_dir)?, staged::applied(&data_dir)?))
    })
    .await
    .map_err(|e| PageError::internal(&format!("restore view: {e}")))?
    .map_err(crate::panel::error::ApiError::from)?;
    Ok(RestoreView {
        action,
        upload: true,
        staged,
        pending,
        applied,
        error: None,
        max: super::system::size(ui.state.settings.backup.restore_max_bytes),
    })
}

/// What became of an upload.
pub(super) enum Staging {
    Staged,
    /// Refused, nothing changed: the status and the message for the page.
    Refused(StatusCode, String),
}

/// Receives the multipart upload (`passphrase`, `archive`) of `req` and
/// stages it ([`crate::app::backup::stage`], audited with `target`). The
/// caller has checked the CSRF token ([`UiAdmin::checked_upload`]).
pub(super) async fn stage_request(
    ui: &UiAdmin,
    req: &HttpRequest,
    payload: Body,
    target: &str,
) -> Result<Staging, PageError> {
    let announced = req.headers().get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    let ctype = req.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let receive = |dest: PathBuf, max: u64| async move { receive(payload, &ctype, &dest, max).await };
    match crate::app::backup::stage(&ui.state, &ui.who, target, announced, receive).await {
        Ok(_) => Ok(Staging::Staged),
        Err(e) => {
            let (status, message) = refusal(e, ui.state.settings.backup.restore_max_bytes)?;
            Ok(Staging::Refused(status, message))
        }
    }
}

/// The flash of a confirmed restore: `restore_restarting`, or
/// `restore_pending` when no supervisor restarts the panel.
fn flash(restart: Restart) -> &'static str {
    match restart {
        Restart::Now => "restore_restarting",
        Restart::NextStart => "restore_pending",
    }
}

/// Confirms the staged restore (audited with `target`); the panel restarts
/// to apply it. Returns the flash code ([`flash`]). 409 when nothing is staged.
pub(super) async fn confirm(ui: &UiAdmin, target: &str) -> Result<&'static str, PageError> {
    let restart = crate::app::backup::confirm(&ui.state, &ui.who, target).await.map_err(ApiError::from)?;
    Ok(flash(restart))
}

/// Drops a staged or pending restore (audited with `target`).
pub(super) async fn discard_staged(ui: &UiAdmin, target: &str) -> Result<(), PageError> {
    crate::app::backup::discard(&ui.state, &ui.who, target).await.map_err(ApiError::from)?;
    Ok(())
}

/// Confirms the staged restore; the panel restarts to apply it when a
/// supervisor runs it, else it is applied at the next start.
async fn apply(form: UiForm) -> Result<HttpResponse, PageError> {
    if !form.confirmed() {
        return Err(PageError { status: StatusCode::BAD_REQUEST, message: "Confirm the restore first.".into() });
    }
    let flash = confirm(&form.ui, "").await?;
    restarting(&form.ui, flash, "/backups").await
}

/// Goes back to the data a restore replaced: swapped back in at the
/// panel's next start, which follows at once under a supervisor.
async fn roll_back(form: UiForm) -> Result<HttpResponse, PageError> {
    let ui = &form.ui;
    let flash = match crate::app::backup::roll_back(&ui.state, &ui.who).await.map_err(ApiError::from)? {
        Restart::Now => "restore_restarting",
        Restart::NextStart => "rollback_pending",
    };
    restarting(ui, flash, "/backups").await
}

/// Keeps the restored data although some names do not serve; the previous
/// data is deleted.
async fn accept(form: UiForm) -> Result<HttpResponse, PageError> {
    let ui = &form.ui;
    crate::app::backup::accept(&ui.state, &ui.who).await.map_err(ApiError::from)?;
    Ok(ui.redirect("/backups?flash=restore_accepted"))
}

/// Drops a staged or pending restore.
async fn discard(form: UiForm) -> Result<HttpResponse, PageError> {
    discard_staged(&form.ui, "").await?;
    Ok(form.ui.redirect("/backups?flash=restore_discarded"))
}

/// The restore steps of the Backups page; its upload form posts to
/// `/backups/restore` ([`super::backups`]).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(RESTARTING, web::get().to(show_restarting))
        .route("/backups/restore/apply", web::post().to(apply))
        .route("/backups/restore/discard", web::post().to(discard))
        .route("/backups/restore/rollback", web::post().to(roll_back))
        .route("/backups/restore/accept", web::post().to(accept));
}
