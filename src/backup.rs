//! Backups of the data directory and `portico restore`.
//!
//! An archive is a tar stream, compressed with zstd and encrypted with age
//! (scrypt passphrase): `<id>.tar.zst.age`. Anyone can open it with the `age`
//! command line tool and the passphrase. Inside: `portico-backup.json`
//! (format, creation time), `portico.db` (a `VACUUM INTO` snapshot, so a
//! single point in time even while the panel writes), then every other file of
//! the data directory: `pki/`, `acme/`, `sites/`, `nginx/`, the panel secret,
//! add-on options. Logs and the backup directory itself stay out.
//!
//! Restore decrypts and unpacks into `<data_dir>/.restore-staging`, refusing
//! anything but plain files and directories under relative paths, checks the
//! database, and only then swaps the staged tree in. A wrong passphrase, a
//! truncated or altered archive fails before the data directory is touched.
//! The panel restores through the same steps, split so that the swap happens
//! at its next start (see [`staged`]).

use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use age::secrecy::SecretString;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::settings::{Secret, Settings};
use crate::store::{Store, StoreError};

pub mod staged;
pub use staged::StagedRestore;

/// Shortest accepted passphrase, characters.
pub const MIN_PASSPHRASE_CHARS: usize = 12;
/// Archive format version written in the manifest.
const FORMAT: u32 = 1;
const MANIFEST: &str = "portico-backup.json";
const DB: &str = "portico.db";
/// Archive file name suffix.
pub const SUFFIX: &str = ".tar.zst.age";
const STAGING: &str = ".restore-staging";
const PREVIOUS: &str = ".restore-previous";
/// scrypt work factor (log2 N) of new archives. scrypt needs 128·r·N bytes
/// (r = 8): 2^18 is 256 MiB, which fits the 512 MB appliance next to its
/// services. age's default calibrates to about a second of CPU and picks 2^19
/// or more on a fast CPU, which the kernel's memory limit kills mid-backup.
const WORK_FACTOR: u8 = 18;
/// zstd level: fast, and most of the data (keys, SQLite pages, sites) compresses little more at higher levels.
const ZSTD_LEVEL: i32 = 3;

/// Top-level entries of the data dir that are never archived and that a
/// restore leaves in place.
const KEEP_OUT: &[&str] = &[
    "portico.db",
    "portico.db-wal",
    "portico.db-shm",
    "portico.db-journal",
    "logs",
    "backups",
    "lost+found",
    STAGING,
    PREVIOUS,
    staged::DIR,
];

/// Top-level entries a restore keeps, and that do not make a data dir "in use".
const RESTORE_KEEPS: &[&str] = &["logs", "backups", "lost+found", "options.json", STAGING, PREVIOUS, staged::DIR];

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("passphrase must be at least {MIN_PASSPHRASE_CHARS} characters")]
    WeakPassphrase,
    #[error("wrong passphrase, or not an archive for this passphrase")]
    WrongPassphrase,
    #[error("the archive is damaged or not a Portico backup: {0}")]
    Corrupt(String),
    #[error("the data directory {0} is not empty; pass --force to replace its contents")]
    NotEmpty(PathBuf),
    #[error("no passphrase: give --passphrase-file, PORTICO_BACKUP_PASSPHRASE or backup.passphrase")]
    NoPassphrase,
    #[error("no such backup")]
    UnknownBackup,
    #[error("{context}: {source}")]
    Io { context: String, source: io::Error },
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

fn io_err(context: impl Into<String>) -> impl FnOnce(io::Error) -> BackupError {
    let context = context.into();
    move |source| BackupError::Io { context, source }
}

#[derive(Debug, Serialize, Deserialize)]
struct Manifest {
    format: u32,
    created_at: i64,
    version: String,
}

/// A finished backup archive.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackupInfo {
    pub id: String,
    /// Archive size, bytes.
    pub size: u64,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    pub created_at: OffsetDateTime,
}

pub fn check_passphrase(passphrase: &str) -> Result<(), BackupError> {
    if passphrase.chars().count() < MIN_PASSPHRASE_CHARS {
        return Err(BackupError::WeakPassphrase);
    }
    Ok(())
}

