//! Swapping a restored tree into the data directory, journaled so that a
//! crash (kill -9, power loss) at any moment leaves either the state before
//! or, after the next start's [`recover`], the state after — never a mix.
//!
//! A swap moves the data dir's top-level entries into an `outgoing`
//! directory, then the `incoming` tree's entries into the data dir, each by
//! one `rename(2)` inside the same volume. Before the first move, the names
//! are written to `.restore-journal` (written aside, synced, renamed in):
//! - no journal: nothing moved; leftovers of unfinished staging are removed.
//! - a journal: the swap is rolled forward. Every step checks where its
//!   entry is, so running it again after a crash (even a crash during
//!   recovery) finishes the same way.
//!
//! The journal is removed last; until then the swap counts as unfinished.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{BackupError, io_err};

/// The journal of a swap in flight, at the top of the data dir.
pub(super) const JOURNAL: &str = ".restore-journal";
const JOURNAL_TMP: &str = ".restore-journal.tmp";

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Journal {
    /// Directory (relative to the data dir) whose entries move in.
    incoming: PathBuf,
    /// Top-level directory the replaced entries move to.
    outgoing: PathBuf,
    /// Top-level names that move out, in order.
    out: Vec<String>,
    /// Names under `incoming` that move in, in order.
    into: Vec<String>,
    /// Paths (relative to the data dir) removed once every move is done.
    remove: Vec<PathBuf>,
    /// Every move is done (so a recovery only removes): written before the
    /// first removal, since a removed `outgoing` would otherwise look like
    /// entries never moved out.
    #[serde(default)]
    moved: bool,
}

/// What a swap does, before any of it happens.
pub(super) struct Plan<'a> {
    pub incoming: &'a Path,
    pub outgoing: &'a Path,
    /// Top-level names that stay as they are (never moved out; an incoming
    /// entry of that name is dropped when the data dir has one).
    pub keep: &'a [&'a str],
    pub remove: Vec<PathBuf>,
}

/// Counts mutating steps so tests can stop a swap at each one, as a crash
/// would; `None` runs to the end.
pub(super) struct Steps(pub Option<usize>);

impl Steps {
    fn take(&mut self) -> Result<(), BackupError> {
        match &mut self.0 {
            Some(0) => Err(BackupError::Interrupted),
            Some(n) => {
                *n -= 1;
                Ok(())
            }
            None => Ok(()),
        }
    }
}

fn exists(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok()
}

fn sync_dir(dir: &Path) -> Result<(), BackupError> {
    fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io_err(format!("while syncing {}", dir.display())))
}

fn names(dir: &Path, skip: impl Fn(&str) -> bool) -> Result<Vec<String>, BackupError> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_err(format!("while listing {}", dir.display())))? {
        let entry = entry.map_err(io_err(format!("while listing {}", dir.display())))?;
        let name = entry.file_name().into_string().map_err(|n| BackupError::Io {
            context: format!("while listing {}", dir.display()),
            source: io::Error::other(format!("a name that is not UTF-8: {n:?}")),
        })?;
        if !skip(&name) {
            out.push(name);
        }
    }
    out.sort();
    Ok(out)
}

fn remove_path(path: &Path) -> Result<(), BackupError> {
    let result = match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) => Err(e),
    };
    match result {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_err(format!("while removing {}", path.display()))(e)),
        _ => Ok(()),
    }
}

/// Swaps `plan.incoming` into `data_dir` as described in the module docs.
pub(super) fn swap(data_dir: &Path, plan: Plan<'_>, steps: &mut Steps) -> Result<(), BackupError> {
    let outgoing = data_dir.join(plan.outgoing);
    remove_path(&outgoing)?;
    fs::create_dir(&outgoing).map_err(io_err("while creating the directory for the replaced data"))?;
    let keep = |n: &str| plan.keep.contains(&n);
    let journal = Journal {
        incoming: plan.incoming.to_path_buf(),
        outgoing: plan.outgoing.to_path_buf(),
        out: names(data_dir, keep)?,
        into: names(&data_dir.join(plan.incoming), |n| keep(n) && exists(&data_dir.join(n)))?,
        remove: plan.remove,
        moved: false,
    };
    steps.take()?;
    write_journal(data_dir, &journal)?;
    if let Err(e) = roll_forward(data_dir, &journal, steps) {
        if matches!(e, BackupError::Interrupted) {
            return Err(e);
        }
        if read_journal(data_dir).is_ok_and(|j| j.is_some_and(|j| j.moved)) {
            // Swapped; only clearing up failed, which the next start retries.
            tracing::warn!(error = %e, "restore swapped in; clearing its leftovers failed");
            return Ok(());
        }
        tracing::error!(error = %e, "restore swap failed; putting the previous data back");
        undo(data_dir, &journal);
        return Err(e);
    }
    Ok(())
}

