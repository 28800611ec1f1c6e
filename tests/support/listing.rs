//! A full listing of a data directory for comparisons: path, type, mode,
//! size, sha256 and link target of every entry, sorted. The database files,
//! logs, backups and the restore's own entries are left out (the database
//! is compared as a logical dump).

use std::path::Path;

use sha2::{Digest, Sha256};

/// Top-level names a listing leaves out.
pub const LEFT_OUT: &[&str] = &[
    "portico.db",
    "portico.db-wal",
    "portico.db-shm",
    "portico.db-journal",
    "logs",
    "backups",
    "lost+found",
    ".restore",
    ".restore-staging",
    ".restore-previous",
    ".restore-discarded",
    ".restore-check.json",
    ".restore-journal",
    ".restore-journal.tmp",
];

/// One line per entry: `path type mode size sha256 target`.
pub fn listing(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    walk(root, Path::new(""), &mut out);
    out.sort();
    out
}

fn walk(root: &Path, rel: &Path, out: &mut Vec<String>) {
    use std::os::unix::fs::PermissionsExt;
    let Ok(entries) = std::fs::read_dir(root.join(rel)) else { return };
    for entry in entries.map(|e| e.unwrap()) {
        let name = entry.file_name().into_string().unwrap();
        if rel.as_os_str().is_empty() && LEFT_OUT.contains(&name.as_str()) {
            continue;
        }
        let path = rel.join(&name);
        let meta = std::fs::symlink_metadata(entry.path()).unwrap();
        let mode = meta.permissions().mode() & 0o7777;
        let kind = meta.file_type();
        let line = if kind.is_symlink() {
            let target = std::fs::read_link(entry.path()).unwrap();
            format!("{} link {mode:o} - - {}", path.display(), target.display())
        } else if kind.is_dir() {
            walk(root, &path, out);
            format!("{} dir {mode:o} - - -", path.display())
        } else {
            let bytes = std::fs::read(entry.path()).unwrap();
            let sum = hex::encode(Sha256::digest(&bytes));
            format!("{} file {mode:o} {} {sum} -", path.display(), bytes.len())
        };
        out.push(line);
    }
}
