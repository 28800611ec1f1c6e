//! The use-case layer: one function per change to the appliance, shared by
//! every HTTP surface (the REST API and the web UI are thin adapters over it).
//!
//! ```text
//! HTTP surfaces   panel::routes (JSON) · panel::ui (forms, pages) · tasks
//!        │            parse input, call one use case, shape the answer
//!        ▼
//! use cases       app::*  validate → store → apply (nginx, certificates)
//!        │                → undo on failure → audit; return app::Error
//!        ▼
//! domain          tunnels, sites, users, agents, backup, acme, …
//!        ▼
//! infrastructure  store (SQLite) · nginx pipeline · pki · supervisor
//! ```
//!
//! [`App`] owns what a use case needs: the store, the nginx pipeline,
//! certificates, the supervisor, the PKI, settings and the onboarding state.
//! Sessions, CSRF and templates stay in `panel`.

pub mod agents;
pub mod backup;
pub mod certs;
pub mod denied;
pub mod error;
pub mod groups;
pub mod guard;
pub mod invitations;
pub mod keys;
pub mod nginx;
pub mod onboarding;
pub mod provision;
pub mod restore;
pub mod runtime_settings;
pub mod services;
pub mod sites;
mod stats;
pub mod tunnels;
pub mod two_factor;
pub mod users;

use std::net::IpAddr;
use std::sync::{Arc, RwLock};

use anyhow::Context;

pub use error::Error;
pub use guard::{Change, Kept};

use crate::apikeys::KeyCache;
use crate::onboarding::OnboardingState;
use crate::pki::Pki;
use crate::settings::Settings;
use crate::store::Store;

/// The appliance as the use cases see it, one per panel process.
pub struct App {
    pub settings: Arc<Settings>,
    pub store: Store,
    pub pki: Pki,
    /// Verified API keys, cached (a revoked key is dropped at once).
    pub keys: KeyCache,
    /// Regulation of the codes admins type for the panel's second factor.
    pub two_factor: crate::two_factor::Checker,
    /// The nginx apply loop (applies nothing when `nginx.enabled` is false).
    pub nginx: crate::nginx::Pipeline,
    /// ACME and uploaded certificates.
    pub certs: crate::acme::Certs,
    /// The service supervisor (s6 in the container, none elsewhere).
    pub supervisor: crate::supervisor::Supervisor,
    /// Onboarding provisioning progress.
    pub provision: crate::app::provision::Provisioner,
    /// System statistics, cached for a couple of seconds.
    pub stats: crate::sysstats::StatsCache,
    /// Visitor requests counted from nginx's log lines (`visitor-log` task).
    pub visitors: Arc<crate::metrics::visitors::VisitorCounts>,
    /// The last probe of every public name (`health-probe` task, changes).
    pub health: Arc<crate::probe::HealthCache>,
    /// Doctor runs started from the panel.
    pub doctor: crate::doctor::Runs,
    /// Runtime settings in force (changed in the panel, read by tasks).
    pub runtime: crate::runtime_settings::Live,
    /// This process's log filter (the panel's runtime log level).
    pub log: crate::logging::LevelControl,
    /// The agent binaries served at `/download/`, with their checksums.
    pub downloads: crate::downloads::Downloads,
    onboarding: RwLock<OnboardingState>,
}

impl App {
    /// Opens the store and loads the onboarding state.
    pub async fn load(settings: Settings) -> anyhow::Result<App> {
        let store = Store::open(&settings.db_path())
            .with_context(|| format!("while opening {}", settings.db_path().display()))?;
        let state = store
            .setting(crate::onboarding::keys::STATE)
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
        Ok(App {
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
    /// Use cases call it after their store change; on `Err` they undo that
    /// change and return the error, so the store never holds state that nginx
    /// refused. Runs the render → validate → swap → reload → probe loop,
    /// queued behind any other change; a no-op when `nginx.enabled` is false.
    /// Use cases that must keep their store change and the apply together
    /// take `nginx`'s `change()` guard instead.
    pub async fn apply_config(&self, reason: &str) -> Result<(), Error> {
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
        self.settings.public_ip.or_else(crate::onboarding::detect_public_ip)
    }

    /// Writes an audit entry (never fatal: the change already happened).
    pub async fn audit(
        &self,
        actor: &str,
        action: &str,
        target: &str,
        outcome: crate::audit::Outcome,
        details: Option<serde_json::Value>,
    ) {
        crate::audit::record(&self.store, actor, action, target, outcome, details).await;
    }
}
