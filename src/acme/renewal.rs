//! The `acme-renewal` task: at start, on `acme.renew_schedule`, when a name
//! is added and when a failed attempt's backoff ends, it issues missing
//! certificates and renews those with fewer than `renewDays` (runtime
//! settings, else `acme.renew_days`) left, read at each check,
//! then applies nginx once.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;
use time::OffsetDateTime;

use super::{Certs, Issued, Source, backoff};
use crate::nginx::Pipeline;
use crate::store::{AcmeRun, StoreError};

/// What `GET /api/certs/auto-renew-status` reports.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AutoRenewStatus {
    /// `acme.renew_schedule`.
    pub schedule: String,
    pub renew_days: u32,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>)]
    pub next_run: Option<OffsetDateTime>,
    pub last_run: Option<RunReport>,
    /// Names whose last automatic attempt failed, with when it retries.
    pub failing: Vec<Failing>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunReport {
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    pub started_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    pub finished_at: OffsetDateTime,
    /// `ok`, `failed` or `skipped`.
    pub result: String,
    pub renewed: u32,
    pub failed: u32,
    pub message: String,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Failing {
    pub name: String,
    pub failures: u32,
    pub last_error: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    pub retry_at: OffsetDateTime,
}

impl From<AcmeRun> for RunReport {
    fn from(r: AcmeRun) -> Self {
        RunReport {
            started_at: r.started_at,
            finished_at: r.finished_at,
            result: r.result,
            renewed: r.renewed,
            failed: r.failed,
            message: r.message,
        }
    }
}

pub use crate::schedule::next_run;

impl Certs {
    pub async fn auto_renew_status(&self, now: OffsetDateTime) -> Result<AutoRenewStatus, StoreError> {
        let failing = self
            .store
            .certificate_failures()
            .await?
            .into_iter()
            .map(|f| Failing { name: f.name, failures: f.failures, last_error: f.last_error, retry_at: f.retry_at })
            .collect();
        Ok(AutoRenewStatus {
            schedule: self.settings.acme.renew_schedule.clone(),
            renew_days: self.renew_days(),
            next_run: self.settings.acme.schedule().ok().and_then(|s| next_run(&s, now)),
            last_run: self.store.last_acme_run().await?.map(Into::into),
            failing,
        })
    }

    /// One renewal check: issues what is missing, renews what is due (names
    /// in backoff wait), applies nginx once, and records the run.
    pub async fn check(&self, nginx: &Pipeline, now: OffsetDateTime) -> Result<AcmeRun, StoreError> {
        let started_at = OffsetDateTime::now_utc();
        let records: BTreeMap<_, _> =
            self.store.certificates().await?.into_iter().map(|r| (r.name.clone(), r)).collect();
        let failures: BTreeMap<_, _> =
            self.store.certificate_failures().await?.into_iter().map(|f| (f.name.clone(), f)).collect();
        let renew_before = now + time::Duration::days(i64::from(self.renew_days()));
        let mut pairs: Vec<(String, Issued, Source)> = Vec::new();
        let mut failed = Vec::new();
        for name in self.wanted_names().await? {
            let due = match records.get(&name) {
                Some(r) if r.source == "manual" => false,
                Some(r) => r.not_after < renew_before,
                None => true,
            };
            let waiting = failures.get(&name).is_some_and(|f| f.retry_at > now);
            if !due || waiting {
                continue;
            }
            match self.issue(&name).await {
                Ok(issued) => pairs.push((name, issued, Source::Auto)),
                Err(e) => {
                    self.renewals.add("error");
                    self.record_failure(&name, &e).await;
                    failed.push(format!("{name}: {e}"));
                }
            }
        }
        let mut renewed = 0;
        if !pairs.is_empty() {
            let names: Vec<String> = pairs.iter().map(|p| p.0.clone()).collect();
            let (first, again): (Vec<&str>, Vec<&str>) =
                names.iter().map(String::as_str).partition(|n| !records.contains_key(*n));
            let reason = change_reason(&first, &again);
            match self.install_and_apply(nginx, pairs, &reason, "system").await {
                Ok(recs) => {
                    renewed = recs.len() as u32;
                    for _ in &recs {
                        self.renewals.add("ok");
                    }
                }
                Err(e) => {
                    for name in names {
                        self.renewals.add("error");
                        self.record_failure(&name, &e).await;
                        failed.push(format!("{name}: {e}"));
                    }
                }
            }
        }
        let run = AcmeRun {
            started_at,
            finished_at: OffsetDateTime::now_utc(),
            result: if failed.is_empty() { "ok" } else { "failed" }.into(),
            renewed,
            failed: failed.len() as u32,
            message: if failed.is_empty() {
                format!("{} issued or renewed", crate::wording::count(renewed as usize, "certificate", "certificates"))
            } else {
                failed.join("; ")
            },
        };
        self.store.record_acme_run(run.clone()).await?;
        Ok(run)
    }

    /// When the task should wake next: the schedule, or earlier when a
    /// failed name's backoff ends.
    async fn next_wake(&self, schedule: &cron::Schedule, now: OffsetDateTime) -> OffsetDateTime {
        let scheduled = next_run(schedule, now).unwrap_or(now + time::Duration::days(1));
        let retry = self.store.certificate_failures().await.ok().and_then(|f| f.iter().map(|f| f.retry_at).min());
        match retry {
            Some(r) if r < scheduled => r.max(now + backoff(1) / 5), // at least a minute apart
            _ => scheduled,
        }
    }

    /// Runs forever: a check at start, then on schedule, retry or wake-up.
    /// Checks run only once onboarding is complete (`ready` says so).
    pub async fn run_forever(&self, nginx: &Pipeline, ready: impl Fn() -> bool) {
        let schedule = match self.settings.acme.schedule() {
            Ok(s) => s,
            Err(err) => {
                tracing::error!(task = "acme-renewal", %err, "renewal disabled");
                return;
            }
        };
        loop {
            if ready() {
                match self.check(nginx, OffsetDateTime::now_utc()).await {
                    Ok(run) if run.failed > 0 => {
                        tracing::warn!(task = "acme-renewal", failed = run.failed, message = %run.message, "renewal check had failures")
                    }
                    Ok(run) => tracing::info!(task = "acme-renewal", renewed = run.renewed, "renewal check done"),
                    Err(err) => tracing::error!(task = "acme-renewal", %err, "renewal check failed"),
                }
            }
            let now = OffsetDateTime::now_utc();
            let wait = (self.next_wake(&schedule, now).await - now).max(time::Duration::ZERO);
            let wait = Duration::from_secs(wait.whole_seconds().max(1) as u64);
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = self.wake.notified() => {}
            }
        }
    }
}
/// What a renewal run changed, for the nginx snapshot it leaves: the names
/// that got their first certificate and the names renewed.
fn change_reason(first: &[&str], renewed: &[&str]) -> String {
    let noun = |n: usize| if n == 1 { "certificate" } else { "certificates" };
    let mut parts = Vec::new();
    if !first.is_empty() {
        parts.push(format!("{} issued for {}", noun(first.len()), first.join(", ")));
    }
    if !renewed.is_empty() {
        parts.push(format!("{} renewed for {}", noun(renewed.len()), renewed.join(", ")));
    }
    parts.join("; ")
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_change_names_first_certificates_and_renewals_apart() {
        assert_eq!(super::change_reason(&["app.example.com"], &[]), "certificate issued for app.example.com");
        assert_eq!(
            super::change_reason(&["a.example.com"], &["panel.example.com", "auth.example.com"]),
            "certificate issued for a.example.com; certificates renewed for panel.example.com, auth.example.com"
        );
        assert_eq!(super::change_reason(&[], &["wiki.example.com"]), "certificate renewed for wiki.example.com");
    }
}
