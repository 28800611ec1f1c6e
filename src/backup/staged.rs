//! Restores started from the panel, applied at the panel's next start.
//!
//! The running processes hold the database open, so the panel never swaps
//! the data directory under them. Instead, under `<data_dir>/.restore/`:
//! 1. an uploaded archive is decrypted, unpacked and checked into `work/`
//!    with the same code as `portico restore` ([`super::unpack`],
//!    [`super::check_database`]); only a complete, checked tree is renamed
//!    to `staged/`. A wrong passphrase or a damaged archive leaves nothing.
//! 2. The operator confirms: `staged/` is renamed to `pending/`.
//! 3. `portico serve` calls [`apply_pending`] before it opens the store:
//!    the pending tree is swapped in ([`super::swap_in`]), then the panel
//!    restarts the services that read the data directory.
//!
//! Each of `work/`, `staged/` and `pending/` holds `data/` (the restored
//! tree) and `restore.json` ([`StagedRestore`]).

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{BackupError, DB, check_database, io_err, swap_in, unpack};
use crate::settings::Secret;

/// Directory under the data dir (never archived, kept by restores).
pub(super) const DIR: &str = ".restore";
const META: &str = "restore.json";

/// A checked restore waiting for confirmation or for the next start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StagedRestore {
    /// When the backup was taken (from its manifest).
    #[serde(with = "time::serde::rfc3339")]
    pub backup_created_at: OffsetDateTime,
    /// Regular files in the archive.
    pub files: usize,
    #[serde(with = "time::serde::rfc3339")]
    pub staged_at: OffsetDateTime,
    /// Who uploaded it (audit actor).
    pub actor: String,
}

fn root(data_dir: &Path) -> PathBuf {
    data_dir.join(DIR)
}

fn make_root(data_dir: &Path) -> Result<PathBuf, BackupError> {
    use std::os::unix::fs::PermissionsExt;
    let dir = root(data_dir);
    fs::create_dir_all(&dir).map_err(io_err("while creating the restore directory"))?;
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).map_err(io_err("while securing restores"))?;
    Ok(dir)
}

fn remove(dir: &Path) -> Result<(), BackupError> {
    match fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io_err("while clearing a restore")(e)),
        _ => Ok(()),
    }
}

/// A fresh path for an uploaded archive, inside the data volume (so staging
/// never copies across file systems). The caller deletes it after [`stage`].
pub fn upload_path(data_dir: &Path) -> Result<PathBuf, BackupError> {
    let dir = make_root(data_dir)?;
    Ok(dir.join(format!("upload-{}", crate::token::random_hex(8))))
}

/// Decrypts and checks `archive` into `staged/`, replacing a restore staged
/// earlier (a confirmed one stays pending). Blocking. On any error nothing
/// is staged and the data directory is untouched.
pub fn stage(archive: &Path, data_dir: &Path, passphrase: &Secret, actor: &str) -> Result<StagedRestore, BackupError> {
    let dir = make_root(data_dir)?;
    let work = dir.join("work");
    remove(&work)?;
    fs::create_dir(&work).map_err(io_err("while creating the restore work directory"))?;
    let result = (|| {
        let data = work.join("data");
        fs::create_dir(&data).map_err(io_err("while creating the restore work directory"))?;
        let (files, manifest) = unpack(archive, &data, passphrase)?;
        check_database(&data.join(DB))?;
        let staged = StagedRestore {
            backup_created_at: OffsetDateTime::from_unix_timestamp(manifest.created_at)
                .unwrap_or(OffsetDateTime::UNIX_EPOCH),
            files,
            staged_at: OffsetDateTime::now_utc(),
            actor: actor.to_string(),
        };
        let meta = serde_json::to_vec_pretty(&staged).expect("restore meta serializes");
        fs::write(work.join(META), meta).map_err(io_err("while recording the restore"))?;
        remove(&dir.join("staged"))?;
        fs::rename(&work, dir.join("staged")).map_err(io_err("while staging the restore"))?;
        Ok(staged)
    })();
    if result.is_err() {
        let _ = fs::remove_dir_all(&work);
    }
    result
}

fn read_meta(dir: &Path) -> Result<Option<StagedRestore>, BackupError> {
    match fs::read(dir.join(META)) {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| BackupError::Io {
            context: "while reading a staged restore".into(),
            source: std::io::Error::other(e),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err("while reading a staged restore")(e)),
    }
}

/// The restore staged and waiting for confirmation, if any.
pub fn staged(data_dir: &Path) -> Result<Option<StagedRestore>, BackupError> {
    read_meta(&root(data_dir).join("staged"))
}

/// The confirmed restore waiting for the next start, if any.
pub fn pending(data_dir: &Path) -> Result<Option<StagedRestore>, BackupError> {
    read_meta(&root(data_dir).join("pending"))
}

/// Confirms the staged restore: it is applied at the panel's next start.
/// `None` when nothing is staged.
pub fn confirm(data_dir: &Path) -> Result<Option<StagedRestore>, BackupError> {
    let dir = root(data_dir);
    let Some(staged) = staged(data_dir)? else { return Ok(None) };
    remove(&dir.join("pending"))?;
    fs::rename(dir.join("staged"), dir.join("pending")).map_err(io_err("while confirming the restore"))?;
    Ok(Some(staged))
}

/// Drops a staged and a pending restore (and leftover uploads).
pub fn discard(data_dir: &Path) -> Result<(), BackupError> {
    remove(&root(data_dir))
}

/// Swaps a pending restore into `data_dir`. Call before anything opens the
/// store. Returns what was applied; `None` when nothing was pending. On an
/// error the data directory keeps its contents (see [`super::swap_in`]).
pub fn apply_pending(data_dir: &Path) -> Result<Option<StagedRestore>, BackupError> {
    let dir = root(data_dir);
    let pending_dir = dir.join("pending");
    let Some(restore) = read_meta(&pending_dir)? else { return Ok(None) };
    let swapped = swap_in(data_dir, &pending_dir.join("data"));
    // Applied or put back: either way the pending restore is done with.
    let cleared = remove(&dir);
    swapped?;
    cleared?;
    Ok(Some(restore))
}
