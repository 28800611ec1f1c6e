//! kill -9 during an nginx apply: a tunnel is created through the use case
//! the API and the UI call (store → apply → probe → audit) in a child
//! process that is SIGKILLed at a seeded random moment. After a restart
//! (every other trial only the panel, with nginx left running as s6 would;
//! otherwise the whole container: `portico init`, `portico nginx render`,
//! a fresh nginx, then the panel), the tunnel exists and is served, or
//! neither — never a row nginx does not serve, a tree nginx refuses, a
//! half-written tree, or leftovers of the interrupted apply.

use std::fs;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use time::OffsetDateTime;

use super::crash::{self, Rng, Tally, Trial};
use super::support::{NGINX, NginxProcess, test_ports};
use crate::nginx::{Ports, Reloader, RenderedTree, state};
use crate::onboarding;
use crate::panel::AppState;
use crate::settings::Settings;
use crate::store::{ClientCert, Store, TunnelFields};
use crate::testing;

const TEST: &str = "nginx::tests::kill::an_apply_killed_at_any_moment_leaves_before_or_after";
const TRIALS: usize = 20;
const DOMAIN: &str = "example.test";

fn settings(root: &Path, ports: Ports) -> Settings {
    let mut s = Settings { data_dir: root.join("data"), ..Default::default() };
    s.public_ip = Some(IpAddr::V4(Ipv4Addr::LOCALHOST));
    s.nginx.bin = NGINX.into();
    s.nginx.run_dir = root.join("run");
    (s.nginx.bind, s.nginx.http_port, s.nginx.https_port, s.nginx.admin_port) =
        (ports.bind, ports.http, ports.https, ports.admin);
    s.panel.visitor_log_port = 0;
    s
}

fn ports_from_env() -> Ports {
    let p: Vec<u16> = std::env::var("PORTICO_CRASH_PORTS").unwrap().split(',').map(|p| p.parse().unwrap()).collect();
    Ports { bind: IpAddr::V4(Ipv4Addr::LOCALHOST), http: p[0], https: p[1], admin: p[2] }
}

fn fields(name: &str) -> TunnelFields {
    testing::tunnel_fields(name, "home", "127.0.0.1:9")
}

/// The child: creates tunnel `$PORTICO_CRASH_NAME` as the admin would.
fn child() {
    let root = PathBuf::from(std::env::var("PORTICO_CRASH_ROOT").unwrap());
    let name = std::env::var("PORTICO_CRASH_NAME").unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let state = AppState::load(settings(&root, ports_from_env())).await.unwrap();
        let admin = testing::admin("admin");
        crash::ready();
        crate::app::tunnels::create(&state, &admin, fields(&name)).await.unwrap();
    });
}

/// A CA and a `*.example.test` certificate installed the way ACME installs.
fn install_wildcard(data_dir: &Path) -> PathBuf {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(DnType::CommonName, "kill trial CA");
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec![format!("*.{DOMAIN}")]).unwrap().signed_by(&key, &ca).unwrap();
    crate::acme::files::install(data_dir, &format!("*.{DOMAIN}"), &leaf.pem(), &key.serialize_pem()).unwrap();
    let ca_path = data_dir.join("../trial-ca.pem");
    fs::write(&ca_path, ca.pem()).unwrap();
    ca_path
}

/// Whether nginx completes a TLS handshake for `name` (its vhost is loaded;
/// unknown names are refused at the handshake).
fn served(ca: &Path, https: u16, name: &str) -> bool {
    let host = format!("{name}.{DOMAIN}");
    let out = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "--max-time", "10", "-w", "%{http_code}"])
        .arg("--cacert")
        .arg(ca)
        .arg("--resolve")
        .arg(format!("{host}:{https}:127.0.0.1"))
        .arg(format!("https://{host}:{https}/"))
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim() != "000"
}

/// What a restart must find: the store's tunnels, the live tree and the snapshot list.
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    tunnels: Vec<String>,
    tree: RenderedTree,
    snapshots: Vec<String>,
}

async fn seen(s: &Settings, store: &Store) -> Seen {
    let applier = state::applier(s);
    Seen {
        tunnels: store.tunnels().await.unwrap().into_iter().map(|t| t.name).collect(),
        tree: applier.live_tree().unwrap(),
        snapshots: applier.snapshots().unwrap().into_iter().map(|m| m.id).collect(),
    }
}

/// Every trace of an interrupted apply is gone and nginx runs the store's state.
async fn assert_settled(s: &Settings, store: &Store, ca: &Path, trial: usize) {
    let nginx_dir = s.nginx_live_dir().parent().unwrap().to_path_buf();
    assert!(!nginx_dir.join("applying.json").exists(), "trial {trial}: the apply journal is still there");
    let live = fs::canonicalize(s.nginx_live_dir()).unwrap();
    let trees: Vec<PathBuf> = fs::read_dir(nginx_dir.join("trees")).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(trees, vec![live], "trial {trial}: trees other than the live one are left");
    let leftovers: Vec<String> = fs::read_dir(nginx_dir.join("snapshots"))
        .into_iter()
        .flatten()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "trial {trial}: half-written snapshots {leftovers:?}");
    let bin = crate::nginx::NginxBinary::new(NGINX, &s.nginx.run_dir, s.nginx_live_dir());
    bin.test(&s.nginx_live_dir()).unwrap_or_else(|e| panic!("trial {trial}: nginx -t refuses the live tree: {e}"));
    let wanted = state::render_state(s, store).await.unwrap();
    assert_eq!(state::applier(s).live_tree().unwrap(), wanted, "trial {trial}: the live tree is not the store's");
    for t in store.tunnels().await.unwrap() {
        let ok = served(ca, s.nginx.https_port, &t.name);
        assert!(ok, "trial {trial}: tunnel {} is in the store but nginx does not serve it", t.name);
    }
    let (status, _) = super::support::curl(&s.pki_dir().join("ca.crt"), "127.0.0.1", s.nginx.admin_port, "/");
    assert_eq!(status, 403, "trial {trial}: nginx does not answer on the admin port as it should");
}

