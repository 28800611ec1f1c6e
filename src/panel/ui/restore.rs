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
use crate::audit::{self, Outcome};
use crate::backup::staged::{Applied, Verdict};
use crate::backup::{BackupError, StagedRestore, staged};
use crate::settings::Secret;
use crate::supervisor::{Action, SupervisorError};

/// One restore upload at a time (each may unpack a whole data directory).
static RESTORES: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
/// Chunks in flight between the request body and the multipart parser.
const PUMP_DEPTH: usize = 4;
/// Longest accepted passphrase part, bytes.
const MAX_PASSPHRASE: usize = 1024;

/// Why an upload was refused, as the page shows it.
enum Refusal {
    TooLarge(u64),
    Bad(String),
    Internal(String),
}

impl Refusal {
    fn into_page(self) -> Result<(StatusCode, String), PageError> {
        match self {
            Refusal::TooLarge(max) => Ok((
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("The archive is larger than {} (setting backup.restore_max_bytes).", super::system::size(max)),
            )),
            Refusal::Bad(m) => Ok((StatusCode::BAD_REQUEST, m)),
            Refusal::Internal(context) => Err(PageError::internal(&context)),
        }
    }
}

impl From<BackupError> for Refusal {
    fn from(e: BackupError) -> Self {
        match e {
            BackupError::WrongPassphrase | BackupError::WeakPassphrase | BackupError::Corrupt(_) => {
                Refusal::Bad(format!("{e}. Nothing was changed."))
            }
            other => Refusal::Internal(format!("restore: {other}")),
        }
    }
}

