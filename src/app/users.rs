//! Visitor users: create, change, reset TOTP, end a session, delete. The
//! REST API (`/api/users`) and the web UI's user pages call these; each
//! change is audited here, once.

use serde_json::json;

use super::{App, Error};
use crate::audit::Outcome;
use crate::identity::Identity;
use crate::store::User;
use crate::users::{self, CreatedUser, NewUser, TotpEnrollment, UserChanges};

/// Creates a visitor user; with `new.totp` the result carries the TOTP
/// enrollment, shown once.
pub async fn create(app: &App, who: &Identity, new: NewUser) -> Result<CreatedUser, Error> {
    let created = users::create_user(&app.store, new).await?;
    let details = json!({ "groups": created.user.groups, "totp": created.totp.is_some() });
    app.audit(&who.actor(), "user.create", &created.user.username, Outcome::Success, Some(details)).await;
    Ok(created)
}

/// Changes a user; `None` fields keep their value. The audit says which
/// kinds of change were made, never the password.
pub async fn update(app: &App, who: &Identity, username: &str, changes: UserChanges) -> Result<User, Error> {
    let details =
        json!({ "password": changes.password.is_some(), "disabled": changes.disabled, "groups": changes.groups });
    let user = users::update_user(&app.store, username, changes).await?;
    app.audit(&who.actor(), "user.update", &user.username, Outcome::Success, Some(details)).await;
    Ok(user)
}

/// Deletes a user and their sessions (refused for the last user while
/// tunnels need sign-in).
pub async fn delete(app: &App, who: &Identity, username: &str) -> Result<User, Error> {
    let user = app.store.delete_user(username.to_string()).await?;
    app.audit(&who.actor(), "user.delete", &user.username, Outcome::Success, None).await;
    Ok(user)
}

/// A new TOTP secret for `username`; the old one stops working at once.
pub async fn reset_totp(app: &App, who: &Identity, username: &str) -> Result<TotpEnrollment, Error> {
    let enrollment = users::reset_totp(&app.store, username).await?;
    app.audit(&who.actor(), "user.reset_totp", username, Outcome::Success, None).await;
    Ok(enrollment)
}

/// Ends one of the user's visitor sessions (authd notices within a second).
pub async fn revoke_session(app: &App, who: &Identity, username: &str, id: &str) -> Result<(), Error> {
    app.store.revoke_user_session(username.to_string(), id.to_string()).await?;
    let details = json!({ "session": id });
    app.audit(&who.actor(), "user.session_revoke", username, Outcome::Success, Some(details)).await;
    Ok(())
}
