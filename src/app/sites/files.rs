//! A site's files: uploads (multipart, streamed to disk, all or nothing)
//! and deletions, each audited. `/api/sites/{id}/files` and the site page
//! both call these; the staging and path checks are in `sites::files`.

use futures_util::StreamExt;
use futures_util::stream::LocalBoxStream;

use crate::app::{App, Error};
use crate::audit::Outcome;
use crate::identity::Identity;
use crate::sites::files::{self, FileEntry, Limits};
use crate::sites::site_dir;
use crate::store::Site;

/// Uploads run one at a time, so that the byte cap of a site holds when two
/// arrive together (each counts the other's files once committed).
static UPLOADS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Chunks buffered between the request body and the multipart parser.
const PUMP_DEPTH: usize = 4;

/// Streams a multipart body (`content_type` names its boundary) into `site`,
/// all or nothing: a refused part (bad path, over the site's byte cap, too
/// many files) leaves the site as it was. Audits `site.files.upload`.
pub async fn upload<E>(
    app: &App,
    who: &Identity,
    site: &Site,
    content_type: &str,
    mut body: LocalBoxStream<'static, Result<bytes::Bytes, E>>,
) -> Result<Vec<FileEntry>, Error>
where
    E: Into<Box<dyn std::error::Error + Send + Sync>> + 'static,
{
    let boundary = multer::parse_boundary(content_type)
        .map_err(|_| Error::field("body", "Send multipart/form-data with one file part per path"))?;
    let _one_at_a_time = UPLOADS.lock().await;
    let data_dir = &app.settings.data_dir;
    files::clear_staging(data_dir).await?;

    // The request body is not `Send`; the parser wants a `Send` stream. A
    // short channel bridges them, so memory stays flat whatever the size.
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<bytes::Bytes, std::io::Error>>(PUMP_DEPTH);
    let pump = async move {
        while let Some(chunk) = body.next().await {
            if tx.send(chunk.map_err(std::io::Error::other)).await.is_err() {
                break;
            }
        }
    };
    let stream = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|c| (c, rx)) });
    // When the upload ends early (a refused part), the parser and the
    // channel's receiver go, and the pump stops.
    let receive =
        files::receive(data_dir, site_dir(data_dir, &site.name), site.max_bytes, Limits::default(), boundary, stream);
    let ((), result) = tokio::join!(pump, receive);
    let outcome = if result.is_ok() { Outcome::Success } else { Outcome::Failure };
    let details = result
        .as_ref()
        .ok()
        .map(|f| serde_json::json!({ "files": f.len(), "bytes": f.iter().map(|e| e.size).sum::<u64>() }));
    app.audit(&who.actor(), "site.files.upload", &site.name, outcome, details).await;
    Ok(result?)
}

/// Deletes `raw` (a path inside `site`: a file, or a directory with
/// everything in it) and audits `site.files.delete`.
pub async fn delete(app: &App, who: &Identity, site: &Site, raw: &str) -> Result<(), Error> {
    let path = files::parse_path(raw)?;
    let result = files::delete(site_dir(&app.settings.data_dir, &site.name), path.clone()).await;
    let outcome = if result.is_ok() { Outcome::Success } else { Outcome::Failure };
    let details = Some(serde_json::json!({ "path": path.as_str() }));
    app.audit(&who.actor(), "site.files.delete", &site.name, outcome, details).await;
    Ok(result?)
}