/// A backup id is `YYYYMMDDTHHMMSSZ-<8 hex>`; ids from URLs are checked against this.
pub fn valid_id(id: &str) -> bool {
    id.len() <= 64 && !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

fn new_id(now: OffsetDateTime) -> String {
    let format = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    let stamp = now.format(&format).unwrap_or_else(|_| now.unix_timestamp().to_string());
    let mut random = [0u8; 4];
    rand::RngExt::fill(&mut rand::rng(), &mut random[..]);
    format!("{stamp}-{}", hex::encode(random))
}

/// The archive file of a backup id in `dir`.
pub fn archive_path(dir: &Path, id: &str) -> Result<PathBuf, BackupError> {
    if !valid_id(id) {
        return Err(BackupError::UnknownBackup);
    }
    let path = dir.join(format!("{id}{SUFFIX}"));
    if !path.is_file() {
        return Err(BackupError::UnknownBackup);
    }
    Ok(path)
}

/// Takes a backup of the data directory into `settings.backup_dir()`.
pub async fn create(store: &Store, settings: &Settings, passphrase: &Secret) -> Result<BackupInfo, BackupError> {
    create_with(store, settings, passphrase, Some(WORK_FACTOR)).await
}

/// [`create`] with an explicit scrypt work factor (tests use a low one).
pub(crate) async fn create_with(
    store: &Store,
    settings: &Settings,
    passphrase: &Secret,
    work_factor: Option<u8>,
) -> Result<BackupInfo, BackupError> {
    check_passphrase(passphrase.expose())?;
    let dir = settings.backup_dir();
    fs::create_dir_all(&dir).map_err(io_err("while creating the backup directory"))?;
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o700))
        .map_err(io_err("while securing the backup directory"))?;
    let created_at = OffsetDateTime::now_utc();
    let id = new_id(created_at);
    let work = dir.join(format!(".tmp-{id}"));
    fs::create_dir(&work).map_err(io_err("while creating a work directory"))?;
    let result = async {
        let snapshot = work.join(DB);
        store.snapshot_to(snapshot.clone()).await?;
        let (data_dir, backup_dir, passphrase) = (settings.data_dir.clone(), dir.clone(), passphrase.clone());
        let partial = work.join("archive");
        let manifest = Manifest {
            format: FORMAT,
            created_at: created_at.unix_timestamp(),
            version: env!("CARGO_PKG_VERSION").into(),
        };
        let out = partial.clone();
        tokio::task::spawn_blocking(move || {
            write_archive(&data_dir, &backup_dir, &snapshot, &manifest, &out, &passphrase, work_factor)
        })
        .await
        .map_err(|e| BackupError::Io { context: "backup task".into(), source: io::Error::other(e.to_string()) })??;
        let path = dir.join(format!("{id}{SUFFIX}"));
        fs::rename(&partial, &path).map_err(io_err("while moving the archive in place"))?;
        let size = fs::metadata(&path).map_err(io_err("while reading the archive size"))?.len();
        Ok(BackupInfo { id: id.clone(), size, created_at })
    }
    .await;
    let _ = fs::remove_dir_all(&work);
    result
}

fn write_archive(
    data_dir: &Path,
    backup_dir: &Path,
    snapshot: &Path,
    manifest: &Manifest,
    out: &Path,
    passphrase: &Secret,
    work_factor: Option<u8>,
) -> Result<(), BackupError> {
    let file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode_0600()
        .open(out)
        .map_err(io_err("while creating the archive"))?;
    let mut recipient = age::scrypt::Recipient::new(SecretString::from(passphrase.expose().to_string()));
    if let Some(w) = work_factor {
        recipient.set_work_factor(w);
    }
    let encryptor = age::Encryptor::with_recipients(std::iter::once(&recipient as &dyn age::Recipient))
        .map_err(|e| BackupError::Corrupt(format!("cannot encrypt: {e}")))?;
    let encrypted = encryptor.wrap_output(BufWriter::new(file)).map_err(io_err("while starting encryption"))?;
    let compressed = zstd::Encoder::new(encrypted, ZSTD_LEVEL).map_err(io_err("while starting compression"))?;
    let mut tar = tar::Builder::new(compressed);
    tar.follow_symlinks(false);

    let manifest = serde_json::to_vec_pretty(manifest).expect("manifest serializes");
    let mut header = tar::Header::new_gnu();
    header.set_size(manifest.len() as u64);
    header.set_mode(0o600);
    header.set_mtime(OffsetDateTime::now_utc().unix_timestamp() as u64);
    header.set_cksum();
    tar.append_data(&mut header, MANIFEST, manifest.as_slice()).map_err(io_err("while writing the manifest"))?;
    tar.append_path_with_name(snapshot, DB).map_err(io_err("while archiving the database"))?;
    add_tree(&mut tar, data_dir, Path::new(""), backup_dir)?;

    let compressed = tar.into_inner().map_err(io_err("while finishing the archive"))?;
    let encrypted = compressed.finish().map_err(io_err("while finishing compression"))?;
    let buffered = encrypted.finish().map_err(io_err("while finishing encryption"))?;
    let file = buffered
        .into_inner()
        .map_err(|e| BackupError::Io { context: "while writing the archive".into(), source: e.into_error() })?;
    file.sync_all().map_err(io_err("while syncing the archive"))?;
    Ok(())
}

