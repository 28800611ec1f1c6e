//! Changes that visitors see are proved by the probe: the names that served
//! before a change must still serve after it, or the change is undone.
//!
//! A use case takes [`App::health_before`] before its store change and
//! calls [`App::apply_guarded`] instead of `apply_config` after it.

use std::future::Future;
use std::sync::Arc;

use super::{App, Error};
use crate::probe::{self, NameHealth, Report, Verdict};

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

impl App {
    /// The before/after proof over this panel's store, settings and cache.
    pub fn guard(&self) -> probe::Guard {
        probe::Guard::new(self.settings.clone(), self.store.clone(), self.health.clone())
    }

    /// Probes every name now (DNS included) and keeps the report for the
    /// pages, the API and `/metrics`.
    pub async fn probe_now(&self) -> Result<Arc<Report>, Error> {
        let report = probe::check_all(&self.settings, &self.store, self.public_ip()).await?;
        Ok(self.health.put(report))
    }

    /// Probes what visitors are served, without DNS (a configuration change
    /// cannot alter DNS; its last answers are carried over from the cached
    /// report). `None` when this process does not manage nginx.
    pub async fn health_before(&self) -> Option<Arc<Report>> {
        self.guard().serving().await.map(Arc::new)
    }

    /// Applies the store's state to nginx, then probes. When a name that
    /// served in `before` does not serve now, `undo` reverts the store change,
    /// nginx is applied again, the rollback is audited with the probe's
    /// evidence and the caller gets [`Error::NamesBroken`]. Otherwise the
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
    ) -> Result<Kept, Error>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = ()>,
    {
        if let Err(e) = self.apply_config(&change_label(reason, target)).await {
            undo().await;
            return Err(e);
        }
        let change = Change { reason, actor, target, key };
        self.prove(change, before, undo, true).await
    }

    /// For a use case that applied nginx itself: probes after the change and,
    /// when a name that served in `before` no longer does, runs `undo` (which
    /// must revert the change and apply nginx again), audits and returns
    /// [`Error::NamesBroken`].
    pub async fn prove_applied<F, Fut>(
        &self,
        change: Change<'_>,
        before: Option<Arc<Report>>,
        undo: F,
    ) -> Result<Kept, Error>
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
    ) -> Result<Kept, Error>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = ()>,
    {
        let Change { reason, actor, target, key } = change;
        let Some(before) = before else { return Ok(Kept::default()) };
        let guard = self.guard();
        let regressions = match guard.verdict(&before).await {
            None => {
                tracing::error!(reason, "probe after change failed; change kept");
                return Ok(Kept::default());
            }
            Some(Verdict::Kept(after)) => {
                let not_serving =
                    probe::broken(&after).into_iter().filter(|n| key.is_empty() || n.key == key).cloned().collect();
                guard.keep(after);
                return Ok(Kept { not_serving });
            }
            Some(Verdict::Broken(regressions)) => regressions,
        };
        tracing::warn!(reason, broken = regressions.len(), "change stopped a working name; undoing it");
        undo().await;
        let restored = if reapply {
            let label = change_label(reason, target);
            self.apply_config(&format!("{label} undone: a working name stopped serving")).await
        } else {
            Ok(())
        };
        if let Err(e) = &restored {
            tracing::error!(error = %e, reason, "re-applying the previous configuration failed");
        }
        guard.audit_rollback(actor, target, reason, &regressions, restored.is_ok()).await;
        guard.refresh().await;
        Err(Error::NamesBroken(regressions))
    }
}

/// The nginx snapshot's label of a change: `tunnel.create` on `app` is
/// `tunnel app created`.
fn change_label(action: &str, target: &str) -> String {
    let done = |verb: &str| match verb {
        "create" => "created".to_string(),
        "update" => "updated".to_string(),
        "delete" => "deleted".to_string(),
        other => other.to_string(),
    };
    match action.split_once('.') {
        Some((kind, verb)) => format!("{kind} {target} {}", done(verb)),
        None => format!("{action} {target}"),
    }
}

/// What a guarded change is, for the log and the audit entry.
pub struct Change<'a> {
    /// e.g. `site.update`.
    pub reason: &'a str,
    pub actor: &'a str,
    /// The audit target (the item's name).
    pub target: &'a str,
    /// The probe key of the changed item, e.g. `site:3`; empty when the
    /// change may touch every name (an nginx rollback), so every name that
    /// does not serve afterwards is flagged.
    pub key: &'a str,
}

#[cfg(test)]
mod tests {
    #[test]
    fn snapshot_labels_name_the_change() {
        assert_eq!(super::change_label("tunnel.create", "app"), "tunnel app created");
        assert_eq!(super::change_label("tunnel.delete", "wiki"), "tunnel wiki deleted");
    }
}
