//! Changes that visitors see are proved by the probe: the names that served
//! before a change must still serve after it, or the change is undone.
//!
//! A use case takes [`AppState::health_before`] before its store change and
//! calls [`AppState::apply_guarded`] instead of `apply_config` after it.

use std::future::Future;
use std::sync::Arc;

use crate::audit::{self, Outcome};
use crate::panel::AppState;
use crate::panel::error::ApiError;
use crate::probe::{self, NameHealth, Report};

/// What a kept change left behind: names that still do not serve (they did
/// not serve before either, or are new).
#[derive(Debug, Default)]
pub struct Kept {
    pub not_serving: Vec<NameHealth>,
}

impl Kept {
    /// One line for a flash or an API field; `None` when every name serves.
    pub fn warning(&self) -> Option<String> {
        if self.not_serving.is_empty() {
            return None;
        }
        let list: Vec<String> = self
            .not_serving
            .iter()
            .map(|n| format!("{} ({})", n.name, n.reason.as_deref().unwrap_or("down")))
            .collect();
        Some(format!("Saved, but these names do not serve: {}", list.join("; ")))
    }
}

impl AppState {
    /// Probes every name now (DNS included) and keeps the report for the
    /// pages, the API and `/metrics`.
    pub async fn probe_now(&self) -> Result<Arc<Report>, ApiError> {
        let report = probe::check_all(&self.settings, &self.store, self.public_ip()).await?;
        Ok(self.health.put(report))
    }

    /// Probes what visitors are served, without DNS (a configuration change
    /// cannot alter DNS; its last answers are carried over from the cached
    /// report). `None` when this process does not manage nginx.
    pub async fn health_before(&self) -> Option<Arc<Report>> {
        if !self.settings.nginx.enabled {
            return None;
        }
        self.serving_probe().await.ok().map(Arc::new)
    }

    async fn serving_probe(&self) -> Result<Report, ApiError> {
        let targets = probe::targets(&self.settings, &self.store).await?;
        let mut cfg = probe::Config::from_settings(&self.settings, self.public_ip());
        cfg.check_dns = false;
        let mut report = probe::check(&cfg, targets).await;
        if let Some(last) = self.health.get() {
            probe::carry_dns(&mut report, &last);
        }
        Ok(report)
    }

    /// Applies the store's state to nginx, then probes. When a name that
    /// served in `before` does not serve now, `undo` reverts the store change,
    /// nginx is applied again, the rollback is audited with the probe's
    /// evidence and the caller gets [`ApiError::NamesBroken`]. Otherwise the
    /// change stays and [`Kept`] lists the changed item's name (`key`, e.g.
    /// `tunnel:7`) when it does not serve.
    pub async fn apply_guarded<F, Fut>(
        &self,
        reason: &str,
        actor: &str,
        target: &str,
        key: &str,
        before: Option<Arc<Report>>,
        undo: F,
    ) -> Result<Kept, ApiError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = ()>,
    {
        if let Err(e) = self.apply_config(reason).await {
            undo().await;
            return Err(e);
        }
        let change = Change { reason, actor, target, key };
        self.prove(change, before, undo, true).await
    }

    /// For a use case that applied nginx itself: probes after the change and,
    /// when a name that served in `before` no longer does, runs `undo` (which
    /// must revert the change and apply nginx again), audits and returns
    /// [`ApiError::NamesBroken`].
    pub async fn prove_applied<F, Fut>(
        &self,
        change: Change<'_>,
        before: Option<Arc<Report>>,
        undo: F,
    ) -> Result<Kept, ApiError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = ()>,
    {
        self.prove(change, before, undo, false).await
    }

    async fn prove<F, Fut>(
        &self,
        change: Change<'_>,
        before: Option<Arc<Report>>,
        undo: F,
        reapply: bool,
    ) -> Result<Kept, ApiError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = ()>,
    {
        let Change { reason, actor, target, key } = change;
        let Some(before) = before else { return Ok(Kept::default()) };
        let after = match self.serving_probe().await {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, reason, "probe after change failed; change kept");
                return Ok(Kept::default());
            }
        };
        let regressions = probe::regressions(&before, &after);
        if regressions.is_empty() {
            let not_serving = probe::broken(&after).into_iter().filter(|n| n.key == key).cloned().collect();
            self.health.put(after);
            self.health.wake();
            return Ok(Kept { not_serving });
        }
        tracing::warn!(reason, broken = regressions.len(), "change stopped a working name; undoing it");
        undo().await;
        let restored = if reapply {
            self.apply_config(&format!("{reason} undone: a working name stopped serving")).await
        } else {
            Ok(())
        };
        if let Err(e) = &restored {
            tracing::error!(error = %e, reason, "re-applying the previous configuration failed");
        }
        let details = serde_json::json!({ "change": reason, "regressions": regressions, "restored": restored.is_ok() });
        audit::record(&self.store, actor, "health.rollback", target, Outcome::Failure, Some(details)).await;
        if let Ok(r) = self.serving_probe().await {
            self.health.put(r);
        }
        Err(ApiError::NamesBroken(regressions))
    }
}

/// What a guarded change is, for the log and the audit entry.
pub struct Change<'a> {
    /// e.g. `site.update`.
    pub reason: &'a str,
    pub actor: &'a str,
    /// The audit target (the item's name).
    pub target: &'a str,
    /// The probe key of the changed item, e.g. `site:3`.
    pub key: &'a str,
}
