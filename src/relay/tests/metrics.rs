//! `/metrics` after a scripted scenario through the real parts: visitors →
//! nginx (rendered from the store) → relay → agent → app, authd answering
//! nginx's `auth_request`, the panel's visitor-log listener counting nginx's
//! syslog lines, the nginx pipeline applying, and pebble issuing through
//! nginx's `:80` challenge vhost. The counters must show exactly what the
//! script did.
//!
//! With `PORTICO_METRICS_SAMPLE=<file>` the final scrape is written there.

use std::net::SocketAddr;
use std::sync::Arc;

use time::OffsetDateTime;

use super::nginx::{Visitor, tls_config};
use super::{LOOPBACK, add_agent, add_tunnel, app, eventually, fetch, spawn_agent, start_relay, until_live};
use crate::acme::Certs;
use crate::acme::pebble::{self, Pebble};
use crate::metrics::PanelCounters;
use crate::metrics::visitors::{self, VisitorCounts};
use crate::nginx::tests::authd::start_authd;
use crate::nginx::tests::support::{DOMAIN, Layout, NGINX, NginxProcess, set_ports, test_ports, write_certs};
use crate::nginx::{Pipeline, state};
use crate::settings::{AcmeSettings, Settings};
use crate::store::{SiteFields, Store, TunnelFields};
use crate::supervisor::Supervisor;
use crate::testing;

/// Body sizes of the script, bytes.
const DOWNLOAD: u64 = 100_000;
const UPLOAD: usize = 50_000;

fn value(scrape: &prometheus_parse::Scrape, metric: &str, labels: &[(&str, &str)]) -> Option<f64> {
    scrape.samples.iter().find(|s| s.metric == metric && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v))).map(
        |s| match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => f64::NAN,
        },
    )
}

