//! Invitations: an admin creates one (its token shown once) or revokes it;
//! the invitee accepts it on the public page. The REST API
//! (`/api/invitations`, `/api/invite/{token}`) and the web UI's invitations
//! page call these; each change is audited here, once.

use serde_json::json;
use time::OffsetDateTime;

use super::{App, Error};
use crate::audit::Outcome;
use crate::identity::Identity;
use crate::store::User;
use crate::users::{self, CreatedInvitation};

/// Who is invited, as the admin filled it in.
pub struct Invite {
    /// The username the invitee will get.
    pub username: String,
    pub email: String,
    /// Existing group names.
    pub groups: Vec<String>,
    /// 1–30; [`users::INVITE_DAYS`] when absent.
    pub expires_in_days: Option<u32>,
}

/// Creates an invitation; the token is in the result, shown once.
pub async fn create(app: &App, who: &Identity, invite: Invite) -> Result<CreatedInvitation, Error> {
    let Invite { username, email, groups, expires_in_days } = invite;
    let actor = who.actor();
    let created = users::create_invitation(&app.store, &actor, username, email, groups, expires_in_days).await?;
    let i = &created.invitation;
    let details = json!({ "username": i.username, "expiresAt": i.expires_at.unix_timestamp() });
    app.audit(&actor, "invitation.create", &i.id, Outcome::Success, Some(details)).await;
    Ok(created)
}

/// Revokes an invitation; its token stops working.
pub async fn revoke(app: &App, who: &Identity, id: &str) -> Result<(), Error> {
    app.store.revoke_invitation(id.to_string(), OffsetDateTime::now_utc()).await?;
    app.audit(&who.actor(), "invitation.revoke", id, Outcome::Success, None).await;
    Ok(())
}

/// Accepts an invitation (single use) and creates its user. Audited as the
/// invitee, failures too.
pub async fn accept(app: &App, token: &str, password: String, code: &str) -> Result<User, Error> {
    let result = users::accept_invitation(&app.store, token, password, code, OffsetDateTime::now_utc()).await;
    let (outcome, target) = match &result {
        Ok(u) => (Outcome::Success, u.username.clone()),
        Err(_) => (Outcome::Failure, String::new()),
    };
    app.audit("invitee", "invitation.accept", &target, outcome, None).await;
    Ok(result?)
}
