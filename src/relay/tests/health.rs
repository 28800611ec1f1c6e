//! Health that tells the truth, with the real parts: the panel's use cases
//! against a real nginx rendered from the store, the real relay and agent,
//! a local app, and a loopback DNS server answering the public IP.
//!
//! - a tunnel rename that leaves the new name without a certificate stops a
//!   working name: undone (store and nginx), audited with the evidence;
//! - a change to a tunnel that already did not serve is kept and flagged;
//! - `/api/health/names`, the `portico_name_up` gauge and the doctor see a
//!   cut home link (agent stopped) as down with that reason;
//! - the doctor's exit code: 0 on a good setup, 1 with a broken name.

use std::net::{IpAddr, SocketAddr};
use std::os::unix::fs::PermissionsExt;

use actix_web::web;
use rcgen::{CertificateParams, DnType, KeyPair};

use super::{AgentHandle, LOOPBACK, World, add_agent, app, eventually, spawn_agent, start_relay};
use crate::app as usecase;
use crate::identity::Identity;
use crate::nginx::tests::support::{NginxProcess, free_port};
use crate::onboarding::{self, OnboardingState};
use crate::panel::AppState;
use crate::panel::error::ApiError;
use crate::settings::Settings;
use crate::testing::{self, dns};
use crate::tunnels::TunnelPatch;

pub(super) const DOMAIN: &str = "example.test";

pub(super) struct Appliance {
    _dir: tempfile::TempDir,
    pub(super) state: web::Data<AppState>,
    relay: World,
    _nginx: NginxProcess,
    _dns: dns::Server,
    pub(super) admin: Identity,
}

/// A certificate for `fqdn` where the renderer looks for it (self-signed:
/// the probe judges names and expiry, not the issuer).
pub(super) fn write_cert(data_dir: &std::path::Path, fqdn: &str) {
    let paths = crate::nginx::state::cert_paths(data_dir, fqdn);
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec![fqdn.to_string()]).unwrap();
    params.distinguished_name.push(DnType::CommonName, fqdn);
    let cert = params.self_signed(&key).unwrap();
    std::fs::create_dir_all(paths.fullchain.parent().unwrap()).unwrap();
    std::fs::write(&paths.fullchain, cert.pem()).unwrap();
    std::fs::write(&paths.key, key.serialize_pem()).unwrap();
    std::fs::set_permissions(&paths.key, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// An onboarded appliance: domain set, certificates for the service names
/// and `certified`, nginx live on loopback ports, the relay on the settings'
/// addresses.
pub(super) async fn appliance(certified: &[&str]) -> Appliance {
    let dir = tempfile::tempdir().unwrap();
    let dns = dns::Server::start(std::net::Ipv4Addr::LOCALHOST);
    let run_dir = dir.path().join("run");
    std::fs::create_dir_all(&run_dir).unwrap();
    let mut s = Settings { data_dir: dir.path().join("data"), ..Default::default() };
    s.public_ip = Some(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST));
    s.dns.resolver = Some(dns.addr);
    s.nginx.enabled = true;
    s.nginx.run_dir = run_dir.clone();
    s.nginx.bind = LOOPBACK;
    (s.nginx.http_port, s.nginx.https_port, s.nginx.admin_port) = (free_port(), free_port(), free_port());
    s.relay.agents_listen = SocketAddr::new(LOOPBACK, free_port());
    s.relay.visitors_listen = SocketAddr::new(LOOPBACK, free_port());
    s.panel.visitor_log_port = 0;
    // No ACME server here: the clock check says it cannot compare.
    s.acme.directory = format!("https://127.0.0.1:{}/dir", free_port());
    crate::init::run(&s).unwrap();
    let (authd, _) = crate::nginx::tests::authd::start_authd(&s.data_dir);
    s.authd.listen = authd;
    for label in ["panel", "auth", "tunnel"].iter().chain(certified) {
        write_cert(&s.data_dir, &format!("{label}.{DOMAIN}"));
    }
    let state = web::Data::new(AppState::load(s).await.unwrap());
    state
        .store
        .put_settings(vec![
            (onboarding::keys::DOMAIN, DOMAIN.to_string()),
            (onboarding::keys::STATE, OnboardingState::Completed.as_str().to_string()),
        ])
        .await
        .unwrap();
    state.set_onboarding_state(OnboardingState::Completed);
    let settings = state.settings.clone();
    let tree = crate::nginx::state::render_state(&settings, &state.store).await.unwrap();
    crate::nginx::state::applier(&settings).install(&tree, "first start").unwrap();
    let nginx = NginxProcess::start(&run_dir, &settings.nginx_live_dir().join("nginx.conf"), settings.nginx.https_port);
    let relay =
        start_relay(&state.store, vec![LOOPBACK], settings.relay.agents_listen, settings.relay.visitors_listen).await;
    Appliance { _dir: dir, state, relay, _nginx: nginx, _dns: dns, admin: testing::admin("admin:test") }
}

