//! Certificates for every name Portico serves: ACME issuance (HTTP-01 through
//! nginx's `:80`), renewal on a schedule, and bring-your-own uploads.
//!
//! Files live under `<data_dir>/acme/` (see [`files`]); the store keeps one
//! record per installed certificate and the failures of automatic attempts.
//! Installing happens under the nginx change lock and is followed by an
//! apply; when nginx refuses, the previous files are put back.

mod client;
pub mod files;
pub mod inspect;
pub mod journal;
#[cfg(test)]
pub(crate) mod pebble;
pub mod renewal;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;
use time::OffsetDateTime;

use crate::model::FieldError;
use crate::nginx::Pipeline;
use crate::nginx::state::PipelineError;
use crate::onboarding;
use crate::settings::Settings;
use crate::store::{CertFailure, CertRecord, Store, StoreError};

pub use client::Issued;

#[derive(Debug, thiserror::Error)]
pub enum AcmeError {
    /// The CA could not validate the challenge (DNS, port 80, CAA…).
    #[error("{0}")]
    Challenge(String),
    /// Too many requests; the message says when to retry.
    #[error("{0}")]
    RateLimited(String),
    /// The CA refused for another reason.
    #[error("{0}")]
    Refused(String),
    /// The directory could not be reached or used.
    #[error("{0}")]
    Unreachable(String),
    /// Local configuration (`acme.*`) is unusable.
    #[error("{0}")]
    Setup(String),
    /// Onboarding has no domain or email yet.
    #[error("Onboarding has no domain and contact email yet")]
    NotConfigured,
    /// The name is not one Portico serves.
    #[error("No certificate is managed for {0}")]
    UnknownName(String),
    /// An upload did not pass validation.
    #[error("invalid certificate upload")]
    Invalid(Vec<FieldError>),
    /// nginx did not take the new certificate; the previous files are back.
    #[error(transparent)]
    Nginx(#[from] PipelineError),
    /// nginx took the new certificate but a name that served before stopped
    /// serving (the probe's evidence); the previous certificate is back.
    #[error("{}", broken_message(.0))]
    NamesBroken(Vec<crate::probe::Regression>),
    #[error("certificate files: {0}")]
    Io(String),
    /// The data volume is full; the previous certificates stay.
    #[error("the data volume is full")]
    StorageFull,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Where a certificate came from, as the API shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// Issued and renewed over ACME.
    Auto,
    /// Uploaded by the operator; never renewed automatically.
    Manual,
}

/// One name and its certificate, for `GET /api/certs`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CertStatus {
    pub name: String,
    pub source: Source,
    /// `valid`, `expiring` (inside the renewal window), `expired` or `missing`.
    pub state: String,
    pub issuer: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>)]
    pub not_after: Option<OffsetDateTime>,
    pub days_left: Option<i64>,
    /// Actionable message of the last failed automatic attempt.
    pub last_error: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>)]
    pub retry_at: Option<OffsetDateTime>,
    /// The last probe of the name: the certificate nginx really serves for
    /// it and whether the name serves (absent before the first probe).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health: Option<crate::probe::NameHealth>,
}

/// Sets each certificate's `health` from a probe report, by name.
pub fn with_health(mut list: Vec<CertStatus>, report: Option<&crate::probe::Report>) -> Vec<CertStatus> {
    if let Some(r) = report {
        for c in &mut list {
            c.health = r.by_name(&c.name).cloned();
        }
    }
    list
}

/// Waits before the next automatic attempt after `n` consecutive failures:
/// 5 min, 10 min, 20 min… capped at 12 h.
pub fn backoff(n: u32) -> time::Duration {
    let minutes = 5i64.saturating_mul(1i64 << n.saturating_sub(1).min(10));
    time::Duration::minutes(minutes.min(12 * 60))
}

/// After a rate limit the CA asks for hours, not minutes: at least one hour.
pub fn rate_limited_backoff(n: u32) -> time::Duration {
    backoff(n).max(time::Duration::hours(1))
}

/// Issues, installs and lists certificates. One per process, shared.
pub struct Certs {
    settings: Arc<Settings>,
    store: Store,
    client: client::Client,
    /// One issuance at a time.
    issuing: tokio::sync::Mutex<()>,
    /// Wakes the renewal task (new tunnel or site, failed attempt due).
    pub(crate) wake: tokio::sync::Notify,
    /// Issuances and renewals by outcome, for `/metrics`.
    renewals: crate::metrics::Outcomes<2>,
    /// Proves each install by probing the public names before and after.
    guard: Option<crate::probe::Guard>,
    /// The panel's runtime settings (`renewDays`); the bootstrap value without.
    runtime: Option<crate::runtime_settings::Live>,
}

