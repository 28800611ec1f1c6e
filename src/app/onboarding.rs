//! Onboarding: domain, DNS check and the start of provisioning. The REST
//! API (`/api/onboarding/*`) and the wizard's forms call these; each step
//! is audited here.

use std::sync::Arc;

use super::{App, Error};
use crate::audit::Outcome;
use crate::identity::Identity;
use crate::onboarding::{self, DnsReport, OnboardingState};

/// Records the domain and contact email and makes nginx serve them; if nginx
/// refuses, the previous onboarding rows are written back and the error
/// returned. Audited as `onboarding.domain` either way.
pub async fn set_domain(app: &App, who: &Identity, domain: &str, email: &str) -> Result<OnboardingState, Error> {
    let result = apply_domain(app, domain, email).await;
    let outcome = if result.is_ok() { Outcome::Success } else { Outcome::Failure };
    app.audit(&who.actor(), "onboarding.domain", domain.trim(), outcome, None).await;
    let next = result?;
    app.set_onboarding_state(next);
    Ok(next)
}

/// The store change and the nginx apply of [`set_domain`], undone together.
async fn apply_domain(app: &App, domain: &str, email: &str) -> Result<OnboardingState, Error> {
    const ROWS: &[&str] = &[onboarding::keys::STATE, onboarding::keys::DOMAIN, onboarding::keys::EMAIL];
    let change = app.nginx.change().await;
    let before = app.store.settings(ROWS).await?;
    let next = onboarding::set_domain(&app.store, domain, email).await?;
    if let Err(e) = change.apply("onboarding: domain set").await {
        let fresh = OnboardingState::Fresh.as_str().to_string();
        let undo = ROWS
            .iter()
            .zip(before)
            .enumerate()
            .map(|(i, (k, v))| (*k, v.unwrap_or_else(|| if i == 0 { fresh.clone() } else { String::new() })))
            .collect();
        if let Err(undo_err) = app.store.put_settings(undo).await {
            tracing::error!(%undo_err, "cannot undo the domain change after nginx refused it");
        }
        return Err(e.into());
    }
    Ok(next)
}

/// Resolves the names under the recorded domain and moves to DNS_READY when
/// every one points at the public address (back to DOMAIN_SET when not);
/// a check that ran is audited as `onboarding.verify_dns` with its report.
pub async fn verify_dns(app: &App, who: &Identity) -> Result<(DnsReport, OnboardingState), Error> {
    let (report, next) = onboarding::verify_dns(&app.store, app.settings.dns.resolver, app.public_ip()).await?;
    app.set_onboarding_state(next);
    let outcome = if report.ok { Outcome::Success } else { Outcome::Failure };
    app.audit(&who.actor(), "onboarding.verify_dns", "", outcome, serde_json::to_value(&report).ok()).await;
    Ok((report, next))
}

/// Starts provisioning in the background; the first visitor login gets
/// `username` (trimmed), or without one the contact email's local part.
/// Audited as `onboarding.provision.start` with the username.
pub async fn start_provisioning(app: &Arc<App>, who: &Identity, username: Option<&str>) -> Result<(), Error> {
    let username = match username {
        Some(name) => name.trim().to_string(),
        None => crate::app::provision::suggested_username(app).await?,
    };
    let result = crate::app::provision::start(app.clone(), username.clone()).await;
    let outcome = if result.is_ok() { Outcome::Success } else { Outcome::Failure };
    let details = serde_json::json!({ "username": username });
    app.audit(&who.actor(), "onboarding.provision.start", "", outcome, Some(details)).await;
    Ok(result?)
}
