//! Certificate files under `<data_dir>/acme/`.
//!
//! nginx reads `certs/<name>/{fullchain,privkey}.pem`. `certs/<name>` is a
//! symlink to one version directory `versions/<name>/<stamp>` holding both
//! files. The link is relative (`../versions/<name>/<stamp>`), so the store
//! still works when the data directory is restored onto another path, and
//! backups keep it as a link inside the data directory. Installing writes a new version directory, then renames a new
//! symlink over the old one. The swap is one `rename(2)`, so a reader that
//! resolves the directory once (nginx resolves paths when it loads its
//! configuration, and installs happen under the nginx change lock) sees
//! either the old pair or the new pair, never a new chain with an old key.

use std::fs::{self, OpenOptions, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use crate::nginx::state::cert_paths;

/// Versions kept per name: the live one and the one before it.
const KEEP_VERSIONS: usize = 2;
/// Older versions stay at least this long, so a reader that resolved the
/// link just before a swap can still read its files, seconds.
const PRUNE_GRACE_SECS: u64 = 60;

/// The directory name of `fqdn` under `certs/` (`*.d` → `_wildcard.d`).
pub fn dir_name(fqdn: &str) -> String {
    fqdn.replace('*', "_wildcard")
}

fn certs_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("acme/certs")
}

fn versions_dir(data_dir: &Path, fqdn: &str) -> PathBuf {
    data_dir.join("acme/versions").join(dir_name(fqdn))
}

/// Where HTTP-01 answers go; nginx serves it at `/.well-known/acme-challenge/`.
pub fn challenges_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("acme/challenges")
}

fn write_file(path: &Path, data: &[u8], mode: u32) -> io::Result<()> {
    let mut file = OpenOptions::new().write(true).create_new(true).mode(mode).open(path)?;
    file.set_permissions(Permissions::from_mode(mode))?;
    file.write_all(data)?;
    file.sync_all()
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    fs::File::open(dir)?.sync_all()
}

/// What an install replaced, so a refused change can be undone.
#[derive(Debug)]
pub struct Installed {
    link: PathBuf,
    /// The previous symlink target; `None` when the name had no certificate.
    previous: Option<PathBuf>,
}

impl Installed {
    /// Points the name back at its previous files (or removes it).
    pub fn undo(self) -> io::Result<()> {
        match self.previous {
            Some(target) => swap_link(&self.link, &target),
            None => match fs::remove_file(&self.link) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            },
        }
    }
}

/// Where one name's new files go, decided before anything is written so
/// that the install journal can name them.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Planned {
    pub name: String,
    /// `certs/<name>`, the link nginx reads through.
    pub link: PathBuf,
    /// The new version directory (not created yet).
    pub version: PathBuf,
    /// The link's target before; `None` when the name had no certificate.
    pub previous: Option<PathBuf>,
}

