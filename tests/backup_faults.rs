//! kill -9 during `portico backup` and `portico restore`, at seeded random
//! moments. After the restart (`portico init`, as the container's start
//! runs it) the data directory equals exactly the state before or after —
//! full listing and a logical dump of the database — and nothing left
//! behind stops the next run.
//!
//! The seed is printed; `PORTICO_FAULT_SEED=<n>` replays a run.

#[path = "support/listing.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use support::listing;

const TRIALS: usize = 20;
const PASS: &str = "a passphrase for the fault trials";

fn portico(data_dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_portico"));
    cmd.env_clear()
        .env("PORTICO__DATA_DIR", data_dir)
        .env("PORTICO_OPTIONS", data_dir.join("options.json"))
        .env("PORTICO__LOG__LEVEL", "error")
        .env("PORTICO_BACKUP_PASSPHRASE", PASS)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

fn ok(out: Output) -> String {
    assert!(out.status.success(), "failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// splitmix64: a small seeded generator, so a failing run can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn rng() -> Rng {
    let seed = std::env::var("PORTICO_FAULT_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(19);
    println!("fault trials seed {seed} (PORTICO_FAULT_SEED)");
    Rng(seed)
}

/// The state compared: every entry of the data dir and the database's rows.
#[derive(Debug, PartialEq)]
struct State {
    files: Vec<String>,
    db: Vec<String>,
}

fn state(data_dir: &Path) -> State {
    let db = portico::store::Store::open(&data_dir.join("portico.db")).unwrap().dump().unwrap();
    State { files: listing(data_dir), db }
}

/// An initialized appliance with a tunnel, a user, issued certificates (the
/// ACME store's links), a site with `site_bytes` of incompressible content.
async fn appliance(data_dir: &Path, tag: &str, site_bytes: usize, rng: &mut Rng) {
    let settings = portico::settings::Settings { data_dir: data_dir.to_path_buf(), ..Default::default() };
    portico::init::run(&settings).unwrap();
    let store = portico::store::Store::open(&settings.db_path()).unwrap();
    let pki = portico::pki::Pki::new(data_dir);
    let caps = vec![portico::identity::Capability::TunnelsRead];
    portico::agents::issue(pki, &store, "home".into(), caps).await.unwrap();
    let now = time::OffsetDateTime::now_utc();
    let tunnel = portico::store::TunnelFields {
        name: format!("app-{tag}"),
        agent: "home".into(),
        target: "127.0.0.1:8080".into(),
        enabled: true,
        access: "authenticated".into(),
        allowed_users: vec![],
        allowed_groups: vec![],
        description: tag.into(),
    };
    store.insert_tunnel(tunnel, now).await.unwrap();
    store.put_settings(vec![("domain", format!("{tag}.example.com"))]).await.unwrap();
    for name in ["panel", "auth", "app"] {
        let fqdn = format!("{name}.{tag}.example.com");
        portico::acme::files::install(data_dir, &fqdn, &format!("CHAIN {fqdn}\n"), &format!("KEY {fqdn}\n")).unwrap();
    }
    let site = data_dir.join("sites/blog");
    std::fs::create_dir_all(&site).unwrap();
    std::fs::write(site.join("index.html"), format!("<p>{tag}</p>")).unwrap();
    let mut bytes = vec![0u8; site_bytes];
    for chunk in bytes.chunks_mut(8) {
        let n = rng.next().to_le_bytes();
        chunk.copy_from_slice(&n[..chunk.len()]);
    }
    std::fs::write(site.join("video.bin"), bytes).unwrap();
}

/// Copies a tree with its modes and links. An entry that is gone by the
/// time it is read is skipped: SQLite deletes `-wal`/`-shm` when a pooled
/// connection that r2d2 opened in the background of [`state`] closes.
fn copy_tree(from: &Path, to: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().map(|e| e.unwrap()) {
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        let meta = match std::fs::symlink_metadata(&src) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            other => other.unwrap(),
        };
        if meta.file_type().is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&src).unwrap(), &dst).unwrap();
            continue;
        }
        if meta.is_dir() {
            copy_tree(&src, &dst);
        } else {
            match std::fs::copy(&src, &dst) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                other => other.unwrap(),
            };
        }
        std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(meta.permissions().mode())).unwrap();
    }
}

/// Runs `cmd`, kills it (SIGKILL) after `delay` unless it ended; whether it ended.
fn run_and_kill(cmd: &mut Command, delay: Duration) -> bool {
    let mut child = cmd.spawn().unwrap();
    let deadline = Instant::now() + delay;
    while Instant::now() < deadline {
        if child.try_wait().unwrap().is_some() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(1)); // poll interval
    }
    let ended = child.try_wait().unwrap().is_some();
    let _ = child.kill();
    let _ = child.wait();
    ended
}