impl Certs {
    pub fn new(settings: Arc<Settings>, store: Store) -> Certs {
        let client = client::Client::new(settings.acme.clone(), settings.data_dir.clone());
        Certs {
            settings,
            store,
            client,
            issuing: tokio::sync::Mutex::new(()),
            wake: tokio::sync::Notify::new(),
            renewals: crate::metrics::Outcomes::new(["ok", "error"]),
            guard: None,
            runtime: None,
        }
    }

    /// Reads `renewDays` from the panel's runtime settings at each check.
    pub fn with_runtime(mut self, runtime: crate::runtime_settings::Live) -> Certs {
        self.runtime = Some(runtime);
        self
    }

    /// Renew when fewer than this many days remain (runtime settings, else
    /// `acme.renew_days`).
    pub fn renew_days(&self) -> u32 {
        self.runtime.as_ref().map(|r| r.current().renew_days).unwrap_or(self.settings.acme.renew_days)
    }

    /// Proves every install with `guard`: a certificate that stops a name
    /// that served is undone (the name's link goes back to the previous
    /// version) and audited as `health.rollback`.
    pub fn with_guard(mut self, guard: crate::probe::Guard) -> Certs {
        self.guard = Some(guard);
        self
    }

    /// Certificates the renewal task and the renew action obtained (`ok`) or
    /// failed to obtain and make live (`error`), per name, since start.
    pub fn renewal_outcomes(&self) -> Vec<(&'static str, u64)> {
        self.renewals.snapshot()
    }

    /// Asks the renewal task to look for names without a certificate now.
    pub fn name_added(&self) {
        self.wake.notify_one();
    }

    /// The names that need a certificate: panel, auth, tunnel, every tunnel
    /// and every site under the onboarding domain. Empty before a domain is set.
    pub async fn wanted_names(&self) -> Result<Vec<String>, StoreError> {
        let Some(domain) = self.domain().await? else { return Ok(Vec::new()) };
        let mut labels: Vec<String> = crate::model::RESERVED_NAMES[..3].iter().map(|s| s.to_string()).collect();
        labels.extend(self.store.tunnels().await?.into_iter().map(|t| t.name));
        labels.extend(self.store.sites().await?.into_iter().map(|s| s.name));
        Ok(labels.into_iter().map(|l| format!("{l}.{domain}")).collect())
    }

    async fn domain(&self) -> Result<Option<String>, StoreError> {
        Ok(self.store.setting(onboarding::keys::DOMAIN).await?.filter(|d| !d.is_empty()))
    }

    async fn email(&self) -> Result<String, AcmeError> {
        self.store.setting(onboarding::keys::EMAIL).await?.filter(|e| !e.is_empty()).ok_or(AcmeError::NotConfigured)
    }

    /// Every wanted name (and any other recorded one) with its certificate state.
    pub async fn list(&self, now: OffsetDateTime) -> Result<Vec<CertStatus>, StoreError> {
        let records: BTreeMap<String, CertRecord> =
            self.store.certificates().await?.into_iter().map(|r| (r.name.clone(), r)).collect();
        let failures: BTreeMap<String, CertFailure> =
            self.store.certificate_failures().await?.into_iter().map(|f| (f.name.clone(), f)).collect();
        let mut names = self.wanted_names().await?;
        names.extend(records.keys().filter(|k| !names.contains(k)).cloned().collect::<Vec<_>>());
        let renew_days = i64::from(self.renew_days());
        Ok(names
            .into_iter()
            .map(|name| {
                let rec = records.get(&name);
                let fail = failures.get(&name);
                let days_left = rec.map(|r| (r.not_after - now).whole_days());
                let state = match (rec, days_left) {
                    (None, _) => "missing",
                    (Some(r), _) if r.not_after <= now => "expired",
                    (Some(_), Some(d)) if d < renew_days => "expiring",
                    _ => "valid",
                };
                CertStatus {
                    source: if rec.is_some_and(|r| r.source == "manual") { Source::Manual } else { Source::Auto },
                    state: state.into(),
                    issuer: rec.map(|r| r.issuer.clone()),
                    not_after: rec.map(|r| r.not_after),
                    days_left,
                    last_error: fail.map(|f| f.last_error.clone()),
                    retry_at: fail.map(|f| f.retry_at),
                    health: None,
                    name,
                }
            })
            .collect())
    }

