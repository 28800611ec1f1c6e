//! Visitor groups (create, delete, members) and invitations (create with
//! the link shown once, revoke). Same use cases ([`crate::app::groups`],
//! [`crate::app::invitations`]) as `/api/groups` and `/api/invitations`.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use time::OffsetDateTime;

use super::form::UiForm;
use super::users::VISITOR_TABS;
use super::{Chrome, FieldErrors, PageError, UiAdmin};
use crate::app::{self, invitations::Invite};
use crate::model::FieldError;
use crate::panel::error::ApiError;
use crate::store::{Group, Invitation};
use crate::users::{self, CreatedInvitation};

#[derive(Template)]
#[template(path = "groups.html")]
pub struct GroupsPage {
    pub chrome: Chrome,
    pub tab: &'static str,
    pub groups: Vec<Group>,
    pub users: Vec<String>,
    pub form_name: String,
    pub form_description: String,
    pub errors: FieldErrors,
    pub error: Option<String>,
}

impl GroupsPage {
    pub fn tabs(&self) -> &'static [(&'static str, &'static str)] {
        VISITOR_TABS
    }

    /// Users not yet in `g` (choices of its add-member form).
    pub fn outsiders(&self, g: &Group) -> Vec<&String> {
        self.users.iter().filter(|u| !g.members.contains(u)).collect()
    }
}

async fn user_names(ui: &UiAdmin) -> Result<Vec<String>, PageError> {
    Ok(ui.state.store.users().await?.into_iter().map(|u| u.username).collect())
}

async fn groups_page(ui: &UiAdmin) -> Result<GroupsPage, PageError> {
    Ok(GroupsPage {
        chrome: ui.chrome("/users", "Visitor groups").await?,
        tab: "/groups",
        groups: ui.state.store.groups().await?,
        users: user_names(ui).await?,
        form_name: String::new(),
        form_description: String::new(),
        errors: FieldErrors::default(),
        error: None,
    })
}

async fn show_groups(ui: UiAdmin) -> Result<HttpResponse, PageError> {
    super::ok(&groups_page(&ui).await?)
}

async fn create_group(form: UiForm) -> Result<HttpResponse, PageError> {
    let ui = &form.ui;
    let (name, description) = (form.get("name").trim().to_string(), form.get("description").trim().to_string());
    match app::groups::create(&ui.state, &ui.who, &name, &description).await {
        Ok(()) => Ok(ui.redirect("/groups?flash=group_created")),
        Err(e) => {
            let (mut errors, error) = super::form_error(e.into())?;
            if let Some(message) = error {
                // A conflict is about the name: show it there.
                errors.0.push(FieldError::new("name", message));
            }
            let mut p = groups_page(ui).await?;
            p.form_name = name;
            p.form_description = description;
            p.errors = errors;
            super::render(StatusCode::BAD_REQUEST, &p)
        }
    }
}

fn group_name(raw: &str) -> Result<String, PageError> {
    if users::valid_username(raw) {
        Ok(raw.to_string())
    } else {
        Err(ApiError::NotFound("No such group".into()).into())
    }
}

async fn delete_group(form: UiForm, name: web::Path<String>) -> Result<HttpResponse, PageError> {
    let ui = &form.ui;
    let name = group_name(&name)?;
    if !form.confirmed() {
        return Err(ApiError::field("confirm", "Confirm the deletion").into());
    }
    app::groups::delete(&ui.state, &ui.who, &name).await.map_err(ApiError::from)?;
    Ok(ui.redirect("/groups?flash=group_deleted"))
}

async fn membership(form: &UiForm, group: &str, user: &str, member: bool) -> Result<HttpResponse, PageError> {
    let ui = &form.ui;
    let group = group_name(group)?;
    if !users::valid_username(user) {
        return Err(ApiError::field("username", "Choose a user").into());
    }
    app::groups::set_membership(&ui.state, &ui.who, &group, user, member).await.map_err(ApiError::from)?;
    Ok(ui.redirect("/groups?flash=members_saved"))
}

async fn add_member(form: UiForm, name: web::Path<String>) -> Result<HttpResponse, PageError> {
    let user = form.get("username").to_string();
    membership(&form, &name, &user, true).await
}

async fn remove_member(form: UiForm, path: web::Path<(String, String)>) -> Result<HttpResponse, PageError> {
    let (group, user) = path.into_inner();
    membership(&form, &group, &user, false).await
}

