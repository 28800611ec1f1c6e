//! Named background tasks of the panel. Each logs its own failures and keeps
//! running; they end with the runtime.

use std::time::Duration;

use actix_web::web;

use crate::panel::AppState;

/// How often retention runs, seconds.
const AUDIT_RETENTION_EVERY: u64 = 3600;

pub fn spawn_panel_tasks(state: web::Data<AppState>) {
    let renewal = state.clone();
    actix_web::rt::spawn(async move {
        let ready = || renewal.onboarding_state() == crate::onboarding::OnboardingState::Completed;
        renewal.certs.run_forever(&renewal.nginx, ready).await;
    });
    actix_web::rt::spawn(async move {
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
