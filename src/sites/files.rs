//! A site's files on disk: listing, all-or-nothing streamed uploads and
//! deletes. Every path is a checked [`SitePath`]; on disk no component may be
//! a symbolic link, so nothing is ever read or written outside the site root.
//!
//! Uploads are staged in `<data_dir>/sites/.staging/<random>/` (never served:
//! site names cannot start with a dot) and renamed into place only once every
//! part arrived within the limits, so a failed upload leaves no partial files.

use std::collections::HashMap;
use std::fmt::Display;
use std::io;
use std::path::{Path, PathBuf};

use futures_util::{Stream, StreamExt};
use serde::Serialize;
use time::OffsetDateTime;
use tokio::io::AsyncWriteExt;

use super::paths::{PathError, SitePath};

/// Count limits of a site and of one upload.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Files one site may hold.
    pub max_files: u64,
    /// Files one upload request may carry.
    pub max_parts: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_files: 20_000, max_parts: 5_000 }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FilesError {
    #[error("invalid path {path:?}: {reason}")]
    InvalidPath { path: String, reason: PathError },
    #[error("path {0} passes through a symbolic link")]
    Symlink(String),
    #[error("The path {0} clashes with an existing file or directory")]
    Clash(String),
    #[error("the upload would take the site past its limit of {0} bytes")]
    TooLarge(u64),
    #[error("The site would hold more than {0} files")]
    TooManyFiles(u64),
    #[error("One upload carries at most {0} files")]
    TooManyParts(usize),
    #[error("The upload could not be read: {0}")]
    Body(String),
    #[error("no such file")]
    NotFound,
    #[error("site files: {0}")]
    Io(#[from] io::Error),
}

/// One regular file of a site.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FileEntry {
    /// Relative to the site root, `/`-separated.
    pub path: String,
    /// Bytes.
    pub size: u64,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub modified: OffsetDateTime,
}

pub fn parse_path(raw: &str) -> Result<SitePath, FilesError> {
    SitePath::parse(raw).map_err(|reason| FilesError::InvalidPath { path: raw.to_string(), reason })
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, FilesError> + Send + 'static,
) -> Result<T, FilesError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| FilesError::Io(io::Error::other(e)))?
}

/// Regular files under `root`, sorted by path. Symbolic links are neither
/// listed nor followed.
pub async fn list(root: PathBuf) -> Result<Vec<FileEntry>, FilesError> {
    blocking(move || {
        let mut out = Vec::new();
        walk(&root, "", &mut out)?;
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    })
    .await
}

fn walk(dir: &Path, prefix: &str, out: &mut Vec<FileEntry>) -> Result<(), FilesError> {
    let entries = match std::fs::read_dir(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound && prefix.is_empty() => return Err(FilesError::NotFound),
        other => other?,
    };
    for entry in entries {
        let entry = entry?;
        let kind = entry.file_type()?; // does not follow links
        let name = entry.file_name().to_string_lossy().to_string();
        let path = if prefix.is_empty() { name } else { format!("{prefix}/{name}") };
        if kind.is_dir() {
            walk(&entry.path(), &path, out)?;
        } else if kind.is_file() {
            let meta = entry.metadata()?;
            let modified = meta.modified().map(OffsetDateTime::from).unwrap_or(OffsetDateTime::UNIX_EPOCH);
            out.push(FileEntry { path, size: meta.len(), modified });
        }
    }
    Ok(())
}

/// What a destination holds now: nothing, or a regular file of `n` bytes.
/// Refuses symbolic links anywhere on the way (root included) and paths
/// that need a directory where a file is, or the reverse.
fn inspect(root: &Path, path: &SitePath) -> Result<Option<u64>, FilesError> {
    match std::fs::symlink_metadata(root) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return Err(FilesError::Symlink(path.to_string())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(FilesError::NotFound),
        Err(e) => return Err(e.into()),
    }
    let segments: Vec<&str> = path.segments().collect();
    let mut at = root.to_path_buf();
    for (i, seg) in segments.iter().enumerate() {
        at.push(seg);
        let last = i + 1 == segments.len();
        let meta = match std::fs::symlink_metadata(&at) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        if meta.file_type().is_symlink() {
            return Err(FilesError::Symlink(path.to_string()));
        }
        match (last, meta.is_dir()) {
            (false, true) => {}
            (true, false) if meta.is_file() => return Ok(Some(meta.len())),
            _ => return Err(FilesError::Clash(path.to_string())),
        }
    }
    Ok(None)
}