/// Small helper: `OpenOptions::mode(0o600)` under a readable name.
trait Mode0600 {
    fn mode_0600(&mut self) -> &mut Self;
}

impl Mode0600 for fs::OpenOptions {
    fn mode_0600(&mut self) -> &mut Self {
        use std::os::unix::fs::OpenOptionsExt;
        self.mode(0o600)
    }
}

/// Adds the directories and regular files under `root/rel`, sorted, skipping
/// [`KEEP_OUT`] at the top and the backup directory anywhere. Symlinks and
/// special files are left out (the data dir holds none).
fn add_tree<W: Write>(
    tar: &mut tar::Builder<W>,
    root: &Path,
    rel: &Path,
    backup_dir: &Path,
) -> Result<(), BackupError> {
    let dir = root.join(rel);
    let mut entries: Vec<_> = fs::read_dir(&dir)
        .map_err(io_err(format!("while listing {}", dir.display())))?
        .filter_map(|e| e.ok())
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name();
        if rel.as_os_str().is_empty() && name.to_str().is_some_and(|n| KEEP_OUT.contains(&n)) {
            continue;
        }
        let path = entry.path();
        if path == backup_dir {
            continue;
        }
        let rel_path = rel.join(&name);
        let kind = entry.file_type().map_err(io_err(format!("while reading {}", path.display())))?;
        if kind.is_dir() {
            tar.append_dir(&rel_path, &path).map_err(io_err(format!("while archiving {}", path.display())))?;
            add_tree(tar, root, &rel_path, backup_dir)?;
        } else if kind.is_file() {
            tar.append_path_with_name(&path, &rel_path)
                .map_err(io_err(format!("while archiving {}", path.display())))?;
        } else {
            tracing::warn!(path = %path.display(), "backup skips a file that is not a regular file or directory");
        }
    }
    Ok(())
}

/// The archive files in `dir`, oldest first (ids start with a UTC timestamp,
/// so names sort by age).
fn archives(dir: &Path) -> Result<Vec<PathBuf>, BackupError> {
    let mut archives: Vec<PathBuf> = fs::read_dir(dir)
        .map_err(io_err("while listing backups"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.ends_with(SUFFIX) && !n.starts_with('.')))
        .collect();
    archives.sort();
    Ok(archives)
}

/// The backups in `dir`, newest first; none when the directory does not exist yet.
pub fn list(dir: &Path) -> Result<Vec<BackupInfo>, BackupError> {
    if !dir.exists() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for path in archives(dir)?.into_iter().rev() {
        let Some(id) = path.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_suffix(SUFFIX)) else {
            continue;
        };
        if !valid_id(id) {
            continue;
        }
        let Ok(meta) = fs::metadata(&path) else { continue };
        let created_at = meta.modified().map(OffsetDateTime::from).unwrap_or(OffsetDateTime::UNIX_EPOCH);
        out.push(BackupInfo { id: id.to_string(), size: meta.len(), created_at });
    }
    Ok(out)
}

/// Deletes the oldest archives in `dir` so that `keep` remain. Returns how many went.
pub fn prune(dir: &Path, keep: usize) -> Result<usize, BackupError> {
    let archives = archives(dir)?;
    let excess = archives.len().saturating_sub(keep);
    for old in &archives[..excess] {
        fs::remove_file(old).map_err(io_err(format!("while deleting {}", old.display())))?;
    }
    Ok(excess)
}

/// The passphrase for the CLI: `--passphrase-file`, else
/// `$PORTICO_BACKUP_PASSPHRASE`, else the `backup.passphrase` setting.
pub fn passphrase_from(file: Option<&Path>, settings: &Settings) -> Result<Secret, BackupError> {
    let secret = if let Some(file) = file {
        let text = fs::read_to_string(file).map_err(io_err(format!("while reading {}", file.display())))?;
        Secret::new(text.trim_end_matches(['\r', '\n']))
    } else if let Ok(value) = std::env::var("PORTICO_BACKUP_PASSPHRASE") {
        Secret::new(value)
    } else if let Some(p) = &settings.backup.passphrase {
        p.clone()
    } else {
        return Err(BackupError::NoPassphrase);
    };
    check_passphrase(secret.expose())?;
    Ok(secret)
}

