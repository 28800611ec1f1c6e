//! The apply loop: validate a rendered tree, snapshot the live one, swap
//! atomically, reload, probe, and restore on any failure.
//!
//! Layout next to `live_dir` (say `/data/nginx/current`):
//! `current` is a symlink to `trees/<id>`; a new tree is written to
//! `trees/<new id>`, validated there (includes are relative to `nginx.conf`),
//! and made live by renaming a fresh symlink over `current`, which is atomic.

use std::fs;
use std::io;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::diff::unified;
use super::journal::{self, Pending};
use super::model::RenderedTree;
use super::reloader::{Probe, Reloader};
use super::side_by_side::{FileDiff, side_by_side};
use super::snapshot::{self, SnapshotMeta};

/// Why an apply or rollback did not take effect.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// `nginx -t` refused the tree; the live tree was not touched.
    #[error("nginx rejected the configuration")]
    Invalid {
        /// nginx's own error lines.
        details: Vec<String>,
    },
    /// The reload failed; the previous tree was restored and reloaded.
    #[error("nginx reload failed; previous configuration restored")]
    ReloadFailed {
        /// nginx's output, plus any failure of the restoring reload.
        details: Vec<String>,
    },
    /// The probe failed after reload; the previous tree was restored.
    #[error("nginx did not answer after reload; previous configuration restored")]
    ProbeFailed {
        /// What the probe saw, plus any failure of the restoring reload.
        details: Vec<String>,
    },
    /// No snapshot with this id (or the id is malformed).
    #[error("unknown snapshot {0:?}")]
    UnknownSnapshot(String),
    /// Filesystem trouble.
    #[error("nginx config files: {0}")]
    Io(#[from] io::Error),
}

/// What a successful apply did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplyOutcome {
    /// False when the tree equalled the live one (nginx was still reloaded,
    /// so renewed certificate files are picked up).
    pub changed: bool,
    /// Snapshot of the tree that was replaced, if any.
    pub snapshot: Option<String>,
    /// Files in the now-live tree.
    pub files: usize,
}

/// Owns the live tree and its snapshots. One apply at a time.
pub struct Applier {
    live_dir: PathBuf,
    trees_dir: PathBuf,
    snapshots_dir: PathBuf,
    keep: usize,
    reloader: Box<dyn Reloader>,
    probe: Option<Box<dyn Probe>>,
    lock: Mutex<()>,
}

impl Applier {
    /// `live_dir` is the stable path nginx is started with (a symlink managed
    /// here); trees live in its sibling `trees/`. `keep` is how many snapshots
    /// stay.
    pub fn new(
        live_dir: impl Into<PathBuf>,
        snapshots_dir: impl Into<PathBuf>,
        keep: usize,
        reloader: Box<dyn Reloader>,
    ) -> Self {
        let live_dir = live_dir.into();
        let trees_dir = live_dir.parent().unwrap_or(Path::new("/")).join("trees");
        Applier {
            live_dir,
            trees_dir,
            snapshots_dir: snapshots_dir.into(),
            keep,
            reloader,
            probe: None,
            lock: Mutex::new(()),
        }
    }

    /// Adds a check run after every reload; failure restores the previous tree.
    pub fn with_probe(mut self, probe: Box<dyn Probe>) -> Self {
        self.probe = Some(probe);
        self
    }

    /// Validates `tree`, snapshots the live tree, swaps, reloads and probes;
    /// restores the previous tree on any failure after the swap.
    pub fn apply(&self, tree: &RenderedTree, reason: &str) -> Result<ApplyOutcome, ApplyError> {
        let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        self.apply_locked(tree, reason, true)
    }

    /// Like `apply` but without reload and probe: for `portico init`, which
    /// writes the first tree before nginx starts.
    pub fn install(&self, tree: &RenderedTree, reason: &str) -> Result<ApplyOutcome, ApplyError> {
        let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        self.apply_locked(tree, reason, false)
    }

    /// Snapshots, newest first.
    pub fn snapshots(&self) -> Result<Vec<SnapshotMeta>, ApplyError> {
        Ok(snapshot::list(&self.snapshots_dir)?)
    }

    /// Unified diff from snapshot `id` to the live tree.
    pub fn diff(&self, id: &str) -> Result<String, ApplyError> {
        let old = self.snapshot_tree(id)?;
        Ok(unified(&old, &self.live_tree()?))
    }

    /// Side-by-side rows from snapshot `id` (left) to snapshot `against`, or
    /// to the live tree when `against` is `None` (right).
    pub fn compare(&self, id: &str, against: Option<&str>) -> Result<Vec<FileDiff>, ApplyError> {
        let old = self.snapshot_tree(id)?;
        let new = match against {
            Some(other) => self.snapshot_tree(other)?,
            None => self.live_tree()?,
        };
        Ok(side_by_side(&old, &new))
    }