impl Appliance {
    pub(super) async fn agent(&self, label: &str) -> AgentHandle {
        let serial = add_agent(&self.state.store, label).await;
        spawn_agent(self.relay.agent(label, &serial))
    }

    pub(super) async fn tunnel(&self, name: &str, agent: &str, target: SocketAddr) -> i64 {
        let fields = testing::tunnel_fields(name, agent, target);
        usecase::tunnels::create(&self.state, &self.admin, fields).await.unwrap().0.id
    }

    /// Probes until `name` serves (the agent connects asynchronously).
    pub(super) async fn until_serves(&self, name: &str, serves: bool) {
        let fqdn = format!("{name}.{DOMAIN}");
        eventually(15, &format!("{fqdn} serves = {serves}"), || async {
            let r = self.state.probe_now().await.unwrap();
            r.by_name(&fqdn).is_some_and(|n| n.serves == serves)
        })
        .await;
    }
}

/// A port nothing listens on: a target that refuses.
fn closed_port() -> SocketAddr {
    SocketAddr::new(LOOPBACK, free_port())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_that_breaks_a_working_name_is_undone_and_audited() {
    let a = appliance(&["app"]).await;
    let _agent = a.agent("home").await;
    let target = app::start().await;
    let id = a.tunnel("app", "home", target).await;
    a.until_serves("app", true).await;

    // nginx accepts the new tree (a vhost without a certificate is simply not
    // rendered, and nginx refuses the handshake for that name), so only the
    // probe sees that app2 does not serve.
    let patch = TunnelPatch { name: Some("app2".into()), ..Default::default() };
    let err = usecase::tunnels::update(&a.state, &a.admin, id, patch).await.map_err(ApiError::from).unwrap_err();
    let ApiError::NamesBroken(evidence) = &err else { panic!("expected NamesBroken, got {err:?}") };
    assert_eq!(evidence.len(), 1, "{evidence:?}");
    assert_eq!(evidence[0].before, format!("app.{DOMAIN}"));
    assert_eq!(evidence[0].name, format!("app2.{DOMAIN}"));
    assert!(evidence[0].reason.contains("no certificate for app2.example.test"), "{evidence:?}");
    let body = actix_web::body::to_bytes(actix_web::ResponseError::error_response(&err).into_body()).await.unwrap();
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(actix_web::ResponseError::status_code(&err), 409);
    assert_eq!(body["details"][0]["name"], "app2.example.test", "{body}");

    // Store and nginx are as before, and the name serves again.
    assert_eq!(a.state.store.tunnel(id).await.unwrap().unwrap().name, "app");
    let (entries, _) = a
        .state
        .store
        .audit_entries(crate::store::AuditQuery {
            actor: None,
            action: Some("health.rollback".into()),
            since: None,
            until: None,
            limit: 10,
            offset: 0,
        })
        .await
        .unwrap();
    assert_eq!(entries.len(), 1, "one audited rollback");
    let details = entries[0].details.as_ref().unwrap().to_string();
    assert!(details.contains("app2.example.test") && details.contains("no certificate"), "{details}");
    assert!(details.contains("\"restored\":true"), "{details}");
    let report = a.state.probe_now().await.unwrap();
    assert!(report.by_name(&format!("app.{DOMAIN}")).unwrap().up, "{report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_to_a_name_that_was_already_broken_is_kept_and_flagged() {
    let a = appliance(&["app", "dead"]).await;
    let _agent = a.agent("home").await;
    let target = app::start().await;
    a.tunnel("app", "home", target).await;
    let dead = a.tunnel("dead", "home", closed_port()).await;
    a.until_serves("app", true).await;
    let report = a.state.probe_now().await.unwrap();
    let before = report.by_name(&format!("dead.{DOMAIN}")).unwrap();
    assert!(!before.serves);
    assert!(before.reason.as_deref().unwrap().contains("target refused"), "{before:?}");

    let other = closed_port().to_string();
    let patch = TunnelPatch { target: Some(other.clone()), ..Default::default() };
    let (t, kept) = usecase::tunnels::update(&a.state, &a.admin, dead, patch).await.unwrap();
    assert_eq!(t.target, other, "the change is kept");
    let warning = kept.warning().expect("flagged");
    assert!(warning.contains("dead.example.test") && warning.contains("refused"), "{warning}");
    assert!(!warning.contains("app.example.test"), "app still serves: {warning}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_home_link_shows_in_the_api_the_gauge_and_the_doctor() {
    let a = appliance(&["app"]).await;
    let agent = a.agent("home").await;
    let target = app::start().await;
    a.tunnel("app", "home", target).await;
    a.until_serves("app", true).await;

    // All well: every name up, the doctor finds no problem (exit code 0).
    let report = a.state.probe_now().await.unwrap();
    assert!(report.all_up(), "{:#?}", report.names.iter().filter(|n| !n.up).collect::<Vec<_>>());
    assert_eq!(report.total, 4, "panel, auth, tunnel and app");
    let doctor = crate::doctor::run(&a.state.settings, &a.state.store, a.state.public_ip(), |_| {}).await;
    let problems: Vec<_> = doctor.findings.iter().filter(|f| f.level == crate::doctor::Level::Fail).collect();
    assert!(problems.is_empty(), "{problems:#?}");
    for check in ["dns", "ports", "clock", "certificate", "acme", "websocket", "agent", "name", "memory", "secrets"] {
        assert!(doctor.findings.iter().any(|f| f.check == check), "no {check} finding");
    }
    let ws = doctor.findings.iter().find(|f| f.check == "websocket").unwrap();
    assert_eq!(ws.level, crate::doctor::Level::Ok, "{ws:?}");
    let settings = a.state.settings.clone();
    let cli = std::thread::spawn(move || crate::doctor::command(&settings, true).is_ok()).join().unwrap();
    assert!(cli, "portico doctor exits 0 when all is well");

    // Cut the home link: the agent stops.
    drop(agent);
    a.until_serves("app", false).await;
    let report = a.state.health.get().unwrap();
    let app_health = report.by_name(&format!("app.{DOMAIN}")).unwrap();
    assert!(!app_health.up);
    assert_eq!(app_health.reason.as_deref(), Some("the tunnel's agent is offline"));

    // The API, as an admin reads it.
    let app = actix_web::test::init_service(
        actix_web::App::new().configure(crate::panel::configure(a.state.clone(), crate::panel::Channel::Panel)),
    )
    .await;
    let serial = a.state.pki.admin_info().unwrap().serial;
    let req = actix_web::test::TestRequest::get()
        .uri("/api/health/names")
        .peer_addr("127.0.0.1:50000".parse().unwrap())
        .insert_header(("X-SSL-Client-Verify", "SUCCESS"))
        .insert_header(("X-SSL-Client-DN", "CN=admin"))
        .insert_header(("X-SSL-Client-Serial", serial.as_str()))
        .to_request();
    let res = actix_web::test::call_service(&app, req).await;
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = actix_web::test::read_body_json(res).await;
    let row = body["names"].as_array().unwrap().iter().find(|n| n["name"] == "app.example.test").unwrap();
    assert_eq!(row["up"], false, "{row}");
    assert_eq!(row["relay"]["ok"], false, "{row}");
    assert_eq!(body["up"], 3);

    // The gauge.
    let text = crate::metrics::render(
        &a.state.store,
        &a.state.supervisor,
        &a.state.settings.data_dir,
        &a.state.panel_counters(),
    )
    .await
    .unwrap();
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).unwrap();
    let gauge = |name: &str| {
        scrape.samples.iter().find(|s| s.metric == "portico_name_up" && s.labels.get("name") == Some(name)).map(|s| {
            match s.value {
                prometheus_parse::Value::Gauge(v) | prometheus_parse::Value::Untyped(v) => v,
                _ => f64::NAN,
            }
        })
    };
    assert_eq!(gauge("app.example.test"), Some(0.0), "{text}");
    assert_eq!(gauge("auth.example.test"), Some(1.0), "{text}");

    // The doctor names the cause and the next step, and exits 1.
    let doctor = crate::doctor::run(&a.state.settings, &a.state.store, a.state.public_ip(), |_| {}).await;
    let f = doctor.findings.iter().find(|f| f.check == "name" && f.subject == "app.example.test").unwrap();
    assert_eq!(f.level, crate::doctor::Level::Fail);
    assert!(f.next_step.contains("portico agent run"), "{f:?}");
    assert!(
        doctor
            .findings
            .iter()
            .any(|f| f.check == "agent" && f.subject == "home" && f.level == crate::doctor::Level::Fail)
    );
    let settings = a.state.settings.clone();
    let cli = std::thread::spawn(move || crate::doctor::command(&settings, true).is_ok()).join().unwrap();
    assert!(!cli, "portico doctor exits 1 with a name down");
}

/// The probe's time for 50 public names (the three service names and 47
/// tunnels through one agent to one app), `PROBE_ROUNDS` rounds (default 5).
/// Run by `bench/probe.sh`; prints one line per round and the median.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: bench/probe.sh"]
async fn probe_time_for_50_names() {
    let labels: Vec<String> = (1..=47).map(|i| format!("app{i}")).collect();
    let refs: Vec<&str> = labels.iter().map(String::as_str).collect();
    let a = appliance(&refs).await;
    let _agent = a.agent("home").await;
    let target = app::start().await;
    for l in &labels {
        let fields = testing::tunnel_fields(l, "home", target);
        a.state.store.insert_tunnel(fields, time::OffsetDateTime::now_utc()).await.unwrap();
    }
    a.state.apply_config("bench").await.unwrap();
    eventually(20, "all 50 names up", || async { a.state.probe_now().await.unwrap().up == 50 }).await;
    let rounds: usize = std::env::var("PROBE_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(5);
    let mut ms = Vec::new();
    for round in 1..=rounds {
        let started = std::time::Instant::now();
        let r = a.state.probe_now().await.unwrap();
        let took = started.elapsed().as_secs_f64() * 1000.0;
        assert_eq!((r.up, r.total), (50, 50));
        println!("round {round}: {took:.1} ms for {} names ({} up)", r.total, r.up);
        ms.push(took);
    }
    ms.sort_by(|a, b| a.total_cmp(b));
    println!(
        "probe of 50 names: median {:.1} ms (range {:.1}–{:.1}) over {rounds} rounds",
        ms[ms.len() / 2],
        ms[0],
        ms[ms.len() - 1]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_site_rename_to_a_name_without_a_certificate_is_undone() {
    let a = appliance(&["docs"]).await;
    let new = crate::sites::NewSite {
        name: "docs".into(),
        spa_fallback: false,
        access: Some("public".into()),
        allowed_users: vec![],
        allowed_groups: vec![],
        max_bytes: None,
    };
    let site =
        crate::sites::create(&a.state.store, &a.state.nginx, &a.state.settings.data_dir, &a.admin, new).await.unwrap();
    a.until_serves("docs", true).await;
    let patch = crate::sites::SitePatch { name: Some("docs2".into()), ..Default::default() };
    let err = usecase::sites::update(&a.state, &a.admin, site.id, patch).await.map_err(ApiError::from).unwrap_err();
    let ApiError::NamesBroken(evidence) = &err else { panic!("expected NamesBroken, got {err:?}") };
    assert_eq!(evidence[0].name, "docs2.example.test", "{evidence:?}");
    assert_eq!(a.state.store.sites().await.unwrap()[0].name, "docs", "the store change is undone");
    assert!(
        crate::sites::site_dir(&a.state.settings.data_dir, "docs").join("index.html").is_file(),
        "files moved back"
    );
    let report = a.state.probe_now().await.unwrap();
    assert!(report.by_name("docs.example.test").unwrap().up, "{report:?}");
}
