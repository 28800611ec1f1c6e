//! The store-driven pipeline against a real nginx on free loopback ports:
//! a change nginx refuses leaves the running config and the reply free of
//! paths; a good change can be rolled back byte for byte.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use super::support::{NGINX, NginxProcess, curl, test_ports};
use crate::nginx::state::{self, summarize};
use crate::nginx::{Pipeline, PipelineError};
use crate::settings::Settings;
use crate::store::Store;

struct World {
    _tmp: tempfile::TempDir,
    settings: Arc<Settings>,
    store: Store,
    pipeline: Pipeline,
    _nginx: NginxProcess,
}

async fn world() -> World {
    let tmp = tempfile::tempdir().unwrap();
    let mut settings = Settings { data_dir: tmp.path().join("data"), ..Default::default() };
    settings.public_ip = Some(IpAddr::V4(Ipv4Addr::LOCALHOST));
    settings.nginx.bin = NGINX.into();
    settings.nginx.run_dir = tmp.path().join("run");
    let ports = test_ports();
    (settings.nginx.bind, settings.nginx.http_port, settings.nginx.https_port, settings.nginx.admin_port) =
        (ports.bind, ports.http, ports.https, ports.admin);
    std::fs::create_dir_all(&settings.nginx.run_dir).unwrap();
    crate::init::run(&settings).unwrap();
    let store = Store::open(&settings.db_path()).unwrap();
    let tree = state::render_state(&settings, &store).await.unwrap();
    state::applier(&settings).install(&tree, "first start").unwrap();
    let nginx = NginxProcess::start(
        &settings.nginx.run_dir,
        &settings.nginx_live_dir().join("nginx.conf"),
        settings.nginx.admin_port,
    );
    let settings = Arc::new(settings);
    let pipeline = Pipeline::new(settings.clone(), store.clone(), state::applier(&settings));
    World { _tmp: tmp, settings, store, pipeline, _nginx: nginx }
}

fn admin_page(w: &World) -> u16 {
    let ca = w.settings.pki_dir().join("ca.crt");
    curl(&ca, "127.0.0.1", w.settings.nginx.admin_port, "/").0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_change_keeps_nginx_serving_and_hides_paths() {
    let w = world().await;
    assert_eq!(admin_page(&w), 403, "admin vhost answers without a client certificate");
    let before = w.pipeline.live_tree().await.unwrap();

    w.pipeline.inject_for_tests(Some("this_is_not_a_directive;".into()));
    let err = w.pipeline.change().await.apply("broken on purpose").await.unwrap_err();
    let PipelineError::Rejected { details } = err else { panic!("expected Rejected, got {err:?}") };
    assert!(details.iter().any(|l| l.contains("unknown directive \"this_is_not_a_directive\"")), "{details:?}");
    let root = w._tmp.path().to_str().unwrap().to_string();
    assert!(details.iter().all(|l| !l.contains(&root)), "paths leaked: {details:?}");

    assert_eq!(w.pipeline.live_tree().await.unwrap(), before);
    assert!(w.pipeline.snapshots().await.unwrap().is_empty());
    assert_eq!(admin_page(&w), 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn applied_change_rolls_back_byte_identical() {
    let w = world().await;
    let before = w.pipeline.live_tree().await.unwrap();
    // 2FA on: the admin vhost goes away.
    w.store.put_settings(vec![(state::TWO_FACTOR_KEY, "1".into())]).await.unwrap();
    let out = w.pipeline.change().await.apply("2fa on").await.unwrap();
    assert!(out.changed);
    let snap = out.snapshot.expect("snapshot of the replaced tree");
    assert_ne!(w.pipeline.live_tree().await.unwrap(), before);
    let diff = w.pipeline.diff(snap.clone()).await.unwrap();
    assert!(diff.contains("02-admin-ip.conf"), "{diff}");

    w.pipeline.rollback(snap).await.unwrap();
    assert_eq!(w.pipeline.live_tree().await.unwrap(), before);
    assert!(matches!(w.pipeline.diff("nope".into()).await, Err(PipelineError::UnknownSnapshot)));
}

#[test]
fn summaries_drop_paths() {
    let lines = vec![
        "nginx: [emerg] unknown directive \"x\" in /tmp/a/nginx.conf:12".to_string(),
        "nginx: [emerg] cannot load certificate \"/data/acme/x.pem\": BIO_new_file() failed".to_string(),
        "nginx: configuration file /tmp/a/nginx.conf test failed".to_string(),
    ];
    assert_eq!(
        summarize(&lines),
        vec![
            "[emerg] unknown directive \"x\"".to_string(),
            "[emerg] cannot load certificate (path omitted)".to_string()
        ]
    );
}
