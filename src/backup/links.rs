//! Symbolic links in the data directory, archived and restored as links.
//!
//! The ACME store keeps `acme/certs/<name>` as a link to a version directory
//! (see [`crate::acme::files`]); a backup without it has no certificates. A
//! link is archived only when it resolves inside the data directory, and
//! always with a relative target, so a restore onto another path (a fresh
//! volume) still points at its own files.
//!
//! The rule for a target (checked on backup and on restore): relative, some
//! leading `..` — no more than the link's depth below the data dir — then
//! plain names only. Every link then lands inside the data directory, even
//! when its names pass through other links (each of which lands inside too),
//! and a restore writes links only after every file and directory, so no
//! entry is ever written through one.

use std::path::{Component, Path, PathBuf};

use super::BackupError;

/// Whether `target`, the target of a link at `rel` (relative to the data
/// dir), stays inside the data dir by the rule above.
pub(super) fn stays_inside(rel: &Path, target: &Path) -> bool {
    let depth = rel.components().count().saturating_sub(1);
    let (mut ups, mut names) = (0usize, 0usize);
    for c in target.components() {
        match c {
            Component::ParentDir if names == 0 => ups += 1,
            Component::Normal(_) => names += 1,
            Component::CurDir => {}
            _ => return false,
        }
    }
    !target.as_os_str().is_empty() && ups <= depth
}

/// `path` with `.` and `..` resolved by name (no file system access).
fn lexical(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// The target a link at `rel` (found with `target`) is archived with:
/// relative targets that follow the rule as they are; absolute ones inside
/// `data_dir` rewritten relative to the link. Anything else is refused with
/// the link's path, so no backup silently drops a link.
pub(super) fn archived_target(data_dir: &Path, rel: &Path, target: &Path) -> Result<PathBuf, BackupError> {
    let outside = || BackupError::UnsafeLink { path: rel.to_path_buf(), target: target.to_path_buf() };
    if target.is_relative() {
        return if stays_inside(rel, target) { Ok(target.to_path_buf()) } else { Err(outside()) };
    }
    let root = std::path::absolute(data_dir).map(|p| lexical(&p)).map_err(|_| outside())?;
    let inside = lexical(target).strip_prefix(&root).map_err(|_| outside())?.to_path_buf();
    let depth = rel.components().count().saturating_sub(1);
    let mut relative: PathBuf = std::iter::repeat_n(Component::ParentDir.as_os_str(), depth).collect();
    relative.push(&inside);
    if relative.as_os_str().is_empty() {
        relative.push(".");
    }
    Ok(relative)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_inside_and_outside() {
        let cases: &[(&str, &str, bool)] = &[
            ("acme/certs/a.example.com", "../versions/a.example.com/1-ab", true),
            ("acme/certs/a", "../../sites/x", true),
            ("acme/certs/a", "../../..", false),
            ("acme/certs/a", "../../../etc/passwd", false),
            ("top", "pki/ca.crt", true),
            ("top", "../outside", false),
            ("sites/x", "a/../../..", false),
            ("sites/x", "a/../b", false),
            ("sites/x", "/etc/passwd", false),
            ("sites/x", "", false),
            ("sites/x", "..", true),
        ];
        for (rel, target, inside) in cases {
            assert_eq!(stays_inside(Path::new(rel), Path::new(target)), *inside, "{rel} -> {target}");
        }
    }

    #[test]
    fn absolute_links_inside_the_data_dir_are_archived_relative() {
        let root = Path::new("/data");
        let got = archived_target(root, Path::new("acme/certs/a"), Path::new("/data/acme/versions/a/1")).unwrap();
        assert_eq!(got, Path::new("../../acme/versions/a/1"));
        assert!(stays_inside(Path::new("acme/certs/a"), &got));
        let same = archived_target(root, Path::new("acme/certs/a"), Path::new("../versions/a/1")).unwrap();
        assert_eq!(same, Path::new("../versions/a/1"));
        for outside in ["/etc/passwd", "/data/../etc", "/database", "../../../x"] {
            let err = archived_target(root, Path::new("acme/certs/a"), Path::new(outside)).unwrap_err();
            assert!(err.to_string().contains("acme/certs/a"), "{err}");
        }
    }
}
