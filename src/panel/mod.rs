//! `portico serve`: the panel's HTTP layer (REST API). Handlers are thin:
//! extract, call one domain function, map the result.

pub mod auth;
pub mod error;
pub mod extract;
pub mod guard;
pub mod once;
mod openapi;
pub mod origin;
pub(crate) mod routes;
pub mod session;
pub mod ui;

use std::net::{IpAddr, TcpListener};
use std::sync::{Arc, RwLock};

use actix_web::{App, HttpServer, middleware, web};
use anyhow::Context;

use crate::apikeys::KeyCache;
use crate::backup::staged::Startup;
use crate::onboarding::{self, OnboardingState};
use crate::pki::Pki;
use crate::settings::{AuthMode, Settings};
use crate::store::Store;

pub use auth::Channel;

/// Shared state of the panel, one per process.
pub struct AppState {
    pub settings: Arc<Settings>,
    pub store: Store,
    pub pki: Pki,
    pub keys: KeyCache,
    pub two_factor: session::TwoFactor,
    /// The nginx apply loop (applies nothing when `nginx.enabled` is false).
    pub nginx: crate::nginx::Pipeline,
    /// ACME and uploaded certificates.
    pub certs: crate::acme::Certs,
    /// The service supervisor (s6 in the container, none elsewhere).
    pub supervisor: crate::supervisor::Supervisor,
    /// Onboarding provisioning progress.
    pub provision: crate::provision::Provisioner,
    /// System statistics, cached for a couple of seconds.
    pub stats: crate::sysstats::StatsCache,
    /// Visitor requests counted from nginx's log lines (`visitor-log` task).
    pub visitors: Arc<crate::metrics::visitors::VisitorCounts>,
    /// The last probe of every public name (`health-probe` task, changes).
    pub health: Arc<crate::probe::HealthCache>,
    /// Doctor runs started from the panel.
    pub doctor: crate::doctor::Runs,
    /// Results a form post shows once, on the page it redirects to.
    pub shown: once::ShownOnce,
    /// Runtime settings in force (changed in the panel, read by tasks).
    pub runtime: crate::runtime_settings::Live,
    /// This process's log filter (the panel's runtime log level).
    pub log: crate::logging::LevelControl,
    /// The agent binaries served at `/download/`, with their checksums.
    pub downloads: crate::downloads::Downloads,
    onboarding: RwLock<OnboardingState>,
}

impl AppState {
    /// Opens the store and loads the onboarding state.
    pub async fn load(settings: Settings) -> anyhow::Result<AppState> {
        let store = Store::open(&settings.db_path())
            .with_context(|| format!("while opening {}", settings.db_path().display()))?;
        let state = store
            .setting(onboarding::keys::STATE)
            .await?
            .and_then(|s| OnboardingState::parse(&s))
            .unwrap_or(OnboardingState::Fresh);
        let (runtime, _) = crate::runtime_settings::load(&store, &settings).await?;
        let runtime = crate::runtime_settings::Live::new(runtime);
        let settings = Arc::new(settings);
        let nginx =
            crate::nginx::Pipeline::new(settings.clone(), store.clone(), crate::nginx::state::applier(&settings));
        let health: Arc<crate::probe::HealthCache> = Default::default();
        let guard = crate::probe::Guard::new(settings.clone(), store.clone(), health.clone());
        Ok(AppState {
            pki: Pki::new(&settings.data_dir),
            certs: crate::acme::Certs::new(settings.clone(), store.clone())
                .with_guard(guard)
                .with_runtime(runtime.clone()),
            supervisor: crate::supervisor::Supervisor::from_settings(&settings.supervisor),
            provision: Default::default(),
            stats: crate::sysstats::StatsCache::new(settings.data_dir.clone()),
            visitors: Default::default(),
            health,
            doctor: Default::default(),
            shown: Default::default(),
            runtime,
            log: crate::logging::LevelControl::process(),
            downloads: crate::downloads::Downloads::new(settings.panel.downloads_dir.clone()),
            settings,
            nginx,
            store,
            keys: KeyCache::default(),
            two_factor: Default::default(),
            onboarding: RwLock::new(state),
        })
    }

