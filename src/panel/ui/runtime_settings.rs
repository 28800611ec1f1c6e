//! Settings → Runtime: the runtime settings as a form. Same use case as
//! `PATCH /api/settings/runtime` ([`crate::app::runtime_settings::update`]);
//! a field set in config.yaml or the environment is shown read-only with
//! where it is set.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;

use super::form::UiForm;
use super::{Chrome, FieldErrors, PageError, UiAdmin};
use crate::panel::error::ApiError;
use crate::runtime_settings::{self, FIELDS, FieldView, Kind, LEVELS, Patch, RuntimeView, Source};

/// The page's path.
const PATH: &str = "/settings/runtime";

#[derive(Template)]
#[template(path = "runtime_settings.html")]
pub struct RuntimePage {
    pub chrome: Chrome,
    pub settings_tab: &'static str,
    pub sections: Vec<Section>,
    pub errors: FieldErrors,
    /// A refusal that is not about one field (a read-only field was sent).
    pub banner: Option<String>,
    pub levels: [&'static str; 5],
}

pub struct Section {
    pub title: String,
    pub rows: Vec<Row>,
}

pub struct Row {
    pub f: FieldView,
    /// `number`, `schedule` or `level`: which input the row gets.
    pub kind: &'static str,
    /// The text in the input: the value, or what the admin typed.
    pub input: String,
}

impl Row {
    /// The source as the API names it (`default`, `stored`, `config`, `environment`).
    pub fn source(&self) -> &'static str {
        match self.f.source {
            Source::Default => "default",
            Source::Stored => "stored",
            Source::Config => "config",
            Source::Environment => "environment",
        }
    }

    /// Where the value comes from, in words.
    pub fn origin(&self) -> String {
        let default = match &self.f.default {
            serde_json::Value::String(s) if s.is_empty() => "empty".to_string(),
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        match self.f.source {
            Source::Default => "Default.".into(),
            Source::Stored => format!("Changed in the panel (default: {default})."),
            Source::Config | Source::Environment => String::new(),
        }
    }
}

fn text(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The view as sections of rows; `typed` gives what the admin sent, by field.
fn sections(view: RuntimeView, typed: &dyn Fn(&str) -> Option<String>) -> Vec<Section> {
    let mut sections: Vec<Section> = Vec::new();
    for f in view.fields {
        let kind = match FIELDS.iter().find(|d| d.name == f.name).map(|d| d.kind) {
            Some(Kind::Number { .. }) => "number",
            Some(Kind::Schedule) => "schedule",
            _ => "level",
        };
        let input = typed(&f.name).filter(|_| f.editable).unwrap_or_else(|| text(&f.value));
        let row = Row { f, kind, input };
        match sections.last_mut() {
            Some(s) if s.title == row.f.section => s.rows.push(row),
            _ => sections.push(Section { title: row.f.section.clone(), rows: vec![row] }),
        }
    }
    sections
}

async fn page(ui: &UiAdmin, typed: &dyn Fn(&str) -> Option<String>) -> Result<RuntimePage, PageError> {
    let (_, view) = runtime_settings::load(&ui.state.store, &ui.state.settings).await?;
    Ok(RuntimePage {
        chrome: ui.chrome("/settings", "Runtime settings").await?,
        settings_tab: "runtime",
        sections: sections(view, typed),
        errors: FieldErrors::default(),
        banner: None,
        levels: LEVELS,
    })
}

async fn show(ui: UiAdmin) -> Result<HttpResponse, PageError> {
    super::ok(&page(&ui, &|_| None).await?)
}

/// Saves the editable fields the form sent; back to the page with a flash,
/// or the page again with the errors and what was typed.
async fn save(form: UiForm) -> Result<HttpResponse, PageError> {
    let ui = &form.ui;
    let sent = |name: &str| form.value(name).map(str::to_string);
    let result = match Patch::from_form(|name| form.value(name)) {
        Ok(patch) => crate::app::runtime_settings::update(&ui.state, &ui.who, patch).await.map_err(ApiError::from),
        Err(errors) => Err(ApiError::invalid(errors)),
    };
    match result {
        Ok(_) => Ok(ui.redirect(&format!("{PATH}?flash=runtime_saved"))),
        Err(e) => {
            let (errors, banner) = super::form_error(e)?;
            let mut p = page(ui, &sent).await?;
            p.errors = errors;
            p.banner = banner;
            super::render(StatusCode::BAD_REQUEST, &p)
        }
    }
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(PATH, web::get().to(show)).route(PATH, web::post().to(save));
}