#[test]
fn an_apply_killed_at_any_moment_leaves_before_or_after() {
    if std::env::var(crash::CHILD).is_ok() {
        return child();
    }
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let ports = test_ports();
    let s = settings(root, ports);
    fs::create_dir_all(&s.nginx.run_dir).unwrap();
    crate::init::run(&s).unwrap();
    let ca = install_wildcard(&s.data_dir);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let store = Store::open(&s.db_path()).unwrap();
    rt.block_on(async {
        store.put_settings(vec![(onboarding::keys::DOMAIN, DOMAIN.into())]).await.unwrap();
        let now = OffsetDateTime::now_utc();
        let cert = ClientCert {
            serial: "0A".into(),
            kind: "agent".into(),
            label: Some("home".into()),
            fingerprint: "F".into(),
            not_after: now + time::Duration::days(30),
            revoked_at: None,
        };
        store.create_agent(vec![], cert, now).await.unwrap();
    });
    state::render_command(&s).unwrap();
    let start_nginx =
        || NginxProcess::start(&s.nginx.run_dir, &s.nginx_live_dir().join("nginx.conf"), s.nginx.admin_port);
    let mut nginx = Some(start_nginx());
    let envs = |name: &str| {
        vec![
            ("PORTICO_CRASH_ROOT", root.display().to_string()),
            ("PORTICO_CRASH_PORTS", format!("{},{},{}", ports.http, ports.https, ports.admin)),
            ("PORTICO_CRASH_NAME", name.to_string()),
        ]
    };

    // One uninterrupted run measures how long the operation takes.
    let mut trial = Trial::spawn(TEST, &envs("calibration"));
    trial.wait_ready();
    let (took, ok) = trial.finish();
    assert!(ok, "the uninterrupted create failed");
    assert!(served(&ca, ports.https, "calibration"));
    println!("an uninterrupted tunnel create took {} ms after start-up", took.as_millis());
    let span = (took.as_micros() as u64).max(1) * 11 / 10;

    let seed = crash::seed(19);
    let mut rng = Rng::new(seed);
    let mut tally = Tally::default();
    for i in 0..TRIALS {
        let name = format!("t{i}");
        let before = rt.block_on(seen(&s, &store));
        let delay = Duration::from_micros(rng.below(span));
        let mut trial = Trial::spawn(TEST, &envs(&name));
        trial.wait_ready();
        let landed = trial.kill_after(delay);

        let whole_container = i % 2 == 1;
        if whole_container {
            drop(nginx.take()); // stopped with the container
            crate::init::run(&s).unwrap();
            state::render_command(&s).unwrap();
            nginx = Some(start_nginx());
        }
        rt.block_on(async {
            let panel = AppState::load(s.clone()).await.unwrap();
            panel.recover_at_start().await;
        });

        let now = rt.block_on(seen(&s, &store));
        rt.block_on(assert_settled(&s, &store, &ca, i));
        let created = now.tunnels.contains(&name);
        assert_eq!(served(&ca, ports.https, &name), created, "trial {i}: served iff stored");
        if created {
            let mut tunnels = before.tunnels.clone();
            tunnels.push(name.clone());
            tunnels.sort();
            let mut got = now.tunnels.clone();
            got.sort();
            assert_eq!(got, tunnels, "trial {i}: other tunnels changed");
            assert_eq!(now.snapshots.len(), (before.snapshots.len() + 1).min(s.nginx.keep_snapshots));
            let snapshots = s.nginx_live_dir().parent().unwrap().join("snapshots");
            let newest = crate::nginx::snapshot::read_tree(&snapshots.join(&now.snapshots[0]).join("tree")).unwrap();
            assert_eq!(newest, before.tree, "trial {i}: the newest snapshot is not the replaced tree");
            assert_eq!(
                now.snapshots[1..],
                before.snapshots[..now.snapshots.len() - 1],
                "trial {i}: older snapshots changed"
            );
            tally.after += 1;
        } else {
            assert_eq!(now, before, "trial {i}: no tunnel, yet nginx or its snapshots changed");
            tally.before += 1;
        }
        tally.trials += 1;
        tally.killed += usize::from(landed);
        println!(
            "trial {i}: kill after {} µs{}, {} restart: {}",
            delay.as_micros(),
            if landed { "" } else { " (the child had finished)" },
            if whole_container { "container" } else { "panel" },
            if created { "after" } else { "before" }
        );
    }
    drop(nginx);
    tally.print("nginx apply", seed);
    assert_eq!(tally.before + tally.after, TRIALS);
}
