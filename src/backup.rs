//! Backups of the data directory and `portico restore`.
//!
//! An archive is a tar stream, compressed with zstd and encrypted with age
//! (scrypt passphrase): `<id>.tar.zst.age`. Anyone can open it with the `age`
//! command line tool and the passphrase. Inside: `portico-backup.json`
//! (format, creation time), `portico.db` (a `VACUUM INTO` snapshot, so a
//! single point in time even while the panel writes), then every other file of
//! the data directory: `pki/`, `acme/`, `sites/`, `nginx/`, the panel secret,
//! add-on options. Logs and the backup directory itself stay out. Files,
//! directories and symbolic links keep their exact modes; links must stay
//! inside the data directory ([`links`]).
//!
//! Restore first reads the archive's scrypt work factor and refuses one that
//! needs more memory than the system can give ([`cost`]). It then decrypts
//! and unpacks into `<data_dir>/.restore-staging`, refusing anything but
//! files, directories and inside links under relative paths, checks the
//! database, and only then swaps the staged tree in ([`swap`], journaled so
//! that a crash leaves the state before or after). A wrong passphrase, a
//! truncated or altered archive fails before the data directory is touched.
//! The panel restores through the same steps, split so that the swap happens
//! at its next start (see [`staged`]).
//!
//! Memory: everything streams (tar → zstd → age, 64 KiB chunks), so a
//! backup's or a restore's peak stays near scrypt's 64 MiB plus the
//! process, whatever the data size.

use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use age::secrecy::SecretString;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

pub use crate::settings::MIN_PASSPHRASE_CHARS;
use crate::settings::{Secret, Settings};
use crate::store::{Store, StoreError};

pub mod cost;
mod links;
pub mod staged;
mod swap;
pub use staged::StagedRestore;

/// Archive format version written in the manifest.
const FORMAT: u32 = 1;
const MANIFEST: &str = "portico-backup.json";
const DB: &str = "portico.db";
/// Archive file name suffix.
pub const SUFFIX: &str = ".tar.zst.age";
const STAGING: &str = ".restore-staging";
const PREVIOUS: &str = ".restore-previous";
/// Where a rollback moves the restored data before deleting it.
const DISCARDED: &str = ".restore-discarded";
/// scrypt work factor (log2 N) of new archives: N = 2^16. scrypt needs
/// 128·r·N bytes (r = 8): 128·8·2^16 = 64 MiB, which keeps a backup and a
/// restore under 128 MiB inside the 512 MB appliance, and which the stock
/// `age` tool opens (it accepts factors up to its own calibration + 4).
/// age's default calibrates to about a second of CPU and picks 2^19 or more
/// on a fast CPU (512 MiB), which the kernel's memory limit kills mid-backup.
pub const WORK_FACTOR: u8 = 16;
/// Largest zstd window a restore accepts, log2 bytes (8 MiB; archives are
/// written with a 2 MiB window at most), so a crafted archive cannot make the
/// decoder allocate more.
const ZSTD_WINDOW_LOG_MAX: u32 = 23;
/// zstd level: fast, and most of the data (keys, SQLite pages, sites) compresses little more at higher levels.
const ZSTD_LEVEL: i32 = 3;

/// Top-level entries that only restores use; never archived, never part of
/// the data a restore replaces.
const INTERNAL: &[&str] =
    &[STAGING, PREVIOUS, DISCARDED, staged::DIR, staged::CHECK, swap::JOURNAL, ".restore-journal.tmp"];

/// Top-level entries of the data dir that are never archived (besides [`INTERNAL`]).
const KEEP_OUT: &[&str] =
    &["portico.db", "portico.db-wal", "portico.db-shm", "portico.db-journal", "logs", "backups", "lost+found"];

/// Top-level entries a restore keeps (besides [`INTERNAL`]), and that do
/// not make a data dir "in use".
const RESTORE_KEEPS: &[&str] = &["logs", "backups", "lost+found", "options.json"];

fn internal(name: &str) -> bool {
    INTERNAL.contains(&name)
}

fn kept_by_restore(name: &str) -> bool {
    internal(name) || RESTORE_KEEPS.contains(&name)
}

