//! `portico backup` and `portico restore` as an operator runs them: backup →
//! wipe → restore gives back the same database and the same PKI files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn portico(data_dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_portico"));
    cmd.env_clear()
        .env("PORTICO__DATA_DIR", data_dir)
        .env("PORTICO_OPTIONS", data_dir.join("options.json"))
        .env("PORTICO__LOG__LEVEL", "warn");
    cmd
}

fn ok(out: Output) -> String {
    assert!(out.status.success(), "failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn tree(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap()) {
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else {
                out.insert(e.path().strip_prefix(root).unwrap().to_path_buf(), std::fs::read(e.path()).unwrap());
            }
        }
    }
    out
}

fn dump(data_dir: &Path) -> Vec<String> {
    portico::store::Store::open(&data_dir.join("portico.db")).unwrap().dump().unwrap()
}

#[test]
fn backup_wipe_restore_gives_back_the_same_appliance() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    let pass = work.path().join("pass");
    std::fs::write(&pass, "a passphrase for the test\n").unwrap();
    ok(portico(&data).arg("init").output().unwrap());
    std::fs::create_dir_all(data.join("sites/blog")).unwrap();
    std::fs::write(data.join("sites/blog/index.html"), "<p>hi</p>").unwrap();

    let archive =
        PathBuf::from(ok(portico(&data).arg("backup").arg("--passphrase-file").arg(&pass).output().unwrap()).trim());
    assert!(archive.starts_with(data.join("backups")) && archive.is_file(), "{}", archive.display());
    let pki = tree(&data.join("pki"));
    let sites = tree(&data.join("sites"));
    let db = dump(&data);

    // Wrong passphrase: exit non-zero, nothing written.
    let fresh = work.path().join("fresh");
    let wrong = work.path().join("wrong");
    std::fs::write(&wrong, "this is not the passphrase").unwrap();
    let out = portico(&fresh).arg("restore").arg(&archive).arg("--passphrase-file").arg(&wrong).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("wrong passphrase"));
    assert!(!fresh.join("portico.db").exists());

    // A fresh data dir: same CA, admin certificate, database and sites.
    let printed = ok(portico(&fresh)
        .arg("restore")
        .arg(&archive)
        .env("PORTICO_BACKUP_PASSPHRASE", "a passphrase for the test")
        .output()
        .unwrap());
    assert!(printed.starts_with("restored "), "{printed}");
    assert_eq!(tree(&fresh.join("pki")), pki);
    assert_eq!(tree(&fresh.join("sites")), sites);
    assert_eq!(dump(&fresh), db);

    // In use: refused without --force.
    let out = portico(&fresh).arg("restore").arg(&archive).arg("--passphrase-file").arg(&pass).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--force"));
    ok(portico(&fresh)
        .arg("restore")
        .arg(&archive)
        .arg("--force")
        .arg("--passphrase-file")
        .arg(&pass)
        .output()
        .unwrap());
    assert_eq!(tree(&fresh.join("pki")), pki);
}