    /// Issues a certificate for `fqdn` over ACME and returns it without
    /// installing it. Calls are serialized (one order at a time).
    pub async fn issue(&self, fqdn: &str) -> Result<Issued, AcmeError> {
        let email = self.email().await?;
        let _one = self.issuing.lock().await;
        let started = std::time::Instant::now();
        let issued = self.client.issue(fqdn, &email).await;
        match &issued {
            Ok(_) => tracing::info!(name = fqdn, ms = started.elapsed().as_millis() as u64, "certificate issued"),
            Err(err) => tracing::warn!(name = fqdn, %err, "certificate issuance failed"),
        }
        issued
    }

    /// Installs issued or uploaded pairs and applies nginx, all under one
    /// nginx change; when nginx refuses or the records cannot be stored,
    /// every pair is rolled back. With a guard, the public names are probed
    /// before and after: when a name that served no longer does, every pair
    /// goes back to its previous version, nginx is applied again and the
    /// rollback is audited as `actor`. Records are stored only once the change
    /// is proved, in one transaction: the commit point of the journaled
    /// install (see [`journal`]), so a process killed part-way leaves the
    /// previous certificates or the new ones with their records, never a mix,
    /// once [`journal::recover`] ran.
    pub async fn install_and_apply(
        &self,
        nginx: &Pipeline,
        pairs: Vec<(String, Issued, Source)>,
        reason: &str,
        actor: &str,
    ) -> Result<Vec<CertRecord>, AcmeError> {
        let now = journal::now();
        let mut records = Vec::new();
        for (name, issued, source) in &pairs {
            let leaf = inspect::leaf(&issued.fullchain)
                .map_err(|m| AcmeError::Refused(format!("the CA sent an unreadable chain for {name}: {m}")))?;
            records.push(CertRecord {
                name: name.clone(),
                source: match source {
                    Source::Auto => "acme".into(),
                    Source::Manual => "manual".into(),
                },
                issuer: leaf.issuer,
                not_before: leaf.not_before,
                not_after: leaf.not_after,
                installed_at: now,
            });
        }
        let before = match &self.guard {
            Some(g) => g.serving().await,
            None => None,
        };
        let targets: Vec<String> = pairs.iter().map(|p| p.0.clone()).collect();
        let change = nginx.change().await;
        let data_dir = self.settings.data_dir.clone();
        let recs = records.clone();
        let journal = tokio::task::spawn_blocking(move || {
            let planned = pairs.iter().map(|(name, ..)| files::plan(&data_dir, name)).collect::<Result<Vec<_>, _>>()?;
            let journal = journal::Journal::new(planned, &recs);
            journal::write(&data_dir, &journal)?;
            let written = pairs
                .iter()
                .zip(&journal.planned)
                .try_for_each(|((_, issued, _), p)| files::put(p, &issued.fullchain, &issued.key).map(|_| ()));
            if let Err(e) = written {
                undo(&data_dir, &journal);
                return Err(e);
            }
            Ok(journal)
        })
        .await
        .map_err(|e| AcmeError::Io(e.to_string()))?
        .map_err(AcmeError::from)?;
        let data_dir = self.settings.data_dir.clone();
        if let Err(e) = change.apply(reason).await {
            let j = journal.clone();
            tokio::task::spawn_blocking(move || undo(&data_dir, &j)).await.ok();
            return Err(e.into());
        }
        if let (Some(guard), Some(before)) = (&self.guard, before) {
            match guard.verdict(&before).await {
                None => tracing::error!(reason, "probe after the certificate change failed; change kept"),
                Some(crate::probe::Verdict::Kept(after)) => guard.keep(after),
                Some(crate::probe::Verdict::Broken(regressions)) => {
                    tracing::warn!(
                        reason,
                        broken = regressions.len(),
                        "new certificate stopped a working name; undoing it"
                    );
                    let (j, dir) = (journal.clone(), data_dir.clone());
                    tokio::task::spawn_blocking(move || undo(&dir, &j)).await.ok();
                    let restored = change.apply(&format!("{reason} undone: a working name stopped serving")).await;
                    drop(change);
                    if let Err(e) = &restored {
                        tracing::error!(error = %e, reason, "re-applying the previous certificates failed");
                    }
                    guard.audit_rollback(actor, &targets.join(", "), reason, &regressions, restored.is_ok()).await;
                    guard.refresh().await;
                    return Err(AcmeError::NamesBroken(regressions));
                }
            }
        }
        if let Err(e) = self.store.put_certificates(records.clone()).await {
            // nginx serves the new files now: put the old ones back and reload.
            let j = journal.clone();
            let dir = data_dir.clone();
            tokio::task::spawn_blocking(move || undo(&dir, &j)).await.ok();
            if let Err(again) = change.apply(&format!("{reason}: undone")).await {
                tracing::error!(error = %again, "cannot re-apply nginx after undoing a certificate install");
            }
            return Err(e.into());
        }
        drop(change);
        tokio::task::spawn_blocking(move || {
            if let Err(err) = journal::clear(&data_dir) {
                tracing::error!(%err, "cannot remove the certificate install journal");
            }
            journal.planned.iter().for_each(files::prune_after);
        })
        .await
        .ok();
        Ok(records)
    }

