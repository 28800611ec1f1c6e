//! kill -9 during certificate issuance against a real pebble: the forced
//! renewal the panel's "Renew" button runs (order, HTTP-01, finalize,
//! install, nginx apply, records, audit) in a child process SIGKILLed at a
//! seeded random moment. After a restart (every other trial only the panel
//! with nginx left running; otherwise the container's whole start-up), each
//! name has either its previous certificate and record or the new pair
//! with its matching record, nginx serves exactly the files on disk, and
//! nothing of the interrupted install is left.

use std::collections::BTreeMap;
use std::fs;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::acme::pebble::{Pebble, available, free_port, serve_challenges};
use crate::acme::{files, inspect};
use crate::nginx::tests::crash::{self, Rng, Tally, Trial};
use crate::nginx::tests::support::{NGINX, NginxProcess, test_ports};
use crate::nginx::{Ports, Reloader, state};
use crate::onboarding;
use crate::panel::AppState;
use crate::settings::{AcmeSettings, Settings};
use crate::store::{CertRecord, Store};

const TEST: &str = "acme::tests::kill::an_issuance_killed_at_any_moment_leaves_before_or_after";
const TRIALS: usize = 20;
const DOMAIN: &str = "example.test";
const NAMES: [&str; 3] = ["auth", "tunnel", "panel"];

fn settings(root: &Path, ports: Ports, directory: &str, ca_bundle: &Path) -> Settings {
    let mut s = Settings { data_dir: root.join("data"), ..Default::default() };
    s.public_ip = Some(IpAddr::V4(Ipv4Addr::LOCALHOST));
    s.nginx.bin = NGINX.into();
    s.nginx.run_dir = root.join("run");
    (s.nginx.bind, s.nginx.http_port, s.nginx.https_port, s.nginx.admin_port) =
        (ports.bind, ports.http, ports.https, ports.admin);
    s.panel.visitor_log_port = 0;
    s.acme = AcmeSettings { directory: directory.into(), ca_bundle: Some(ca_bundle.into()), ..Default::default() };
    s
}

fn env(key: &str) -> String {
    std::env::var(key).unwrap()
}

/// The child: forces a renewal of `$PORTICO_CRASH_NAME` as the admin would.
fn child() {
    let p: Vec<u16> = env("PORTICO_CRASH_PORTS").split(',').map(|p| p.parse().unwrap()).collect();
    let ports = Ports { bind: IpAddr::V4(Ipv4Addr::LOCALHOST), http: p[0], https: p[1], admin: p[2] };
    let s = settings(
        Path::new(&env("PORTICO_CRASH_ROOT")),
        ports,
        &env("PORTICO_CRASH_DIRECTORY"),
        Path::new(&env("PORTICO_CRASH_CA_BUNDLE")),
    );
    let name = env("PORTICO_CRASH_NAME");
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let state = AppState::load(s).await.unwrap();
        crash::ready();
        let admin = crate::testing::admin("admin");
        crate::app::certs::renew(&state, &admin, &name).await.unwrap();
    });
}

/// One name's certificate as a restart finds it.
#[derive(Debug, Clone, PartialEq)]
struct NameState {
    record: Option<CertRecord>,
    pair: Option<(String, String)>,
    versions: Vec<String>,
}

async fn seen(s: &Settings, store: &Store) -> BTreeMap<String, NameState> {
    let records = store.certificates().await.unwrap();
    NAMES
        .iter()
        .map(|l| {
            let fqdn = format!("{l}.{DOMAIN}");
            let versions = fs::read_dir(s.data_dir.join("acme/versions").join(&fqdn))
                .into_iter()
                .flatten()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect();
            let state = NameState {
                record: records.iter().find(|r| r.name == fqdn).cloned(),
                pair: files::read(&s.data_dir, &fqdn).unwrap(),
                versions,
            };
            (fqdn, state)
        })
        .collect()
}

