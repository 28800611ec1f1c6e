//! Visitor groups and their members: create, delete, add or remove a
//! member. The REST API (`/api/groups`) and the web UI's groups page call
//! these; each change is audited here, once.

use serde_json::json;
use time::OffsetDateTime;

use super::{App, Error};
use crate::audit::Outcome;
use crate::identity::Identity;
use crate::users;

/// Creates an empty group.
pub async fn create(app: &App, who: &Identity, name: &str, description: &str) -> Result<(), Error> {
    users::validate_group(name, description)?;
    app.store.insert_group(name.to_string(), description.to_string(), OffsetDateTime::now_utc()).await?;
    app.audit(&who.actor(), "group.create", name, Outcome::Success, None).await;
    Ok(())
}

/// Deletes a group.
pub async fn delete(app: &App, who: &Identity, name: &str) -> Result<(), Error> {
    app.store.delete_group(name.to_string()).await?;
    app.audit(&who.actor(), "group.delete", name, Outcome::Success, None).await;
    Ok(())
}

/// Makes `user` a member of `group` or not (idempotent either way).
pub async fn set_membership(app: &App, who: &Identity, group: &str, user: &str, member: bool) -> Result<(), Error> {
    app.store.set_membership(group.to_string(), user.to_string(), member).await?;
    let action = if member { "group.member_add" } else { "group.member_remove" };
    app.audit(&who.actor(), action, group, Outcome::Success, Some(json!({ "user": user }))).await;
    Ok(())
}
