//! Backup → wipe → restore round trips and archives that must be refused.

use std::collections::BTreeMap;
use std::io::Write;

use super::*;

/// Low scrypt cost for tests (the real default takes about a second).
const TEST_WORK: u8 = 10;
const PASS: &str = "correct horse battery staple";

fn settings(dir: &Path) -> Settings {
    Settings { data_dir: dir.to_path_buf(), ..Default::default() }
}

/// Every file under `root` (relative path → bytes and mode), skipping what
/// backups leave out.
fn files(root: &Path) -> BTreeMap<String, (Vec<u8>, u32)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in fs::read_dir(&dir).unwrap().map(|e| e.unwrap()) {
            let rel = e.path().strip_prefix(root).unwrap().to_path_buf();
            let top = rel.components().next().unwrap().as_os_str().to_str().unwrap().to_string();
            if KEEP_OUT.contains(&top.as_str()) {
                continue;
            }
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else {
                let mode = e.metadata().unwrap().permissions().mode() & 0o777;
                out.insert(rel.display().to_string(), (fs::read(e.path()).unwrap(), mode));
            }
        }
    }
    out
}

/// An initialized data dir with users, a tunnel and a site file.
async fn populated() -> (tempfile::TempDir, Settings, Store) {
    let dir = tempfile::tempdir().unwrap();
    let settings = settings(dir.path());
    crate::init::run(&settings).unwrap();
    let store = Store::open(&settings.db_path()).unwrap();
    let pki = crate::pki::Pki::new(&settings.data_dir);
    crate::agents::issue(pki, &store, "home".into(), vec![crate::identity::Capability::TunnelsRead]).await.unwrap();
    let fields = crate::store::TunnelFields {
        name: "app".into(),
        agent: "home".into(),
        target: "127.0.0.1:8080".into(),
        enabled: true,
        access: "authenticated".into(),
        allowed_users: vec![],
        allowed_groups: vec![],
        description: "the app".into(),
    };
    store.insert_tunnel(fields, OffsetDateTime::now_utc()).await.unwrap();
    store.put_settings(vec![("totp.test", "JBSWY3DPEHPK3PXP".to_string())]).await.unwrap();
    fs::create_dir_all(dir.path().join("sites/blog")).unwrap();
    fs::write(dir.path().join("sites/blog/index.html"), "<h1>hello</h1>").unwrap();
    fs::create_dir_all(dir.path().join("acme")).unwrap();
    fs::write(dir.path().join("acme/account.key"), "not really a key").unwrap();
    fs::set_permissions(dir.path().join("acme/account.key"), fs::Permissions::from_mode(0o600)).unwrap();
    (dir, settings, store)
}

async fn backup_of(settings: &Settings, store: &Store) -> PathBuf {
    let info = create_with(store, settings, &Secret::new(PASS), Some(TEST_WORK)).await.unwrap();
    assert!(info.size > 0);
    archive_path(&settings.backup_dir(), &info.id).unwrap()
}

#[actix_web::test]
async fn round_trip_restores_identical_state() {
    let (dir, settings, store) = populated().await;
    let archive = backup_of(&settings, &store).await;
    let want_dump = store.dump().unwrap();
    let want_files = files(dir.path());
    assert!(want_files.contains_key("pki/ca.key") || want_files.keys().any(|k| k.starts_with("pki/")));

    // A fresh data dir elsewhere (the volume wiped).
    let fresh = tempfile::tempdir().unwrap();
    let target = fresh.path().join("data");
    let restored = restore(&archive, &target, &Secret::new(PASS), false).unwrap();
    assert!(restored.files >= want_files.len());
    assert_eq!(files(&target), want_files, "files and modes differ after restore");
    let got = Store::open(&target.join(DB)).unwrap();
    assert_eq!(got.dump().unwrap(), want_dump, "database differs after restore");
    assert!(!target.join(STAGING).exists() && !target.join(PREVIOUS).exists());

    // A data dir in use is refused without --force, replaced with it.
    fs::write(target.join("stray"), "x").unwrap();
    assert!(matches!(restore(&archive, &target, &Secret::new(PASS), false), Err(BackupError::NotEmpty(_))));
    assert!(target.join("stray").exists());
    restore(&archive, &target, &Secret::new(PASS), true).unwrap();
    assert!(!target.join("stray").exists());
    assert_eq!(files(&target), want_files);
}

fn snapshot_of(dir: &Path) -> BTreeMap<String, (Vec<u8>, u32)> {
    files(dir)
}

/// Restores that must fail leave the target exactly as it was.
fn refused(archive: &Path, passphrase: &str) -> BackupError {
    let target = tempfile::tempdir().unwrap();
    fs::write(target.path().join("keep.txt"), "mine").unwrap();
    let before = snapshot_of(target.path());
    let err = restore(archive, target.path(), &Secret::new(passphrase), true).unwrap_err();
    assert_eq!(snapshot_of(target.path()), before, "a failed restore changed the data dir");
    assert!(!target.path().join(STAGING).exists());
    err
}

#[actix_web::test]
async fn wrong_passphrase_and_damaged_archives_fail_cleanly() {
    let (_dir, settings, store) = populated().await;
    let archive = backup_of(&settings, &store).await;
    assert!(matches!(refused(&archive, "not the passphrase at all"), BackupError::WrongPassphrase));

    let bytes = fs::read(&archive).unwrap();
    let work = tempfile::tempdir().unwrap();
    let truncated = work.path().join("truncated");
    fs::write(&truncated, &bytes[..bytes.len() * 2 / 3]).unwrap();
    assert!(matches!(refused(&truncated, PASS), BackupError::Corrupt(_)));

    let mut flipped = bytes.clone();
    let i = bytes.len() - 100;
    flipped[i] ^= 0x55;
    let tampered = work.path().join("tampered");
    fs::write(&tampered, &flipped).unwrap();
    assert!(matches!(refused(&tampered, PASS), BackupError::Corrupt(_)));

    let garbage = work.path().join("garbage");
    fs::write(&garbage, b"this is not an archive").unwrap();
    assert!(matches!(refused(&garbage, PASS), BackupError::Corrupt(_)));
}

