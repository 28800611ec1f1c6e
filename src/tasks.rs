//! Named background tasks of the panel. Each logs its own failures and keeps
//! running; they end with the runtime.

use std::time::Duration;

use std::sync::Arc;

use crate::app::App;

/// How often retention runs, seconds.
const AUDIT_RETENTION_EVERY: u64 = 3600;

pub fn spawn_panel_tasks(state: Arc<App>) {
    let renewal = state.clone();
    tokio::task::spawn_local(async move {
        let ready = || renewal.onboarding_state() == crate::onboarding::OnboardingState::Completed;
        renewal.certs.run_forever(&renewal.nginx, ready).await;
    });
    tokio::task::spawn_local(sample_history(state.clone()));
    tokio::task::spawn_local(health_probe(state.clone()));
    tokio::task::spawn_local(scheduled_backups(state.clone()));
    tokio::task::spawn_local(async move {
        let mut every = tokio::time::interval(Duration::from_secs(AUDIT_RETENTION_EVERY));
        loop {
            every.tick().await;
            match crate::audit::prune(&state.store, state.settings.audit.retention_days).await {
                Ok(0) => {}
                Ok(removed) => tracing::info!(task = "audit-retention", removed, "pruned audit log"),
                Err(err) => tracing::error!(task = "audit-retention", %err, "audit retention failed"),
            }
        }
    });
}

/// How often every public name is probed, seconds.
const HEALTH_EVERY: u64 = 300;
/// How often the `health-probe` task looks for applies and renewals, seconds.
const HEALTH_WATCH: u64 = 10;
/// Delay before the first probe, so nginx and the relay are up, seconds.
const HEALTH_FIRST: u64 = 5;
/// How long after start names may take to serve (agents reconnect, nginx
/// starts) before the start-up is audited as leaving them down, seconds.
const STARTUP_GRACE: u64 = 30;

/// `health-probe`: every public name probed at start-up, every
/// [`HEALTH_EVERY`] seconds, after any nginx apply or rollback and any
/// certificate issue or renewal (seen through their outcome counters), and
/// when a change asks for it. Nothing runs before onboarding completes.
async fn health_probe(state: Arc<App>) {
    let seen = |s: &App| (s.nginx.apply_outcomes(), s.certs.renewal_outcomes());
    tokio::time::sleep(Duration::from_secs(HEALTH_FIRST)).await;
    if state.onboarding_state() == crate::onboarding::OnboardingState::Completed {
        startup_probe(&state, Duration::from_secs(STARTUP_GRACE), Duration::from_secs(HEALTH_FIRST)).await;
    }
    let mut last = None;
    let mut next = tokio::time::Instant::now();
    loop {
        let now_seen = seen(&state);
        let due = tokio::time::Instant::now() >= next || last.as_ref() != Some(&now_seen);
        if due && state.onboarding_state() == crate::onboarding::OnboardingState::Completed {
            match state.probe_now().await {
                Ok(r) if r.all_up() => tracing::debug!(task = "health-probe", up = r.up, "every name serves"),
                Ok(r) => {
                    let down: Vec<&str> = r.names.iter().filter(|n| !n.up).map(|n| n.name.as_str()).collect();
                    tracing::warn!(task = "health-probe", up = r.up, total = r.total, ?down, "names down");
                }
                Err(err) => tracing::error!(task = "health-probe", %err, "probing the public names failed"),
            }
            next = tokio::time::Instant::now() + Duration::from_secs(HEALTH_EVERY);
        }
        last = Some(now_seen);
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(HEALTH_WATCH)) => {}
            _ = state.health.woken() => next = tokio::time::Instant::now(),
        }
    }
}

