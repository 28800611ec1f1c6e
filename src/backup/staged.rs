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
//!    the pending tree is swapped in (journaled, [`super::swap`]), then the
//!    panel restarts the services that read the data directory.
//! 4. The replaced tree stays in `.restore-previous/` and `.restore-check.json`
//!    records the restore ([`Applied`]) until the restored data proves
//!    healthy: every public name that served before the restore serves
//!    again. Then it is accepted (the previous tree goes); otherwise the
//!    operator sees why and either keeps it ([`accept`]) or goes back
//!    ([`request_rollback`], applied at the next start like a restore).
//!
//! Each of `work/`, `staged/` and `pending/` holds `data/` (the restored
//! tree) and `restore.json` ([`StagedRestore`]).

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::swap::{Plan, Steps};
use super::{BackupError, DB, DISCARDED, PREVIOUS, check_database, io_err, recover, swap_in, unpack};
use crate::settings::Secret;

/// Directory under the data dir (never archived, kept by restores).
pub(super) const DIR: &str = ".restore";
/// A restore applied and not yet accepted ([`Applied`]), at the top of the data dir.
pub(super) const CHECK: &str = ".restore-check.json";
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
    /// Public names that served when the restore was confirmed; each must
    /// serve again before the restored data is accepted.
    #[serde(default)]
    pub served_before: Vec<String>,
}

/// A restore applied at start-up whose previous data is still kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Applied {
    pub restore: StagedRestore,
    pub verdict: Verdict,
}

/// Where an applied restore stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "camelCase")]
pub enum Verdict {
    /// Waiting for the names that served before to serve again.
    Checking,
    /// Some did not: why, one line per name.
    Unhealthy { reasons: Vec<String> },
    /// The operator chose the previous data; swapped back at the next start.
    RollbackRequested,
}

/// What [`apply_pending`] did at start-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Startup {
    /// A confirmed restore was swapped in; check it.
    Applied(StagedRestore),
    /// A restore applied earlier is still being checked (the panel restarted).
    Checking(StagedRestore),
    /// The previous data was swapped back in.
    RolledBack(StagedRestore),
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
            served_before: Vec::new(),
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

/// Confirms the staged restore: it is applied at the panel's next start,
/// and accepted once each of `served_before` serves again. `None` when
/// nothing is staged.
pub fn confirm(data_dir: &Path, served_before: Vec<String>) -> Result<Option<StagedRestore>, BackupError> {
    let dir = root(data_dir);
    let Some(mut staged) = staged(data_dir)? else { return Ok(None) };
    staged.served_before = served_before;
    write_json(&dir.join("staged").join(META), &staged)?;
    remove(&dir.join("pending"))?;
    fs::rename(dir.join("staged"), dir.join("pending")).map_err(io_err("while confirming the restore"))?;
    Ok(Some(staged))
}

/// Drops a staged and a pending restore (and leftover uploads).
pub fn discard(data_dir: &Path) -> Result<(), BackupError> {
    remove(&root(data_dir))
}

/// Writes `value` as JSON to `path` in one rename, synced.
fn write_json(path: &Path, value: &impl Serialize) -> Result<(), BackupError> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    let text = serde_json::to_vec_pretty(value).expect("restore records serialize");
    let mut file = fs::File::create(&tmp).map_err(io_err("while recording the restore"))?;
    file.write_all(&text).and_then(|()| file.sync_all()).map_err(io_err("while recording the restore"))?;
    fs::rename(&tmp, path).map_err(io_err("while recording the restore"))
}

/// The restore applied and not yet accepted, if any.
pub fn applied(data_dir: &Path) -> Result<Option<Applied>, BackupError> {
    match fs::read(data_dir.join(CHECK)) {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| BackupError::Io {
            context: "while reading the applied restore".into(),
            source: std::io::Error::other(e),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err("while reading the applied restore")(e)),
    }
}