/// `portico backup`: opens the store and takes a backup.
pub async fn create_from_cli(settings: &Settings, passphrase: &Secret) -> Result<BackupInfo, BackupError> {
    let store = Store::open(&settings.db_path())?;
    create(&store, settings, passphrase).await
}

/// What a restore did.
#[derive(Debug)]
pub struct Restored {
    pub files: usize,
    pub created_at: OffsetDateTime,
}

/// Whether `data_dir` holds state (anything beyond logs, backups, add-on options).
pub fn in_use(data_dir: &Path) -> Result<bool, BackupError> {
    match fs::read_dir(data_dir) {
        Ok(entries) => Ok(entries
            .filter_map(|e| e.ok())
            .any(|e| !e.file_name().to_str().is_some_and(|n| RESTORE_KEEPS.contains(&n)))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(io_err("while reading the data directory")(e)),
    }
}

/// Restores `archive` into `data_dir`. Refuses a data dir in use unless
/// `force`; then its current contents are replaced only after the archive
/// unpacked and checked completely.
pub fn restore(archive: &Path, data_dir: &Path, passphrase: &Secret, force: bool) -> Result<Restored, BackupError> {
    if !force && in_use(data_dir)? {
        return Err(BackupError::NotEmpty(data_dir.to_path_buf()));
    }
    fs::create_dir_all(data_dir).map_err(io_err("while creating the data directory"))?;
    let staging = data_dir.join(STAGING);
    if staging.exists() {
        fs::remove_dir_all(&staging).map_err(io_err("while clearing an old staging directory"))?;
    }
    fs::create_dir(&staging).map_err(io_err("while creating the staging directory"))?;
    fs::set_permissions(&staging, fs::Permissions::from_mode(0o700)).map_err(io_err("while securing staging"))?;
    let unpacked = unpack(archive, &staging, passphrase).and_then(|(files, manifest)| {
        check_database(&staging.join(DB))?;
        Ok((files, manifest))
    });
    let (files, manifest) = match unpacked {
        Ok(v) => v,
        Err(e) => {
            let _ = fs::remove_dir_all(&staging);
            return Err(e);
        }
    };
    swap_in(data_dir, &staging)?;
    Ok(Restored {
        files,
        created_at: OffsetDateTime::from_unix_timestamp(manifest.created_at).unwrap_or(OffsetDateTime::UNIX_EPOCH),
    })
}

fn corrupt(e: impl std::fmt::Display) -> BackupError {
    BackupError::Corrupt(e.to_string())
}

/// Decrypts, decompresses and unpacks into `staging`; returns the file count.
fn unpack(archive: &Path, staging: &Path, passphrase: &Secret) -> Result<(usize, Manifest), BackupError> {
    let file = File::open(archive).map_err(io_err(format!("while opening {}", archive.display())))?;
    let decryptor = age::Decryptor::new_buffered(BufReader::new(file)).map_err(|e| match e {
        age::DecryptError::Io(e) => corrupt(e),
        other => corrupt(other),
    })?;
    if !decryptor.is_scrypt() {
        return Err(corrupt("not encrypted with a passphrase"));
    }
    let identity = age::scrypt::Identity::new(SecretString::from(passphrase.expose().to_string()));
    let plain = decryptor.decrypt(std::iter::once(&identity as &dyn age::Identity)).map_err(|e| match e {
        age::DecryptError::DecryptionFailed
        | age::DecryptError::NoMatchingKeys
        | age::DecryptError::KeyDecryptionFailed => BackupError::WrongPassphrase,
        other => corrupt(other),
    })?;
    let decompressed = zstd::Decoder::new(plain).map_err(corrupt)?;
    let mut tar = tar::Archive::new(decompressed);
    let mut files = 0;
    let mut manifest: Option<Manifest> = None;
    for entry in tar.entries().map_err(corrupt)? {
        let mut entry = entry.map_err(corrupt)?;
        let path = entry.path().map_err(corrupt)?.into_owned();
        let rel = safe_relative(&path).ok_or_else(|| corrupt(format!("unsafe path {}", path.display())))?;
        let target = staging.join(&rel);
        let mode = entry.header().mode().map_err(corrupt)? & 0o777;
        match entry.header().entry_type() {
            tar::EntryType::Directory => {
                fs::create_dir_all(&target).map_err(io_err("while unpacking"))?;
                fs::set_permissions(&target, fs::Permissions::from_mode(mode | 0o700))
                    .map_err(io_err("while unpacking"))?;
            }
            tar::EntryType::Regular => {
                if let Some(parent) = target.parent() {
                    fs::create_dir_all(parent).map_err(io_err("while unpacking"))?;
                }
                if rel == Path::new(MANIFEST) {
                    let mut text = Vec::new();
                    entry.by_ref().take(64 * 1024).read_to_end(&mut text).map_err(corrupt)?;
                    manifest = Some(serde_json::from_slice(&text).map_err(|e| corrupt(format!("manifest: {e}")))?);
                    continue;
                }
                let mut out = fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode_0600()
                    .open(&target)
                    .map_err(|e| corrupt(format!("{}: {e}", rel.display())))?;
                io::copy(&mut entry, &mut out).map_err(corrupt)?;
                fs::set_permissions(&target, fs::Permissions::from_mode(mode)).map_err(io_err("while unpacking"))?;
                files += 1;
            }
            other => return Err(corrupt(format!("unsupported entry type {other:?} at {}", rel.display()))),
        }
    }
    // Read to the end so the age stream's final chunk is authenticated.
    let mut rest = tar.into_inner();
    io::copy(&mut rest, &mut io::sink()).map_err(corrupt)?;
    let manifest = manifest.ok_or_else(|| corrupt("no manifest"))?;
    if manifest.format != FORMAT {
        return Err(corrupt(format!("archive format {} is not supported", manifest.format)));
    }
    if !staging.join(DB).is_file() {
        return Err(corrupt("no database in the archive"));
    }
    Ok((files, manifest))
}

/// A relative path of plain components only; `None` for `..`, `/…`, `.` tricks.
fn safe_relative(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(part) => out.push(part),
            Component::CurDir => {}
            _ => return None,
        }
    }
    let first = out.components().next()?.as_os_str().to_str()?.to_string();
    (!out.as_os_str().is_empty() && !matches!(first.as_str(), STAGING | PREVIOUS | staged::DIR)).then_some(out)
}

