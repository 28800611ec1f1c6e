//! Runtime settings changed in the panel (`PATCH /api/settings/runtime` and
//! Settings → Runtime), put in force and audited here.

use super::{App, Error};
use crate::audit::Outcome;
use crate::identity::Identity;
use crate::runtime_settings::{self, Patch, RuntimeView};

/// Validates and stores the patch, all or nothing, puts it in force in this
/// process (log level now, backup schedule re-planned, renewal days at the
/// next check; authd reads the store within seconds), and audits
/// `settings.update` with the values before and after. A patch that changes
/// nothing is not audited.
pub async fn update(app: &App, who: &Identity, patch: Patch) -> Result<RuntimeView, Error> {
    let actor = who.actor();
    let change = runtime_settings::update(&app.store, &app.settings, patch, &actor).await?;
    if change.changed.is_empty() {
        return Ok(change.view);
    }
    app.runtime.set(change.after.clone());
    app.log.set(&change.after.panel_log_level);
    let details = change.audit_details();
    app.audit(&actor, "settings.update", "runtime", Outcome::Success, Some(details)).await;
    Ok(change.view)
}