/// Deletes one file, or a directory with everything below it.
pub async fn delete(root: PathBuf, path: SitePath) -> Result<(), FilesError> {
    blocking(move || {
        let parent_ok = match path.as_str().rsplit_once('/') {
            Some((parent, _)) => inspect_dir(&root, parent)?,
            None => std::fs::symlink_metadata(&root).map(|m| m.is_dir()).unwrap_or(false),
        };
        if !parent_ok {
            return Err(FilesError::NotFound);
        }
        let target = path.under(&root);
        let meta = match std::fs::symlink_metadata(&target) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(FilesError::NotFound),
            other => other?,
        };
        // A link itself is removed, never what it points to.
        if meta.is_dir() {
            std::fs::remove_dir_all(&target)?
        } else {
            std::fs::remove_file(&target)?
        }
        Ok(())
    })
    .await
}

/// Whether `dir` (relative, checked) is an existing directory reached without
/// symbolic links.
fn inspect_dir(root: &Path, dir: &str) -> Result<bool, FilesError> {
    let path = parse_path(dir)?;
    let mut at = root.to_path_buf();
    for seg in std::iter::once("").chain(path.segments()) {
        if !seg.is_empty() {
            at.push(seg);
        }
        match std::fs::symlink_metadata(&at) {
            Ok(m) if m.file_type().is_symlink() => return Err(FilesError::Symlink(path.to_string())),
            Ok(m) if m.is_dir() => {}
            Ok(_) => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(true)
}

/// Removes what crashed or dropped uploads left in the staging area. Call it
/// only while no upload runs (the panel runs uploads one at a time).
pub async fn clear_staging(data_dir: &Path) -> Result<(), FilesError> {
    let staging = data_dir.join("sites/.staging");
    blocking(move || match std::fs::remove_dir_all(&staging) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e.into()),
        _ => Ok(()),
    })
    .await
}

/// A staged upload into one site. Call [`Upload::commit`] or
/// [`Upload::abort`]; dropping it removes the staged files too.
pub struct Upload {
    root: PathBuf,
    staging: PathBuf,
    limits: Limits,
    max_bytes: u64,
    /// Bytes and files the site holds before this upload.
    used_bytes: u64,
    used_files: u64,
    /// Path → (staged file, bytes, bytes it replaces, whether it adds a file).
    staged: HashMap<SitePath, (PathBuf, u64, u64, bool)>,
    parts: usize,
    done: bool,
}

/// Receives a multipart body (`boundary` from its content type) into
/// `root` all or nothing: every part a file whose filename is its path. A
/// refused part (bad path, over `max_bytes`, too many files) or a malformed
/// body leaves the site as it was.
pub async fn receive<S, E>(
    data_dir: &Path,
    root: PathBuf,
    max_bytes: u64,
    limits: Limits,
    boundary: String,
    body: S,
) -> Result<Vec<FileEntry>, FilesError>
where
    S: Stream<Item = Result<bytes::Bytes, E>> + Send + 'static,
    E: Into<Box<dyn std::error::Error + Send + Sync>> + 'static,
{
    let mut staged = Upload::begin(data_dir, root, max_bytes, limits).await?;
    let mut parts = multer::Multipart::new(body, boundary);
    let consumed = async {
        let mut count = 0usize;
        while let Some(field) = parts.next_field().await.map_err(|e| FilesError::Body(e.to_string()))? {
            let Some(path) = field.file_name().map(str::to_string) else {
                return Err(FilesError::Body("every part must be a file whose filename is its path".into()));
            };
            staged.add(&path, field).await?;
            count += 1;
        }
        if count == 0 {
            return Err(FilesError::Body("no file parts".into()));
        }
        Ok(())
    }
    .await;
    drop(parts);
    match consumed {
        Ok(()) => staged.commit().await,
        Err(e) => {
            staged.abort().await;
            Err(e)
        }
    }
}