/// Applies this binary's migrations to the restored database and checks it,
/// on a connection that is closed before the swap moves the files.
fn check_database(db: &Path) -> Result<(), BackupError> {
    Store::check_file(db).map_err(|e| match e {
        StoreError::TooNew(m) => corrupt(format!("the backup comes from a newer Portico (migration {m})")),
        other => corrupt(format!("database: {other}")),
    })
}

/// Moves the current contents aside, the staged ones in, then drops the old.
/// On a failure midway, puts the old contents back.
fn swap_in(data_dir: &Path, staging: &Path) -> Result<(), BackupError> {
    let previous = data_dir.join(PREVIOUS);
    if previous.exists() {
        fs::remove_dir_all(&previous).map_err(io_err("while clearing an old previous directory"))?;
    }
    fs::create_dir(&previous).map_err(io_err("while creating the previous directory"))?;
    let top = |dir: &Path, skip: &[&str]| -> Result<Vec<std::ffi::OsString>, BackupError> {
        Ok(fs::read_dir(dir)
            .map_err(io_err("while listing for the swap"))?
            .filter_map(|e| e.ok().map(|e| e.file_name()))
            .filter(|n| !n.to_str().is_some_and(|n| skip.contains(&n)))
            .collect())
    };
    let old = top(data_dir, RESTORE_KEEPS)?;
    let new = top(staging, &[])?;
    let mut moved_out = Vec::new();
    let mut moved_in = Vec::new();
    let result = (|| {
        for name in &old {
            fs::rename(data_dir.join(name), previous.join(name)).map_err(io_err("while moving the old data aside"))?;
            moved_out.push(name.clone());
        }
        for name in &new {
            // Kept entries (`logs`, `backups`) are never replaced by archived ones.
            if data_dir.join(name).exists() {
                continue;
            }
            fs::rename(staging.join(name), data_dir.join(name)).map_err(io_err("while moving the restored data in"))?;
            moved_in.push(name.clone());
        }
        Ok(())
    })();
    if let Err(e) = result {
        tracing::error!(error = %e, "restore swap failed; putting the previous data back");
        for name in &moved_in {
            let _ = fs::rename(data_dir.join(name), staging.join(name));
        }
        for name in &moved_out {
            let _ = fs::rename(previous.join(name), data_dir.join(name));
        }
        let _ = fs::remove_dir_all(staging);
        return Err(e);
    }
    let _ = fs::remove_dir_all(&previous);
    let _ = fs::remove_dir_all(staging);
    Ok(())
}

#[cfg(test)]
mod tests;
