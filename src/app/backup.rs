//! Backups: take one (the Backups page, `POST /api/backup` and the
//! `backup-schedule` task), download one, and the steps of a restore made in
//! the panel: stage an uploaded archive, confirm it (the panel restarts and
//! [`super::restore`] swaps it in at its start), discard it, and after the
//! swap go back to the previous data or keep the restored data. Every step
//! is audited here.

use std::future::Future;
use std::path::PathBuf;

use super::{App, Error};
use crate::audit::Outcome;
use crate::backup::{self, BackupError, BackupInfo, StagedRestore, staged};
use crate::identity::Identity;
use crate::settings::Secret;
use crate::supervisor::{Action, SupervisorError};

/// One restore upload (or discard) at a time: each may unpack a whole data directory.
static RESTORES: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Who asked for a backup; a scheduled one says so in its audit entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// An operator, from the panel or the API.
    Operator,
    /// The `backup-schedule` task.
    Schedule,
}

/// Checks the passphrase (a weak one is refused before anything is written
/// or audited), then takes a backup as [`create`] does.
pub async fn take(app: &App, who: &Identity, passphrase: String) -> Result<BackupInfo, Error> {
    backup::check_passphrase(&passphrase).map_err(|e| Error::field("passphrase", e.to_string()))?;
    create(app, &who.actor(), &Secret::new(passphrase), Origin::Operator).await
}

/// Takes a consistent backup of the data directory, encrypted with the
/// passphrase, and audits `backup.create` as `actor` (the archive's id and
/// size, or why it failed).
pub async fn create(app: &App, actor: &str, passphrase: &Secret, origin: Origin) -> Result<BackupInfo, Error> {
    let result = backup::create(&app.store, &app.settings, passphrase).await;
    let (outcome, target, mut details) = match &result {
        Ok(info) => (Outcome::Success, info.id.clone(), serde_json::json!({ "size": info.size })),
        Err(e) => (Outcome::Failure, String::new(), serde_json::json!({ "error": e.to_string() })),
    };
    if origin == Origin::Schedule {
        details["scheduled"] = serde_json::Value::Bool(true);
    }
    app.audit(actor, "backup.create", &target, outcome, Some(details)).await;
    Ok(result?)
}

/// Opens backup `id` for download: the file and its size, bytes. Audited
/// as `backup.download`.
pub async fn download(app: &App, who: &Identity, id: &str) -> Result<(tokio::fs::File, u64), Error> {
    let path = backup::archive_path(&app.settings.backup_dir(), id)?;
    let file = tokio::fs::File::open(&path).await.map_err(|_| Error::NotFound("No such backup".into()))?;
    let size = file.metadata().await.map_err(|e| Error::internal("backup download", e))?.len();
    app.audit(&who.actor(), "backup.download", id, Outcome::Success, None).await;
    Ok((file, size))
}

/// Runs a blocking restore step; its failure is an internal fault named by `context`.
async fn blocking<T: Send + 'static>(
    context: &str,
    f: impl FnOnce() -> Result<T, BackupError> + Send + 'static,
) -> Result<T, Error> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::internal("restore task", e))?
        .map_err(|e| Error::internal(context, e))
}

/// An archive the panel refuses to stage: what the operator fixes (a wrong
/// passphrase, a damaged archive), else a fault of the panel.
fn refused(e: BackupError) -> Error {
    match e {
        BackupError::WrongPassphrase | BackupError::WeakPassphrase => {
            Error::field("passphrase", format!("{e}. Nothing was changed."))
        }
        BackupError::Corrupt(_) => Error::field("archive", format!("{e}. Nothing was changed.")),
        other => Error::internal("restore", other),
    }
}

/// Stages an uploaded archive: `receive(dest, max)` writes the archive to
/// `dest` (at most `max` bytes, else [`Error::TooLarge`]; a malformed
/// upload is [`Error::Invalid`]) and returns its passphrase; the archive is
/// then decrypted and checked with the same code as `portico restore`, and
/// deleted. `announced` is the request's length, bytes: one that cannot fit
/// is refused at once. Audited as `backup.restore.stage` with `target`.
pub async fn stage<F, Fut>(
    app: &App,
    who: &Identity,
    target: &str,
    announced: Option<u64>,
    receive: F,
) -> Result<StagedRestore, Error>
where
    F: FnOnce(PathBuf, u64) -> Fut,
    Fut: Future<Output = Result<String, Error>>,
{
    let max = app.settings.backup.restore_max_bytes;
    let _one_at_a_time = RESTORES.lock().await;
    let result = match announced {
        // The form's other parts are small: refuse at once what cannot fit.
        Some(n) if n > max + 64 * 1024 => Err(Error::TooLarge),
        _ => stage_upload(app, who, max, receive).await,
    };
    let details = match &result {
        Ok(s) => serde_json::json!({ "files": s.files, "backupCreatedAt": s.backup_created_at.unix_timestamp() }),
        Err(Error::TooLarge) => serde_json::json!({ "error": "too large" }),
        Err(Error::Invalid(fields)) => {
            let message: Vec<&str> = fields.iter().map(|f| f.message.as_str()).collect();
            serde_json::json!({ "error": message.join(" ") })
        }
        Err(_) => serde_json::json!({ "error": "internal" }),
    };
    let outcome = if result.is_ok() { Outcome::Success } else { Outcome::Failure };
    app.audit(&who.actor(), "backup.restore.stage", target, outcome, Some(details)).await;
    result
}

