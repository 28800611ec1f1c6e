//! nginx: the live configuration's files, and rolling back to an earlier
//! snapshot, proved by the probe and audited here. The API (`/api/nginx/*`)
//! and the nginx page call these.

use std::collections::BTreeMap;

use super::{App, Change, Error, Kept};
use crate::audit::Outcome;
use crate::identity::Identity;
use crate::nginx::ApplyOutcome;

/// The live tree's files: path relative to the tree root → content.
pub async fn live_files(app: &App) -> Result<BTreeMap<String, String>, Error> {
    let tree = app.nginx.live_tree().await?;
    Ok(tree.files.into_iter().map(|(p, body)| (p.to_string_lossy().into_owned(), body)).collect())
}

/// Makes snapshot `id` live again through validate → swap → reload, then
/// proves it with the probe: when a name that served before stops serving,
/// the tree the rollback replaced goes live again and the answer is
/// [`Error::NamesBroken`]. Audited as `nginx.rollback`.
pub async fn rollback(app: &App, who: &Identity, id: String) -> Result<(ApplyOutcome, Kept), Error> {
    let actor = who.actor();
    let before = app.health_before().await;
    let proved = match app.nginx.rollback(id.clone()).await {
        Ok(out) => {
            let change = Change { reason: "nginx.rollback", actor: &actor, target: &id, key: "" };
            let replaced = out.snapshot.clone();
            let undo = || async {
                let Some(replaced) = replaced else { return };
                if let Err(e) = app.nginx.rollback(replaced).await {
                    tracing::error!(error = %e, "undoing the nginx rollback failed");
                }
            };
            app.prove_applied(change, before, undo).await.map(|kept| (out, kept))
        }
        Err(e) => Err(e.into()),
    };
    let (outcome, details) = match &proved {
        Ok((_, kept)) => (Outcome::Success, kept.warning().map(|w| serde_json::json!({ "warning": w }))),
        Err(e) => (Outcome::Failure, Some(serde_json::json!({ "error": e.public_message() }))),
    };
    app.audit(&actor, "nginx.rollback", &id, outcome, details).await;
    proved
}
