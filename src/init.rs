//! `portico init`: idempotent first-start set-up of the data directory.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::Context;
use time::OffsetDateTime;

use crate::audit::Outcome;
use crate::pki::{AdminMode, InitReport, Pki};
use crate::settings::Settings;
use crate::store::{ClientCert, Store};

/// Finishes an interrupted restore, creates the data dirs, applies migrations, creates the PKI and records the
/// admin certificate. A second run changes nothing and reports the same.
/// Loose modes on secret files are tightened first ([`secure_data_dir`]).
pub fn run(settings: &Settings) -> anyhow::Result<InitReport> {
    // A restore killed midway is finished (or its staging dropped) first.
    crate::backup::recover(&settings.data_dir).context("while finishing an interrupted restore")?;
    for sub in ["", "pki", "acme", "sites", "nginx"] {
        let dir = settings.data_dir.join(sub);
        std::fs::create_dir_all(&dir).with_context(|| format!("while creating {}", dir.display()))?;
    }
    secure_data_dir(settings);
    let store =
        Store::open(&settings.db_path()).with_context(|| format!("while opening {}", settings.db_path().display()))?;
    let ip = settings.public_ip.or_else(crate::onboarding::detect_public_ip);
    let report = Pki::new(&settings.data_dir).init(ip).context("while creating the certificate authority")?;
    let admin = ClientCert {
        serial: report.admin.serial.clone(),
        kind: "admin".into(),
        label: None,
        fingerprint: report.admin.sha256_fingerprint.clone(),
        not_after: report.admin.not_after,
        revoked_at: None,
    };
    store
        .record_admin_cert_blocking(&admin, OffsetDateTime::now_utc())
        .context("while recording the admin certificate")?;
    Ok(report)
}

/// What `portico init` prints.
pub fn describe(report: &InitReport, data_dir: &Path) -> String {
    let created =
        if report.created.is_empty() { "nothing (already initialized)".to_string() } else { report.created.join(", ") };
    let bundle = match report.admin_mode {
        AdminMode::P12 => format!(
            "admin bundle:    {}\nbundle password: {}\n",
            report.p12_path.display(),
            report.p12_password_path.display()
        ),
        AdminMode::HardwareBound => {
            "admin bundle:    none: the admin certificate is hardware-bound (portico recover-admin if its key is lost)\n"
                .to_string()
        }
    };
    format!(
        "data dir:        {}\ncreated:         {created}\nCA:              {} (sha256 {})\nadmin cert:      serial {} (sha256 {})\nserver cert:     sha256 {}\n{bundle}",
        data_dir.display(),
        report.ca.subject_cn,
        report.ca.sha256_fingerprint,
        report.admin.serial,
        report.admin.sha256_fingerprint,
        report.server.sha256_fingerprint,
    )
}

/// `portico recover-admin`: the way back from a hardware-bound admin
/// certificate whose key is lost (see [`crate::pki::AdminMode`]). Revokes the
/// bound certificate, issues an exportable one with a new `admin.p12`,
/// audits `cert.admin.recover` and says where the bundle and its password
/// are. Refused when the certificate is not hardware-bound, and when run by
/// another user than the data directory's owner (files it wrote would be
/// unreadable to the services).
pub fn recover_admin(settings: &Settings) -> anyhow::Result<String> {
    let owner = std::fs::metadata(&settings.data_dir)
        .with_context(|| format!("while reading {}", settings.data_dir.display()))?
        .uid();
    let me = rustix::process::geteuid().as_raw();
    anyhow::ensure!(
        me == owner,
        "run this as the data directory's owner (uid {owner}), not uid {me}; in the container: \
         docker exec <container> s6-setuidgid portico portico recover-admin"
    );
    let pki = Pki::new(&settings.data_dir);
    let pki_dir = pki.dir().to_path_buf();
    if pki.admin_mode()? != AdminMode::HardwareBound {
        anyhow::bail!(
            "the admin certificate is not hardware-bound: its bundle is {} (rotate it in the panel if it leaked)",
            pki_dir.join("admin.p12").display()
        );
    }
    let store =
        Store::open(&settings.db_path()).with_context(|| format!("while opening {}", settings.db_path().display()))?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let recovered = runtime.block_on(async {
        let recovered = crate::agents::recover_admin(pki, &store).await?;
        let details = serde_json::json!({ "oldSerial": recovered.old.serial, "newSerial": recovered.new.serial });
        crate::audit::record(&store, "cli", "cert.admin.recover", "admin", Outcome::Success, Some(details)).await;
        anyhow::Ok(recovered)
    })?;
    Ok(format!(
        "The hardware-bound admin certificate (serial {}) is revoked.\n\
         New admin certificate: serial {}, valid until {}\n\
         Bundle:   {p12} (copy it out: docker cp <container>:{p12} .)\n\
         Password: {} (also in {}.password)\n",
        recovered.old.serial,
        recovered.new.serial,
        recovered.new.not_after.date(),
        recovered.p12_password,
        pki_dir.join("admin.p12").display(),
        p12 = pki_dir.join("admin.p12").display(),
    ))
}