    /// Makes snapshot `id` live again, through the same checks as `apply`.
    /// The tree it replaces is snapshotted, so a rollback can be undone.
    pub fn rollback(&self, id: &str) -> Result<ApplyOutcome, ApplyError> {
        let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let tree = self.snapshot_tree(id)?;
        self.apply_locked(&tree, &format!("rollback to {id}"), true)
    }

    /// The live tree; empty before the first apply.
    pub fn live_tree(&self) -> Result<RenderedTree, ApplyError> {
        match fs::metadata(&self.live_dir) {
            Ok(_) => Ok(snapshot::read_tree(&self.live_dir)?),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(RenderedTree::default()),
            Err(e) => Err(e.into()),
        }
    }

    fn snapshot_tree(&self, id: &str) -> Result<RenderedTree, ApplyError> {
        let unknown = || ApplyError::UnknownSnapshot(id.to_string());
        let dir = snapshot::snapshot_dir(&self.snapshots_dir, id).ok_or_else(unknown)?;
        if !dir.join("meta.json").is_file() {
            return Err(unknown());
        }
        Ok(snapshot::read_tree(&dir.join("tree"))?)
    }

    fn apply_locked(&self, tree: &RenderedTree, reason: &str, reload: bool) -> Result<ApplyOutcome, ApplyError> {
        snapshot::check_tree_paths(tree).map_err(|e| ApplyError::Invalid { details: vec![e] })?;
        fs::create_dir_all(&self.trees_dir)?;
        let owed = self.settle()?;
        let previous = self.adopt_live_dir()?;
        let live = self.live_tree()?;
        if previous.is_some() && live == *tree {
            self.reloader.test(&self.live_dir).map_err(|e| ApplyError::Invalid { details: lines(&e) })?;
            if reload {
                // A failed reload leaves the live link where it is.
                self.reload_and_probe(previous.as_deref())?;
            }
            journal::clear(&self.journal_path())?;
            return Ok(ApplyOutcome { changed: false, snapshot: None, files: tree.files.len() });
        }

        let id = snapshot::fresh_id(&[&self.trees_dir, &self.snapshots_dir]);
        let new_dir = self.trees_dir.join(&id);
        journal::write(&self.journal_path(), &Pending { id: id.clone(), previous: previous.clone() })?;
        // Before the swap, nginx still runs what it ran: the journal goes
        // unless an earlier interruption still owes a reload.
        let abandon = |e: ApplyError| -> ApplyError {
            let _ = journal::remove_dir(&new_dir);
            let _ = snapshot::remove(&self.snapshots_dir, &id);
            if !owed {
                let _ = journal::clear(&self.journal_path());
            }
            e
        };
        if let Err(e) = snapshot::write_tree(&new_dir, tree) {
            return Err(abandon(e.into()));
        }
        if let Err(e) = self.reloader.test(&new_dir) {
            return Err(abandon(ApplyError::Invalid { details: lines(&e) }));
        }
        let snap = match &previous {
            Some(_) => match snapshot::create(&self.snapshots_dir, &id, &live, reason) {
                Ok(s) => Some(s),
                Err(e) => return Err(abandon(e.into())),
            },
            None => None,
        };
        if let Err(e) = self.point_live_at(Some(&new_dir)) {
            return Err(abandon(e.into()));
        }
        if let Err(err) = if reload { self.reload_and_probe(previous.as_deref()) } else { Ok(()) } {
            let _ = journal::remove_dir(&new_dir);
            if snap.is_some() {
                // The live tree is the snapshotted one again.
                let _ = snapshot::remove(&self.snapshots_dir, &id);
            }
            let _ = journal::clear(&self.journal_path());
            return Err(err);
        }
        if let Some(prev) = previous {
            journal::remove_dir(&prev)?;
        }
        snapshot::prune(&self.snapshots_dir, self.keep)?;
        journal::clear(&self.journal_path())?;
        Ok(ApplyOutcome { changed: true, snapshot: snap.map(|s| s.id), files: tree.files.len() })
    }

    fn journal_path(&self) -> PathBuf {
        self.live_dir.parent().unwrap_or(Path::new("/")).join("applying.json")
    }

    /// Whether an apply was interrupted (the process died between writing
    /// its tree and nginx running the outcome): nginx then owes a reload,
    /// which the next [`Applier::apply`] gives it.
    pub fn interrupted(&self) -> Result<bool, ApplyError> {
        Ok(journal::read(&self.journal_path())?.is_some())
    }