    pub fn onboarding_state(&self) -> OnboardingState {
        *self.onboarding.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Updates the cached state after the store accepted a transition.
    pub fn set_onboarding_state(&self, state: OnboardingState) {
        *self.onboarding.write().unwrap_or_else(|e| e.into_inner()) = state;
    }

    /// Re-renders and applies the nginx configuration after a state change.
    /// Handlers call it after their store change; on `Err` they undo that
    /// change and return the error, so the store never holds state that nginx
    /// refused. Runs the render → validate → swap → reload → probe loop,
    /// queued behind any other change; a no-op when `nginx.enabled` is false.
    /// Handlers that must keep their store change and the apply together take
    /// `state.nginx`'s `change()` guard instead.
    pub async fn apply_config(&self, reason: &str) -> Result<(), error::ApiError> {
        tracing::debug!(reason, "configuration changed");
        self.nginx.change().await.apply(reason).await.map(|_| ()).map_err(Into::into)
    }

    /// Start-up after a crash: settles a certificate install and an nginx
    /// apply that a killed process left part-done, then makes nginx run what
    /// the store renders. Failures are logged; the panel starts anyway.
    pub async fn recover_at_start(&self) {
        let reverted = match crate::acme::journal::recover(&self.settings.data_dir, &self.store).await {
            Ok(r) => r,
            Err(err) => {
                tracing::error!(%err, "cannot settle an interrupted certificate install");
                false
            }
        };
        match self.nginx.reconcile(reverted).await {
            Ok(Some(out)) => tracing::info!(changed = out.changed, "nginx brought in line with the store"),
            Ok(None) => {}
            Err(err) => tracing::error!(%err, "cannot bring nginx in line with the store at start-up"),
        }
    }

    /// What `/metrics` reports from this process's memory.
    pub fn panel_counters(&self) -> crate::metrics::PanelCounters {
        crate::metrics::PanelCounters {
            visitors: self.visitors.snapshot(),
            nginx_applies: self.nginx.apply_outcomes(),
            acme_renewals: self.certs.renewal_outcomes(),
            health: self.health.get(),
        }
    }

    /// The configured public address, else the detected one.
    pub fn public_ip(&self) -> Option<IpAddr> {
        self.settings.public_ip.or_else(onboarding::detect_public_ip)
    }
}

/// Registers every route, the identity chain and the extractor configs.
pub fn configure(state: web::Data<AppState>, channel: Channel) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg| {
        let limit = state.settings.panel.json_limit;
        cfg.app_data(state).app_data(web::Data::new(channel)).app_data(web::PayloadConfig::new(limit)).service(
            web::scope("/api")
                .wrap(middleware::from_fn(session::require_second_factor))
                .wrap(middleware::from_fn(auth::identify))
                // Outermost: a cross-site request is refused before anything
                // (identity, onboarding state) can answer differently.
                .wrap(middleware::from_fn(origin::same_origin_only))
                .configure(routes::health::configure)
                .configure(routes::doctor::configure)
                .configure(routes::onboarding::configure)
                .configure(routes::keys::configure)
                .configure(routes::certs::configure)
                .configure(routes::acme::configure)
                .configure(routes::enroll::configure)
                .configure(routes::audit::configure)
                .configure(routes::users::configure)
                .configure(routes::groups::configure)
                .configure(routes::invitations::configure)
                .configure(routes::two_factor::configure)
                .configure(routes::runtime_settings::configure)
                .configure(routes::tunnels::configure)
                .configure(routes::nginx::configure)
                .configure(routes::sites::configure)
                .configure(routes::site_files::configure)
                .configure(routes::services::configure)
                .configure(routes::system::configure)
                .configure(routes::backup::configure)
                .configure(openapi::configure)
                .default_service(web::to(routes::not_found)),
        );
        cfg.service(
            web::scope("/metrics")
                .wrap(middleware::from_fn(session::require_second_factor))
                .wrap(middleware::from_fn(auth::identify))
                .service(web::resource("").get(routes::metrics::show)),
        );
        cfg.configure(routes::downloads::configure);
        cfg.configure(ui::configure);
    }
}

fn bind(addr: std::net::SocketAddr, what: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr).with_context(|| format!("while binding the {what} listener on {addr}"))
}

/// Starts the `visitor-log` task on `panel.visitor_log_port`. A port that
/// cannot be bound only costs the visitor request counts, not the panel.
async fn spawn_visitor_log(state: &web::Data<AppState>) {
    use crate::metrics::visitors;
    let port = state.settings.panel.visitor_log_port;
    if port == 0 {
        return;
    }
    match visitors::bind(port).await {
        Ok(socket) => {
            tracing::info!(port, "counting visitor requests from nginx");
            actix_web::rt::spawn(visitors::listen(socket, state.visitors.clone()));
        }
        Err(err) => tracing::error!(
            task = "visitor-log", port, %err,
            "cannot bind panel.visitor_log_port; visitor requests are not counted"
        ),
    }
}

/// How long the restored data has to serve every name that served before, seconds.
const RESTORE_CHECK_SECS: u64 = 120;
/// Pause between probes while a restore is checked, seconds.
const RESTORE_CHECK_EVERY_SECS: u64 = 3;