async fn stage_upload<F, Fut>(app: &App, who: &Identity, max: u64, receive: F) -> Result<StagedRestore, Error>
where
    F: FnOnce(PathBuf, u64) -> Fut,
    Fut: Future<Output = Result<String, Error>>,
{
    let dir = app.settings.data_dir.clone();
    let upload = tokio::task::spawn_blocking(move || staged::upload_path(&dir))
        .await
        .map_err(|e| Error::internal("restore task", e))?
        .map_err(refused)?;
    let result = match receive(upload.clone(), max).await {
        Ok(passphrase) => {
            let (archive, dir, actor) = (upload.clone(), app.settings.data_dir.clone(), who.actor());
            tokio::task::spawn_blocking(move || staged::stage(&archive, &dir, &Secret::new(passphrase), &actor))
                .await
                .map_err(|e| Error::internal("restore task", e))?
                .map_err(refused)
        }
        Err(e) => Err(e),
    };
    let _ = tokio::fs::remove_file(&upload).await;
    result
}

/// What became of the panel's restart after a restore step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restart {
    /// The supervisor restarts the panel now.
    Now,
    /// No supervisor restarted it: the step takes effect at the next start.
    NextStart,
}

/// Asks the supervisor to restart the panel, which applies a confirmed
/// restore (or goes back to the previous data) at its start.
async fn restart_panel(app: &App) -> Restart {
    // s6 sends the panel SIGTERM; actix finishes the current response first.
    let supervisor = app.supervisor.clone();
    let restarted =
        tokio::task::spawn_blocking(move || supervisor.control(crate::services::SELF, Action::Restart)).await;
    match restarted {
        Ok(Ok(())) => Restart::Now,
        Ok(Err(SupervisorError::Unavailable)) => Restart::NextStart,
        Ok(Err(e)) => {
            tracing::error!(error = %e, "cannot restart the panel to apply a restore");
            Restart::NextStart
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot restart the panel to apply a restore");
            Restart::NextStart
        }
    }
}

/// Confirms the staged restore (audited as `backup.restore.confirm` with
/// `target`) and restarts the panel to apply it. The names that serve now
/// must serve again before the restored data is accepted. 409 when nothing
/// is staged.
pub async fn confirm(app: &App, who: &Identity, target: &str) -> Result<Restart, Error> {
    let dir = app.settings.data_dir.clone();
    let served_before: Vec<String> = match app.health_before().await {
        Some(report) => report.names.iter().filter(|n| n.serves).map(|n| n.name.clone()).collect(),
        None => Vec::new(),
    };
    let confirmed = blocking("restore confirm", move || staged::confirm(&dir, served_before)).await?;
    let Some(restore) = confirmed else { return Err(Error::Conflict("No restore is staged.".into())) };
    let details = serde_json::json!({ "backupCreatedAt": restore.backup_created_at.unix_timestamp() });
    app.audit(&who.actor(), "backup.restore.confirm", target, Outcome::Success, Some(details)).await;
    Ok(restart_panel(app).await)
}

/// Drops a staged or pending restore (audited as `backup.restore.discard` with `target`).
pub async fn discard(app: &App, who: &Identity, target: &str) -> Result<(), Error> {
    let dir = app.settings.data_dir.clone();
    let _one_at_a_time = RESTORES.lock().await;
    blocking("restore discard", move || staged::discard(&dir)).await?;
    app.audit(&who.actor(), "backup.restore.discard", target, Outcome::Success, None).await;
    Ok(())
}

/// Goes back to the data a restore replaced: swapped back in at the panel's
/// next start, which follows at once under a supervisor. Audited as
/// `backup.restore.rollback`; 409 when no restore awaits a decision.
pub async fn roll_back(app: &App, who: &Identity) -> Result<Restart, Error> {
    let dir = app.settings.data_dir.clone();
    let requested = blocking("restore rollback", move || staged::request_rollback(&dir)).await?;
    let Some(applied) = requested else { return Err(Error::Conflict("No restore awaits a decision.".into())) };
    let details = serde_json::json!({ "backupCreatedAt": applied.restore.backup_created_at.unix_timestamp() });
    app.audit(&who.actor(), "backup.restore.rollback", "", Outcome::Success, Some(details)).await;
    Ok(restart_panel(app).await)
}

/// Keeps the restored data although some names do not serve; the previous
/// data is deleted. Audited as `backup.restore.accept`; 409 when no restore
/// awaits a decision.
pub async fn accept(app: &App, who: &Identity) -> Result<(), Error> {
    let dir = app.settings.data_dir.clone();
    let accepted = blocking("restore accept", move || staged::accept(&dir)).await?;
    let Some(applied) = accepted else { return Err(Error::Conflict("No restore awaits a decision.".into())) };
    let details = serde_json::json!({ "backupCreatedAt": applied.restore.backup_created_at.unix_timestamp() });
    app.audit(&who.actor(), "backup.restore.accept", "", Outcome::Success, Some(details)).await;
    Ok(())
}
