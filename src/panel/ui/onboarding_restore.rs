//! Restore from a backup in the onboarding wizard, for an operator moving
//! Portico to a new server: the same upload, checks, confirmation and
//! apply-at-next-start as the Backups page ([`super::restore`]), before
//! onboarding is complete. The panel comes back with the backup's state
//! (COMPLETED when the backup was taken after onboarding).
//!
//! When: the wizard offers the upload on its first screen (FRESH). Uploads
//! and confirmations are also accepted in DOMAIN_SET and DNS_READY (a page
//! opened earlier, another tab): nothing of value exists yet, only the
//! domain and email typed in, which the restore replaces. They are refused
//! while provisioning runs (409: it is writing certificates and users) and
//! after COMPLETED (410: restore from the Backups page instead).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};

use super::form::UiForm;
use super::onboarding::RESTORE_ACTION;
use super::restore::{Staging, confirm, discard_staged, stage_request};
use super::{PageError, UiAdmin};
use crate::onboarding::OnboardingState;
/// Audit target of the wizard's restore steps (the Backups page's is empty).
const TARGET: &str = "onboarding";

/// Refuses a restore from the wizard once onboarding has gone past the
/// point where nothing of value exists.
fn still_open(ui: &UiAdmin) -> Result<(), PageError> {
    match ui.state.onboarding_state() {
        OnboardingState::Fresh | OnboardingState::DomainSet | OnboardingState::DnsReady => Ok(()),
        OnboardingState::Provisioning => Err(PageError {
            status: StatusCode::CONFLICT,
            message: "Provisioning is running; a backup can be restored from the wizard only before it starts.".into(),
        }),
        OnboardingState::Completed => Err(PageError {
            status: StatusCode::GONE,
            message: "Onboarding is complete. Restore a backup from the Backups page.".into(),
        }),
    }
}

/// `POST /onboarding/restore` (multipart: `_csrf` first, then `passphrase`
/// and `archive`).
async fn upload(ui: UiAdmin, req: HttpRequest, payload: web::Payload) -> Result<HttpResponse, PageError> {
    let body = ui.checked_upload(&req, payload).await?;
    still_open(&ui)?;
    match stage_request(&ui, &req, body, TARGET).await? {
        Staging::Staged => Ok(ui.redirect("/onboarding?flash=restore_staged")),
        Staging::Refused(status, message) => {
            let mut p = super::onboarding::page(&ui).await?;
            p.restore.error = Some(message);
            super::render(status, &p)
        }
    }
}

/// Confirms the staged restore; the panel restarts to apply it.
async fn apply(form: UiForm) -> Result<HttpResponse, PageError> {
    still_open(&form.ui)?;
    if !form.confirmed() {
        return Err(PageError { status: StatusCode::BAD_REQUEST, message: "Confirm the restore first.".into() });
    }
    let flash = confirm(&form.ui, TARGET).await?;
    Ok(form.ui.redirect(&format!("/onboarding?flash={flash}")))
}

/// Drops a staged or pending restore.
async fn discard(form: UiForm) -> Result<HttpResponse, PageError> {
    // Dropping one harms nothing, even while provisioning runs.
    if form.ui.state.onboarding_state() != OnboardingState::Provisioning {
        still_open(&form.ui)?;
    }
    discard_staged(&form.ui, TARGET).await?;
    Ok(form.ui.redirect("/onboarding?flash=restore_discarded"))
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(RESTORE_ACTION, web::post().to(upload))
        .route("/onboarding/restore/apply", web::post().to(apply))
        .route("/onboarding/restore/discard", web::post().to(discard));
}