/// Swaps in a restore confirmed in the panel (or the previous data, when the
/// operator asked to go back), before the store opens. A restore that cannot
/// be applied is logged and dropped; the panel starts with the data it has.
fn apply_confirmed_restore(data_dir: &std::path::Path) -> Option<Startup> {
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
async fn reload_after_swap(state: &AppState) {
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
async fn not_serving(state: &AppState, restore: &crate::backup::StagedRestore) -> Vec<String> {
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
pub async fn finish_restore(state: &AppState, restore: &crate::backup::StagedRestore) {
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
    crate::audit::record(&state.store, &restore.actor, "backup.restore", "", outcome, Some(details)).await;
}

/// Opens the store after a restore swap; when the restored store does not
/// open, swaps the previous data back, opens that and audits why.
async fn load_after(settings: Settings, startup: &mut Option<Startup>) -> anyhow::Result<AppState> {
    let restore = match startup {
        Some(Startup::Applied(r) | Startup::Checking(r)) => r.clone(),
        _ => return AppState::load(settings).await,
    };
    let err = match AppState::load(settings.clone()).await {
        Ok(state) => return Ok(state),
        Err(e) => e,
    };
    tracing::error!(error = %format!("{err:#}"), "the restored data does not open; going back to the previous data");
    crate::backup::staged::roll_back(&settings.data_dir).context("while going back to the previous data")?;
    let state = AppState::load(settings).await?;
    let details = serde_json::json!({
        "error": format!("the restored data did not open: {err:#}"),
        "rolledBack": true,
        "backupCreatedAt": restore.backup_created_at.unix_timestamp(),
    });
    crate::audit::record(
        &state.store,
        &restore.actor,
        "backup.restore",
        "",
        crate::audit::Outcome::Failure,
        Some(details),
    )
    .await;
    *startup = Some(Startup::RolledBack(restore));
    Ok(state)
}

/// Finishes what [`apply_confirmed_restore`] started, once the store is open.
async fn after_startup(state: web::Data<AppState>, startup: Option<Startup>) {
    match startup {
        None => {}
        Some(Startup::RolledBack(restore)) => {
            let details = serde_json::json!({ "backupCreatedAt": restore.backup_created_at.unix_timestamp() });
            crate::audit::record(
                &state.store,
                &restore.actor,
                "backup.restore.rollback",
                "",
                crate::audit::Outcome::Success,
                Some(details),
            )
            .await;
            reload_after_swap(&state).await;
        }
        Some(Startup::Applied(restore) | Startup::Checking(restore)) if restore.served_before.is_empty() => {
            finish_restore(&state, &restore).await;
        }
        Some(Startup::Applied(restore) | Startup::Checking(restore)) => {
            // Names need the relay and agents back; check in the background.
            actix_web::rt::spawn(async move { finish_restore(&state, &restore).await });
        }
    }
}

/// Runs the panel until SIGTERM/SIGINT (actix stops gracefully on both).
pub async fn serve(settings: Settings) -> anyhow::Result<()> {
    let mut startup = apply_confirmed_restore(&settings.data_dir);
    // A restore or a copy made by hand can leave secrets readable by others.
    crate::init::secure_data_dir(&settings);
    let state = web::Data::new(load_after(settings, &mut startup).await?);
    // What a killed nginx apply or certificate install left is settled first,
    // then a restore's check probes the names.
    state.recover_at_start().await;
    after_startup(state.clone(), startup).await;
    let settings = state.settings.clone();
    state.log.set(&state.runtime.current().panel_log_level);
    crate::tasks::spawn_panel_tasks(state.clone());
    spawn_visitor_log(&state).await;

    let panel_state = state.clone();
    let panel = HttpServer::new(move || {
        App::new()
            .wrap(middleware::from_fn(crate::logging::log_request))
            .configure(configure(panel_state.clone(), Channel::Panel))
    })
    .listen(bind(settings.panel.listen, "panel")?)?
    .shutdown_timeout(5)
    .run();
    tracing::info!(listen = %settings.panel.listen, mode = ?settings.auth.mode, "panel listening");

    if settings.auth.mode == AuthMode::Ingress {
        let ingress_state = state.clone();
        let ingress = HttpServer::new(move || {
            App::new()
                .wrap(middleware::from_fn(crate::logging::log_request))
                .configure(configure(ingress_state.clone(), Channel::Ingress))
        })
        .listen(bind(settings.ingress.listen, "ingress")?)?
        .shutdown_timeout(5)
        .run();
        tracing::info!(listen = %settings.ingress.listen, "ingress listening");
        let (a, b) = futures_util::future::join(panel, ingress).await;
        a.and(b)?;
    } else {
        panel.await?;
    }
    tracing::info!("panel stopped");
    Ok(())
}

#[cfg(test)]
mod tests;
