//! The proof of a change: probe what visitors are served before it and
//! after it, and name what stopped serving. Below the panel, so the
//! renewal task proves its certificates the same way a panel change does.

use std::sync::Arc;

use super::{Config, HealthCache, Regression, Report};
use crate::audit::{self, Outcome};
use crate::settings::Settings;
use crate::store::Store;

/// Probes before and after a change. Cheap to build (shared handles).
#[derive(Clone)]
pub struct Guard {
    settings: Arc<Settings>,
    store: Store,
    cache: Arc<HealthCache>,
}

/// What the probe after a change found.
pub enum Verdict {
    /// Every name that served before still serves.
    Kept(Report),
    /// Names that served before and no longer do.
    Broken(Vec<Regression>),
}

impl Guard {
    pub fn new(settings: Arc<Settings>, store: Store, cache: Arc<HealthCache>) -> Guard {
        Guard { settings, store, cache }
    }

    /// What visitors are served now, without DNS (a configuration change
    /// cannot alter DNS; the cached report's answers are carried over).
    /// `None` when this process does not manage nginx, or the store cannot
    /// say which names exist.
    pub async fn serving(&self) -> Option<Report> {
        if !self.settings.nginx.enabled {
            return None;
        }
        let targets = match super::targets(&self.settings, &self.store).await {
            Ok(t) => t,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the public names to probe");
                return None;
            }
        };
        let mut cfg = Config::from_settings(&self.settings, None);
        cfg.check_dns = false;
        let mut report = super::check(&cfg, targets).await;
        if let Some(last) = self.cache.get() {
            super::carry_dns(&mut report, &last);
            report.public_ip.clone_from(&last.public_ip);
        }
        Some(report)
    }

    /// Probes after a change and compares with `before`. `None` when the
    /// probe could not run (the change is kept; the failure is logged).
    pub async fn verdict(&self, before: &Report) -> Option<Verdict> {
        let after = self.serving().await?;
        let regressions = super::regressions(before, &after);
        Some(if regressions.is_empty() { Verdict::Kept(after) } else { Verdict::Broken(regressions) })
    }

    /// Keeps `after` as the newest report and asks for a full run (DNS too).
    pub fn keep(&self, after: Report) {
        self.cache.put(after);
        self.cache.wake();
    }

    /// After an undo: probes again so the pages show what serves now.
    pub async fn refresh(&self) {
        if let Some(r) = self.serving().await {
            self.cache.put(r);
        }
    }

    /// Audits an undone change (`health.rollback`, failure) with the probe's evidence.
    pub async fn audit_rollback(
        &self,
        actor: &str,
        target: &str,
        change: &str,
        regressions: &[Regression],
        restored: bool,
    ) {
        let details = serde_json::json!({ "change": change, "regressions": regressions, "restored": restored });
        audit::record(&self.store, actor, "health.rollback", target, Outcome::Failure, Some(details)).await;
    }
}
