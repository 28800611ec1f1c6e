//! A backup archive offered for restore (from a file of unknown origin),
//! after decryption: unpacking never writes outside its staging directory,
//! never writes through a link, and never leaves a link that resolves
//! outside the data directory the staging directory becomes.

use std::path::{Component, Path, PathBuf};

use arbitrary::{Arbitrary, Unstructured};
use portico::fuzzing::unpack_backup_tar;

use crate::split_mode;

#[derive(Arbitrary, Debug)]
enum Kind {
    File(Vec<u8>),
    Dir,
    Symlink(String),
    Hardlink(String),
    Other(u8),
}

#[derive(Arbitrary, Debug)]
struct Entry {
    path: String,
    kind: Kind,
    mode: u16,
}

#[derive(Arbitrary, Debug)]
struct Archive {
    manifest: bool,
    database: bool,
    entries: Vec<Entry>,
}

fn raw_header(path: &str, kind: tar::EntryType, size: u64, mode: u16, link: &str) -> tar::Header {
    let mut h = tar::Header::new_old();
    let old = h.as_old_mut();
    let n = path.len().min(99);
    old.name[..n].copy_from_slice(&path.as_bytes()[..n]);
    let l = link.len().min(99);
    old.linkname[..l].copy_from_slice(&link.as_bytes()[..l]);
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(u32::from(mode));
    h.set_mtime(0);
    h.set_cksum();
    h
}

impl Archive {
    fn tar(&self) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let mut add = |path: &str, kind: tar::EntryType, data: &[u8], mode: u16, link: &str| {
            let h = raw_header(path, kind, data.len() as u64, mode, link);
            b.append(&h, data).expect("in memory");
        };
        if self.manifest {
            let m = br#"{"format":1,"created_at":0,"version":"0.1.0"}"#;
            add("portico-backup.json", tar::EntryType::Regular, m, 0o600, "");
        }
        if self.database {
            add("portico.db", tar::EntryType::Regular, b"SQLite format 3\0", 0o600, "");
        }
        for e in self.entries.iter().take(32) {
            match &e.kind {
                Kind::File(d) => add(&e.path, tar::EntryType::Regular, &d[..d.len().min(4096)], e.mode, ""),
                Kind::Dir => add(&e.path, tar::EntryType::Directory, &[], e.mode, ""),
                Kind::Symlink(t) => add(&e.path, tar::EntryType::Symlink, &[], e.mode, t),
                Kind::Hardlink(t) => add(&e.path, tar::EntryType::Link, &[], e.mode, t),
                Kind::Other(k) => add(&e.path, tar::EntryType::new(*k), &[], e.mode, ""),
            }
        }
        b.into_inner().expect("in memory")
    }
}

/// `path` with `.` and `..` resolved by name; `None` when it climbs above
/// its start.
fn lexical(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::CurDir => {}
            Component::Normal(n) => out.push(n),
            _ => return None,
        }
    }
    Some(out)
}

/// Walks `dir` (without following links) and checks every link in it.
fn check_tree(staging: &Path, rel: &Path) {
    let Ok(entries) = std::fs::read_dir(staging.join(rel)) else { return };
    for entry in entries.flatten() {
        let rel = rel.join(entry.file_name());
        let meta = std::fs::symlink_metadata(staging.join(&rel)).expect("an entry just listed");
        if meta.file_type().is_symlink() {
            let target = std::fs::read_link(staging.join(&rel)).expect("a link");
            let from = rel.parent().unwrap_or(Path::new(""));
            assert!(lexical(&from.join(&target)).is_some(), "{} -> {} leaves the data dir", rel.display(), target.display());
        } else if meta.is_dir() {
            // Modes from the archive must not stop the walk or the cleanup.
            let open = std::os::unix::fs::PermissionsExt::from_mode(0o700);
            std::fs::set_permissions(staging.join(&rel), open).expect("a directory");
            check_tree(staging, &rel);
        }
    }
}

fn scratch() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() { tempfile::tempdir_in(shm) } else { tempfile::tempdir() }.expect("a temp dir")
}

pub fn run(data: &[u8]) {
    let (mode, rest) = split_mode(data);
    let tar = if mode & 1 == 1 {
        let Ok(archive) = Archive::arbitrary(&mut Unstructured::new(rest)) else { return };
        archive.tar()
    } else {
        rest.to_vec()
    };
    let root = scratch();
    let staging = root.path().join("data");
    std::fs::create_dir(&staging).unwrap();
    std::fs::write(root.path().join("outside"), b"untouched").unwrap();
    let _ = unpack_backup_tar(&tar, &staging);
    let mut names: Vec<_> = std::fs::read_dir(root.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    names.sort();
    assert_eq!(names, ["data", "outside"], "an entry was written outside the staging directory");
    assert_eq!(std::fs::read(root.path().join("outside")).unwrap(), b"untouched");
    check_tree(&staging, Path::new(""));
}
