//! Onboarding's domain change against a real nginx: when nginx refuses the
//! new configuration the API answers 422 with nginx's reason, the store keeps
//! its previous rows and nginx keeps serving.

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::*;

pub(super) struct Nginx(Child);

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg("-TERM").arg(self.0.id().to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline && !matches!(self.0.try_wait(), Ok(Some(_))) {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Starts a real nginx for the world's settings on free loopback ports.
async fn world_with_nginx(run_dir: &std::path::Path) -> (World, Nginx) {
    world_with_nginx_and(run_dir, |_| {}).await
}

/// Like [`world_with_nginx`], with more settings changed by `more` (after the ports are picked).
pub(super) async fn world_with_nginx_and(
    run_dir: &std::path::Path,
    more: impl FnOnce(&mut Settings),
) -> (World, Nginx) {
    let run_dir = run_dir.to_path_buf();
    let rd = run_dir.clone();
    let w = world_with(move |s| {
        s.nginx.enabled = true;
        s.nginx.run_dir = rd;
        s.nginx.bind = "127.0.0.1".parse().unwrap();
        (s.nginx.http_port, s.nginx.https_port, s.nginx.admin_port) = (free_port(), free_port(), free_port());
        more(s);
    })
    .await;
    let admin_port = w.state.settings.nginx.admin_port;
    let settings = w.state.settings.clone();
    let tree = crate::nginx::state::render_state(&settings, &w.state.store).await.unwrap();
    crate::nginx::state::applier(&settings).install(&tree, "first start").unwrap();
    let child = Command::new(&settings.nginx.bin)
        .arg("-p")
        .arg(&run_dir)
        .arg("-c")
        .arg(settings.nginx_live_dir().join("nginx.conf"))
        .args(["-g", "daemon off;"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let nginx = Nginx(child);
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", admin_port)).is_err() {
        assert!(Instant::now() < deadline, "nginx did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    (w, nginx)
}

/// Calls `f` until `done` holds or 10 s pass; returns the last result.
pub(super) fn poll<T>(mut f: impl FnMut() -> T, done: impl Fn(&T) -> bool) -> T {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = f();
        if done(&r) || Instant::now() >= deadline {
            return r;
        }
        std::thread::sleep(Duration::from_millis(50)); // poll interval
    }
}

/// `curl https://<host>:<port>/` resolved to loopback; (status, body) or (0, error).
fn curl(ca: &std::path::Path, host: &str, port: u16) -> (u16, String) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10", "-o", "-", "-w", "\n%{http_code}", "--cacert"])
        .arg(ca)
        .arg("--resolve")
        .arg(format!("{host}:{port}:127.0.0.1"))
        .arg(format!("https://{host}:{port}/"))
        .output()
        .unwrap();
    if !out.status.success() {
        return (0, String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap();
    (code.trim().parse().unwrap_or(0), body.to_string())
}

#[actix_web::test]
async fn a_created_site_is_served_by_nginx_and_gone_after_delete() {
    let run = tempfile::tempdir().unwrap();
    let (w, _nginx) = world_with_nginx(run.path()).await;
    w.set_state(OnboardingState::Completed).await;
    w.state.store.put_settings(vec![(onboarding::keys::DOMAIN, "example.test".into())]).await.unwrap();
    // A self-signed wildcard certificate where the ACME module puts certificates.
    let paths = crate::nginx::state::cert_paths(&w.state.settings.data_dir, "*.example.test");
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["*.example.test".to_string()]).unwrap().self_signed(&key).unwrap();
    std::fs::create_dir_all(paths.fullchain.parent().unwrap()).unwrap();
    std::fs::write(&paths.fullchain, cert.pem()).unwrap();
    std::fs::write(&paths.key, key.serialize_pem()).unwrap();

    let req = TestRequest::post().uri("/api/sites").set_json(json!({"name": "docs", "access": "public"}));
    let res = w.call(Who::Admin, req).await;
    assert_eq!(res.status(), 201);
    let id = json_body(res).await["id"].as_i64().unwrap();
    let port = w.state.settings.nginx.https_port;
    // The reload is asynchronous: poll until the new workers answer.
    let (status, body) = poll(|| curl(&paths.fullchain, "docs.example.test", port), |r| r.0 == 200);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("no content yet"), "{body}");

    let res = w.call(Who::Admin, TestRequest::delete().uri(&format!("/api/sites/{id}"))).await;
    assert_eq!(res.status(), 204);
    let gone = poll(|| curl(&paths.fullchain, "docs.example.test", port), |r| r.0 == 0);
    assert_eq!(gone.0, 0, "vhost must be gone");
    assert!(!crate::sites::site_dir(&w.state.settings.data_dir, "docs").exists());
}

#[actix_web::test]
async fn refused_domain_change_is_undone_and_nginx_keeps_serving() {
    let run = tempfile::tempdir().unwrap();
    let run_dir = run.path().to_path_buf();
    let (w, _nginx) = world_with_nginx(&run_dir).await;
    let admin_port = w.state.settings.nginx.admin_port;
    let live_before = w.state.nginx.live_tree().await.unwrap();
    let body = json!({"domain": "example.test", "email": "ops@example.test"});
    let req = || TestRequest::post().uri("/api/onboarding/domain").set_json(body.clone());

    w.state.nginx.inject_for_tests(Some("this_is_not_a_directive;".into()));
    let res = w.call(Who::Admin, req()).await;
    assert_eq!(res.status(), 422);
    let v = json_body(res).await;
    let details = v["details"].to_string();
    assert!(details.contains("unknown directive"), "{v}");
    assert!(!details.contains(run_dir.to_str().unwrap()), "paths leaked: {v}");
    let rows = w.state.store.settings(&[onboarding::keys::STATE, onboarding::keys::DOMAIN]).await.unwrap();
    assert_eq!(rows[0].as_deref().unwrap_or("FRESH"), "FRESH");
    assert_eq!(rows[1].as_deref().unwrap_or(""), "");
    assert_eq!(w.state.nginx.live_tree().await.unwrap(), live_before);
    assert!(TcpStream::connect(("127.0.0.1", admin_port)).is_ok(), "nginx still listens");

    w.state.nginx.inject_for_tests(None);
    let res = w.call(Who::Admin, req()).await;
    assert_eq!(res.status(), 200);
    let domain = w.state.store.setting(onboarding::keys::DOMAIN).await.unwrap();
    assert_eq!(domain.as_deref(), Some("example.test"));
}

#[actix_web::test]
async fn each_change_labels_its_own_snapshot() {
    let run = tempfile::tempdir().unwrap();
    let (w, _nginx) = world_with_nginx(run.path()).await;
    w.set_state(OnboardingState::Completed).await;
    w.state.store.put_settings(vec![(onboarding::keys::DOMAIN, "example.test".into())]).await.unwrap();
    // Names get a vhost once a certificate covers them: a self-signed wildcard.
    let paths = crate::nginx::state::cert_paths(&w.state.settings.data_dir, "*.example.test");
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["*.example.test".to_string()]).unwrap().self_signed(&key).unwrap();
    std::fs::create_dir_all(paths.fullchain.parent().unwrap()).unwrap();
    std::fs::write(&paths.fullchain, cert.pem()).unwrap();
    std::fs::write(&paths.key, key.serialize_pem()).unwrap();
    let newest = || async {
        let res = w.call(Who::Admin, TestRequest::get().uri("/api/nginx/snapshots")).await;
        json_body(res).await["snapshots"][0]["reason"].as_str().unwrap_or_default().to_string()
    };
    let req = TestRequest::post()
        .uri("/api/tunnels")
        .set_json(json!({"name": "app", "agent": "reader", "target": "127.0.0.1:8080"}));
    let res = w.call(Who::Admin, req).await;
    assert_eq!(res.status(), 201);
    let id = json_body(res).await["id"].as_i64().unwrap();
    assert_eq!(newest().await, "tunnel app created");
    let res = w.call(Who::Admin, TestRequest::post().uri("/api/sites").set_json(json!({"name": "docs"}))).await;
    assert_eq!(res.status(), 201);
    assert_eq!(newest().await, "site docs created");
    let res = w.call(Who::Admin, TestRequest::delete().uri(&format!("/api/tunnels/{id}"))).await;
    assert!(res.status().is_success(), "{}", res.status());
    assert_eq!(newest().await, "tunnel app deleted", "not the label of an earlier change");
}