/// Picks the new version directory of `fqdn` and notes the current one. A
/// plain directory from an older layout becomes a version first.
pub fn plan(data_dir: &Path, fqdn: &str) -> io::Result<Planned> {
    let certs = certs_dir(data_dir);
    let versions = versions_dir(data_dir, fqdn);
    fs::create_dir_all(&certs)?;
    fs::create_dir_all(&versions)?;
    let stamp = format!("{}-{}", time::OffsetDateTime::now_utc().unix_timestamp(), crate::token::random_hex(4));
    let link = certs.join(dir_name(fqdn));
    let previous = match fs::symlink_metadata(&link) {
        Ok(meta) if meta.file_type().is_symlink() => Some(fs::read_link(&link)?),
        Ok(_) => {
            // A plain directory from an older layout: keep it as a version.
            let legacy = versions.join(format!("legacy-{stamp}"));
            fs::rename(&link, &legacy)?;
            swap_link(&link, &relative_target(&legacy))?;
            Some(legacy)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(e),
    };
    Ok(Planned { name: fqdn.to_string(), link, version: versions.join(&stamp), previous })
}

/// Writes the planned version directory and swaps the name's link to it.
pub fn put(planned: &Planned, fullchain: &str, key: &str) -> io::Result<Installed> {
    let version = &planned.version;
    fs::create_dir(version)?;
    fs::set_permissions(version, Permissions::from_mode(0o755))?;
    write_file(&version.join("fullchain.pem"), fullchain.as_bytes(), 0o644)?;
    write_file(&version.join("privkey.pem"), key.as_bytes(), 0o600)?;
    sync_dir(version)?;
    swap_link(&planned.link, &relative_target(version))?;
    Ok(Installed { link: planned.link.clone(), previous: planned.previous.clone() })
}

/// Removes versions of `planned`'s name other than the live and previous one.
pub fn prune_after(planned: &Planned) {
    if let (Some(versions), Some(certs)) = (planned.version.parent(), planned.link.parent()) {
        let previous = planned.previous.as_ref().map(|p| absolute(certs, p));
        prune(versions, &planned.version, previous.as_deref());
    }
}

/// Atomically installs a chain and its key for `fqdn`. Keys are 0600.
pub fn install(data_dir: &Path, fqdn: &str, fullchain: &str, key: &str) -> io::Result<Installed> {
    let planned = plan(data_dir, fqdn)?;
    let installed = put(&planned, fullchain, key)?;
    prune_after(&planned);
    Ok(installed)
}

/// Puts `planned`'s name back on its previous files (or none) when its link
/// points at the planned version, and removes that version. Idempotent: for
/// an install that was interrupted at any step.
pub fn revert(planned: &Planned) -> io::Result<()> {
    let certs = planned.link.parent().unwrap_or(Path::new("."));
    let current = match fs::read_link(&planned.link) {
        Ok(t) => Some(absolute(certs, &t)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(e),
    };
    if current.as_deref() == Some(planned.version.as_path()) {
        Installed { link: planned.link.clone(), previous: planned.previous.clone() }.undo()?;
    }
    match fs::remove_dir_all(&planned.version) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Removes link files a swap left half-done (`certs/.link-*`).
pub fn remove_stray_links(data_dir: &Path) -> io::Result<()> {
    let Ok(entries) = fs::read_dir(certs_dir(data_dir)) else { return Ok(()) };
    for entry in entries {
        let entry = entry?;
        if entry.file_name().to_str().is_some_and(|n| n.starts_with(".link-")) {
            fs::remove_file(entry.path())?;
        }
    }
    Ok(())
}

/// The link target of a version directory, relative to `certs/` so that the
/// data directory can move (a restore onto another path) and links stay inside it.
fn relative_target(version: &Path) -> PathBuf {
    let name = version.parent().and_then(Path::file_name).unwrap_or_default();
    Path::new("../versions").join(name).join(version.file_name().unwrap_or_default())
}

/// A link target as an absolute path: links written before were absolute;
/// relative ones resolve from `certs/`.
fn absolute(certs: &Path, target: &Path) -> PathBuf {
    if target.is_absolute() { target.to_path_buf() } else { resolve(certs, target) }
}

/// `dir/rel` with `..` taken by name (the version dirs are plain directories).
fn resolve(dir: &Path, rel: &Path) -> PathBuf {
    let mut out = dir.to_path_buf();
    for c in rel.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// Replaces `link` with a symlink to `target` in one rename.
fn swap_link(link: &Path, target: &Path) -> io::Result<()> {
    let dir = link.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(".link-{}", crate::token::random_hex(6)));
    symlink(target, &tmp)?;
    if let Err(e) = fs::rename(&tmp, link) {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    sync_dir(dir)
}

/// Removes versions other than the live and previous one, once they are
/// older than [`PRUNE_GRACE_SECS`].
fn prune(versions: &Path, live: &Path, previous: Option<&Path>) {
    let Ok(entries) = fs::read_dir(versions) else { return };
    let grace = std::time::Duration::from_secs(PRUNE_GRACE_SECS);
    let settled =
        |p: &Path| fs::metadata(p).and_then(|m| m.modified()).is_ok_and(|t| t.elapsed().is_ok_and(|age| age >= grace));
    let mut old: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p != live && Some(p.as_path()) != previous && settled(p))
        .collect();
    old.sort();
    let keep = KEEP_VERSIONS.saturating_sub(1 + usize::from(previous.is_some()));
    for dir in old.iter().rev().skip(keep) {
        if let Err(err) = fs::remove_dir_all(dir) {
            tracing::warn!(%err, path = %dir.display(), "cannot remove an old certificate version");
        }
    }
}

/// The live chain and key of `fqdn`, read from one resolved version
/// directory, so the pair always belongs together. A version pruned between
/// resolving and reading is retried.
pub fn read(data_dir: &Path, fqdn: &str) -> io::Result<Option<(String, String)>> {
    let paths = cert_paths(data_dir, fqdn);
    let Some(dir) = paths.fullchain.parent() else { return Ok(None) };
    let mut attempts = 0;
    loop {
        attempts += 1;
        let resolved = match fs::canonicalize(dir) {
            Ok(d) => d,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let pair = fs::read_to_string(resolved.join("fullchain.pem"))
            .and_then(|chain| Ok((chain, fs::read_to_string(resolved.join("privkey.pem"))?)));
        match pair {
            Ok(pair) => return Ok(Some(pair)),
            Err(e) if e.kind() == io::ErrorKind::NotFound && attempts < 10 => continue,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    fn pair(i: usize) -> (String, String) {
        (format!("CHAIN {i}\n"), format!("KEY {i}\n"))
    }

    #[test]
    fn layout_matches_what_nginx_reads() {
        let dir = tempfile::tempdir().unwrap();
        let (c, k) = pair(1);
        install(dir.path(), "*.example.com", &c, &k).unwrap();
        let paths = cert_paths(dir.path(), "*.example.com");
        assert!(paths.fullchain.ends_with("acme/certs/_wildcard.example.com/fullchain.pem"));
        assert_eq!(fs::read_to_string(&paths.fullchain).unwrap(), c);
        assert_eq!(fs::read_to_string(&paths.key).unwrap(), k);
        let mode = fs::metadata(&paths.key).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let link = fs::read_link(dir.path().join("acme/certs/_wildcard.example.com")).unwrap();
        assert!(link.starts_with("../versions/_wildcard.example.com/"), "relative: {}", link.display());
    }

    #[test]
    fn undo_restores_the_previous_pair_or_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let first = install(dir.path(), "a.example.com", "C1", "K1").unwrap();
        let second = install(dir.path(), "a.example.com", "C2", "K2").unwrap();
        second.undo().unwrap();
        assert_eq!(read(dir.path(), "a.example.com").unwrap().unwrap(), ("C1".into(), "K1".into()));
        first.undo().unwrap();
        assert_eq!(read(dir.path(), "a.example.com").unwrap(), None);
        assert!(!cert_paths(dir.path(), "a.example.com").fullchain.exists());
    }

    #[test]
    fn a_plain_directory_from_before_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let paths = cert_paths(dir.path(), "p.example.com");
        fs::create_dir_all(paths.fullchain.parent().unwrap()).unwrap();
        fs::write(&paths.fullchain, "OLD C").unwrap();
        fs::write(&paths.key, "OLD K").unwrap();
        let done = install(dir.path(), "p.example.com", "NEW C", "NEW K").unwrap();
        assert_eq!(read(dir.path(), "p.example.com").unwrap().unwrap(), ("NEW C".into(), "NEW K".into()));
        done.undo().unwrap();
        assert_eq!(read(dir.path(), "p.example.com").unwrap().unwrap(), ("OLD C".into(), "OLD K".into()));
    }

    #[test]
    fn old_versions_are_pruned() {
        let dir = tempfile::tempdir().unwrap();
        let versions = versions_dir(dir.path(), "v.example.com");
        let long_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(2 * PRUNE_GRACE_SECS);
        for i in 0..6 {
            install(dir.path(), "v.example.com", &format!("C{i}"), &format!("K{i}")).unwrap();
            for e in fs::read_dir(&versions).unwrap() {
                fs::File::open(e.unwrap().path()).unwrap().set_modified(long_ago).unwrap();
            }
        }
        let n = fs::read_dir(versions_dir(dir.path(), "v.example.com")).unwrap().count();
        assert_eq!(n, KEEP_VERSIONS);
    }

    /// A reader racing many installs always gets a chain and key of the same
    /// version, and the files nginx names never disappear.
    #[test]
    fn readers_never_see_a_new_chain_with_an_old_key() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().to_path_buf();
        let (c, k) = pair(0);
        install(&data, "race.example.com", &c, &k).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let (data, stop) = (data.clone(), stop.clone());
                std::thread::spawn(move || {
                    let mut seen = 0usize;
                    while !stop.load(Ordering::Relaxed) {
                        let (chain, key) = read(&data, "race.example.com").unwrap().expect("a pair is always there");
                        let (cn, kn) = (chain.trim_start_matches("CHAIN "), key.trim_start_matches("KEY "));
                        assert_eq!(cn, kn, "chain and key from different versions");
                        assert!(cert_paths(&data, "race.example.com").key.exists());
                        seen += 1;
                    }
                    seen
                })
            })
            .collect();
        for i in 1..300 {
            let (c, k) = pair(i);
            install(&data, "race.example.com", &c, &k).unwrap();
        }
        stop.store(true, Ordering::Relaxed);
        for r in readers {
            assert!(r.join().unwrap() > 0);
        }
        assert_eq!(read(&data, "race.example.com").unwrap().unwrap(), pair(299));
    }
}
