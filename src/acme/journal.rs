//! The install journal: `<data_dir>/acme/installing.json` lists the names
//! an install is changing, the version directories it writes and the
//! records it will store. It is written before any file and removed once
//! the records are in the store, which is the commit point: a process
//! killed in between leaves either a committed install (the store holds the
//! journal's records; the journal only goes) or one to undo (every name
//! points at its previous files again and the new versions go).

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::files::{self, Planned};
use crate::store::{CertRecord, Store, StoreError};

/// What an install in progress changes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Journal {
    pub planned: Vec<Planned>,
    /// The records the install stores last, by name: `(name, not_after, installed_at)` in unix seconds.
    pub records: Vec<(String, i64, i64)>,
}

impl Journal {
    pub fn new(planned: Vec<Planned>, records: &[CertRecord]) -> Journal {
        let records = records
            .iter()
            .map(|r| (r.name.clone(), r.not_after.unix_timestamp(), r.installed_at.unix_timestamp()))
            .collect();
        Journal { planned, records }
    }

    /// Whether `stored` holds every record of this install.
    fn committed(&self, stored: &[CertRecord]) -> bool {
        self.records.iter().all(|(name, not_after, installed_at)| {
            stored.iter().any(|r| {
                &r.name == name
                    && r.not_after.unix_timestamp() == *not_after
                    && r.installed_at.unix_timestamp() == *installed_at
            })
        })
    }
}

fn path(data_dir: &Path) -> PathBuf {
    data_dir.join("acme/installing.json")
}

/// Writes the journal (aside, then renamed in).
pub fn write(data_dir: &Path, journal: &Journal) -> io::Result<()> {
    let path = path(data_dir);
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("json.tmp");
    let mut f = fs::File::create(&tmp)?;
    f.write_all(&serde_json::to_vec(journal).map_err(io::Error::other)?)?;
    f.sync_all()?;
    fs::rename(&tmp, &path)
}

/// Removes the journal.
pub fn clear(data_dir: &Path) -> io::Result<()> {
    let path = path(data_dir);
    for p in [path.with_extension("json.tmp"), path] {
        match fs::remove_file(&p) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    Ok(())
}

/// Undoes every planned name of `journal` (see [`files::revert`]).
pub fn revert(journal: &Journal) -> io::Result<()> {
    for p in journal.planned.iter().rev() {
        files::revert(p)?;
    }
    Ok(())
}

/// Why recovery could not finish.
#[derive(Debug, thiserror::Error)]
pub enum RecoverError {
    #[error("certificate files: {0}")]
    Io(#[from] io::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// At start-up, before nginx is rendered or reloaded: settles an install a
/// killed process left (see the module doc), removes half-made link files
/// and stale challenge answers. Returns true when certificate files were
/// put back, so nginx must reload even if its tree is unchanged.
pub async fn recover(data_dir: &Path, store: &Store) -> Result<bool, RecoverError> {
    let journal_path = path(data_dir);
    let found = match fs::read(&journal_path) {
        Ok(bytes) => Some(serde_json::from_slice::<Journal>(&bytes).ok()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(e.into()),
    };
    let mut reverted = false;
    match found {
        None => {}
        Some(Some(journal)) => {
            if journal.committed(&store.certificates().await?) {
                tracing::info!(names = journal.records.len(), "an interrupted certificate install was complete");
            } else {
                tracing::warn!(
                    names = journal.records.len(),
                    "undoing an interrupted certificate install; the previous certificates stay"
                );
                let j = journal.clone();
                tokio::task::spawn_blocking(move || revert(&j))
                    .await
                    .map_err(|e| RecoverError::Io(io::Error::other(e.to_string())))??;
                reverted = true;
            }
        }
        Some(None) => {
            tracing::error!(path = %journal_path.display(), "unreadable certificate install journal; removed")
        }
    }
    clear(data_dir)?;
    files::remove_stray_links(data_dir)?;
    remove_challenges(data_dir)?;
    Ok(reverted)
}

/// Challenge answers of orders that can no longer finish.
fn remove_challenges(data_dir: &Path) -> io::Result<()> {
    let Ok(entries) = fs::read_dir(files::challenges_dir(data_dir)) else { return Ok(()) };
    for entry in entries {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            fs::remove_file(entry.path())?;
        }
    }
    Ok(())
}

/// The time an install records, truncated to what the store keeps (seconds).
pub fn now() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    OffsetDateTime::from_unix_timestamp(now.unix_timestamp()).unwrap_or(now)
}
