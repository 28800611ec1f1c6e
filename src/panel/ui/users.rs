//! Visitor users: list, create (password and TOTP enrollment shown once),
//! edit, disable, reset TOTP, sessions, delete. Same use cases
//! ([`crate::app::users`]) as `/api/users`.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use time::OffsetDateTime;

use super::form::UiForm;
use super::{Chrome, FieldErrors, PageError, UiAdmin};
use crate::app;
use crate::panel::error::ApiError;
use crate::store::{User, VisitorSession};
use crate::users::{self, CreatedUser, NewUser, TotpEnrollment, UserChanges};

/// Sub-navigation of the visitor pages: (path, label).
pub const VISITOR_TABS: &[(&str, &str)] =
    &[("/users", "Users"), ("/groups", "Groups"), ("/invitations", "Invitations")];

#[derive(Template)]
#[template(path = "users.html")]
pub struct UsersPage {
    pub chrome: Chrome,
    pub tab: &'static str,
    pub users: Vec<User>,
    pub groups: Vec<String>,
    pub form: NewUser,
    pub errors: FieldErrors,
    pub error: Option<String>,
    pub created: Option<CreatedUser>,
    /// A password generated here (the field was left empty): shown once.
    pub generated: Option<String>,
}

impl UsersPage {
    pub fn tabs(&self) -> &'static [(&'static str, &'static str)] {
        VISITOR_TABS
    }

    pub fn has(&self, list: &[String], value: &str) -> bool {
        list.iter().any(|v| v == value)
    }
}

async fn group_names(ui: &UiAdmin) -> Result<Vec<String>, PageError> {
    Ok(ui.state.store.groups().await?.into_iter().map(|g| g.name).collect())
}

async fn list_page(ui: &UiAdmin) -> Result<UsersPage, PageError> {
    Ok(UsersPage {
        chrome: ui.chrome("/users", "Visitor users").await?,
        tab: "/users",
        users: ui.state.store.users().await?,
        groups: group_names(ui).await?,
        form: NewUser { totp: true, ..Default::default() },
        errors: FieldErrors::default(),
        error: None,
        created: None,
        generated: None,
    })
}

/// A user just created, with the password generated here: shown once
/// after the post's redirect.
struct Created(CreatedUser, Option<String>);

async fn show(ui: UiAdmin) -> Result<HttpResponse, PageError> {
    let mut p = list_page(&ui).await?;
    if let Some(Created(created, generated)) = ui.take_shown() {
        (p.created, p.generated) = (Some(created), generated);
    }
    super::ok(&p)
}

async fn create(form: UiForm) -> Result<HttpResponse, PageError> {
    let ui = &form.ui;
    let generated = form.get("password").is_empty().then(|| crate::token::random_token(12));
    let new = NewUser {
        username: form.get("username").trim().to_string(),
        display_name: form.get("displayName").trim().to_string(),
        email: form.get("email").trim().to_string(),
        password: generated.clone().unwrap_or_else(|| form.get("password").to_string()),
        groups: form.all("groups"),
        totp: form.get("totp") == "on",
    };
    match app::users::create(&ui.state, &ui.who, new.clone()).await {
        Ok(created) => Ok(ui.redirect_showing("/users", Created(created, generated))),
        Err(e) => {
            let (errors, error) = super::form_error(e.into())?;
            let mut p = list_page(ui).await?;
            p.form = NewUser { password: String::new(), ..new };
            p.errors = errors;
            p.error = error;
            super::render(StatusCode::BAD_REQUEST, &p)
        }
    }
}

#[derive(Template)]
#[template(path = "user.html")]
pub struct UserPage {
    pub chrome: Chrome,
    pub tab: &'static str,
    pub user: User,
    pub groups: Vec<String>,
    pub sessions: Vec<VisitorSession>,
    pub form: UserChanges,
    pub errors: FieldErrors,
    pub error: Option<String>,
    /// A new TOTP secret after a reset: shown once.
    pub enrollment: Option<TotpEnrollment>,
}

impl UserPage {
    pub fn tabs(&self) -> &'static [(&'static str, &'static str)] {
        VISITOR_TABS
    }

    pub fn has(&self, list: &[String], value: &str) -> bool {
        list.iter().any(|v| v == value)
    }

    pub fn when(&self, t: &OffsetDateTime) -> String {
        super::when(t)
    }
}