    /// Issues `fqdn` now and makes it live; failures are recorded with backoff.
    pub async fn renew(&self, nginx: &Pipeline, fqdn: &str, actor: &str) -> Result<CertRecord, AcmeError> {
        let result = match self.issue(fqdn).await {
            Ok(issued) => self
                .install_and_apply(
                    nginx,
                    vec![(fqdn.to_string(), issued, Source::Auto)],
                    &format!("certificate renewed for {fqdn}"),
                    actor,
                )
                .await
                .map(|mut r| r.remove(0)),
            Err(e) => Err(e),
        };
        match &result {
            Ok(_) => self.renewals.add("ok"),
            Err(e) => {
                self.renewals.add("error");
                self.record_failure(fqdn, e).await;
            }
        }
        result
    }

    async fn record_failure(&self, fqdn: &str, err: &AcmeError) {
        let now = OffsetDateTime::now_utc();
        let wait = if matches!(err, AcmeError::RateLimited(_)) { rate_limited_backoff } else { backoff };
        if let Err(store_err) =
            self.store.record_certificate_failure(fqdn.to_string(), err.to_string(), now, wait).await
        {
            tracing::error!(%store_err, name = fqdn, "cannot record a certificate failure");
        }
    }

    /// Validates and installs an operator's chain and key for a wanted name.
    pub async fn upload(
        &self,
        nginx: &Pipeline,
        fqdn: &str,
        fullchain: String,
        key: String,
        actor: &str,
    ) -> Result<CertRecord, AcmeError> {
        if !self.wanted_names().await?.iter().any(|n| n == fqdn) {
            return Err(AcmeError::UnknownName(fqdn.to_string()));
        }
        inspect::validate_upload(fqdn, &fullchain, &key, OffsetDateTime::now_utc()).map_err(AcmeError::Invalid)?;
        let pair = Issued { fullchain, key };
        let mut recs = self
            .install_and_apply(
                nginx,
                vec![(fqdn.to_string(), pair, Source::Manual)],
                &format!("certificate uploaded for {fqdn}"),
                actor,
            )
            .await?;
        Ok(recs.remove(0))
    }
}

fn broken_message(regressions: &[crate::probe::Regression]) -> String {
    let list: Vec<String> = regressions.iter().map(|r| format!("{} ({})", r.name, r.reason)).collect();
    format!(
        "the new certificate stopped a working name from serving: {}; the previous certificate is back",
        list.join("; ")
    )
}

/// Puts every name of an unfinished install back and drops its journal.
fn undo(data_dir: &std::path::Path, j: &journal::Journal) {
    match journal::revert(j) {
        Ok(()) => {
            if let Err(err) = journal::clear(data_dir) {
                tracing::error!(%err, "cannot remove the certificate install journal");
            }
        }
        // The journal stays: the next start-up finishes the undo.
        Err(err) => tracing::error!(%err, "cannot put a previous certificate back"),
    }
}

impl From<std::io::Error> for AcmeError {
    fn from(e: std::io::Error) -> Self {
        match e.kind() {
            std::io::ErrorKind::StorageFull => AcmeError::StorageFull,
            _ => AcmeError::Io(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests;