/// A path whose mode [`secure_data_dir`] tightened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tightened {
    pub path: PathBuf,
    /// Permission bits before and after (`0o644` → `0o600`).
    pub old_mode: u32,
    pub new_mode: u32,
}

/// The most each secret place may allow: `(path, mask)`; a mode is tightened
/// to `mode & mask`.
///
/// - The data dir: nobody but its owner may list or write it; traversal
///   (`x`) may stay. nginx's workers serve `sites/`, `acme/challenges/` and
///   the certificate help page under `nginx/` and must pass through. In the
///   image the entry script sets `0710 portico:www-data` (only nginx's worker
///   group passes); elsewhere the workers' user is unknown, so `0711` is the
///   loosest mode kept. Everything secret below carries its own mode.
/// - `portico.db` and its `-wal`/`-shm`/`-journal`: the HMAC root secret,
///   every user's TOTP secret and password hash. 0600.
/// - `pki/`, the backups dir, `.restore/` and `logs/` (s6-log, as portico):
///   keys, archives, request logs. 0700; keys,
///   `.p12` bundles and passwords in `pki/`, and private keys under `acme/`
///   0600 (nginx's master, root, loads certificates and keys).
pub(crate) fn secret_places(settings: &Settings) -> Vec<(PathBuf, u32)> {
    let data = &settings.data_dir;
    let db = settings.db_path();
    let mut places = vec![(data.clone(), 0o711)];
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut name = db.clone().into_os_string();
        name.push(suffix);
        places.push((PathBuf::from(name), 0o600));
    }
    for dir in [data.join("pki"), settings.backup_dir(), data.join(".restore"), data.join("logs")] {
        places.push((dir, 0o700));
    }
    let secret_file = |name: &str| {
        name.ends_with(".key") || name.ends_with(".p12") || name.ends_with(".password") || name == "privkey.pem"
    };
    for root in [data.join("pki"), data.join("acme")] {
        for file in files_under(&root, 4) {
            if file.file_name().and_then(|n| n.to_str()).is_some_and(secret_file) {
                places.push((file, 0o600));
            }
        }
    }
    places
}

/// Regular files under `dir`, at most `depth` levels down; symbolic links
/// are not followed.
fn files_under(dir: &Path, depth: usize) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let Ok(kind) = entry.file_type() else { continue };
        if kind.is_file() {
            out.push(entry.path());
        } else if kind.is_dir() && depth > 1 {
            out.extend(files_under(&entry.path(), depth - 1));
        }
    }
    out
}