/// The start-up's proof: a start cannot be undone, so it is reported.
/// Probes until every name serves or `grace` has passed (asking again every
/// `every`), then audits `health.startup`: success when every name serves,
/// failure with each name that does not and why.
pub async fn startup_probe(
    state: &App,
    grace: Duration,
    every: Duration,
) -> Option<std::sync::Arc<crate::probe::Report>> {
    use crate::audit::{self, Outcome};
    let until = tokio::time::Instant::now() + grace;
    let report = loop {
        match state.probe_now().await {
            Ok(r) if r.names.iter().all(|n| n.serves) || tokio::time::Instant::now() >= until => break r,
            Ok(_) => {}
            Err(err) => {
                tracing::error!(task = "health-probe", %err, "probing the public names at start-up failed");
                return None;
            }
        }
        tokio::time::sleep(every).await;
    };
    let down: Vec<serde_json::Value> = crate::probe::broken(&report)
        .into_iter()
        .map(|n| serde_json::json!({ "name": n.name, "reason": n.reason }))
        .collect();
    let serving = report.names.iter().filter(|n| n.serves).count();
    let outcome = if down.is_empty() { Outcome::Success } else { Outcome::Failure };
    if down.is_empty() {
        tracing::info!(task = "health-probe", names = report.total, "every public name serves after start-up");
    } else {
        tracing::warn!(task = "health-probe", down = down.len(), "public names do not serve after start-up");
    }
    let details = serde_json::json!({ "serving": serving, "total": report.total, "notServing": down });
    audit::record(&state.store, "system", "health.startup", "", outcome, Some(details)).await;
    Some(report)
}

/// `stats-history`: one memory and traffic sample a minute for the
/// dashboard's sparklines, whether or not anyone looks at it.
async fn sample_history(state: Arc<App>) {
    let mut every = tokio::time::interval(crate::sysstats::SAMPLE_EVERY);
    loop {
        every.tick().await;
        let reader = state.clone();
        let stats = match tokio::task::spawn_blocking(move || reader.stats.get()).await {
            Ok(stats) => stats,
            Err(err) => {
                tracing::error!(task = "stats-history", %err, "reading system stats failed");
                continue;
            }
        };
        if let Err(err) = state.record_sample(&stats).await {
            tracing::error!(task = "stats-history", %err, "recording a stats sample failed");
        }
    }
}

/// `backup-schedule`: a backup at every time of the `backupSchedule`
/// runtime setting (else `backup.schedule`), then retention (`backupKeep`
/// newest archives stay). A change in the panel plans the next backup again
/// at once; an empty schedule waits for one.
async fn scheduled_backups(state: Arc<App>) {
    let mut changes = state.runtime.watch();
    loop {
        let values = changes.borrow_and_update().clone();
        let next = values.backup_schedule().and_then(|s| s.upcoming(chrono::Utc).next());
        let passphrase = state.settings.backup.passphrase.clone();
        match (next, passphrase) {
            (Some(next), Some(passphrase)) => {
                tracing::info!(task = "backup-schedule", %next, "next scheduled backup");
                let wait = (next - chrono::Utc::now()).to_std().unwrap_or_default();
                tokio::select! {
                    _ = tokio::time::sleep(wait) => run_scheduled_backup(&state, &passphrase).await,
                    changed = changes.changed() => if changed.is_err() { return },
                }
            }
            (Some(_), None) => {
                tracing::error!(task = "backup-schedule", "backup.passphrase is not set; scheduled backups are off");
                if changes.changed().await.is_err() {
                    return;
                }
            }
            (None, _) => {
                if changes.changed().await.is_err() {
                    return;
                }
            }
        }
    }
}

/// One scheduled backup (the panel's backup use case, as `system`) and the
/// retention after it; failures are logged, and audited by the use case.
pub async fn run_scheduled_backup(state: &App, passphrase: &crate::settings::Secret) {
    use crate::app::backup::{self, Origin};
    match backup::create(state, "system", passphrase, Origin::Schedule).await {
        Ok(info) => {
            tracing::info!(task = "backup-schedule", id = %info.id, size = info.size, "backup written");
            let (dir, keep) = (state.settings.backup_dir(), state.runtime.current().backup_keep as usize);
            match tokio::task::spawn_blocking(move || crate::backup::prune(&dir, keep)).await {
                Ok(Ok(0)) => {}
                Ok(Ok(removed)) => tracing::info!(task = "backup-schedule", removed, "pruned old backups"),
                Ok(Err(err)) => tracing::error!(task = "backup-schedule", %err, "backup retention failed"),
                Err(err) => tracing::error!(task = "backup-schedule", %err, "backup retention task failed"),
            }
        }
        Err(err) => tracing::error!(task = "backup-schedule", %err, "scheduled backup failed"),
    }
}