/// An encrypted archive whose tar stream holds `entries` as raw names.
fn crafted(dir: &Path, entries: &[(&[u8], tar::EntryType)]) -> PathBuf {
    let path = dir.join("crafted.age");
    let mut recipient = age::scrypt::Recipient::new(SecretString::from(PASS.to_string()));
    recipient.set_work_factor(TEST_WORK);
    let encryptor = age::Encryptor::with_recipients(std::iter::once(&recipient as &dyn age::Recipient)).unwrap();
    let out = encryptor.wrap_output(File::create(&path).unwrap()).unwrap();
    let mut tar = tar::Builder::new(zstd::Encoder::new(out, 3).unwrap());
    let manifest = br#"{"format":1,"created_at":0,"version":"test"}"#;
    let mut header = tar::Header::new_gnu();
    header.set_size(manifest.len() as u64);
    header.set_mode(0o600);
    header.set_cksum();
    tar.append_data(&mut header, MANIFEST, &manifest[..]).unwrap();
    for (name, kind) in entries {
        let mut header = tar::Header::new_gnu();
        let raw = &mut header.as_gnu_mut().unwrap().name;
        raw[..name.len()].copy_from_slice(name);
        header.set_entry_type(*kind);
        header.set_mode(0o644);
        if *kind == tar::EntryType::Symlink {
            header.set_link_name("/etc/passwd").unwrap();
        }
        let body: &[u8] = if *kind == tar::EntryType::Regular { b"evil" } else { b"" };
        header.set_size(body.len() as u64);
        header.set_cksum();
        tar.append(&header, body).unwrap();
    }
    let out = tar.into_inner().unwrap().finish().unwrap();
    out.finish().unwrap().flush().unwrap();
    path
}

#[test]
fn traversal_and_special_entries_are_refused() {
    let work = tempfile::tempdir().unwrap();
    let cases: [(&[u8], tar::EntryType); 5] = [
        (b"../escaped", tar::EntryType::Regular),
        (b"sites/../../escaped", tar::EntryType::Regular),
        (b"/tmp/absolute", tar::EntryType::Regular),
        (b"pki/link", tar::EntryType::Symlink),
        (b".restore-previous/x", tar::EntryType::Regular),
    ];
    for (name, kind) in cases {
        let archive = crafted(work.path(), &[(name, kind)]);
        let err = refused(&archive, PASS);
        assert!(matches!(err, BackupError::Corrupt(_)), "{}: {err}", String::from_utf8_lossy(name));
        assert!(!work.path().join("escaped").exists());
    }
    // A well-formed archive without a database is refused too.
    let archive = crafted(work.path(), &[(b"sites/a.html", tar::EntryType::Regular)]);
    assert!(matches!(refused(&archive, PASS), BackupError::Corrupt(m) if m.contains("database")));
}

#[actix_web::test]
async fn retention_keeps_the_newest() {
    let dir = tempfile::tempdir().unwrap();
    for id in ["20260101T000000Z-aa", "20260102T000000Z-bb", "20260103T000000Z-cc"] {
        fs::write(dir.path().join(format!("{id}{SUFFIX}")), "x").unwrap();
    }
    fs::write(dir.path().join("unrelated.txt"), "x").unwrap();
    assert_eq!(prune(dir.path(), 2).unwrap(), 1);
    let mut left: Vec<String> =
        fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    left.sort();
    assert_eq!(
        left,
        [format!("20260102T000000Z-bb{SUFFIX}"), format!("20260103T000000Z-cc{SUFFIX}"), "unrelated.txt".into()]
    );
}

#[test]
fn ids_and_passphrases() {
    assert!(valid_id("20260101T000000Z-0a1b2c3d"));
    for bad in ["", "../x", "a/b", "a.b"] {
        assert!(!valid_id(bad), "{bad}");
    }
    assert!(matches!(check_passphrase("short"), Err(BackupError::WeakPassphrase)));
    assert!(check_passphrase(PASS).is_ok());
}

/// `create` (the panel's and `portico backup`'s) writes archives whose scrypt
/// memory, 128·8·2^logN bytes, fits the 512 MB appliance: at most 256 MiB.
#[actix_web::test]
async fn archives_fit_the_appliance_memory() {
    let (_dir, settings, store) = populated().await;
    let info = create(&store, &settings, &Secret::new(PASS)).await.unwrap();
    let archive = archive_path(&settings.backup_dir(), &info.id).unwrap();
    let head = fs::read(&archive).unwrap();
    let header = String::from_utf8_lossy(&head[..200.min(head.len())]).to_string();
    let stanza = header.lines().find(|l| l.starts_with("-> scrypt ")).expect("an scrypt stanza");
    let log_n: u32 = stanza.rsplit(' ').next().unwrap().parse().unwrap();
    assert_eq!(log_n, u32::from(WORK_FACTOR), "{stanza}");
    assert!(128u64 * 8 * (1u64 << log_n) <= 256 * 1024 * 1024, "scrypt needs more than 256 MiB: {stanza}");
    let restored = tempfile::tempdir().unwrap();
    restore(&archive, restored.path(), &Secret::new(PASS), false).unwrap();
    assert_eq!(files(restored.path()), files(&settings.data_dir));
}
