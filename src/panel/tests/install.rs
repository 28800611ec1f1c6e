//! `install.sh` for real: the line the Agents page shows, run with `sh` as
//! root against the panel behind a real nginx (the `:9292` vhost as rendered,
//! its self-signed certificate pinned). It installs the binary the panel
//! serves, creates the agent's user and config directory, enrolls, writes
//! the systemd unit; a re-run keeps the enrollment; a used token, an unknown
//! architecture and a checksum mismatch are refused with a clear message.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::nginx::world_with_nginx_and;
use super::provision::serve;
use super::*;
use crate::agents::create_enrollment;
use crate::identity::Capability;

/// The `portico` binary of this build (beside the test executable's `deps/`).
fn portico_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let bin = exe.parent().unwrap().parent().unwrap().join("portico");
    assert!(bin.is_file(), "{} is missing: build the binary first (cargo build)", bin.display());
    bin
}

fn platform() -> &'static str {
    match std::env::consts::ARCH {
        "aarch64" => "portico-linux-arm64",
        _ => "portico-linux-amd64",
    }
}

/// What one installation leaves on the system: removed on drop.
struct Installed {
    name: String,
}

impl Drop for Installed {
    fn drop(&mut self) {
        let _ = std::process::Command::new("userdel").arg(&self.name).output();
        let _ = std::fs::remove_dir_all(format!("/var/lib/{}", self.name));
        let _ = std::fs::remove_file(format!("/etc/systemd/system/{}.service", self.name));
    }
}

