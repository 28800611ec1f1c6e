//! A full data volume (a small tmpfs mounted as the data dir, with a real
//! nginx): a change answers 507 with a plain "the data volume is full"
//! message, nothing is half-written (store rows, the live nginx tree and
//! the certificate files are as before, SQLite passes its integrity check,
//! nginx keeps serving), and once space is freed the same request succeeds
//! without anything else done.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use actix_web::ResponseError;
use actix_web::http::StatusCode;

use super::nginx::world_with_nginx_and;
use super::*;
use crate::panel::error::ApiError;

/// A tmpfs of `size` at `dir`; lazily unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Result<Tmpfs, String> {
        fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0711"), "tmpfs"])
            .arg(dir)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
        }
        Ok(Tmpfs(dir.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Writes `path` until the volume refuses another byte.
fn fill(path: &Path) {
    let mut f = fs::File::create(path).unwrap();
    for chunk in [1 << 20, 1 << 12, 1] {
        let buf = vec![0u8; chunk];
        loop {
            match f.write_all(&buf) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::StorageFull => break,
                Err(e) => panic!("filling the volume: {e}"),
            }
        }
    }
    let _ = f.sync_all();
}

/// Every file under `dir` with its bytes (links followed), for before/after comparison.
fn listing(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push((p.clone(), fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

fn wildcard(data_dir: &Path) {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["*.example.com".to_string()]).unwrap().self_signed(&key).unwrap();
    crate::acme::files::install(data_dir, "*.example.com", &cert.pem(), &key.serialize_pem()).unwrap();
}

#[actix_web::test]
async fn a_full_data_volume_refuses_changes_clearly_and_recovers_by_itself() {
    let tmp = tempfile::tempdir().unwrap();
    let volume = tmp.path().join("data");
    let mounted = match Tmpfs::mount(&volume, "16m") {
        Ok(m) => m,
        Err(why) => {
            eprintln!("skipping: cannot mount a small tmpfs as the data volume ({why})");
            return;
        }
    };
    let data = volume.clone();
    fs::create_dir_all(tmp.path().join("run")).unwrap();
    let (w, _nginx) = world_with_nginx_and(&tmp.path().join("run"), move |s| s.data_dir = data).await;
    w.set_state(OnboardingState::Completed).await;
    w.state.store.put_settings(vec![(onboarding::keys::DOMAIN, "example.com".into())]).await.unwrap();
    wildcard(&volume);
    w.state.apply_config("domain and certificate").await.unwrap();
    let create = || {
        TestRequest::post()
            .uri("/api/tunnels")
            .set_json(json!({"name": "app", "agent": "reader", "target": "127.0.0.1:8080", "access": "public"}))
    };
    // The admin vhost's certificate names the public IP, not loopback: the
    // handshake and status are what count here.
    let nginx_serves = |w: &World| {
        let url = format!("https://127.0.0.1:{}/", w.state.settings.nginx.admin_port);
        let out =
            Command::new("curl").args(["-sk", "-o", "/dev/null", "-m", "10", "-w", "%{http_code}", &url]).output();
        String::from_utf8_lossy(&out.unwrap().stdout).parse::<u16>().unwrap_or(0)
    };
    let tree_before = w.state.nginx.live_tree().await.unwrap();
    let acme_before = listing(&volume.join("acme"));
    let tunnels_before = w.state.store.tunnels().await.unwrap();

    fill(&volume.join("filler"));
    let res = w.call(Who::Admin, create()).await;
    let status = res.status().as_u16();
    let body = json_body(res).await;
    assert_eq!(status, 507, "{body}");
    let message = body["error"].as_str().unwrap();
    assert!(message.starts_with("The data volume is full"), "{body}");
    assert!(!message.contains('/') && !message.contains("sqlite") && !message.contains("os error"), "{body}");

    // A write that needs room in the database itself is refused the same way.
    let big = "x".repeat(4 << 20);
    let err = w.state.store.put_settings(vec![("full_disk_probe", big)]).await.unwrap_err();
    assert!(matches!(err, crate::store::StoreError::StorageFull), "{err:?}");
    assert_eq!(ApiError::from(err).status_code(), StatusCode::INSUFFICIENT_STORAGE);

    // Nothing changed, nothing is corrupt, nginx serves on.
    assert_eq!(w.state.store.tunnels().await.unwrap(), tunnels_before);
    assert_eq!(w.state.nginx.live_tree().await.unwrap(), tree_before);
    assert_eq!(listing(&volume.join("acme")), acme_before);
    w.state.store.integrity_check().unwrap();
    assert!(!volume.join("nginx/applying.json").exists());
    assert_eq!(nginx_serves(&w), 403, "nginx answers on the admin port");

    // Space freed: the same request succeeds, nothing else done.
    fs::remove_file(volume.join("filler")).unwrap();
    let res = w.call(Who::Admin, create()).await;
    let status = res.status().as_u16();
    let body = json_body(res).await;
    assert_eq!(status, 201, "{body}");
    let tree = w.state.nginx.live_tree().await.unwrap();
    assert!(tree.files.values().any(|f| f.contains("app.example.com")), "the new tunnel is rendered");
    assert_eq!(nginx_serves(&w), 403);
    w.state.store.integrity_check().unwrap();
    drop(w);
    drop(mounted);
}