#[derive(Template)]
#[template(path = "invitations.html")]
pub struct InvitationsPage {
    pub chrome: Chrome,
    pub tab: &'static str,
    pub invitations: Vec<Invitation>,
    pub groups: Vec<String>,
    pub form_username: String,
    pub form_email: String,
    pub form_groups: Vec<String>,
    pub form_days: String,
    pub errors: FieldErrors,
    pub error: Option<String>,
    /// Just created: the link is shown this once.
    pub created: Option<CreatedInvitation>,
    pub now: OffsetDateTime,
}

impl InvitationsPage {
    pub fn tabs(&self) -> &'static [(&'static str, &'static str)] {
        VISITOR_TABS
    }

    pub fn has(&self, list: &[String], value: &str) -> bool {
        list.iter().any(|v| v == value)
    }

    pub fn when(&self, t: &OffsetDateTime) -> String {
        super::when(t)
    }

    pub fn status(&self, i: &Invitation) -> (&'static str, &'static str) {
        if i.used_at.is_some() {
            ("ok", "accepted")
        } else if i.revoked_at.is_some() {
            ("bad", "revoked")
        } else if i.expires_at <= self.now {
            ("bad", "expired")
        } else {
            ("warn", "pending")
        }
    }

    /// What to hand the invitee: the portal link, or the token before a domain exists.
    pub fn link(&self, c: &CreatedInvitation) -> String {
        c.url.clone().unwrap_or_else(|| c.token.clone())
    }
}

async fn invitations_page(ui: &UiAdmin) -> Result<InvitationsPage, PageError> {
    Ok(InvitationsPage {
        chrome: ui.chrome("/users", "Invitations").await?,
        tab: "/invitations",
        invitations: ui.state.store.invitations().await?,
        groups: ui.state.store.groups().await?.into_iter().map(|g| g.name).collect(),
        form_username: String::new(),
        form_email: String::new(),
        form_groups: Vec::new(),
        form_days: users::INVITE_DAYS.to_string(),
        errors: FieldErrors::default(),
        error: None,
        created: None,
        now: OffsetDateTime::now_utc(),
    })
}

async fn show_invitations(ui: UiAdmin) -> Result<HttpResponse, PageError> {
    let mut p = invitations_page(&ui).await?;
    p.created = ui.take_shown();
    super::ok(&p)
}

async fn create_invitation(form: UiForm) -> Result<HttpResponse, PageError> {
    let ui = &form.ui;
    let (username, email) = (form.get("username").trim().to_string(), form.get("email").trim().to_string());
    let (groups, days_text) = (form.all("groups"), form.get("expiresInDays").trim().to_string());
    let days = match days_text.as_str() {
        "" => Ok(None),
        d => d.parse::<u32>().map(Some).map_err(|_| ApiError::field("expiresInDays", "Use 1–30 days")),
    };
    let result = match days {
        Ok(days) => {
            let invite = Invite {
                username: username.clone(),
                email: email.clone(),
                groups: groups.clone(),
                expires_in_days: days,
            };
            app::invitations::create(&ui.state, &ui.who, invite).await.map_err(ApiError::from)
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(created) => Ok(ui.redirect_showing("/invitations", created)),
        Err(e) => {
            let (errors, error) = super::form_error(e)?;
            let mut p = invitations_page(ui).await?;
            (p.form_username, p.form_email, p.form_groups, p.form_days) = (username, email, groups, days_text);
            p.errors = errors;
            p.error = error;
            super::render(StatusCode::BAD_REQUEST, &p)
        }
    }
}

async fn revoke_invitation(form: UiForm, id: web::Path<String>) -> Result<HttpResponse, PageError> {
    let ui = &form.ui;
    if !form.confirmed() {
        return Err(ApiError::field("confirm", "Confirm the revocation").into());
    }
    let id = id.into_inner();
    app::invitations::revoke(&ui.state, &ui.who, &id).await.map_err(ApiError::from)?;
    Ok(ui.redirect("/invitations?flash=invitation_revoked"))
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/groups", web::get().to(show_groups))
        .route("/groups", web::post().to(create_group))
        .route("/groups/{name}/delete", web::post().to(delete_group))
        .route("/groups/{name}/members", web::post().to(add_member))
        .route("/groups/{name}/members/{username}/remove", web::post().to(remove_member))
        .route("/invitations", web::get().to(show_invitations))
        .route("/invitations", web::post().to(create_invitation))
        .route("/invitations/{id}/revoke", web::post().to(revoke_invitation));
}