/// Runs `sh -c script` with `path` first on PATH; (success, stdout + stderr).
async fn sh(script: &str, path: Option<&Path>) -> (bool, String) {
    let mut cmd = tokio::process::Command::new("sh");
    cmd.arg("-c").arg(script).kill_on_drop(true);
    if let Some(dir) = path {
        cmd.env("PATH", format!("{}:{}", dir.display(), std::env::var("PATH").unwrap_or_default()));
    }
    let out =
        tokio::time::timeout(Duration::from_secs(300), cmd.output()).await.expect("install.sh ran 5 minutes").unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

fn sha256_file(path: &Path) -> String {
    hex::encode(Sha256::digest(std::fs::read(path).unwrap()))
}

#[actix_web::test]
async fn install_line_installs_enrolls_and_writes_the_unit() {
    let tmp = tempfile::tempdir().unwrap();
    let downloads = tmp.path().join("downloads");
    std::fs::create_dir_all(&downloads).unwrap();
    std::fs::create_dir_all(tmp.path().join("run")).unwrap();
    let binary = portico_binary();
    std::os::unix::fs::symlink(&binary, downloads.join(platform())).unwrap();
    let dl = downloads.clone();
    let (w, _nginx) = world_with_nginx_and(&tmp.path().join("run"), move |s| {
        s.public_ip = Some("127.0.0.1".parse().unwrap());
        s.panel.listen = SocketAddr::from(([127, 0, 0, 1], crate::acme::pebble::free_port()));
        s.panel.downloads_dir = dl;
    })
    .await;
    let _server = serve(&w);
    w.set_state(OnboardingState::Completed).await;
    // A domain without certificates yet: the panel is reached by IP, the
    // relay is known by name.
    w.state.store.put_settings(vec![(onboarding::keys::DOMAIN, "example.test".into())]).await.unwrap();
    let panel = crate::downloads::panel_address(&w.state.settings, &w.state.store, w.state.public_ip()).await.unwrap();
    // The line exactly as the API (and the Agents page) gives it.
    let req = TestRequest::post().uri("/api/certs/agent/enroll").set_json(json!({"label": "home", "capabilities": []}));
    let res = w.call(Who::Admin, req).await;
    assert_eq!(res.status(), 201);
    let line = json_body(res).await["install"].as_str().unwrap().to_string();
    assert!(line.starts_with("curl -fsS -k --pinnedpubkey sha256//"), "{line}");
    assert!(line.contains(&format!(" {}/download/install.sh | sh -s -- --token ", panel.url)), "{line}");

    if euid() != 0 {
        let (ok, out) = sh(&line, None).await;
        assert!(!ok && out.contains("run as root"), "{out}");
        return;
    }
    let name = format!("portico-t{}", std::process::id());
    let installed = Installed { name: name.clone() };
    let prefix = tmp.path().join("prefix");
    // The agent's user runs the installed binary: the temp dir must be traversable.
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let with_service = !Path::new("/run/systemd/system").exists();
    let extra = if with_service { "" } else { " --no-service" };
    let (ok, out) = sh(&format!("{line} --name {name} --prefix {}{extra}", prefix.display()), None).await;
    assert!(ok, "{out}");
    assert!(out.contains("enrolled as agent 'home'"), "{out}");

    let bin = prefix.join("bin/portico");
    assert_eq!(sha256_file(&bin), sha256_file(&binary), "the installed binary is the served one");
    let config = PathBuf::from(format!("/var/lib/{name}"));
    let meta = std::fs::metadata(&config).unwrap();
    assert_eq!(meta.mode() & 0o777, 0o700);
    let uid = std::fs::read_to_string("/etc/passwd")
        .unwrap()
        .lines()
        .find_map(|l| {
            l.strip_prefix(&format!("{name}:x:")).map(|rest| rest.split(':').next().unwrap().parse::<u32>().unwrap())
        })
        .expect("the agent's user exists");
    assert!(uid != 0, "an unprivileged user");
    for file in ["", "/agent.json", "/agent.key", "/agent.crt", "/ca.crt"] {
        let m = std::fs::metadata(format!("{}{file}", config.display())).unwrap();
        assert_eq!(m.uid(), uid, "{file} belongs to the agent's user");
    }
    assert_eq!(std::fs::metadata(config.join("agent.key")).unwrap().mode() & 0o777, 0o600);
    let agent: Value = serde_json::from_slice(&std::fs::read(config.join("agent.json")).unwrap()).unwrap();
    assert_eq!(agent["label"], "home");
    assert_eq!(agent["panel"], panel.url);
    assert_eq!(agent["relay"].as_str(), panel.relay.as_deref());
    assert!(w.state.store.agent("home".into()).await.unwrap().is_some(), "the panel knows the agent");
    if with_service {
        let unit = std::fs::read_to_string(format!("/etc/systemd/system/{name}.service")).unwrap();
        assert_eq!(unit, crate::downloads::systemd_unit(&name, &bin.display().to_string()), "the page shows this unit");
        assert!(out.contains("systemd is not running here: start the agent"), "{out}");
    }

    // Again (an upgrade): the used token is not needed, the enrollment stays.
    let before = std::fs::read(config.join("agent.json")).unwrap();
    let (ok, out) = sh(&format!("{line} --name {name} --prefix {}{extra}", prefix.display()), None).await;
    assert!(ok && out.contains("already enrolled"), "{out}");
    assert_eq!(std::fs::read(config.join("agent.json")).unwrap(), before);

    // A used token for a new installation: refused, with the way out.
    let other = Installed { name: format!("{name}b") };
    let (ok, out) = sh(&format!("{line} --name {} --prefix {} --no-service", other.name, prefix.display()), None).await;
    assert!(!ok && out.contains("the panel refused the token"), "{out}");

    // An architecture the panel does not serve.
    let fake = tmp.path().join("fake");
    std::fs::create_dir_all(&fake).unwrap();
    std::fs::write(fake.join("uname"), "#!/bin/sh\ncase $1 in -m) echo riscv64 ;; *) echo Linux ;; esac\n").unwrap();
    std::fs::set_permissions(fake.join("uname"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let (ok, out) = sh(&format!("{line} --name {} --prefix {}", other.name, prefix.display()), Some(&fake)).await;
    let served = platform().trim_start_matches("portico-");
    assert!(!ok && out.contains(&format!("unknown architecture riscv64: this panel serves {served}")), "{out}");
    drop(installed);
}

#[actix_web::test]
async fn install_refuses_a_binary_that_does_not_match_its_checksum() {
    let tmp = tempfile::tempdir().unwrap();
    let downloads = tmp.path().join("downloads");
    std::fs::create_dir_all(&downloads).unwrap();
    std::fs::create_dir_all(tmp.path().join("run")).unwrap();
    std::fs::write(downloads.join(platform()), b"the binary the checksum was made for").unwrap();
    let dl = downloads.clone();
    let (w, _nginx) = world_with_nginx_and(&tmp.path().join("run"), move |s| {
        s.public_ip = Some("127.0.0.1".parse().unwrap());
        s.panel.listen = SocketAddr::from(([127, 0, 0, 1], crate::acme::pebble::free_port()));
        s.panel.downloads_dir = dl;
    })
    .await;
    let _server = serve(&w);
    let panel = crate::downloads::panel_address(&w.state.settings, &w.state.store, w.state.public_ip()).await.unwrap();
    let grant = create_enrollment(&w.state.store, "home".into(), vec![Capability::TunnelsRead], 10).await.unwrap();
    // The script as the line fetches it, then the binary changes under it.
    let line = crate::downloads::install_line(&panel, &grant.token);
    let fetch = line.split(" | ").next().unwrap();
    let (ok, out) = sh(&format!("cd {} && {fetch} -o install.sh", tmp.path().display()), None).await;
    assert!(ok, "{out}");
    std::fs::write(downloads.join(platform()), b"something else entirely").unwrap();
    let prefix = tmp.path().join("prefix");
    let name = format!("portico-c{}", std::process::id());
    let _installed = Installed { name: name.clone() };
    let script = tmp.path().join("install.sh");
    let (ok, out) = sh(
        &format!("sh {} --token {} --name {name} --prefix {}", script.display(), grant.token, prefix.display()),
        None,
    )
    .await;
    assert!(!ok, "{out}");
    if euid() == 0 {
        assert!(out.contains("checksum mismatch for portico-linux-") && out.contains("nothing was installed"), "{out}");
        assert!(!prefix.join("bin/portico").exists());
        assert!(!Path::new(&format!("/var/lib/{name}")).exists(), "no user or config directory either");
    }
}

/// The effective user id, read from `/proc` (no `unsafe` needed).
fn euid() -> u32 {
    std::fs::metadata("/proc/self").map(|m| m.uid()).unwrap_or(u32::MAX)
}