/// How long `cmd` takes when left alone; kill delays are drawn up to a bit beyond.
fn duration_of(cmd: &mut Command) -> Duration {
    let started = Instant::now();
    ok(cmd.output().unwrap());
    started.elapsed()
}

fn archives(data_dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(data_dir.join("backups"))
        .map(|d| d.map(|e| e.unwrap().path()).filter(|p| p.to_string_lossy().ends_with(".tar.zst.age")).collect())
        .unwrap_or_default();
    out.sort();
    out
}

fn leftovers(dir: &Path, prefixes: &[&str]) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().into_string().unwrap())
                .filter(|n| prefixes.iter().any(|p| n.starts_with(p)))
                .collect()
        })
        .unwrap_or_default()
}

#[actix_web::test]
async fn kill_9_during_backup_leaves_the_data_and_only_whole_archives() {
    let mut rng = rng();
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    appliance(&data, "b", 2 << 20, &mut rng).await;
    let before = state(&data);
    let full = duration_of(portico(&data).arg("backup"));
    std::fs::remove_file(&archives(&data)[0]).unwrap();

    let (mut killed, mut finished) = (0, 0);
    for trial in 0..TRIALS {
        let delay = Duration::from_micros(rng.below(full.as_micros() as u64 * 5 / 4));
        if run_and_kill(portico(&data).arg("backup"), delay) {
            finished += 1;
        } else {
            killed += 1;
        }
        // The data itself never changes; the next backup clears what a killed one left.
        assert_eq!(state(&data), before, "trial {trial}: the data dir changed");
        let next = ok(portico(&data).arg("backup").output().unwrap());
        assert!(Path::new(next.trim()).is_file(), "trial {trial}");
        assert_eq!(leftovers(&data.join("backups"), &[".tmp-"]), Vec::<String>::new(), "trial {trial}");
    }
    // Every archive in place is whole: it restores to the same state.
    let all = archives(&data);
    assert!(all.len() >= TRIALS);
    for archive in &all {
        let fresh = work.path().join("fresh");
        ok(portico(&fresh).arg("restore").arg(archive).output().unwrap());
        assert_eq!(state(&fresh), before, "{} restores to something else", archive.display());
        std::fs::remove_dir_all(&fresh).unwrap();
    }
    println!(
        "backup kill -9 trials: {TRIALS} ({killed} killed mid-run, {finished} had finished); {} archives checked",
        all.len()
    );
}

#[actix_web::test]
async fn kill_9_during_restore_leaves_the_state_before_or_after() {
    let mut rng = rng();
    let work = tempfile::tempdir().unwrap();
    let (source, template) = (work.path().join("source"), work.path().join("template"));
    appliance(&source, "new", 2 << 20, &mut rng).await;
    appliance(&template, "old", 1 << 19, &mut rng).await;
    let archive = PathBuf::from(ok(portico(&source).arg("backup").output().unwrap()).trim());
    let after = state(&source);
    let before = state(&template);
    assert_ne!(before, after);

    let probe = work.path().join("probe");
    copy_tree(&template, &probe);
    let full = duration_of(portico(&probe).arg("restore").arg(&archive).arg("--force"));

    let (mut as_before, mut as_after) = (0, 0);
    for trial in 0..TRIALS {
        let data = work.path().join(format!("trial-{trial}"));
        copy_tree(&template, &data);
        assert_eq!(state(&data), before);
        let delay = Duration::from_micros(rng.below(full.as_micros() as u64 * 5 / 4));
        run_and_kill(portico(&data).arg("restore").arg(&archive).arg("--force"), delay);
        // The restart.
        ok(portico(&data).arg("init").output().unwrap());
        let got = state(&data);
        if got == before {
            as_before += 1;
        } else {
            assert_eq!(got, after, "trial {trial} (delay {delay:?}): neither the state before nor after");
            as_after += 1;
        }
        assert_eq!(leftovers(&data, &[".restore"]), Vec::<String>::new(), "trial {trial}");
        // The next restore runs as if nothing happened.
        ok(portico(&data).arg("restore").arg(&archive).arg("--force").output().unwrap());
        assert_eq!(state(&data), after, "trial {trial}");
        std::fs::remove_dir_all(&data).unwrap();
    }
    println!("restore kill -9 trials: {TRIALS} ({as_before} recovered to the state before, {as_after} to after)");
}