impl Upload {
    /// Prepares an upload into `root` (`<data_dir>/sites/<name>`), whose
    /// files may total `max_bytes`.
    pub async fn begin(data_dir: &Path, root: PathBuf, max_bytes: u64, limits: Limits) -> Result<Upload, FilesError> {
        let staging = data_dir.join("sites/.staging").join(crate::token::random_token(12));
        let (r, s) = (root.clone(), staging.clone());
        let (used_files, used_bytes) = blocking(move || {
            if std::fs::symlink_metadata(&r).map(|m| !m.is_dir()).unwrap_or(true) {
                return Err(FilesError::NotFound);
            }
            let mut files = Vec::new();
            walk(&r, "", &mut files)?;
            std::fs::create_dir_all(&s)?;
            Ok((files.len() as u64, files.iter().map(|f| f.size).sum::<u64>()))
        })
        .await?;
        Ok(Upload {
            root,
            staging,
            limits,
            max_bytes,
            used_bytes,
            used_files,
            staged: HashMap::new(),
            parts: 0,
            done: false,
        })
    }

    /// The site's bytes and files if this upload were committed now.
    fn totals(&self) -> (u64, u64) {
        let (mut bytes, mut files) = (self.used_bytes, self.used_files);
        for (_, size, replaces, adds) in self.staged.values() {
            bytes = (bytes + size).saturating_sub(*replaces);
            files += u64::from(*adds);
        }
        (bytes, files)
    }

    /// Streams one file to the staging area, refusing it as soon as the
    /// site's byte cap or a count limit would be passed. A later part with
    /// the same path replaces an earlier one.
    pub async fn add<S, E>(&mut self, raw_path: &str, mut body: S) -> Result<(), FilesError>
    where
        S: Stream<Item = Result<bytes::Bytes, E>> + Unpin,
        E: Display,
    {
        let path = parse_path(raw_path)?;
        self.parts += 1;
        if self.parts > self.limits.max_parts {
            return Err(FilesError::TooManyParts(self.limits.max_parts));
        }
        let (root, p) = (self.root.clone(), path.clone());
        let existing = blocking(move || inspect(&root, &p)).await?;
        let nested = |a: &str, b: &str| b.strip_prefix(a).is_some_and(|rest| rest.starts_with('/'));
        if self.staged.keys().any(|k| nested(k.as_str(), path.as_str()) || nested(path.as_str(), k.as_str())) {
            return Err(FilesError::Clash(path.to_string()));
        }
        if let Some((old, ..)) = self.staged.remove(&path) {
            let _ = tokio::fs::remove_file(old).await;
        }
        let (bytes_before, files_before) = self.totals();
        let adds = existing.is_none();
        if adds && files_before + 1 > self.limits.max_files {
            return Err(FilesError::TooManyFiles(self.limits.max_files));
        }
        // What this file may weigh: the room left plus what it replaces.
        let room = self.max_bytes.saturating_sub(bytes_before) + existing.unwrap_or(0);
        let tmp = self.staging.join(self.parts.to_string());
        let mut file = tokio::fs::OpenOptions::new().write(true).create_new(true).mode(0o644).open(&tmp).await?;
        let mut size = 0u64;
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| FilesError::Body(e.to_string()))?;
            size += chunk.len() as u64;
            if size > room {
                return Err(FilesError::TooLarge(self.max_bytes));
            }
            file.write_all(&chunk).await?;
        }
        file.flush().await?;
        self.staged.insert(path, (tmp, size, existing.unwrap_or(0), adds));
        Ok(())
    }

    /// Moves every staged file into place and returns the stored paths.
    ///
    /// Destinations are checked again right before the renames; a rename
    /// failure part-way (a full disk cannot cause one) leaves the files
    /// renamed so far in place.
    pub async fn commit(mut self) -> Result<Vec<FileEntry>, FilesError> {
        self.done = true;
        let (root, staging) = (self.root.clone(), self.staging.clone());
        let mut staged: Vec<_> = std::mem::take(&mut self.staged).into_iter().collect();
        staged.sort_by(|a, b| a.0.cmp(&b.0));
        blocking(move || {
            let result = (|| {
                for (path, _) in &staged {
                    inspect(&root, path)?;
                }
                let now = OffsetDateTime::now_utc();
                let mut out = Vec::new();
                for (path, (tmp, size, ..)) in &staged {
                    let dest = path.under(&root);
                    if let Some(parent) = dest.parent() {
                        std::fs::create_dir_all(parent)?;
                    }
                    std::fs::rename(tmp, &dest)?;
                    out.push(FileEntry { path: path.to_string(), size: *size, modified: now });
                }
                Ok(out)
            })();
            let _ = std::fs::remove_dir_all(&staging);
            result
        })
        .await
    }

    /// Removes everything staged.
    pub async fn abort(mut self) {
        self.done = true;
        let staging = self.staging.clone();
        let _ = tokio::task::spawn_blocking(move || std::fs::remove_dir_all(staging)).await;
    }
}