fn kept_out(name: &str) -> bool {
    internal(name) || KEEP_OUT.contains(&name)
}

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("Use a passphrase of at least {MIN_PASSPHRASE_CHARS} characters")]
    WeakPassphrase,
    #[error("Wrong passphrase, or not an archive for this passphrase")]
    WrongPassphrase,
    #[error("The archive is damaged or not a Portico backup: {0}")]
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
    #[error(
        "{} links to {}, which is outside the data directory; links must stay inside it",
        path.display(), target.display()
    )]
    UnsafeLink { path: PathBuf, target: PathBuf },
    #[error(
        "The archive's scrypt work factor 2^{log_n} needs {needs_mib} MiB of memory, more than this system can \
         give ({limit_mib} MiB); open it with the age tool on a larger machine and take a new backup there"
    )]
    TooCostly { log_n: u8, needs_mib: u64, limit_mib: u64 },
    #[error("Another backup is running")]
    Busy,
    /// A swap stopped at a test's crash point.
    #[error("interrupted")]
    Interrupted,
}

fn io_err(context: impl Into<String>) -> impl FnOnce(io::Error) -> BackupError {
    let context = context.into();
    move |source| BackupError::Io { context, source }
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Manifest {
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
    // One backup at a time; the lock goes with the process, so a killed
    // backup never blocks the next one, which clears its leftovers.
    let lock = File::create(dir.join(".lock")).map_err(io_err("while locking the backup directory"))?;
    match lock.try_lock() {
        Ok(()) => {}
        Err(fs::TryLockError::WouldBlock) => return Err(BackupError::Busy),
        Err(fs::TryLockError::Error(e)) => return Err(io_err("while locking the backup directory")(e)),
    }
    clear_leftovers(&dir)?;
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
    drop(lock);
    result
}

/// Removes work directories of backups that never finished (killed).
fn clear_leftovers(dir: &Path) -> Result<(), BackupError> {
    for entry in fs::read_dir(dir).map_err(io_err("while listing backups"))?.filter_map(|e| e.ok()) {
        if entry.file_name().to_str().is_some_and(|n| n.starts_with(".tmp-")) {
            tracing::info!(path = %entry.path().display(), "removing an unfinished backup");
            fs::remove_dir_all(entry.path()).map_err(io_err("while removing an unfinished backup"))?;
        }
    }
    Ok(())
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

/// Adds the directories, regular files and symbolic links under `root/rel`,
/// sorted, skipping [`KEEP_OUT`] at the top and the backup directory
/// anywhere. A link that leaves the data dir fails the backup with its path
/// rather than being left out; sockets and fifos are skipped with a warning.
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
        if rel.as_os_str().is_empty() && name.to_str().is_some_and(kept_out) {
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
        } else if kind.is_symlink() {
            let read = io_err(format!("while archiving {}", path.display()));
            let target = fs::read_link(&path).map_err(read)?;
            let target = links::archived_target(root, &rel_path, &target)?;
            let meta = fs::symlink_metadata(&path).map_err(io_err(format!("while archiving {}", path.display())))?;
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(tar::EntryType::Symlink);
            header.set_mode(meta.permissions().mode() & 0o7777);
            header.set_mtime(meta.mtime().max(0) as u64);
            header.set_size(0);
            tar.append_link(&mut header, &rel_path, &target)
                .map_err(io_err(format!("while archiving {}", path.display())))?;
        } else {
            // Sockets and fifos are runtime endpoints, not data.
            tracing::warn!(path = %path.display(), "backup skips a socket, fifo or device");
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

/// Finishes or undoes a restore a crash interrupted: a journaled swap is
/// rolled forward ([`swap`]); without a journal, nothing was swapped and
/// unfinished staging goes. A replaced tree awaiting the operator's decision
/// ([`staged::Applied`]) stays. Returns whether a swap was finished. Runs
/// before anything reads the data directory: `portico serve`, `portico
/// init` and `portico restore` call it first.
pub fn recover(data_dir: &Path) -> Result<bool, BackupError> {
    if !data_dir.is_dir() {
        return Ok(false);
    }
    let finished = swap::finish(data_dir)?;
    let mut leftovers = vec![STAGING, DISCARDED];
    if !data_dir.join(staged::CHECK).exists() {
        leftovers.push(PREVIOUS);
    }
    for name in leftovers {
        let path = data_dir.join(name);
        if fs::symlink_metadata(&path).is_ok() {
            tracing::info!(path = %path.display(), "removing what an interrupted restore left");
            fs::remove_dir_all(&path).map_err(io_err(format!("while removing {}", path.display())))?;
        }
    }
    Ok(finished)
}

/// Whether `data_dir` holds state (anything beyond logs, backups, add-on options).
pub fn in_use(data_dir: &Path) -> Result<bool, BackupError> {
    match fs::read_dir(data_dir) {
        Ok(entries) => Ok(entries.filter_map(|e| e.ok()).any(|e| !e.file_name().to_str().is_some_and(kept_by_restore))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(io_err("while reading the data directory")(e)),
    }
}

/// Restores `archive` into `data_dir`. Refuses a data dir in use unless
/// `force`; then its current contents are replaced only after the archive
/// unpacked and checked completely. A restore killed midway is finished or
/// undone by [`recover`], which this calls first.
pub fn restore(archive: &Path, data_dir: &Path, passphrase: &Secret, force: bool) -> Result<Restored, BackupError> {
    restore_with(archive, data_dir, passphrase, force, &mut swap::Steps(None))
}

fn restore_with(
    archive: &Path,
    data_dir: &Path,
    passphrase: &Secret,
    force: bool,
    steps: &mut swap::Steps,
) -> Result<Restored, BackupError> {
    recover(data_dir)?;
    if !force && in_use(data_dir)? {
        return Err(BackupError::NotEmpty(data_dir.to_path_buf()));
    }
    cost::check(archive, crate::sysstats::memory_available())?;
    fs::create_dir_all(data_dir).map_err(io_err("while creating the data directory"))?;
    let staging = data_dir.join(STAGING);
    if fs::symlink_metadata(&staging).is_ok() {
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
    let plan = swap::Plan {
        incoming: Path::new(STAGING),
        outgoing: Path::new(PREVIOUS),
        keep: &[],
        // A panel restore awaiting a decision is superseded.
        remove: vec![STAGING.into(), PREVIOUS.into(), staged::CHECK.into()],
    };
    if let Err(e) = swap_in(data_dir, plan, steps) {
        if !matches!(e, BackupError::Interrupted) {
            let _ = fs::remove_dir_all(&staging);
            let _ = fs::remove_dir_all(data_dir.join(PREVIOUS));
        }
        return Err(e);
    }
    Ok(Restored {
        files,
        created_at: OffsetDateTime::from_unix_timestamp(manifest.created_at).unwrap_or(OffsetDateTime::UNIX_EPOCH),
    })
}

/// [`swap::swap`] with the entries a restore keeps.
fn swap_in(data_dir: &Path, plan: swap::Plan<'_>, steps: &mut swap::Steps) -> Result<(), BackupError> {
    let keep: Vec<&str> = INTERNAL.iter().chain(RESTORE_KEEPS).copied().collect();
    swap::swap(data_dir, swap::Plan { keep: &keep, ..plan }, steps)
}

fn corrupt(e: impl std::fmt::Display) -> BackupError {
    BackupError::Corrupt(e.to_string())
}

/// Decrypts, decompresses and unpacks into `staging`; returns the count of
/// files and links. Directory modes are set last (one without write
/// permission still receives its files), links after every file (so nothing
/// is written through a link).
fn unpack(archive: &Path, staging: &Path, passphrase: &Secret) -> Result<(usize, Manifest), BackupError> {
    let max_work = cost::check(archive, crate::sysstats::memory_available())?;
    let file = File::open(archive).map_err(io_err(format!("while opening {}", archive.display())))?;
    let decryptor = age::Decryptor::new_buffered(BufReader::new(file)).map_err(|e| match e {
        age::DecryptError::Io(e) => corrupt(e),
        other => corrupt(other),
    })?;
    if !decryptor.is_scrypt() {
        return Err(corrupt("not encrypted with a passphrase"));
    }
    let mut identity = age::scrypt::Identity::new(SecretString::from(passphrase.expose().to_string()));
    identity.set_max_work_factor(max_work);
    let plain = decryptor.decrypt(std::iter::once(&identity as &dyn age::Identity)).map_err(|e| match e {
        age::DecryptError::DecryptionFailed
        | age::DecryptError::NoMatchingKeys
        | age::DecryptError::KeyDecryptionFailed => BackupError::WrongPassphrase,
        other => corrupt(other),
    })?;
    let mut decompressed = zstd::Decoder::new(plain).map_err(corrupt)?;
    decompressed.window_log_max(ZSTD_WINDOW_LOG_MAX).map_err(corrupt)?;
    unpack_tar(decompressed, staging)
}

/// The tar half of [`unpack`]: unpacks `plain` (read to its end) into
/// `staging`, which no entry can leave.
pub(crate) fn unpack_tar(plain: impl Read, staging: &Path) -> Result<(usize, Manifest), BackupError> {
    let mut tar = tar::Archive::new(plain);
    let mut files = 0;
    let mut manifest: Option<Manifest> = None;
    let mut dirs: Vec<(PathBuf, u32)> = Vec::new();
    let mut symlinks: Vec<(PathBuf, PathBuf)> = Vec::new();
    let unpacking = |rel: &Path| io_err(format!("while unpacking {}", rel.display()));
    for entry in tar.entries().map_err(corrupt)? {
        let mut entry = entry.map_err(corrupt)?;
        let path = entry.path().map_err(corrupt)?.into_owned();
        let rel = safe_relative(&path).ok_or_else(|| corrupt(format!("unsafe path {}", path.display())))?;
        let target = staging.join(&rel);
        let mode = entry.header().mode().map_err(corrupt)? & 0o7777;
        match entry.header().entry_type() {
            tar::EntryType::Directory => {
                fs::create_dir_all(&target).map_err(unpacking(&rel))?;
                fs::set_permissions(&target, fs::Permissions::from_mode(0o700)).map_err(unpacking(&rel))?;
                dirs.push((target, mode));
            }
            tar::EntryType::Regular => {
                if let Some(parent) = target.parent() {
                    fs::create_dir_all(parent).map_err(unpacking(&rel))?;
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
                fs::set_permissions(&target, fs::Permissions::from_mode(mode)).map_err(unpacking(&rel))?;
                files += 1;
            }
            tar::EntryType::Symlink => {
                let link = entry.link_name().map_err(corrupt)?.ok_or_else(|| corrupt("a link without a target"))?;
                if !links::stays_inside(&rel, &link) {
                    return Err(BackupError::UnsafeLink { path: rel, target: link.into_owned() });
                }
                symlinks.push((rel, link.into_owned()));
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
    for (rel, link) in &symlinks {
        // Never below another link of the archive: each parent is a directory.
        let through_link = rel.ancestors().skip(1).any(|a| symlinks.iter().any(|(other, _)| other == a));
        if through_link {
            return Err(BackupError::UnsafeLink { path: rel.clone(), target: link.clone() });
        }
        let at = staging.join(rel);
        if let Some(parent) = at.parent() {
            fs::create_dir_all(parent).map_err(unpacking(rel))?;
        }
        std::os::unix::fs::symlink(link, &at).map_err(|e| corrupt(format!("{}: {e}", rel.display())))?;
        files += 1;
    }
    // Deepest first, so a parent's mode never stops setting a child's.
    for (dir, mode) in dirs.iter().rev() {
        fs::set_permissions(dir, fs::Permissions::from_mode(*mode)).map_err(io_err("while unpacking"))?;
    }
    if !staging.join(DB).is_file() {
        return Err(corrupt("no database in the archive"));
    }
    Ok((files, manifest))
}

/// A relative path of plain components only; `None` for `..`, `/…`, `.`
/// tricks and the names restores use for themselves.
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
    (!out.as_os_str().is_empty() && !internal(&first)).then_some(out)
}

/// Applies this binary's migrations to the restored database and checks it,
/// on a connection that is closed before the swap moves the files.
fn check_database(db: &Path) -> Result<(), BackupError> {
    Store::check_file(db).map_err(|e| match e {
        StoreError::TooNew(m) => corrupt(format!("the backup comes from a newer Portico (migration {m})")),
        other => corrupt(format!("database: {other}")),
    })
}

#[cfg(test)]
mod tests;
