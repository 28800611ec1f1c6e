//! The apply journal: `<nginx dir>/applying.json` names the tree an apply is
//! about to make live and the one it replaces. It is written before the new
//! tree and removed once nginx runs the outcome, so a process killed in
//! between leaves a record of what to finish or undo.
//!
//! The swap of the live link is the commit point: when the link points at
//! the new tree the apply happened (the replaced tree goes, its snapshot
//! stays); otherwise it did not (the new tree and its snapshot go). Either
//! way nginx may run something else than the live tree, so a reload is owed.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// What an apply in progress is changing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    /// Id of the new tree under `trees/` and of the snapshot of the replaced one.
    pub id: String,
    /// The tree the live link pointed at before, if any.
    pub previous: Option<PathBuf>,
}

/// Writes the journal at `path` (aside, then renamed in: never half a record).
pub fn write(path: &Path, pending: &Pending) -> io::Result<()> {
    let tmp = path.with_extension("json.tmp");
    let mut f = fs::File::create(&tmp)?;
    f.write_all(&serde_json::to_vec(pending).map_err(io::Error::other)?)?;
    f.sync_all()?;
    fs::rename(&tmp, path)
}

/// The journal, if an apply was interrupted. An unreadable one (which the
/// rename above rules out) counts as an interruption of unknown shape.
pub fn read(path: &Path) -> io::Result<Option<Option<Pending>>> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(serde_json::from_slice(&bytes).ok())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Removes the journal (and a stray temporary one).
pub fn clear(path: &Path) -> io::Result<()> {
    for p in [path.to_path_buf(), path.with_extension("json.tmp")] {
        match fs::remove_file(&p) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    Ok(())
}

/// Removes a directory tree; one already gone is fine.
pub fn remove_dir(dir: &Path) -> io::Result<()> {
    match fs::remove_dir_all(dir) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}
