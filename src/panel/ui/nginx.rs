//! nginx: the live configuration tree, the snapshots of replaced trees, a
//! diff per snapshot and rollback (behind a confirmation), through the same
//! functions as `/api/nginx/*`.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use time::OffsetDateTime;

use super::form::UiForm;
use super::{Chrome, PageError, UiAdmin};
use crate::nginx::{PipelineError, SnapshotMeta};
use crate::panel::routes::nginx::{live_files, rollback_to};

#[derive(Template)]
#[template(path = "nginx.html")]
pub struct NginxPage {
    pub chrome: Chrome,
    /// (path relative to the tree root, content), in path order.
    pub files: Vec<(String, String)>,
    /// Newest first.
    pub snapshots: Vec<SnapshotMeta>,
}

impl NginxPage {
    pub fn when(&self, t: &OffsetDateTime) -> String {
        super::when(t)
    }
}

/// How a line of a unified diff is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineKind {
    /// `--- a/…` / `+++ b/…`
    File,
    /// `@@ … @@`
    Hunk,
    Added,
    Removed,
    Context,
}

impl LineKind {
    pub fn class(&self) -> &'static str {
        match self {
            LineKind::File => "diff-file",
            LineKind::Hunk => "diff-hunk",
            LineKind::Added => "diff-add",
            LineKind::Removed => "diff-del",
            LineKind::Context => "diff-ctx",
        }
    }
}

/// Splits a unified diff into lines tagged for styling.
pub fn diff_lines(text: &str) -> Vec<(LineKind, String)> {
    text.lines()
        .map(|l| {
            let kind = if l.starts_with("--- ") || l.starts_with("+++ ") {
                LineKind::File
            } else if l.starts_with("@@") {
                LineKind::Hunk
            } else if l.starts_with('+') {
                LineKind::Added
            } else if l.starts_with('-') {
                LineKind::Removed
            } else {
                LineKind::Context
            };
            (kind, l.to_string())
        })
        .collect()
}

#[derive(Template)]
#[template(path = "nginx_diff.html")]
pub struct DiffPage {
    pub chrome: Chrome,
    pub snapshot: SnapshotMeta,
    pub lines: Vec<(LineKind, String)>,
    /// Why the last rollback was refused, and nginx's lines.
    pub error: Option<(String, Vec<String>)>,
}

impl DiffPage {
    pub fn when(&self, t: &OffsetDateTime) -> String {
        super::when(t)
    }
}

async fn show(ui: UiAdmin) -> Result<HttpResponse, PageError> {
    let files = live_files(&ui.state).await?.into_iter().collect();
    let snapshots = ui.state.nginx.snapshots().await.map_err(crate::panel::error::ApiError::from)?;
    super::ok(&NginxPage { chrome: ui.chrome("/nginx", "nginx").await?, files, snapshots })
}

async fn diff_page(ui: &UiAdmin, id: String) -> Result<DiffPage, PageError> {
    let snapshots = ui.state.nginx.snapshots().await.map_err(crate::panel::error::ApiError::from)?;
    let snapshot = snapshots
        .into_iter()
        .find(|s| s.id == id)
        .ok_or(PageError { status: StatusCode::NOT_FOUND, message: "No such snapshot".into() })?;
    let text = ui.state.nginx.diff(id).await.map_err(crate::panel::error::ApiError::from)?;
    Ok(DiffPage {
        chrome: ui.chrome("/nginx", &format!("Snapshot {}", snapshot.id)).await?,
        snapshot,
        lines: diff_lines(&text),
        error: None,
    })
}

async fn diff(ui: UiAdmin, id: web::Path<String>) -> Result<HttpResponse, PageError> {
    super::ok(&diff_page(&ui, id.into_inner()).await?)
}

async fn rollback(form: UiForm, id: web::Path<String>) -> Result<HttpResponse, PageError> {
    let ui = &form.ui;
    let id = id.into_inner();
    let (status, error) = match rollback_to(&ui.state, &ui.actor(), id.clone()).await {
        Ok(_) => return Ok(ui.redirect("/nginx?flash=nginx_rolled_back")),
        Err(e @ PipelineError::Rejected { .. }) | Err(e @ PipelineError::ReloadFailed { .. }) => {
            let status = if matches!(e, PipelineError::Rejected { .. }) {
                StatusCode::UNPROCESSABLE_ENTITY
            } else {
                StatusCode::BAD_GATEWAY
            };
            let message = e.to_string();
            let (PipelineError::Rejected { details } | PipelineError::ReloadFailed { details }) = e else {
                unreachable!("matched above")
            };
            (status, (message, details))
        }
        Err(e @ PipelineError::Disabled) => (StatusCode::CONFLICT, (e.to_string(), Vec::new())),
        Err(e) => return Err(crate::panel::error::ApiError::from(e).into()),
    };
    let mut page = diff_page(ui, id).await?;
    page.error = Some(error);
    super::render(status, &page)
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/nginx", web::get().to(show))
        .route("/nginx/snapshots/{id}", web::get().to(diff))
        .route("/nginx/snapshots/{id}/rollback", web::post().to(rollback));
}
