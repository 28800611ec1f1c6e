//! On-disk trees and snapshots: `<dir>/<id>/meta.json` plus `<dir>/<id>/tree/`.
//! Ids are UTC timestamps with microseconds, so name order is age order.

use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::macros::format_description;

use super::model::RenderedTree;

/// What the panel lists for each snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotMeta {
    /// Directory name; also what `diff` and `rollback` take.
    pub id: String,
    /// When the snapshot was taken (just before the tree was replaced).
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Reason of the change that replaced this tree.
    pub reason: String,
    /// Number of files in the tree.
    pub files: usize,
}

/// Ids are 1..=40 characters of `[0-9A-Za-z-]`: never a path separator or `..`.
pub fn valid_id(id: &str) -> bool {
    (1..=40).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// A fresh id not yet used in any of `dirs`.
pub fn fresh_id(dirs: &[&Path]) -> String {
    let format = format_description!("[year][month][day]T[hour][minute][second][subsecond digits:6]Z");
    let mut micros = OffsetDateTime::now_utc().unix_timestamp_nanos() / 1000;
    loop {
        let t = OffsetDateTime::from_unix_timestamp_nanos(micros * 1000).expect("clock in range");
        let id = t.format(&format).expect("static format");
        if dirs.iter().all(|d| !d.join(&id).exists() && !d.join(format!(".tmp-{id}")).exists()) {
            return id;
        }
        micros += 1;
    }
}

/// Refuses tree paths that are absolute or climb out of the tree.
pub fn check_tree_paths(tree: &RenderedTree) -> Result<(), String> {
    for p in tree.files.keys() {
        let ok = !p.as_os_str().is_empty() && p.components().all(|c| matches!(c, Component::Normal(_)));
        if !ok {
            return Err(format!("unsafe path in rendered tree: {}", p.display()));
        }
    }
    Ok(())
}

/// Writes every file of `tree` under `dir` (created).
pub fn write_tree(dir: &Path, tree: &RenderedTree) -> io::Result<()> {
    fs::create_dir_all(dir)?;
    for (rel, body) in &tree.files {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)?;
        }
        fs::write(path, body)?;
    }
    Ok(())
}

/// Reads every regular file under `dir` back into a tree.
pub fn read_tree(dir: &Path) -> io::Result<RenderedTree> {
    fn walk(root: &Path, dir: &Path, tree: &mut RenderedTree) -> io::Result<()> {
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            let path = entry.path();
            let kind = entry.file_type()?;
            if kind.is_dir() {
                walk(root, &path, tree)?;
            } else if kind.is_file() {
                let rel = path.strip_prefix(root).map_err(io::Error::other)?.to_path_buf();
                tree.files.insert(rel, fs::read_to_string(&path)?);
            }
        }
        Ok(())
    }
    let mut tree = RenderedTree::default();
    walk(dir, dir, &mut tree)?;
    Ok(tree)
}

/// The snapshot directory of one id, after validating the id.
pub fn snapshot_dir(root: &Path, id: &str) -> Option<PathBuf> {
    valid_id(id).then(|| root.join(id))
}

/// Stores `tree` as snapshot `id`; written aside and renamed in, so a
/// half-written snapshot never shows up in the list.
pub fn create(root: &Path, id: &str, tree: &RenderedTree, reason: &str) -> io::Result<SnapshotMeta> {
    fs::create_dir_all(root)?;
    let id = id.to_string();
    let meta = SnapshotMeta {
        id: id.clone(),
        created_at: OffsetDateTime::now_utc(),
        reason: reason.to_string(),
        files: tree.files.len(),
    };
    let tmp = root.join(format!(".tmp-{id}"));
    let _ = fs::remove_dir_all(&tmp);
    write_tree(&tmp.join("tree"), tree)?;
    fs::write(tmp.join("meta.json"), serde_json::to_vec_pretty(&meta).map_err(io::Error::other)?)?;
    fs::rename(&tmp, root.join(&id))?;
    Ok(meta)
}

/// Removes snapshot `id` and its half-written form, if any.
pub fn remove(root: &Path, id: &str) -> io::Result<()> {
    super::journal::remove_dir(&root.join(format!(".tmp-{id}")))?;
    super::journal::remove_dir(&root.join(id))
}

/// Removes half-written snapshots (`.tmp-*`) left by an interrupted apply.
pub fn remove_partial(root: &Path) -> io::Result<()> {
    let entries = match fs::read_dir(root) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        if entry.file_name().to_str().is_some_and(|n| n.starts_with(".tmp-")) {
            super::journal::remove_dir(&entry.path())?;
        }
    }
    Ok(())
}

/// All snapshots, newest first. Entries with unreadable metadata are skipped.
pub fn list(root: &Path) -> io::Result<Vec<SnapshotMeta>> {
    let mut out = Vec::new();
    let entries = match fs::read_dir(root) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let name = entry?.file_name();
        let Some(id) = name.to_str().filter(|n| valid_id(n)) else {
            continue;
        };
        let Ok(bytes) = fs::read(root.join(id).join("meta.json")) else {
            continue;
        };
        if let Ok(meta) = serde_json::from_slice::<SnapshotMeta>(&bytes) {
            out.push(meta);
        }
    }
    out.sort_by(|a, b| b.id.cmp(&a.id));
    Ok(out)
}

/// Deletes all but the newest `keep` snapshots.
pub fn prune(root: &Path, keep: usize) -> io::Result<()> {
    for old in list(root)?.into_iter().skip(keep) {
        fs::remove_dir_all(root.join(&old.id))?;
    }
    Ok(())
}