/// Checks the modes of the data dir and the secrets in it, tightens any that
/// grant more than they should and logs a warning per change with the path
/// and the old mode. Runs at `portico init` and at every panel start (a
/// restore or an operator's `cp` can loosen them). Failures are logged; they
/// never stop the start.
pub fn secure_data_dir(settings: &Settings) -> Vec<Tightened> {
    let mut tightened = Vec::new();
    for (path, mask) in secret_places(settings) {
        let Ok(meta) = std::fs::symlink_metadata(&path) else { continue };
        if meta.file_type().is_symlink() {
            continue;
        }
        let old_mode = meta.permissions().mode() & 0o7777;
        let new_mode = old_mode & mask;
        if new_mode == old_mode {
            continue;
        }
        match std::fs::set_permissions(&path, std::fs::Permissions::from_mode(new_mode)) {
            Ok(()) => {
                tracing::warn!(
                    path = %path.display(),
                    old_mode = %format!("{old_mode:04o}"),
                    new_mode = %format!("{new_mode:04o}"),
                    "secret file was readable by others; permissions tightened"
                );
                tightened.push(Tightened { path, old_mode, new_mode });
            }
            Err(e) => tracing::error!(
                path = %path.display(),
                old_mode = %format!("{old_mode:04o}"),
                error = %e,
                "secret file is readable by others and its permissions cannot be tightened"
            ),
        }
    }
    tightened
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    fn chmod(path: &Path, mode: u32) {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    /// A data dir as older releases left it (0755 dir, 0644 database, a
    /// world-readable key): the start-up check tightens each secret, warns
    /// with the path and the old mode, and leaves what nginx's workers read
    /// (sites, challenges, public certificates) alone.
    #[test]
    fn loose_modes_are_tightened_and_reported() {
        let dir = tempfile::tempdir().unwrap();
        let settings = Settings { data_dir: dir.path().join("data"), ..Default::default() };
        run(&settings).unwrap();
        let data = &settings.data_dir;
        // Fresh: the database is private from its creation.
        assert_eq!(mode(&settings.db_path()), 0o600);
        assert_eq!(mode(&data.join("pki")) & 0o077, 0);

        let wal = data.join("portico.db-wal");
        std::fs::write(&wal, b"").unwrap();
        std::fs::create_dir_all(data.join("acme/challenges")).unwrap();
        std::fs::create_dir_all(data.join("acme/versions/x/1")).unwrap();
        std::fs::write(data.join("acme/versions/x/1/privkey.pem"), b"k").unwrap();
        std::fs::write(data.join("acme/versions/x/1/fullchain.pem"), b"c").unwrap();
        std::fs::create_dir_all(data.join("sites/blog")).unwrap();
        std::fs::write(data.join("sites/blog/index.html"), b"hi").unwrap();
        for (path, m) in [
            (data.clone(), 0o755),
            (settings.db_path(), 0o644),
            (wal.clone(), 0o644),
            (data.join("pki"), 0o755),
            (data.join("pki/ca.key"), 0o644),
            (data.join("acme/versions/x/1/privkey.pem"), 0o644),
            (data.join("acme/versions/x/1/fullchain.pem"), 0o644),
            (data.join("acme/challenges"), 0o755),
            (data.join("sites/blog/index.html"), 0o644),
        ] {
            chmod(&path, m);
        }

        let logs = tracing_capture(|| secure_data_dir(&settings));
        let (tightened, lines) = logs;
        let changed: Vec<(PathBuf, u32, u32)> =
            tightened.iter().map(|t| (t.path.clone(), t.old_mode, t.new_mode)).collect();
        for want in [
            (data.clone(), 0o755, 0o711),
            (settings.db_path(), 0o644, 0o600),
            (wal.clone(), 0o644, 0o600),
            (data.join("pki"), 0o755, 0o700),
            (data.join("pki/ca.key"), 0o644, 0o600),
            (data.join("acme/versions/x/1/privkey.pem"), 0o644, 0o600),
        ] {
            assert!(changed.contains(&want), "{want:?} not in {changed:?}");
            assert_eq!(mode(&want.0), want.2, "{}", want.0.display());
        }
        assert_eq!(changed.len(), 6, "{changed:?}");
        // What nginx's workers serve keeps its mode.
        assert_eq!(mode(&data.join("acme/versions/x/1/fullchain.pem")), 0o644);
        assert_eq!(mode(&data.join("acme/challenges")), 0o755);
        assert_eq!(mode(&data.join("sites/blog/index.html")), 0o644);
        // One warning per change, naming the path and the old mode.
        let db_line = lines.iter().find(|l| l.contains(&settings.db_path().display().to_string())).unwrap();
        assert!(db_line.contains("WARN") && db_line.contains("old_mode=0644"), "{db_line}");
        assert_eq!(lines.iter().filter(|l| l.contains("permissions tightened")).count(), 6, "{lines:?}");

        // The store still opens, and a second check finds nothing to do.
        crate::store::Store::open(&settings.db_path()).unwrap();
        assert_eq!(secure_data_dir(&settings), Vec::new());
        run(&settings).unwrap();
        assert_eq!(mode(&settings.db_path()), 0o600);
    }

    /// Runs `f` with a subscriber that keeps its formatted lines.
    fn tracing_capture<T>(f: impl FnOnce() -> T) -> (T, Vec<String>) {
        #[derive(Clone, Default)]
        struct Lines(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
        impl std::io::Write for Lines {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let lines = Lines::default();
        let writer = lines.clone();
        let subscriber = tracing_subscriber::fmt().with_ansi(false).with_writer(move || writer.clone()).finish();
        let out = tracing::subscriber::with_default(subscriber, f);
        let text = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
        (out, text.lines().map(str::to_string).collect())
    }
}