/// Writes the `archive` part to `dest` (at most `max` bytes) and returns the
/// `passphrase` part; parts may come in either order.
async fn receive(payload: Body, ctype: &str, dest: &Path, max: u64) -> Result<String, Refusal> {
    let boundary = multer::parse_boundary(ctype)
        .map_err(|_| Refusal::Bad("Send the form as multipart/form-data with the archive and passphrase.".into()))?;
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
        let bad_body = |e: multer::Error| Refusal::Bad(format!("The upload was cut off or malformed: {e}."));
        while let Some(mut field) = parts.next_field().await.map_err(bad_body)? {
            match field.name() {
                Some("passphrase") => {
                    let mut text = Vec::new();
                    while let Some(chunk) = field.chunk().await.map_err(bad_body)? {
                        text.extend_from_slice(&chunk);
                        if text.len() > MAX_PASSPHRASE {
                            return Err(Refusal::Bad("The passphrase is too long.".into()));
                        }
                    }
                    let text =
                        String::from_utf8(text).map_err(|_| Refusal::Bad("The passphrase is not text.".into()))?;
                    passphrase = Some(text);
                }
                Some("archive") => {
                    let mut file = tokio::fs::File::create(dest)
                        .await
                        .map_err(|e| Refusal::Internal(format!("restore upload: {e}")))?;
                    let mut size = 0u64;
                    while let Some(chunk) = field.chunk().await.map_err(bad_body)? {
                        size += chunk.len() as u64;
                        if size > max {
                            return Err(Refusal::TooLarge(max));
                        }
                        file.write_all(&chunk).await.map_err(|e| Refusal::Internal(format!("restore upload: {e}")))?;
                    }
                    file.sync_all().await.map_err(|e| Refusal::Internal(format!("restore upload: {e}")))?;
                    written = Some(size);
                }
                _ => return Err(Refusal::Bad("Unexpected form field.".into())),
            }
        }
        match (written, passphrase) {
            (None | Some(0), _) => Err(Refusal::Bad("Choose a backup archive (.tar.zst.age) to upload.".into())),
            (_, None) => Err(Refusal::Bad("Enter the backup's passphrase.".into())),
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
    Ok(ui.redirect(&format!("{RESTARTING}?from={}", crate::panel::routes::health::boot_id())))
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
    let boot = crate::panel::routes::health::boot_id();
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
/// stages it; audits `backup.restore.stage` with `target`. The caller has
/// checked the CSRF token ([`UiAdmin::checked_upload`]).
pub(super) async fn stage_request(
    ui: &UiAdmin,
    req: &HttpRequest,
    payload: Body,
    target: &str,
) -> Result<Staging, PageError> {
    let max = ui.state.settings.backup.restore_max_bytes;
    let announced = req.headers().get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    let ctype = req.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let data_dir = ui.state.settings.data_dir.clone();
    let _one_at_a_time = RESTORES.lock().await;
    let result = match announced {
        // The form's other parts are small: refuse at once what cannot fit.
        Some(n) if n > max + 64 * 1024 => Err(Refusal::TooLarge(max)),
        _ => stage_upload(ui, payload, &ctype, &data_dir, max).await,
    };
    let (outcome, details) = match &result {
        Ok(s) => (
            Outcome::Success,
            serde_json::json!({ "files": s.files, "backupCreatedAt": s.backup_created_at.unix_timestamp() }),
        ),
        Err(Refusal::TooLarge(_)) => (Outcome::Failure, serde_json::json!({ "error": "too large" })),
        Err(Refusal::Bad(m)) => (Outcome::Failure, serde_json::json!({ "error": m })),
        Err(Refusal::Internal(_)) => (Outcome::Failure, serde_json::json!({ "error": "internal" })),
    };
    audit::record(&ui.state.store, &ui.actor(), "backup.restore.stage", target, outcome, Some(details)).await;
    match result {
        Ok(_) => Ok(Staging::Staged),
        Err(refusal) => {
            let (status, message) = refusal.into_page()?;
            Ok(Staging::Refused(status, message))
        }
    }
}

async fn stage_upload(
    ui: &UiAdmin,
    payload: Body,
    ctype: &str,
    data_dir: &Path,
    max: u64,
) -> Result<staged::StagedRestore, Refusal> {
    let dir = data_dir.to_path_buf();
    let upload: PathBuf =
        web::block(move || staged::upload_path(&dir)).await.map_err(|e| Refusal::Internal(e.to_string()))??;
    let received = receive(payload, ctype, &upload, max).await;
    let result = match received {
        Ok(passphrase) => {
            let (archive, dir, actor) = (upload.clone(), data_dir.to_path_buf(), ui.actor());
            web::block(move || staged::stage(&archive, &dir, &Secret::new(passphrase), &actor))
                .await
                .map_err(|e| Refusal::Internal(e.to_string()))?
                .map_err(Refusal::from)
        }
        Err(e) => Err(e),
    };
    let _ = tokio::fs::remove_file(&upload).await;
    result
}

/// Confirms the staged restore (audited with `target`) and asks the
/// supervisor to restart the panel, which applies it at its start. Returns
/// the flash code: `restore_restarting`, or `restore_pending` without a
/// supervisor. 409 when nothing is staged.
pub(super) async fn confirm(ui: &UiAdmin, target: &str) -> Result<&'static str, PageError> {
    let dir = ui.state.settings.data_dir.clone();
    // What serves now must serve again before the restored data is accepted.
    let served_before: Vec<String> = match ui.state.health_before().await {
        Some(report) => report.names.iter().filter(|n| n.serves).map(|n| n.name.clone()).collect(),
        None => Vec::new(),
    };
    let confirmed = web::block(move || staged::confirm(&dir, served_before))
        .await
        .map_err(|e| PageError::internal(&e.to_string()))?
        .map_err(|e| PageError::internal(&format!("restore confirm: {e}")))?;
    let Some(restore) = confirmed else {
        return Err(PageError { status: StatusCode::CONFLICT, message: "No restore is staged.".into() });
    };
    let details = serde_json::json!({ "backupCreatedAt": restore.backup_created_at.unix_timestamp() });
    audit::record(&ui.state.store, &ui.actor(), "backup.restore.confirm", target, Outcome::Success, Some(details))
        .await;
    Ok(restart_panel(ui).await)
}

/// Asks the supervisor to restart the panel: `restore_restarting`, or
/// `restore_pending` without a supervisor.
async fn restart_panel(ui: &UiAdmin) -> &'static str {
    // s6 sends the panel SIGTERM; actix finishes this response first.
    let supervisor = ui.state.supervisor.clone();
    let restarted = web::block(move || supervisor.control(crate::services::SELF, Action::Restart)).await;
    match restarted {
        Ok(Ok(())) => "restore_restarting",
        Ok(Err(SupervisorError::Unavailable)) => "restore_pending",
        Ok(Err(e)) => {
            tracing::error!(error = %e, "cannot restart the panel to apply a restore");
            "restore_pending"
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot restart the panel to apply a restore");
            "restore_pending"
        }
    }
}