/// Writes `journal` aside, synced, and renames it in.
fn write_journal(data_dir: &Path, journal: &Journal) -> Result<(), BackupError> {
    let text = serde_json::to_vec_pretty(journal).expect("journal serializes");
    let tmp = data_dir.join(JOURNAL_TMP);
    let mut file = fs::File::create(&tmp).map_err(io_err("while writing the restore journal"))?;
    file.write_all(&text).and_then(|()| file.sync_all()).map_err(io_err("while writing the restore journal"))?;
    fs::rename(&tmp, data_dir.join(JOURNAL)).map_err(io_err("while writing the restore journal"))?;
    sync_dir(data_dir)
}

fn roll_forward(data_dir: &Path, j: &Journal, steps: &mut Steps) -> Result<(), BackupError> {
    if !j.moved {
        let outgoing = data_dir.join(&j.outgoing);
        let incoming = data_dir.join(&j.incoming);
        if !outgoing.is_dir() {
            fs::create_dir(&outgoing).map_err(io_err("while creating the directory for the replaced data"))?;
        }
        for name in &j.out {
            let (here, aside) = (data_dir.join(name), outgoing.join(name));
            if exists(&here) && !exists(&aside) {
                steps.take()?;
                fs::rename(&here, &aside).map_err(io_err(format!("while moving {name} aside")))?;
            }
        }
        for name in &j.into {
            let (staged, here) = (incoming.join(name), data_dir.join(name));
            if exists(&staged) {
                steps.take()?;
                fs::rename(&staged, &here).map_err(io_err(format!("while moving the restored {name} in")))?;
            }
        }
        sync_dir(data_dir)?;
        sync_dir(&outgoing)?;
        steps.take()?;
        write_journal(data_dir, &Journal { moved: true, ..j.clone() })?;
    }
    for path in &j.remove {
        steps.take()?;
        remove_path(&data_dir.join(path))?;
    }
    steps.take()?;
    fs::remove_file(data_dir.join(JOURNAL)).map_err(io_err("while removing the restore journal"))?;
    sync_dir(data_dir)
}

/// Puts the moved entries back after a swap failed (not crashed) midway.
fn undo(data_dir: &Path, j: &Journal) {
    let (outgoing, incoming) = (data_dir.join(&j.outgoing), data_dir.join(&j.incoming));
    for name in &j.into {
        if exists(&data_dir.join(name)) && !exists(&incoming.join(name)) {
            let _ = fs::rename(data_dir.join(name), incoming.join(name));
        }
    }
    for name in &j.out {
        if exists(&outgoing.join(name)) && !exists(&data_dir.join(name)) {
            let _ = fs::rename(outgoing.join(name), data_dir.join(name));
        }
    }
    let _ = fs::remove_file(data_dir.join(JOURNAL));
}

fn read_journal(data_dir: &Path) -> Result<Option<Journal>, BackupError> {
    let text = match fs::read(data_dir.join(JOURNAL)) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err("while reading the restore journal")(e)),
    };
    serde_json::from_slice(&text).map(Some).map_err(|e| BackupError::Io {
        context: "while reading the restore journal".into(),
        source: io::Error::other(e),
    })
}

/// Finishes a swap a crash interrupted. Returns whether one was pending.
pub(super) fn finish(data_dir: &Path) -> Result<bool, BackupError> {
    let _ = fs::remove_file(data_dir.join(JOURNAL_TMP));
    let Some(journal) = read_journal(data_dir)? else { return Ok(false) };
    let plain = |p: &Path| p.components().all(|c| matches!(c, std::path::Component::Normal(_)));
    if !plain(&journal.incoming) || !plain(&journal.outgoing) || !journal.remove.iter().all(|p| plain(p)) {
        return Err(BackupError::Corrupt("the restore journal names paths outside the data directory".into()));
    }
    tracing::warn!(journal = %data_dir.join(JOURNAL).display(), "finishing a restore that was interrupted");
    roll_forward(data_dir, &journal, &mut Steps(None))?;
    Ok(true)
}