/// The serial nginx presents for `fqdn` (`None` when it refuses the handshake).
fn served_serial(https: u16, fqdn: &str) -> Option<String> {
    let s_client = Command::new("openssl")
        .args(["s_client", "-connect", &format!("127.0.0.1:{https}"), "-servername", fqdn])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .unwrap();
    let mut x509 = Command::new("openssl")
        .args(["x509", "-noout", "-serial"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    use std::io::Write;
    x509.stdin.take().unwrap().write_all(&s_client.stdout).unwrap();
    let out = x509.wait_with_output().unwrap();
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn file_serial(chain: &str) -> String {
    let mut x509 = Command::new("openssl")
        .args(["x509", "-noout", "-serial"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    x509.stdin.take().unwrap().write_all(chain.as_bytes()).unwrap();
    String::from_utf8_lossy(&x509.wait_with_output().unwrap().stdout).trim().to_string()
}

/// No trace of an interrupted install; records match files; nginx serves the files.
async fn assert_settled(s: &Settings, store: &Store, trial: usize) {
    let acme = s.data_dir.join("acme");
    assert!(!acme.join("installing.json").exists(), "trial {trial}: the install journal is still there");
    let strays: Vec<String> = fs::read_dir(acme.join("certs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(strays.is_empty(), "trial {trial}: half-made links {strays:?}");
    let answers = fs::read_dir(files::challenges_dir(&s.data_dir)).map(|d| d.count()).unwrap_or(0);
    assert_eq!(answers, 0, "trial {trial}: stale challenge answers");
    for (fqdn, st) in seen(s, store).await {
        for v in &st.versions {
            let dir = acme.join("versions").join(&fqdn).join(v);
            assert!(
                dir.join("fullchain.pem").is_file() && dir.join("privkey.pem").is_file(),
                "trial {trial}: {fqdn} has a half-written version {v}"
            );
        }
        match (&st.record, &st.pair) {
            (None, None) => assert_eq!(served_serial(s.nginx.https_port, &fqdn), None, "trial {trial}: {fqdn}"),
            (Some(rec), Some((chain, key))) => {
                let leaf = inspect::leaf(chain).unwrap();
                assert_eq!(
                    (leaf.not_before, leaf.not_after),
                    (rec.not_before, rec.not_after),
                    "trial {trial}: {fqdn}'s record is not its files'"
                );
                inspect::validate_upload(&fqdn, chain, key, time::OffsetDateTime::now_utc())
                    .unwrap_or_else(|e| panic!("trial {trial}: {fqdn}'s chain and key do not belong together: {e:?}"));
                assert_eq!(
                    served_serial(s.nginx.https_port, &fqdn),
                    Some(file_serial(chain)),
                    "trial {trial}: nginx serves another certificate for {fqdn} than the one on disk"
                );
            }
            (rec, pair) => panic!("trial {trial}: {fqdn} has a record {rec:?} but files {}", pair.is_some()),
        }
    }
    let bin = crate::nginx::NginxBinary::new(NGINX, &s.nginx.run_dir, s.nginx_live_dir());
    bin.test(&s.nginx_live_dir()).unwrap_or_else(|e| panic!("trial {trial}: nginx -t refuses the live tree: {e}"));
    let wanted = state::render_state(s, store).await.unwrap();
    assert_eq!(state::applier(s).live_tree().unwrap(), wanted, "trial {trial}: the live tree is not the store's");
}

#[test]
fn an_issuance_killed_at_any_moment_leaves_before_or_after() {
    if std::env::var(crash::CHILD).is_ok() {
        return child();
    }
    if !available() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let challenge_port = free_port();
    let pebble = Pebble::start(challenge_port, None);
    let ports = test_ports();
    let s = settings(root, ports, &pebble.directory, &pebble.ca_bundle);
    fs::create_dir_all(&s.nginx.run_dir).unwrap();
    crate::init::run(&s).unwrap();
    serve_challenges(challenge_port, files::challenges_dir(&s.data_dir));
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let store = Store::open(&s.db_path()).unwrap();
    rt.block_on(async {
        store
            .put_settings(vec![
                (onboarding::keys::DOMAIN, DOMAIN.into()),
                (onboarding::keys::EMAIL, "ops@example.test".into()),
            ])
            .await
            .unwrap();
    });
    state::render_command(&s).unwrap();
    let start_nginx =
        || NginxProcess::start(&s.nginx.run_dir, &s.nginx_live_dir().join("nginx.conf"), s.nginx.admin_port);
    let mut nginx = Some(start_nginx());
    let envs = |name: &str| {
        vec![
            ("PORTICO_CRASH_ROOT", root.display().to_string()),
            ("PORTICO_CRASH_PORTS", format!("{},{},{}", ports.http, ports.https, ports.admin)),
            ("PORTICO_CRASH_DIRECTORY", pebble.directory.clone()),
            ("PORTICO_CRASH_CA_BUNDLE", pebble.ca_bundle.display().to_string()),
            ("PORTICO_CRASH_NAME", format!("{name}.{DOMAIN}")),
        ]
    };

    // Uninterrupted issuances (the first registers the account) measure how
    // long the whole operation and its install (journal written → done) take.
    let journal = s.data_dir.join("acme/installing.json");
    let (mut whole, mut install) = (Duration::ZERO, Duration::ZERO);
    for _ in 0..2 {
        let mut trial = Trial::spawn(TEST, &envs("panel"));
        trial.wait_ready();
        let to_install = trial.wait_for(&journal);
        let (rest, ok) = trial.finish();
        assert!(ok, "the uninterrupted issuance failed");
        (whole, install) = (to_install + rest, rest);
    }
    println!(
        "an uninterrupted issuance took {} ms after start-up, its install {} ms",
        whole.as_millis(),
        install.as_millis()
    );
    rt.block_on(assert_settled(&s, &store, usize::MAX));
    let span = (whole.as_micros() as u64).max(1) * 11 / 10;
    let install_span = (install.as_micros() as u64).max(1) * 11 / 10;

    let seed = crash::seed(19);
    let mut rng = Rng::new(seed);
    let mut tally = Tally::default();
    for i in 0..TRIALS {
        let label = NAMES[i % NAMES.len()];
        let fqdn = format!("{label}.{DOMAIN}");
        let before = rt.block_on(seen(&s, &store));
        // Even trials: a moment anywhere in the operation; odd ones: a
        // moment of the install, counted from when its journal appears.
        let in_install = i % 2 == 1;
        let delay = Duration::from_micros(rng.below(if in_install { install_span } else { span }));
        let mut trial = Trial::spawn(TEST, &envs(label));
        trial.wait_ready();
        if in_install {
            trial.wait_for(&journal);
        }
        let landed = trial.kill_after(delay);

        let whole_container = i % 4 >= 2;
        if whole_container {
            drop(nginx.take());
            crate::init::run(&s).unwrap();
            state::render_command(&s).unwrap();
            nginx = Some(start_nginx());
        }
        rt.block_on(async {
            let panel = AppState::load(s.clone()).await.unwrap();
            panel.recover_at_start().await;
        });

        rt.block_on(assert_settled(&s, &store, i));
        let now = rt.block_on(seen(&s, &store));
        for (other, st) in &now {
            if other != &fqdn {
                assert_eq!(st, &before[other], "trial {i}: {other} changed while {fqdn} was renewed");
            }
        }
        let (b, n) = (&before[&fqdn], &now[&fqdn]);
        let after = if n == b {
            false
        } else {
            assert_ne!(n.record, b.record, "trial {i}: {fqdn}'s files changed but not its record");
            assert_ne!(n.pair, b.pair, "trial {i}: {fqdn}'s record changed but not its files");
            true
        };
        tally.trials += 1;
        tally.killed += usize::from(landed);
        if after {
            tally.after += 1;
        } else {
            tally.before += 1;
        }
        println!(
            "trial {i}: {fqdn}, kill {} µs after {}{}, {} restart: {}",
            delay.as_micros(),
            if in_install { "the install began" } else { "the start" },
            if landed { "" } else { " (the child had finished)" },
            if whole_container { "container" } else { "panel" },
            if after { "after" } else { "before" }
        );
    }
    drop(nginx);
    drop(pebble);
    tally.print("certificate issuance", seed);
    assert_eq!(tally.before + tally.after, TRIALS);
}