/// Records the check's outcome for the panel to show.
pub fn set_verdict(data_dir: &Path, verdict: Verdict) -> Result<Option<Applied>, BackupError> {
    let Some(mut applied) = applied(data_dir)? else { return Ok(None) };
    applied.verdict = verdict;
    write_json(&data_dir.join(CHECK), &applied)?;
    Ok(Some(applied))
}

/// Keeps the restored data: the previous tree is deleted.
pub fn accept(data_dir: &Path) -> Result<Option<Applied>, BackupError> {
    let found = applied(data_dir)?;
    remove(&data_dir.join(PREVIOUS))?;
    match fs::remove_file(data_dir.join(CHECK)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io_err("while accepting the restore")(e)),
        _ => {}
    }
    Ok(found)
}

/// Asks for the previous data back; [`apply_pending`] swaps it in at the
/// next start. `None` when no restore awaits acceptance.
pub fn request_rollback(data_dir: &Path) -> Result<Option<Applied>, BackupError> {
    if !data_dir.join(PREVIOUS).is_dir() {
        return Ok(None);
    }
    set_verdict(data_dir, Verdict::RollbackRequested)
}

/// Swaps the previous data back in now (before the store opens).
pub fn roll_back(data_dir: &Path) -> Result<Option<StagedRestore>, BackupError> {
    roll_back_with(data_dir, &mut Steps(None))
}

fn roll_back_with(data_dir: &Path, steps: &mut Steps) -> Result<Option<StagedRestore>, BackupError> {
    let Some(applied) = applied(data_dir)? else { return Ok(None) };
    if !data_dir.join(PREVIOUS).is_dir() {
        return Ok(None);
    }
    let plan = Plan {
        incoming: Path::new(PREVIOUS),
        outgoing: Path::new(DISCARDED),
        keep: &[],
        remove: vec![PREVIOUS.into(), DISCARDED.into(), CHECK.into()],
    };
    swap_in(data_dir, plan, steps)?;
    Ok(Some(applied.restore))
}

/// At start-up, before anything opens the store: finishes a swap a crash
/// interrupted, then swaps in a confirmed restore (keeping the replaced
/// data in `.restore-previous/`) or, when asked, swaps the previous data
/// back. On an error the data directory keeps its contents.
pub fn apply_pending(data_dir: &Path) -> Result<Option<Startup>, BackupError> {
    apply_pending_with(data_dir, &mut Steps(None))
}

pub(super) fn apply_pending_with(data_dir: &Path, steps: &mut Steps) -> Result<Option<Startup>, BackupError> {
    recover(data_dir)?;
    let dir = root(data_dir);
    let pending_dir = dir.join("pending");
    let current = applied(data_dir)?;
    let Some(restore) = read_meta(&pending_dir)? else {
        return match current {
            Some(Applied { verdict: Verdict::RollbackRequested, .. }) => {
                Ok(roll_back_with(data_dir, steps)?.map(Startup::RolledBack))
            }
            Some(Applied { restore, verdict: Verdict::Checking }) if data_dir.join(PREVIOUS).is_dir() => {
                Ok(Some(Startup::Checking(restore)))
            }
            _ => Ok(None),
        };
    };
    // A newer restore replaces one still awaiting acceptance.
    if current.is_some() {
        accept(data_dir)?;
    }
    write_json(&data_dir.join(CHECK), &Applied { restore: restore.clone(), verdict: Verdict::Checking })?;
    let incoming = Path::new(DIR).join("pending").join("data");
    let plan = Plan { incoming: &incoming, outgoing: Path::new(PREVIOUS), keep: &[], remove: vec![DIR.into()] };
    if let Err(e) = swap_in(data_dir, plan, steps) {
        if !matches!(e, BackupError::Interrupted) {
            // Applied or put back: either way the pending restore is done with.
            let _ = fs::remove_file(data_dir.join(CHECK));
            let _ = remove(&dir);
            let _ = remove(&data_dir.join(PREVIOUS));
        }
        return Err(e);
    }
    Ok(Some(Startup::Applied(restore)))
}