impl Drop for Upload {
    fn drop(&mut self) {
        if !self.done {
            // Fallback for a dropped request; normally `abort` ran.
            let _ = std::fs::remove_dir_all(&self.staging);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(data: &'static [u8]) -> impl Stream<Item = Result<bytes::Bytes, std::io::Error>> + Unpin {
        futures_util::stream::iter(vec![Ok(bytes::Bytes::from_static(data))])
    }

    #[tokio::test]
    async fn count_limits_hold_per_upload_and_per_site() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("sites/docs");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::write(root.join("index.html"), "i").unwrap();
        let limits = Limits { max_files: 3, max_parts: 2 };

        let mut up = Upload::begin(dir.path(), root.clone(), 1 << 20, limits).await.unwrap();
        up.add("a", body(b"1")).await.unwrap();
        up.add("b", body(b"2")).await.unwrap();
        assert!(matches!(up.add("c", body(b"3")).await, Err(FilesError::TooManyParts(2))));
        up.abort().await;

        let mut up = Upload::begin(dir.path(), root.clone(), 1 << 20, limits).await.unwrap();
        up.add("a", body(b"1")).await.unwrap();
        up.add("index.html", body(b"replaced")).await.unwrap();
        up.commit().await.unwrap();
        let mut up = Upload::begin(dir.path(), root.clone(), 1 << 20, limits).await.unwrap();
        up.add("b", body(b"2")).await.unwrap();
        assert!(matches!(up.add("c", body(b"3")).await, Err(FilesError::TooManyFiles(3))));
        drop(up);
        let names: Vec<String> = list(root.clone()).await.unwrap().into_iter().map(|f| f.path).collect();
        assert_eq!(names, ["a", "index.html"]);
        assert_eq!(std::fs::read_dir(dir.path().join("sites/.staging")).unwrap().count(), 0);
    }

    #[tokio::test]
    async fn a_failing_body_stages_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("sites/docs");
        std::fs::create_dir_all(&root).unwrap();
        let mut up = Upload::begin(dir.path(), root.clone(), 1 << 20, Limits::default()).await.unwrap();
        let broken = futures_util::stream::iter(vec![
            Ok(bytes::Bytes::from_static(b"partial")),
            Err(std::io::Error::other("connection reset")),
        ]);
        assert!(matches!(up.add("a.txt", broken).await, Err(FilesError::Body(_))));
        up.abort().await;
        assert!(list(root).await.unwrap().is_empty());
        assert!(!dir.path().join("sites/.staging").read_dir().unwrap().any(|_| true));
    }
}
