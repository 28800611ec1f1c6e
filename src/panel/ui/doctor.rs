//! Doctor: start a run of the checks an operator would otherwise debug by
//! hand and watch its findings arrive (`app.js` polls `GET /api/doctor`;
//! without JavaScript, reloading the page shows the progress).

use actix_web::{HttpResponse, web};
use askama::Template;

use super::form::UiForm;
use super::{Chrome, PageError, UiAdmin};
use crate::doctor::{Finding, Level, RunState};

#[derive(Template)]
#[template(path = "doctor.html")]
pub struct DoctorPage {
    pub chrome: Chrome,
    pub run: RunState,
}

impl DoctorPage {
    pub fn level(&self, f: &Finding) -> &'static str {
        level(f.level)
    }

    pub fn when(&self, unix: &i64) -> String {
        time::OffsetDateTime::from_unix_timestamp(*unix).map(|t| super::when(&t)).unwrap_or_default()
    }
}

/// The CSS class and word of a level.
pub fn level(l: Level) -> &'static str {
    match l {
        Level::Ok => "ok",
        Level::Warn => "warn",
        Level::Fail => "fail",
    }
}

async fn show(ui: UiAdmin) -> Result<HttpResponse, PageError> {
    let page = DoctorPage { chrome: ui.chrome("/doctor", "Doctor").await?, run: ui.state.doctor.snapshot() };
    super::ok(&page)
}

async fn start(form: UiForm) -> Result<HttpResponse, PageError> {
    let ui = &form.ui;
    let s = &ui.state;
    s.doctor.start(s.settings.clone(), s.store.clone(), s.public_ip());
    Ok(ui.redirect("/doctor"))
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/doctor", web::get().to(show)).route("/doctor/run", web::post().to(start));
}