    /// Finishes or undoes an interrupted apply (see [`journal`]) and removes
    /// what an interruption can leave: trees other than the live one,
    /// half-written snapshots, a stray swap link. Returns whether an
    /// interrupted apply was found. Idempotent; the journal itself is
    /// cleared by the next apply, once nginx has reloaded.
    fn settle(&self) -> Result<bool, ApplyError> {
        let found = journal::read(&self.journal_path())?;
        let live_target = self.live_target()?;
        if let Some(Some(p)) = &found
            && snapshot::valid_id(&p.id)
        {
            let new_dir = self.trees_dir.join(&p.id);
            if live_target.as_deref() == Some(new_dir.as_path()) {
                tracing::warn!(tree = %p.id, "finishing an interrupted nginx apply");
                snapshot::prune(&self.snapshots_dir, self.keep)?;
            } else {
                tracing::warn!(tree = %p.id, "undoing an interrupted nginx apply");
                snapshot::remove(&self.snapshots_dir, &p.id)?;
            }
        }
        if let Ok(entries) = fs::read_dir(&self.trees_dir) {
            for entry in entries {
                let path = entry?.path();
                if Some(&path) != live_target.as_ref() {
                    journal::remove_dir(&path)?;
                }
            }
        }
        snapshot::remove_partial(&self.snapshots_dir)?;
        let name = self.live_dir.file_name().and_then(|n| n.to_str()).unwrap_or("live");
        let swap = self.live_dir.parent().unwrap_or(Path::new("/")).join(format!(".{name}.swap"));
        match fs::remove_file(&swap) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e.into()),
            _ => {}
        }
        Ok(found.is_some())
    }

    /// Where the live link points (absolute), when it is a link.
    fn live_target(&self) -> io::Result<Option<PathBuf>> {
        match fs::symlink_metadata(&self.live_dir) {
            Ok(m) if m.file_type().is_symlink() => {
                let base = self.live_dir.parent().unwrap_or(Path::new("/"));
                Ok(Some(base.join(fs::read_link(&self.live_dir)?)))
            }
            Ok(_) => Ok(None),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Reloads and probes; on failure points the live link back at `restore`
    /// (or removes it when there was nothing before) and reloads again.
    fn reload_and_probe(&self, restore: Option<&Path>) -> Result<(), ApplyError> {
        let failure = match self.reloader.reload() {
            Err(e) => Some((true, lines(&e))),
            Ok(()) => match self.probe.as_ref().map(|p| p.check()) {
                Some(Err(e)) => Some((false, lines(&e))),
                _ => None,
            },
        };
        let Some((reload_failed, mut details)) = failure else {
            return Ok(());
        };
        match self.point_live_at(restore) {
            Err(e) => details.push(format!("restoring the previous tree failed: {e}")),
            Ok(()) if restore.is_some() => {
                if let Err(e) = self.reloader.reload() {
                    details.push("reloading the previous tree failed:".into());
                    details.extend(lines(&e));
                }
            }
            Ok(()) => {}
        }
        Err(if reload_failed { ApplyError::ReloadFailed { details } } else { ApplyError::ProbeFailed { details } })
    }

    /// The directory the live link points at. A real directory left at the
    /// live path (first start of an older layout) is moved into `trees/`.
    fn adopt_live_dir(&self) -> io::Result<Option<PathBuf>> {
        let meta = match fs::symlink_metadata(&self.live_dir) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        if meta.file_type().is_symlink() {
            let target = fs::read_link(&self.live_dir)?;
            let base = self.live_dir.parent().unwrap_or(Path::new("/"));
            return Ok(Some(base.join(target)));
        }
        let adopted = self.trees_dir.join(snapshot::fresh_id(&[&self.trees_dir, &self.snapshots_dir]));
        fs::rename(&self.live_dir, &adopted)?;
        self.point_live_at(Some(&adopted))?;
        Ok(Some(adopted))
    }

    /// Atomically re-points the live symlink (a new link renamed over the old
    /// one); `None` removes it.
    fn point_live_at(&self, target: Option<&Path>) -> io::Result<()> {
        let Some(target) = target else {
            return match fs::remove_file(&self.live_dir) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            };
        };
        let base = self.live_dir.parent().unwrap_or(Path::new("/"));
        let relative = target.strip_prefix(base).unwrap_or(target);
        let name = self.live_dir.file_name().and_then(|n| n.to_str()).unwrap_or("live");
        let tmp = base.join(format!(".{name}.swap"));
        let _ = fs::remove_file(&tmp);
        symlink(relative, &tmp)?;
        fs::rename(&tmp, &self.live_dir)
    }
}

fn lines(text: &str) -> Vec<String> {
    text.lines().map(str::trim).filter(|l| !l.is_empty()).map(String::from).collect()
}
