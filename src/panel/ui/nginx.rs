//! nginx: the live configuration tree, the snapshots of replaced trees, a
//! side-by-side diff per snapshot (against the live tree or another
//! snapshot) and rollback (behind a confirmation), through the same use
//! cases as `/api/nginx/*` ([`crate::app::nginx`]).

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use time::OffsetDateTime;

use super::form::UiForm;
use super::{Chrome, PageError, UiAdmin};
use crate::app::Error;
use crate::nginx::side_by_side::{FileDiff, RowKind};
use crate::nginx::{PipelineError, SnapshotMeta};
use crate::panel::error::ApiError;

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

#[derive(Template)]
#[template(path = "nginx_diff.html")]
pub struct DiffPage {
    pub chrome: Chrome,
    /// The left side.
    pub snapshot: SnapshotMeta,
    /// The right side: another snapshot, or the live tree when `None`.
    pub against: Option<SnapshotMeta>,
    /// Snapshots the page offers to compare with (every other one).
    pub others: Vec<SnapshotMeta>,
    pub files: Vec<FileDiff>,
    /// Why the last rollback was refused, and nginx's lines.
    pub error: Option<(String, Vec<String>)>,
}

impl DiffPage {
    pub fn when(&self, t: &OffsetDateTime) -> String {
        super::when(t)
    }

    /// Row class: `sbs-same`, `sbs-chg`, `sbs-del` or `sbs-add`.
    pub fn row_class(&self, kind: &RowKind) -> &'static str {
        match kind {
            RowKind::Same => "sbs-same",
            RowKind::Changed => "sbs-chg",
            RowKind::Removed => "sbs-del",
            RowKind::Added => "sbs-add",
        }
    }

    /// Whether the left text of such a row is marked as removed.
    pub fn marks_old(&self, kind: &RowKind) -> bool {
        matches!(kind, RowKind::Changed | RowKind::Removed)
    }

    /// Whether the right text of such a row is marked as added.
    pub fn marks_new(&self, kind: &RowKind) -> bool {
        matches!(kind, RowKind::Changed | RowKind::Added)
    }

    /// Column heading of the right side.
    pub fn right_label(&self) -> String {
        match &self.against {
            Some(s) => format!("Snapshot {}", s.id),
            None => "Live configuration".into(),
        }
    }
}

/// `?against=<snapshot id>`: compare with that snapshot instead of the live tree.
#[derive(serde::Deserialize)]
pub struct CompareQuery {
    against: Option<String>,
}

async fn show(ui: UiAdmin) -> Result<HttpResponse, PageError> {
    let files = crate::app::nginx::live_files(&ui.state).await.map_err(ApiError::from)?.into_iter().collect();
    let snapshots = ui.state.nginx.snapshots().await.map_err(ApiError::from)?;
    super::ok(&NginxPage { chrome: ui.chrome("/nginx", "nginx").await?, files, snapshots })
}

/// The comparison of snapshot `id` with snapshot `against` (or the live tree).
async fn diff_page(ui: &UiAdmin, id: String, against: Option<String>) -> Result<DiffPage, PageError> {
    let snapshots = ui.state.nginx.snapshots().await.map_err(ApiError::from)?;
    let (mut this, mut others): (Vec<_>, Vec<_>) = snapshots.into_iter().partition(|s| s.id == id);
    let snapshot = this.pop().ok_or(PageError { status: StatusCode::NOT_FOUND, message: "No such snapshot".into() })?;
    let against = match against.filter(|a| !a.is_empty()) {
        None => None,
        Some(a) => match others.iter().find(|s| s.id == a) {
            Some(s) => Some(s.clone()),
            None => {
                let message = "There is no other snapshot with that id to compare with.".into();
                return Err(PageError { status: StatusCode::BAD_REQUEST, message });
            }
        },
    };
    let files = ui.state.nginx.compare(id, against.as_ref().map(|s| s.id.clone())).await.map_err(ApiError::from)?;
    others.retain(|s| s.id != snapshot.id);
    Ok(DiffPage {
        chrome: ui.chrome("/nginx", &format!("Snapshot {}", snapshot.id)).await?,
        snapshot,
        against,
        others,
        files,
        error: None,
    })
}

async fn diff(ui: UiAdmin, id: web::Path<String>, query: web::Query<CompareQuery>) -> Result<HttpResponse, PageError> {
    super::ok(&diff_page(&ui, id.into_inner(), query.into_inner().against).await?)
}

async fn rollback(form: UiForm, id: web::Path<String>) -> Result<HttpResponse, PageError> {
    let ui = &form.ui;
    let id = id.into_inner();
    let (status, error) = match crate::app::nginx::rollback(&ui.state, &ui.who, id.clone()).await {
        Ok((_, kept)) => {
            let flash = if kept.warning().is_some() { "nginx_rolled_back_down" } else { "nginx_rolled_back" };
            return Ok(ui.redirect(&format!("/nginx?flash={flash}")));
        }
        // nginx's own words for what happened, as the pipeline says them.
        Err(Error::ConfigRejected(details)) => {
            let message = PipelineError::Rejected { details: Vec::new() }.to_string();
            (StatusCode::UNPROCESSABLE_ENTITY, (message, details))
        }
        Err(Error::ReloadFailed(details)) => {
            let message = PipelineError::ReloadFailed { details: Vec::new() }.to_string();
            (StatusCode::BAD_GATEWAY, (message, details))
        }
        Err(Error::Conflict(message)) => (StatusCode::CONFLICT, (message, Vec::new())),
        Err(Error::NamesBroken(r)) => (StatusCode::CONFLICT, (super::names_broken(&r), Vec::new())),
        Err(e) => return Err(ApiError::from(e).into()),
    };
    let mut page = diff_page(ui, id, None).await?;
    page.error = Some(error);
    super::render(status, &page)
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/nginx", web::get().to(show))
        .route("/nginx/snapshots/{id}", web::get().to(diff))
        .route("/nginx/snapshots/{id}/rollback", web::post().to(rollback));
}