fn not_found() -> PageError {
    ApiError::NotFound("No such user".into()).into()
}

async fn user_page(ui: &UiAdmin, username: &str) -> Result<UserPage, PageError> {
    if !users::valid_username(username) {
        return Err(not_found());
    }
    let user = ui.state.store.user(username.to_string()).await?.ok_or_else(not_found)?;
    Ok(UserPage {
        chrome: ui.chrome("/users", &format!("User {username}")).await?,
        tab: "/users",
        groups: group_names(ui).await?,
        sessions: ui.state.store.user_sessions(username.to_string()).await?,
        form: UserChanges {
            display_name: Some(user.display_name.clone()),
            email: Some(user.email.clone()),
            password: None,
            disabled: Some(user.disabled),
            groups: Some(user.groups.clone()),
        },
        user,
        errors: FieldErrors::default(),
        error: None,
        enrollment: None,
    })
}

async fn show_one(ui: UiAdmin, username: web::Path<String>) -> Result<HttpResponse, PageError> {
    let mut p = user_page(&ui, &username).await?;
    // A reset's new enrollment, for this user only.
    let mine = |(user, _): &(String, TotpEnrollment)| *user == p.user.username;
    p.enrollment = ui.take_shown_if(mine).map(|(_, enrollment)| enrollment);
    super::ok(&p)
}

async fn update(form: UiForm, username: web::Path<String>) -> Result<HttpResponse, PageError> {
    let ui = &form.ui;
    let mut p = user_page(ui, &username).await?;
    let password = Some(form.get("password").to_string()).filter(|p| !p.is_empty());
    let changes = UserChanges {
        display_name: Some(form.get("displayName").trim().to_string()),
        email: Some(form.get("email").trim().to_string()),
        disabled: Some(form.get("disabled") == "on"),
        groups: Some(form.all("groups")),
        password,
    };
    match app::users::update(&ui.state, &ui.who, &username, changes.clone()).await {
        Ok(user) => Ok(ui.redirect(&format!("/users/{}?flash=user_saved", user.username))),
        Err(e) => {
            let (errors, error) = super::form_error(e.into())?;
            p.form = UserChanges { password: None, ..changes };
            p.errors = errors;
            p.error = error;
            super::render(StatusCode::BAD_REQUEST, &p)
        }
    }
}

async fn reset_totp(form: UiForm, username: web::Path<String>) -> Result<HttpResponse, PageError> {
    let ui = &form.ui;
    user_page(ui, &username).await?;
    if !form.confirmed() {
        return Err(ApiError::field("confirm", "Confirm the reset").into());
    }
    let enrollment = app::users::reset_totp(&ui.state, &ui.who, &username).await.map_err(ApiError::from)?;
    Ok(ui.redirect_showing(&format!("/users/{username}"), (username.to_string(), enrollment)))
}

async fn delete(form: UiForm, username: web::Path<String>) -> Result<HttpResponse, PageError> {
    let ui = &form.ui;
    let mut p = user_page(ui, &username).await?;
    if !form.confirmed() {
        return Err(ApiError::field("confirm", "Confirm the deletion").into());
    }
    match app::users::delete(&ui.state, &ui.who, &username).await {
        Ok(_) => Ok(ui.redirect("/users?flash=user_deleted")),
        Err(e) => {
            let (_, error) = super::form_error(e.into())?;
            p.error = error;
            super::render(StatusCode::CONFLICT, &p)
        }
    }
}

async fn revoke_session(form: UiForm, path: web::Path<(String, String)>) -> Result<HttpResponse, PageError> {
    let ui = &form.ui;
    let (username, id) = path.into_inner();
    if !users::valid_username(&username) {
        return Err(not_found());
    }
    app::users::revoke_session(&ui.state, &ui.who, &username, &id).await.map_err(ApiError::from)?;
    Ok(ui.redirect(&format!("/users/{username}?flash=session_revoked")))
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/users", web::get().to(show))
        .route("/users", web::post().to(create))
        .route("/users/{username}", web::get().to(show_one))
        .route("/users/{username}", web::post().to(update))
        .route("/users/{username}/reset-totp", web::post().to(reset_totp))
        .route("/users/{username}/delete", web::post().to(delete))
        .route("/users/{username}/sessions/{id}/revoke", web::post().to(revoke_session));
}
