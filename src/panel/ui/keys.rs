//! API keys: create (the key is shown once), list, revoke. Same use cases
//! ([`crate::app::keys`]) as `/api/keys`.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use time::OffsetDateTime;

use super::form::UiForm;
use super::{Chrome, FieldErrors, PageError, UiAdmin};
use crate::apikeys::CreatedKey;
use crate::app;
use crate::model::FieldError;
use crate::panel::error::ApiError;
use crate::store::ApiKeyRecord;

#[derive(Template)]
#[template(path = "keys.html")]
pub struct KeysPage {
    pub chrome: Chrome,
    pub keys: Vec<ApiKeyRecord>,
    pub form_name: String,
    pub form_scopes: Vec<String>,
    pub form_days: String,
    pub errors: FieldErrors,
    pub created: Option<CreatedKey>,
    pub now: OffsetDateTime,
}

impl KeysPage {
    /// Whether `list` holds `value` (checkbox state).
    pub fn has(&self, list: &[String], value: &str) -> bool {
        list.iter().any(|v| v == value)
    }

    pub fn when(&self, t: &OffsetDateTime) -> String {
        super::when(t)
    }

    pub fn status(&self, k: &ApiKeyRecord) -> (&'static str, &'static str) {
        if k.revoked_at.is_some() {
            ("bad", "revoked")
        } else if k.expires_at.is_some_and(|e| e <= self.now) {
            ("bad", "expired")
        } else {
            ("ok", "active")
        }
    }
}

async fn page(ui: &UiAdmin) -> Result<KeysPage, PageError> {
    Ok(KeysPage {
        chrome: ui.chrome("/keys", "API keys").await?,
        keys: ui.state.store.api_keys().await?,
        form_name: String::new(),
        form_scopes: vec!["read".into()],
        form_days: "90".into(),
        errors: FieldErrors::default(),
        created: None,
        now: OffsetDateTime::now_utc(),
    })
}

async fn show(ui: UiAdmin) -> Result<HttpResponse, PageError> {
    let mut p = page(&ui).await?;
    p.created = ui.take_shown();
    super::ok(&p)
}

async fn create(form: UiForm) -> Result<HttpResponse, PageError> {
    let ui = &form.ui;
    let (name, scopes, days_text) = (form.get("name"), form.all("scopes"), form.get("expiresInDays").trim());
    let days = match days_text {
        "" => Ok(None),
        d => d.parse::<u32>().map(Some).map_err(|_| FieldError::new("expiresInDays", "Use a whole number of days")),
    };
    let result = match days {
        Ok(days) => app::keys::create(&ui.state, &ui.who, name, &scopes, days).await.map_err(ApiError::from),
        Err(e) => Err(ApiError::invalid(vec![e])),
    };
    match result {
        Ok(created) => Ok(ui.redirect_showing("/keys", created)),
        Err(e) => {
            let (errors, _) = super::form_error(e)?;
            let mut p = page(ui).await?;
            p.form_name = name.to_string();
            p.form_scopes = scopes;
            p.form_days = days_text.to_string();
            p.errors = errors;
            super::render(StatusCode::BAD_REQUEST, &p)
        }
    }
}

async fn revoke(form: UiForm, id: web::Path<String>) -> Result<HttpResponse, PageError> {
    let ui = &form.ui;
    let id = id.into_inner();
    if !form.confirmed() {
        return Err(ApiError::field("confirm", "Confirm the revocation").into());
    }
    app::keys::revoke(&ui.state, &ui.who, &id).await.map_err(ApiError::from)?;
    Ok(ui.redirect("/keys?flash=key_revoked"))
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/keys", web::get().to(show))
        .route("/keys", web::post().to(create))
        .route("/keys/{id}/revoke", web::post().to(revoke));
}