/// Drops a staged or pending restore (audited with `target`).
pub(super) async fn discard_staged(ui: &UiAdmin, target: &str) -> Result<(), PageError> {
    let dir = ui.state.settings.data_dir.clone();
    let _one_at_a_time = RESTORES.lock().await;
    web::block(move || staged::discard(&dir))
        .await
        .map_err(|e| PageError::internal(&e.to_string()))?
        .map_err(|e| PageError::internal(&format!("restore discard: {e}")))?;
    audit::record(&ui.state.store, &ui.actor(), "backup.restore.discard", target, Outcome::Success, None).await;
    Ok(())
}

/// `POST /backups/restore` (multipart: `_csrf` first, then `passphrase`
/// and `archive`). The token is checked before the archive is read.
async fn upload(ui: UiAdmin, req: HttpRequest, payload: web::Payload) -> Result<HttpResponse, PageError> {
    let body = ui.checked_upload(&req, payload).await?;
    match stage_request(&ui, &req, body, "").await? {
        Staging::Staged => Ok(ui.redirect("/backups?flash=restore_staged")),
        Staging::Refused(status, message) => {
            let mut p = super::backups::page(&ui).await?;
            p.restore.error = Some(message);
            super::render(status, &p)
        }
    }
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
    let dir = ui.state.settings.data_dir.clone();
    let requested = web::block(move || staged::request_rollback(&dir))
        .await
        .map_err(|e| PageError::internal(&e.to_string()))?
        .map_err(|e| PageError::internal(&format!("restore rollback: {e}")))?;
    let Some(applied) = requested else {
        return Err(PageError { status: StatusCode::CONFLICT, message: "No restore awaits a decision.".into() });
    };
    let details = serde_json::json!({ "backupCreatedAt": applied.restore.backup_created_at.unix_timestamp() });
    audit::record(&ui.state.store, &ui.actor(), "backup.restore.rollback", "", Outcome::Success, Some(details)).await;
    let flash = match restart_panel(ui).await {
        "restore_restarting" => "restore_restarting",
        _ => "rollback_pending",
    };
    restarting(ui, flash, "/backups").await
}

/// Keeps the restored data although some names do not serve; the previous
/// data is deleted.
async fn accept(form: UiForm) -> Result<HttpResponse, PageError> {
    let ui = &form.ui;
    let dir = ui.state.settings.data_dir.clone();
    let accepted = web::block(move || staged::accept(&dir))
        .await
        .map_err(|e| PageError::internal(&e.to_string()))?
        .map_err(|e| PageError::internal(&format!("restore accept: {e}")))?;
    let Some(applied) = accepted else {
        return Err(PageError { status: StatusCode::CONFLICT, message: "No restore awaits a decision.".into() });
    };
    let details = serde_json::json!({ "backupCreatedAt": applied.restore.backup_created_at.unix_timestamp() });
    audit::record(&ui.state.store, &ui.actor(), "backup.restore.accept", "", Outcome::Success, Some(details)).await;
    Ok(ui.redirect("/backups?flash=restore_accepted"))
}

/// Drops a staged or pending restore.
async fn discard(form: UiForm) -> Result<HttpResponse, PageError> {
    discard_staged(&form.ui, "").await?;
    Ok(form.ui.redirect("/backups?flash=restore_discarded"))
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(RESTARTING, web::get().to(show_restarting))
        .route("/backups/restore", web::post().to(upload))
        .route("/backups/restore/apply", web::post().to(apply))
        .route("/backups/restore/discard", web::post().to(discard))
        .route("/backups/restore/rollback", web::post().to(roll_back))
        .route("/backups/restore/accept", web::post().to(accept));
}