async fn scrape(store: &Store, data_dir: &std::path::Path, counters: PanelCounters) -> String {
    crate::metrics::render(store, &Supervisor::None, data_dir, &counters).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_show_exactly_a_scripted_scenario_through_real_nginx() {
    let with_acme = pebble::available();
    let tmp = tempfile::tempdir().unwrap();
    let ports = test_ports();
    let pebble = with_acme.then(|| Pebble::start(ports.http, None));

    // The panel's visitor-log listener on a free loopback UDP port.
    let socket = visitors::bind(0).await.unwrap();
    let log_port = socket.local_addr().unwrap().port();
    let counts = Arc::new(VisitorCounts::default());
    tokio::spawn(visitors::listen(socket, counts.clone()));

    let mut settings = Settings { data_dir: tmp.path().join("data"), ..Default::default() };
    settings.public_ip = Some(LOOPBACK);
    settings.panel.visitor_log_port = log_port;
    settings.nginx.bin = NGINX.into();
    settings.nginx.run_dir = tmp.path().join("run");
    set_ports(&mut settings, ports);
    if let Some(p) = &pebble {
        settings.acme =
            AcmeSettings { directory: p.directory.clone(), ca_bundle: Some(p.ca_bundle.clone()), ..Default::default() };
    }
    std::fs::create_dir_all(&settings.nginx.run_dir).unwrap();
    crate::init::run(&settings).unwrap();
    let data = settings.data_dir.clone();
    // Server certificates for every name from a test CA kept apart from the Portico CA.
    let layout = Layout {
        data_dir: data.clone(),
        conf_dir: settings.nginx_live_dir(),
        run_dir: settings.nginx.run_dir.clone(),
        pki: tmp.path().join("test-ca"),
    };
    std::fs::create_dir_all(&layout.pki).unwrap();
    let server_ca = std::fs::read_to_string(write_certs(&layout)).unwrap();

    let store = Store::open(&settings.db_path()).unwrap();
    store
        .put_settings(vec![
            (crate::onboarding::keys::DOMAIN, DOMAIN.into()),
            (crate::onboarding::keys::EMAIL, "ops@example.test".into()),
        ])
        .await
        .unwrap();
    let any = SocketAddr::new(LOOPBACK, 0);
    let relay = start_relay(&store, vec![LOOPBACK], any, any).await;
    let app = app::start().await;
    let home = add_agent(&store, "home").await;
    add_agent(&store, "away").await; // never connects
    add_tunnel(&store, "app", "home", app).await;
    add_tunnel(&store, "wiki", "away", app).await;
    let vault = TunnelFields { access: "authenticated".into(), ..testing::tunnel_fields("vault", "home", app) };
    store.insert_tunnel(vault, OffsetDateTime::now_utc()).await.unwrap();
    let site = SiteFields {
        name: "dash".into(),
        spa_fallback: false,
        access: "public".into(),
        allowed_users: vec![],
        allowed_groups: vec![],
        max_bytes: 1 << 20,
    };
    store.insert_site(site, OffsetDateTime::now_utc()).await.unwrap();
    std::fs::create_dir_all(data.join("sites/dash")).unwrap();
    std::fs::write(data.join("sites/dash/index.html"), "<h1>dash</h1>").unwrap();
    let (authd, authd_state) = start_authd(&data);

    // The live tree as the pipeline renders it from the store, with the
    // relay and authd where this test's settings put them.
    (settings.relay.agents_listen, settings.relay.visitors_listen) = (relay.agents, relay.visitors);
    settings.authd.listen = authd;
    settings.validate().unwrap();
    state::applier(&settings).install(&state::render_state(&settings, &store).await.unwrap(), "scenario").unwrap();
    let nginx = NginxProcess::start(
        &settings.nginx.run_dir,
        &settings.nginx_live_dir().join("nginx.conf"),
        settings.nginx.https_port,
    );
    let _agent = spawn_agent(relay.agent("home", &home));
    eventually(10, "agent home to connect", || async { relay.relay.connected() == ["home"] }).await;
    // The relay picks the tunnels up from the store on its own clock: wait on
    // its visitor port (nginx's log must see the script's requests only).
    until_live(relay.visitors, &format!("app.{DOMAIN}")).await;
    // A reload may have caught app before wiki was written: wait for wiki's
    // offline answer too, asked on the relay's own port (nginx logs nothing).
    let wiki = format!("wiki.{DOMAIN}");
    eventually(10, "wiki to answer 502", || async { fetch(relay.visitors, &wiki, "/").await.status == 502 }).await;

    // The script: nothing else reaches nginx's tunnel and site vhosts.
    let cfg = tls_config(&server_ca, None);
    let port = settings.nginx.https_port;
    let visit = |name: &str| {
        let (cfg, host) = (cfg.clone(), format!("{name}.{DOMAIN}"));
        async move { Visitor::connect(cfg, &host, port).await }
    };
    // The health probe reaches the same vhosts but is not a visitor: nginx
    // leaves its requests out of the count below.
    let mut probe_cfg = crate::probe::Config::from_settings(&settings, None);
    probe_cfg.check_dns = false;
    let target = |label: &str, kind| crate::probe::Target {
        key: label.into(),
        name: format!("{label}.{DOMAIN}"),
        kind,
        site_dir: None,
    };
    let probed = crate::probe::check(
        &probe_cfg,
        vec![target("app", crate::probe::Kind::Tunnel), target("dash", crate::probe::Kind::Site)],
    )
    .await;
    assert!(probed.names.iter().all(|n| n.status.is_some()), "{probed:?}");
    let mut v = visit("app").await;
    for _ in 0..2 {
        let (status, body, _) = v.get(&format!("/big?n={DOWNLOAD}")).await;
        assert_eq!((status, body.len() as u64 >= DOWNLOAD), (200, true));
    }
    assert_eq!(v.request("POST", "/upload", &vec![7u8; UPLOAD]).await.0, 200);
    assert_eq!(v.get("/status?code=404").await.0, 404);
    let mut v = visit("wiki").await;
    for _ in 0..2 {
        assert_eq!(v.get("/").await.0, 502, "agent away is offline");
    }
    assert_eq!(visit("vault").await.get("/").await.0, 302, "to the login portal");
    let mut v = visit("dash").await;
    assert_eq!(v.get("/").await.0, 200);
    assert_eq!(v.get("/nope.html").await.0, 404);

    let total = |c: &VisitorCounts| c.snapshot().iter().map(|(_, _, row)| row.iter().sum::<u64>()).sum::<u64>();
    eventually(10, "nginx's 9 log lines to be counted", || async { total(&counts) == 9 }).await;
    relay.relay.publish_status().await.unwrap();
    crate::authd::counters::publish(&authd_state).await.unwrap();

    // Operations: one good apply, then (with pebble) one renewal that goes
    // live and one whose new configuration nginx refuses.
    let settings = Arc::new(settings);
    let pipeline = Pipeline::new(settings.clone(), store.clone(), state::applier(&settings));
    let certs = Certs::new(settings.clone(), store.clone());
    pipeline.change().await.apply("scenario: apply").await.unwrap();
    if with_acme {
        certs.renew(&pipeline, &format!("app.{DOMAIN}"), "admin:test").await.unwrap();
        pipeline.inject_for_tests(Some("this_is_not_a_directive;".into()));
        certs.renew(&pipeline, &format!("wiki.{DOMAIN}"), "admin:test").await.unwrap_err();
        pipeline.inject_for_tests(None);
    }

    // Visitors gone: nginx closes its upstream keep-alive connections.
    drop(nginx);
    let streams_closed = || async {
        relay.relay.publish_status().await.unwrap();
        let text = scrape(&store, &data, PanelCounters::default()).await;
        let s = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).unwrap();
        value(&s, "portico_relay_tunnel_open_streams", &[("tunnel", "app")]) == Some(0.0)
            && value(&s, "portico_relay_open_streams", &[("agent", "home")]) == Some(0.0)
    };
    eventually(10, "relayed streams to close", streams_closed).await;

    let counters = PanelCounters {
        visitors: counts.snapshot(),
        nginx_applies: pipeline.apply_outcomes(),
        acme_renewals: certs.renewal_outcomes(),
        health: None,
    };
    let text = scrape(&store, &data, counters).await;
    if let Ok(path) = std::env::var("PORTICO_METRICS_SAMPLE") {
        std::fs::write(path, &text).unwrap();
    }
    let s = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).unwrap();
    let get = |metric: &str, labels: &[(&str, &str)]| {
        value(&s, metric, labels).unwrap_or_else(|| panic!("no {metric} {labels:?} in\n{text}"))
    };
    let requests =
        |tunnel: &str, class: &str| get("portico_visitor_requests_total", &[("tunnel", tunnel), ("class", class)]);
    for (tunnel, want) in
        [("app", [0., 3., 0., 1., 0.]), ("wiki", [0., 0., 0., 0., 2.]), ("vault", [0., 0., 1., 0., 0.])]
    {
        for (class, n) in visitors::CLASSES.iter().zip(want) {
            assert_eq!(requests(tunnel, class), n, "{tunnel} {class}");
        }
    }
    let site = |class: &str| get("portico_site_requests_total", &[("site", "dash"), ("class", class)]);
    assert_eq!((site("2xx"), site("4xx"), site("5xx")), (1.0, 1.0, 0.0));

    let tunnel_in = get("portico_relay_tunnel_bytes_in_total", &[("tunnel", "app")]);
    let tunnel_out = get("portico_relay_tunnel_bytes_out_total", &[("tunnel", "app")]);
    assert!(tunnel_in >= UPLOAD as f64, "bytes in {tunnel_in}");
    assert!(tunnel_out >= 2.0 * DOWNLOAD as f64, "bytes out {tunnel_out}");
    // Only app carried streams (wiki's agent is away, vault stopped at authd);
    // the agent's own counters saw the same bytes.
    assert_eq!(get("portico_relay_bytes_in_total", &[("agent", "home")]), tunnel_in);
    assert_eq!(get("portico_relay_bytes_out_total", &[("agent", "home")]), tunnel_out);
    assert_eq!(value(&s, "portico_relay_tunnel_bytes_in_total", &[("tunnel", "wiki")]), None);
    assert_eq!(value(&s, "portico_relay_tunnel_bytes_in_total", &[("tunnel", "vault")]), None);

    assert_eq!(get("portico_authd_decisions_total", &[("decision", "login")]), 1.0);
    // One series per served name, none for the older versions kept on disk.
    assert!(get("portico_certificate_days_left", &[("name", &format!("app.{DOMAIN}")), ("kind", "acme")]) > 30.0);
    let acme = s
        .samples
        .iter()
        .filter(|x| x.metric == "portico_certificate_days_left" && x.labels.get("kind") == Some("acme"));
    assert_eq!(acme.count(), 9, "{text}");
    let applies = |o: &str| get("portico_nginx_applies_total", &[("outcome", o)]);
    let renewals = |o: &str| get("portico_acme_renewals_total", &[("outcome", o)]);
    if with_acme {
        assert_eq!((applies("ok"), applies("refused"), applies("error")), (2.0, 1.0, 0.0));
        assert_eq!((renewals("ok"), renewals("error")), (1.0, 1.0));
    } else {
        assert_eq!((applies("ok"), applies("refused"), applies("error")), (1.0, 0.0, 0.0));
    }
}
