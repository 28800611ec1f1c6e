//! File handling for the PKI directory: atomic writes with explicit modes.
//!
//! Every file is written to a temporary name in the same directory, synced,
//! then renamed over the target, and the directory is synced, so a crash
//! leaves either the old or the new content, never a torn file.

use std::fs::{self, File, OpenOptions, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::PkiError;

/// Mode for private keys and secrets.
pub(crate) const MODE_SECRET: u32 = 0o600;
/// Mode for certificates (public material).
pub(crate) const MODE_PUBLIC: u32 = 0o644;

/// Builds a `PkiError::Io` with a context naming the path.
pub(crate) fn io_err(what: &str, path: &Path) -> impl FnOnce(io::Error) -> PkiError {
    let context = format!("{what} {}", path.display());
    move |source| PkiError::Io { context, source }
}

/// A file written under a temporary name, waiting to be renamed into place.
pub(crate) struct Staged {
    tmp: PathBuf,
    target: PathBuf,
}

impl Drop for Staged {
    fn drop(&mut self) {
        // Only present if `commit` did not rename it.
        let _ = fs::remove_file(&self.tmp);
    }
}

/// Writes `data` to a synced temporary file next to `target` with `mode`.
pub(crate) fn stage(target: &Path, data: &[u8], mode: u32) -> Result<Staged, PkiError> {
    let dir = parent(target);
    let name = target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let mut nonce = [0u8; 6];
    rand::fill(&mut nonce[..]);
    let tmp = dir.join(format!(".{name}.tmp-{}", hex::encode(nonce)));
    let staged = Staged { tmp: tmp.clone(), target: target.to_path_buf() };
    let mut file =
        OpenOptions::new().write(true).create_new(true).mode(mode).open(&tmp).map_err(io_err("create", &tmp))?;
    // The mode given to open() is filtered by the umask; set it exactly.
    file.set_permissions(Permissions::from_mode(mode)).map_err(io_err("chmod", &tmp))?;
    file.write_all(data).map_err(io_err("write", &tmp))?;
    file.sync_all().map_err(io_err("sync", &tmp))?;
    Ok(staged)
}

/// Renames staged files into place in order, then syncs their directories.
pub(crate) fn commit(staged: Vec<Staged>) -> Result<(), PkiError> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    for s in &staged {
        fs::rename(&s.tmp, &s.target).map_err(io_err("rename into", &s.target))?;
        let dir = parent(&s.target).to_path_buf();
        if !dirs.contains(&dir) {
            dirs.push(dir);
        }
    }
    for dir in dirs {
        File::open(&dir).and_then(|d| d.sync_all()).map_err(io_err("sync directory", &dir))?;
    }
    Ok(())
}

/// Atomically replaces (or creates) `target` with `data` and `mode`.
pub(crate) fn write_atomic(target: &Path, data: &[u8], mode: u32) -> Result<(), PkiError> {
    commit(vec![stage(target, data, mode)?])
}

/// Creates a directory (and parents) if missing.
pub(crate) fn ensure_dir(dir: &Path) -> Result<(), PkiError> {
    fs::create_dir_all(dir).map_err(io_err("create directory", dir))
}

/// Reads a file that must exist once the PKI is initialized; a missing file
/// becomes `NotInitialized`.
pub(crate) fn read_required(path: &Path) -> Result<Vec<u8>, PkiError> {
    match fs::read(path) {
        Ok(bytes) => Ok(bytes),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(PkiError::NotInitialized),
        Err(e) => Err(io_err("read", path)(e)),
    }
}

/// Like [`read_required`] but for text files.
pub(crate) fn read_required_string(path: &Path) -> Result<String, PkiError> {
    let bytes = read_required(path)?;
    String::from_utf8(bytes).map_err(|_| PkiError::Cert(format!("{} is not UTF-8", path.display())))
}

/// Whether a path exists; errors other than "not found" are reported.
pub(crate) fn exists(path: &Path) -> Result<bool, PkiError> {
    path.try_exists().map_err(io_err("stat", path))
}

/// Removes a file if it exists and syncs its directory.
pub(crate) fn remove(path: &Path) -> Result<(), PkiError> {
    match fs::remove_file(path) {
        Ok(()) => {
            let dir = parent(path);
            File::open(dir).and_then(|d| d.sync_all()).map_err(io_err("sync directory", dir))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err("remove", path)(e)),
    }
}

fn parent(path: &Path) -> &Path {
    path.parent().unwrap_or_else(|| Path::new("."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pki_write_atomic_sets_mode_and_leaves_no_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("secret.key");
        write_atomic(&target, b"one", MODE_SECRET).unwrap();
        write_atomic(&target, b"two", MODE_SECRET).unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"two");
        let mode = fs::metadata(&target).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("secret.key")]);
    }

    #[test]
    fn pki_dropped_stage_removes_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("a.crt");
        drop(stage(&target, b"x", MODE_PUBLIC).unwrap());
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn pki_read_required_maps_missing_to_not_initialized() {
        let dir = tempfile::tempdir().unwrap();
        let err = read_required(&dir.path().join("ca.crt")).unwrap_err();
        assert!(matches!(err, PkiError::NotInitialized));
    }
}
