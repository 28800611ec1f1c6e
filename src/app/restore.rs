//! Restores at start-up: a restore confirmed in the panel is swapped in
//! before the store opens, then checked: every public name that served
//! before must serve again, or the Backups page offers the way back. The
//! steps before the restart are [`super::backup`]'s; this process's
//! [`boot_id`] tells a page that the restart happened.

use std::sync::Arc;

use anyhow::Context;

use super::App;
use crate::backup::staged::Startup;
use crate::settings::Settings;

/// How long the restored data has to serve every name that served before, seconds.
const RESTORE_CHECK_SECS: u64 = 120;
/// Pause between probes while a restore is checked, seconds.
const RESTORE_CHECK_EVERY_SECS: u64 = 3;

/// This panel process's boot id (random, fixed for its lifetime): `/api/health`
/// reports it, so the page that waits for a restart sees a new process answer.
pub fn boot_id() -> &'static str {
    static BOOT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    BOOT.get_or_init(|| crate::token::random_hex(8))
}

/// Swaps in a restore confirmed in the panel (or the previous data, when the
/// operator asked to go back), before the store opens. A restore that cannot
/// be applied is logged and dropped; the panel starts with the data it has.
pub fn apply_confirmed(data_dir: &std::path::Path) -> Option<Startup> {
    match crate::backup::staged::apply_pending(data_dir) {
        Ok(Some(s)) => {
            tracing::info!(startup = ?s, "restore applied at start-up");
            Some(s)
        }
        Ok(None) => None,
        Err(e) => {
            tracing::error!(error = %e, "cannot apply the confirmed restore; keeping the current data");
            None
        }
    }
}

/// Renders nginx from the data now in place and restarts the services that
/// had the replaced database open. Failures are logged; the panel runs on.
async fn reload_after_swap(state: &App) {
    if let Err(e) = state.apply_config("restore").await {
        tracing::error!(error = %e, "nginx did not take the restored configuration");
    }
    let supervisor = state.supervisor.clone();
    let restarted = tokio::task::spawn_blocking(move || {
        for name in ["relay", "authd"] {
            match supervisor.status(name) {
                Ok(s) if s.up => supervisor.control(name, crate::supervisor::Action::Restart)?,
                Ok(_) => {}
                Err(crate::supervisor::SupervisorError::Unavailable) => return Ok(()),
                Err(e) => return Err(e),
            }
        }
        Ok(())
    })
    .await;
    match restarted {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::error!(error = %e, "cannot restart the services after a restore"),
        Err(e) => tracing::error!(error = %e, "cannot restart the services after a restore"),
    }
}

/// The names of `restore.served_before` that do not serve now, each with
/// why; empty when this process does not manage nginx.
async fn not_serving(state: &App, restore: &crate::backup::StagedRestore) -> Vec<String> {
    if restore.served_before.is_empty() {
        return Vec::new();
    }
    let Some(report) = state.health_before().await else { return Vec::new() };
    restore
        .served_before
        .iter()
        .filter_map(|name| match report.by_name(name) {
            Some(h) if h.serves => None,
            Some(h) => Some(format!("{name}: {}", h.reason.as_deref().unwrap_or("does not serve"))),
            None => Some(format!("{name}: no longer configured")),
        })
        .collect()
}

/// After a restore was swapped in: reloads nginx and the services, then
/// waits (bounded) until every public name that served before the restore
/// serves again. Healthy: the previous data is deleted and `backup.restore`
/// audited as a success. Otherwise the previous data stays, the Backups
/// page shows why with a way back, and the failure is audited with the
/// probe's evidence.
pub async fn finish_restore(state: &App, restore: &crate::backup::StagedRestore) {
    use crate::backup::staged::{self, Verdict};
    reload_after_swap(state).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(RESTORE_CHECK_SECS);
    let mut missing = not_serving(state, restore).await;
    while !missing.is_empty() && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_secs(RESTORE_CHECK_EVERY_SECS)).await;
        missing = not_serving(state, restore).await;
    }
    let mut details = serde_json::json!({
        "files": restore.files,
        "backupCreatedAt": restore.backup_created_at.unix_timestamp(),
        "namesChecked": restore.served_before,
    });
    let data_dir = state.settings.data_dir.clone();
    let outcome = if missing.is_empty() {
        match tokio::task::spawn_blocking(move || staged::accept(&data_dir)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "cannot remove the data a restore replaced"),
            Err(e) => tracing::error!(error = %e, "cannot remove the data a restore replaced"),
        }
        crate::audit::Outcome::Success
    } else {
        tracing::error!(names = ?missing, "names that served before the restore do not serve now");
        details["notServing"] = serde_json::json!(missing);
        let verdict = Verdict::Unhealthy { reasons: missing };
        if let Ok(Err(e)) = tokio::task::spawn_blocking(move || staged::set_verdict(&data_dir, verdict)).await {
            tracing::error!(error = %e, "cannot record the restore check");
        }
        crate::audit::Outcome::Failure
    };
    state.audit(&restore.actor, "backup.restore", "", outcome, Some(details)).await;
}

/// Opens the store after a restore swap; when the restored store does not
/// open, swaps the previous data back, opens that and audits why.
pub async fn load_after(settings: Settings, startup: &mut Option<Startup>) -> anyhow::Result<App> {
    let restore = match startup {
        Some(Startup::Applied(r) | Startup::Checking(r)) => r.clone(),
        _ => return App::load(settings).await,
    };
    let err = match App::load(settings.clone()).await {
        Ok(state) => return Ok(state),
        Err(e) => e,
    };
    tracing::error!(error = %format!("{err:#}"), "the restored data does not open; going back to the previous data");
    crate::backup::staged::roll_back(&settings.data_dir).context("while going back to the previous data")?;
    let state = App::load(settings).await?;
    let details = serde_json::json!({
        "error": format!("the restored data did not open: {err:#}"),
        "rolledBack": true,
        "backupCreatedAt": restore.backup_created_at.unix_timestamp(),
    });
    state.audit(&restore.actor, "backup.restore", "", crate::audit::Outcome::Failure, Some(details)).await;
    *startup = Some(Startup::RolledBack(restore));
    Ok(state)
}

/// Finishes what [`apply_confirmed`] started, once the store is open.
pub async fn after_startup(state: Arc<App>, startup: Option<Startup>) {
    match startup {
        None => {}
        Some(Startup::RolledBack(restore)) => {
            let details = serde_json::json!({ "backupCreatedAt": restore.backup_created_at.unix_timestamp() });
            state
                .audit(&restore.actor, "backup.restore.rollback", "", crate::audit::Outcome::Success, Some(details))
                .await;
            reload_after_swap(&state).await;
        }
        Some(Startup::Applied(restore) | Startup::Checking(restore)) if restore.served_before.is_empty() => {
            finish_restore(&state, &restore).await;
        }
        Some(Startup::Applied(restore) | Startup::Checking(restore)) => {
            // Names need the relay and agents back; check in the background.
            tokio::task::spawn_local(async move { finish_restore(&state, &restore).await });
        }
    }
}
