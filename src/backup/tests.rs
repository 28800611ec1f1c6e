//! Backup → wipe → restore round trips and archives that must be refused.

use std::collections::BTreeMap;
use std::io::Write;

use super::*;
use crate::testing;

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
            if kept_out(&top) {
                continue;
            }
            if e.file_type().unwrap().is_symlink() {
                let target = fs::read_link(e.path()).unwrap();
                out.insert(rel.display().to_string(), (target.into_os_string().into_encoded_bytes(), 0o120000));
            } else if e.file_type().unwrap().is_dir() {
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
        access: "authenticated".into(),
        description: "the app".into(),
        ..testing::tunnel_fields("app", "home", "127.0.0.1:8080")
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
    let cases: [(&[u8], tar::EntryType); 6] = [
        (b"../escaped", tar::EntryType::Regular),
        (b"sites/../../escaped", tar::EntryType::Regular),
        (b"/tmp/absolute", tar::EntryType::Regular),
        (b".restore-previous/x", tar::EntryType::Regular),
        (b".restore-journal", tar::EntryType::Regular),
        (b"pki/fifo", tar::EntryType::Fifo),
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

/// An encrypted archive with a database and the links `(path, target)`.
fn with_links(dir: &Path, links: &[(&str, &str)]) -> PathBuf {
    let path = dir.join("links.age");
    let mut recipient = age::scrypt::Recipient::new(SecretString::from(PASS.to_string()));
    recipient.set_work_factor(TEST_WORK);
    let encryptor = age::Encryptor::with_recipients(std::iter::once(&recipient as &dyn age::Recipient)).unwrap();
    let out = encryptor.wrap_output(File::create(&path).unwrap()).unwrap();
    let mut tar = tar::Builder::new(zstd::Encoder::new(out, 3).unwrap());
    let manifest = br#"{"format":1,"created_at":0,"version":"test"}"#;
    let db = tempfile::tempdir().unwrap();
    drop(Store::open(&db.path().join(DB)).unwrap());
    let mut header = tar::Header::new_gnu();
    header.set_size(manifest.len() as u64);
    header.set_mode(0o600);
    header.set_cksum();
    tar.append_data(&mut header, MANIFEST, &manifest[..]).unwrap();
    tar.append_path_with_name(db.path().join(DB), DB).unwrap();
    for (name, target) in links {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Symlink);
        header.set_mode(0o777);
        header.set_size(0);
        tar.append_link(&mut header, name, target).unwrap();
    }
    let out = tar.into_inner().unwrap().finish().unwrap();
    out.finish().unwrap().flush().unwrap();
    path
}

#[test]
fn links_leaving_the_data_dir_are_refused_with_their_path() {
    let work = tempfile::tempdir().unwrap();
    let cases: &[&[(&str, &str)]] = &[
        &[("pki/link", "/etc/passwd")],
        &[("acme/certs/a", "../../../etc")],
        &[("escape", "..")],
        &[("sites/x", "a/../../..")],
        // `d/up` lands on the data dir; `d/up/..` would leave it.
        &[("d/up", ".."), ("d/up/out", "../x")],
    ];
    for links in cases {
        let archive = with_links(work.path(), links);
        let err = refused(&archive, PASS);
        let (path, _) = links.last().unwrap();
        assert!(matches!(err, BackupError::UnsafeLink { .. }), "{links:?}: {err}");
        assert!(err.to_string().contains(path), "the error names the link: {err}");
    }
    // Inside links are restored as they were.
    let archive = with_links(work.path(), &[("acme/certs/a", "../versions/a/1"), ("top", "pki")]);
    let target = tempfile::tempdir().unwrap();
    restore(&archive, target.path(), &Secret::new(PASS), false).unwrap();
    assert_eq!(fs::read_link(target.path().join("acme/certs/a")).unwrap(), Path::new("../versions/a/1"));
    assert_eq!(fs::read_link(target.path().join("top")).unwrap(), Path::new("pki"));
}

/// The data dir of `populated` plus what the ACME store and nginx keep as
/// links, and files and directories with unusual modes.
async fn with_certificates() -> (tempfile::TempDir, Settings, Store) {
    let (dir, settings, store) = populated().await;
    let data = dir.path();
    for name in ["panel.example.com", "auth.example.com", "app.example.com"] {
        crate::acme::files::install(data, name, &format!("CHAIN {name}\n"), &format!("KEY {name}\n")).unwrap();
    }
    // A renewal: the link moves to a second version, the first stays.
    crate::acme::files::install(data, "app.example.com", "CHAIN 2\n", "KEY 2\n").unwrap();
    fs::create_dir_all(data.join("nginx/trees/t1")).unwrap();
    fs::write(data.join("nginx/trees/t1/portico.conf"), "server {}").unwrap();
    std::os::unix::fs::symlink("trees/t1", data.join("nginx/live")).unwrap();
    fs::create_dir_all(data.join("sites/locked")).unwrap();
    fs::write(data.join("sites/locked/run.sh"), "#!/bin/sh\n").unwrap();
    fs::set_permissions(data.join("sites/locked/run.sh"), fs::Permissions::from_mode(0o751)).unwrap();
    fs::set_permissions(data.join("sites/locked"), fs::Permissions::from_mode(0o550)).unwrap();
    (dir, settings, store)
}

#[actix_web::test]
async fn certificates_links_and_modes_survive_a_round_trip() {
    let (dir, settings, store) = with_certificates().await;
    let archive = backup_of(&settings, &store).await;
    let want = files(dir.path());
    assert!(want.get("acme/certs/app.example.com").is_some_and(|(_, mode)| *mode == 0o120000), "a link");
    let fresh = tempfile::tempdir().unwrap();
    let target = fresh.path().join("elsewhere/data");
    restore(&archive, &target, &Secret::new(PASS), false).unwrap();
    assert_eq!(files(&target), want);
    // The restored links resolve to the restored files, on the new path.
    let (chain, key) = crate::acme::files::read(&target, "app.example.com").unwrap().unwrap();
    assert_eq!((chain.as_str(), key.as_str()), ("CHAIN 2\n", "KEY 2\n"));
    assert_eq!(fs::read_to_string(target.join("nginx/live/portico.conf")).unwrap(), "server {}");
    let locked = fs::metadata(target.join("sites/locked")).unwrap().permissions().mode() & 0o7777;
    assert_eq!(locked, 0o550, "exact directory mode");
}

#[actix_web::test]
async fn absolute_links_inside_are_kept_as_relative_ones() {
    let (dir, settings, store) = populated().await;
    fs::create_dir_all(dir.path().join("acme/versions/old.example.com/1")).unwrap();
    fs::write(dir.path().join("acme/versions/old.example.com/1/fullchain.pem"), "OLD").unwrap();
    fs::create_dir_all(dir.path().join("acme/certs")).unwrap();
    let absolute = dir.path().join("acme/versions/old.example.com/1");
    std::os::unix::fs::symlink(&absolute, dir.path().join("acme/certs/old.example.com")).unwrap();
    let archive = backup_of(&settings, &store).await;
    let target = tempfile::tempdir().unwrap();
    restore(&archive, target.path(), &Secret::new(PASS), false).unwrap();
    let link = target.path().join("acme/certs/old.example.com");
    assert_eq!(fs::read_link(&link).unwrap(), Path::new("../../acme/versions/old.example.com/1"));
    assert_eq!(fs::read_to_string(link.join("fullchain.pem")).unwrap(), "OLD");
}

#[actix_web::test]
async fn a_failed_backup_leaves_no_work_directory_and_no_archive() {
    let (dir, settings, store) = populated().await;
    std::os::unix::fs::symlink("/etc/passwd", dir.path().join("sites/blog/passwd")).unwrap();
    let err = create_with(&store, &settings, &Secret::new(PASS), Some(TEST_WORK)).await.unwrap_err();
    assert!(matches!(err, BackupError::UnsafeLink { .. }), "{err}");
    assert!(err.to_string().contains("sites/blog/passwd"), "{err}");
    let left: Vec<_> = fs::read_dir(settings.backup_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n != ".lock")
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    // Fixed, the next backup works.
    fs::remove_file(dir.path().join("sites/blog/passwd")).unwrap();
    backup_of(&settings, &store).await;
}

#[actix_web::test]
async fn a_killed_backup_leaves_nothing_that_stops_the_next_one() {
    let (_dir, settings, store) = populated().await;
    let dir = settings.backup_dir();
    fs::create_dir_all(dir.join(".tmp-20260101T000000Z-deadbeef")).unwrap();
    fs::write(dir.join(".tmp-20260101T000000Z-deadbeef/archive"), "half").unwrap();
    backup_of(&settings, &store).await;
    assert!(!dir.join(".tmp-20260101T000000Z-deadbeef").exists());
    assert_eq!(list(&dir).unwrap().len(), 1);
}

/// An archive whose scrypt work factor says 2^`log_n` (same length as the
/// real one: only the header text changes).
fn with_work_factor(archive: &Path, log_n: u8) -> PathBuf {
    let mut bytes = fs::read(archive).unwrap();
    let head = String::from_utf8_lossy(&bytes[..200]).to_string();
    let at = head.find(&format!(" {TEST_WORK}\n")).unwrap() + 1;
    bytes[at..at + 2].copy_from_slice(format!("{log_n:02}").as_bytes());
    let path = archive.with_extension(format!("wf{log_n}"));
    fs::write(&path, bytes).unwrap();
    path
}

#[actix_web::test]
async fn archives_needing_more_memory_than_the_box_has_are_refused_first() {
    let (_dir, settings, store) = populated().await;
    let archive = backup_of(&settings, &store).await;
    let costly = with_work_factor(&archive, 22);
    let err = refused(&costly, PASS);
    assert!(matches!(err, BackupError::TooCostly { log_n: 22, needs_mib: 4096, .. }), "{err}");
    assert!(err.to_string().contains("4096 MiB"), "{err}");
    // The panel's staging refuses it the same way.
    let data = tempfile::tempdir().unwrap();
    let err = staged::stage(&costly, data.path(), &Secret::new(PASS), "admin").unwrap_err();
    assert!(matches!(err, BackupError::TooCostly { .. }), "{err}");
    assert_eq!(staged::staged(data.path()).unwrap(), None);
}

/// Restores `archive` over `target` (holding other data), stopped at every
/// crash point in turn and recovered as the next start would: each time the
/// data dir is exactly the state before or after, and after once the
/// journal was written.
#[actix_web::test]
async fn a_restore_interrupted_at_any_step_recovers_to_before_or_after() {
    let (_old, old_settings, old_store) = with_certificates().await;
    let archive = backup_of(&old_settings, &old_store).await;
    let after = files(&old_settings.data_dir);
    let after_db = old_store.dump().unwrap();
    let mut outcomes = (0, 0);
    for crash_at in 0.. {
        let (dir, _settings, store) = populated().await;
        let before = files(dir.path());
        let before_db = store.dump().unwrap();
        drop(store);
        let result = restore_with(&archive, dir.path(), &Secret::new(PASS), true, &mut swap::Steps(Some(crash_at)));
        let finished = match result {
            Ok(_) => true,
            Err(BackupError::Interrupted) => false,
            Err(e) => panic!("step {crash_at}: {e}"),
        };
        let journaled = dir.path().join(swap::JOURNAL).exists();
        recover(dir.path()).unwrap();
        let db = Store::open(&dir.path().join(DB)).unwrap().dump().unwrap();
        if finished || journaled {
            assert_eq!(files(dir.path()), after, "step {crash_at}: not the state after");
            assert_eq!(db, after_db, "step {crash_at}");
            outcomes.1 += 1;
        } else {
            assert_eq!(files(dir.path()), before, "step {crash_at}: not the state before");
            assert_eq!(db, before_db, "step {crash_at}");
            outcomes.0 += 1;
        }
        for leftover in [JOURNAL_NAMES[0], JOURNAL_NAMES[1], PREVIOUS] {
            assert!(!dir.path().join(leftover).exists(), "step {crash_at}: {leftover} left");
        }
        // A restore after the crash works.
        restore(&archive, dir.path(), &Secret::new(PASS), true).unwrap();
        assert_eq!(files(dir.path()), after);
        if finished {
            break;
        }
    }
    println!("restore crash points: {} recovered to before, {} to after", outcomes.0, outcomes.1);
    assert!(outcomes.0 >= 1 && outcomes.1 >= 5, "{outcomes:?}");
}

const JOURNAL_NAMES: [&str; 2] = [swap::JOURNAL, ".restore-journal.tmp"];

/// The panel's path: applying a confirmed restore at start-up and going back
/// to the previous data, each stopped at every crash point and recovered by
/// the next start.
#[actix_web::test]
async fn the_panel_restore_and_its_rollback_recover_from_a_crash_at_any_step() {
    let (_old, old_settings, old_store) = with_certificates().await;
    let archive = backup_of(&old_settings, &old_store).await;
    let after = files(&old_settings.data_dir);
    let mut points = 0;
    for crash_at in 0.. {
        let (dir, _settings, store) = populated().await;
        drop(store);
        let before = files(dir.path());
        staged::stage(&archive, dir.path(), &Secret::new(PASS), "admin").unwrap();
        staged::confirm(dir.path(), vec!["app.example.com".into()]).unwrap();
        let first = staged::apply_pending_with(dir.path(), &mut swap::Steps(Some(crash_at)));
        let finished = !matches!(first, Err(BackupError::Interrupted));
        // The next start finishes the job.
        let startup = if finished { first.unwrap() } else { staged::apply_pending(dir.path()).unwrap() };
        assert!(matches!(startup, Some(staged::Startup::Applied(_) | staged::Startup::Checking(_))), "{startup:?}");
        assert_eq!(files(dir.path()), after, "step {crash_at}");
        assert!(dir.path().join(PREVIOUS).is_dir(), "the replaced data is kept until accepted");
        assert!(!dir.path().join(staged::DIR).exists());

        // Going back, crashing at the same step.
        staged::request_rollback(dir.path()).unwrap().unwrap();
        let back = staged::apply_pending_with(dir.path(), &mut swap::Steps(Some(crash_at)));
        let back_finished = !matches!(back, Err(BackupError::Interrupted));
        if !back_finished {
            staged::apply_pending(dir.path()).unwrap();
        }
        assert_eq!(files(dir.path()), before, "rollback step {crash_at}");
        for leftover in [PREVIOUS, DISCARDED, staged::CHECK, swap::JOURNAL] {
            assert!(!dir.path().join(leftover).exists(), "rollback step {crash_at}: {leftover} left");
        }
        points += 1;
        if finished && back_finished {
            break;
        }
    }
    println!("panel restore crash points: {points}");
}

#[actix_web::test]
async fn accepting_keeps_the_restored_data_and_drops_the_previous() {
    let (_old, old_settings, old_store) = with_certificates().await;
    let archive = backup_of(&old_settings, &old_store).await;
    let (dir, _settings, store) = populated().await;
    drop(store);
    staged::stage(&archive, dir.path(), &Secret::new(PASS), "admin").unwrap();
    staged::confirm(dir.path(), vec![]).unwrap();
    staged::apply_pending(dir.path()).unwrap();
    let unhealthy = staged::Verdict::Unhealthy { reasons: vec!["app.example.com: tls: handshake failed".into()] };
    staged::set_verdict(dir.path(), unhealthy.clone()).unwrap();
    assert_eq!(staged::applied(dir.path()).unwrap().unwrap().verdict, unhealthy);
    // A panel restart leaves an unhealthy verdict as it is.
    assert_eq!(staged::apply_pending(dir.path()).unwrap(), None);
    staged::accept(dir.path()).unwrap().unwrap();
    assert_eq!(files(dir.path()), files(&old_settings.data_dir));
    assert!(!dir.path().join(PREVIOUS).exists() && staged::applied(dir.path()).unwrap().is_none());
    assert_eq!(staged::request_rollback(dir.path()).unwrap(), None, "nothing to go back to");
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
