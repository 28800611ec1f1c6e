//! Static sites: create, change and delete, each proved by the probe (undone
//! when a working name stops serving), then audited; the DNS check of a
//! site; and its files (`files.rs`). The REST API (`panel::routes::sites`,
//! `site_files`) and the Sites pages (`panel::ui::sites`) both call these.
//! Validation, scope and the nginx apply with undo are in the `sites`
//! domain module.

pub mod files;

use super::{App, Change, Error, Kept};
use crate::audit::Outcome;
use crate::identity::Identity;
use crate::onboarding::DnsReport;
use crate::sites::{self, NewSite, SitePatch};
use crate::store::{Site, SiteFields};

/// Creates a site and proves it: when a name that served before stops
/// serving, the site is removed again (row, files, nginx), the rollback is
/// audited and the caller gets [`Error::NamesBroken`]. Audits `site.create`.
pub async fn create(app: &App, who: &Identity, new: NewSite) -> Result<(Site, Kept), Error> {
    let name = new.name.clone();
    let before = app.health_before().await;
    let data_dir = &app.settings.data_dir;
    let result = sites::create(&app.store, &app.nginx, data_dir, who, new).await;
    let proved = match result {
        Ok(site) => {
            let (actor, key) = (who.actor(), format!("site:{}", site.id));
            let change = Change { reason: "site.create", actor: &actor, target: &site.name, key: &key };
            let undo = || async {
                match sites::delete(&app.store, &app.nginx, who, site.id).await {
                    Ok(gone) => sites::remove_files(data_dir, &gone).await,
                    Err(e) => tracing::error!(error = %e, site = site.id, "undoing the site creation failed"),
                }
            };
            app.prove_applied(change, before, undo).await.map(|kept| (site.clone(), kept))
        }
        Err(e) => Err(e.into()),
    };
    let outcome = if proved.is_ok() { Outcome::Success } else { Outcome::Failure };
    app.audit(&who.actor(), "site.create", &name, outcome, None).await;
    let (site, kept) = proved?;
    app.certs.name_added();
    Ok((site, kept))
}

/// Applies a partial update and audits `site.update` with the site before
/// and after. A rename that leaves the new name without a certificate (or
/// anything else that stops a name that served) is undone: see
/// [`App::prove_applied`].
pub async fn update(app: &App, who: &Identity, id: i64, patch: SitePatch) -> Result<(Site, Kept), Error> {
    let before = app.health_before().await;
    let mut kept = Kept::default();
    let data_dir = &app.settings.data_dir;
    let result = sites::update(&app.store, &app.nginx, data_dir, who, id, patch).await;
    if let Ok((old, new)) = &result {
        let (actor, key) = (who.actor(), format!("site:{id}"));
        let change = Change { reason: "site.update", actor: &actor, target: &new.name, key: &key };
        let undo = || async {
            let back = SitePatch::from(SiteFields::from(old));
            if let Err(e) = sites::update(&app.store, &app.nginx, data_dir, who, id, back).await {
                tracing::error!(error = %e, site = id, "undoing the site change failed");
            }
        };
        match app.prove_applied(change, before, undo).await {
            Ok(k) => kept = k,
            Err(e) => {
                app.audit(&who.actor(), "site.update", &id.to_string(), Outcome::Failure, None).await;
                return Err(e);
            }
        }
    }
    let (outcome, target, details) = match &result {
        Ok((old, new)) => (
            Outcome::Success,
            new.name.clone(),
            serde_json::to_value(serde_json::json!({ "before": old, "after": new })).ok(),
        ),
        Err(_) => (Outcome::Failure, id.to_string(), None),
    };
    app.audit(&who.actor(), "site.update", &target, outcome, details).await;
    let (_, site) = result?;
    // A new name needs its own certificate.
    app.certs.name_added();
    Ok((site, kept))
}

/// Deletes a site and proves it: when a name that served before stops
/// serving, the row comes back and nginx is applied again (the files were
/// not removed yet), the rollback is audited and the caller gets
/// [`Error::NamesBroken`]. Otherwise the files go. Audits `site.delete`.
pub async fn delete(app: &App, who: &Identity, id: i64) -> Result<Site, Error> {
    let before = app.health_before().await;
    let result = sites::delete(&app.store, &app.nginx, who, id).await;
    let proved = match result {
        Ok(site) => {
            let (actor, key) = (who.actor(), format!("site:{id}"));
            let change = Change { reason: "site.delete", actor: &actor, target: &site.name, key: &key };
            let undo = || async {
                if let Err(e) = app.store.restore_site(site.clone()).await {
                    tracing::error!(error = %e, site = id, "undoing the site deletion failed");
                }
                if let Err(e) = app.apply_config("site.delete undone: a working name stopped serving").await {
                    tracing::error!(error = %e, site = id, "re-applying nginx after undoing a site deletion failed");
                }
            };
            app.prove_applied(change, before, undo).await.map(|_| site.clone())
        }
        Err(e) => Err(e.into()),
    };
    let outcome = if proved.is_ok() { Outcome::Success } else { Outcome::Failure };
    app.audit(&who.actor(), "site.delete", &id.to_string(), outcome, None).await;
    let site = proved?;
    sites::remove_files(&app.settings.data_dir, &site).await;
    Ok(site)
}

/// Resolves `<name>.<domain>` and reports whether it points at this server;
/// audits `site.verify_dns` with the report.
pub async fn verify_dns(app: &App, who: &Identity, id: i64) -> Result<(Site, DnsReport), Error> {
    let (site, report) = sites::verify_dns(&app.store, who, id, app.settings.dns.resolver, app.public_ip()).await?;
    let outcome = if report.ok { Outcome::Success } else { Outcome::Failure };
    app.audit(&who.actor(), "site.verify_dns", &site.name, outcome, serde_json::to_value(&report).ok()).await;
    Ok((site, report))
}
