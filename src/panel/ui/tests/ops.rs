//! Render tests of the operations pages: services (with and without a real
//! s6 supervisor), live logs, system and backups, each under the ingress
//! base path too.

use std::time::{Duration, Instant};

use actix_web::http::StatusCode;

use super::{INGRESS, Ui, assert_urls_under, completed_ui, ui_with};
use crate::onboarding::OnboardingState;
use crate::store::AuditQuery;
use crate::testing::s6;

async fn audited(ui: &Ui, action: &str, target: &str) -> Vec<String> {
    let (entries, _) = ui.state.store.audit_entries(AuditQuery { limit: 100, ..Default::default() }).await.unwrap();
    entries.into_iter().filter(|e| e.action == action && e.target == target).map(|e| e.outcome).collect()
}

#[actix_web::test]
async fn services_without_a_supervisor_are_not_managed_here() {
    let ui = completed_ui().await;
    let page = ui.get("/services").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Services are not managed here"), "{}", page.body);
    assert!(page.body.contains("href=\"/services/relay/logs\""));
    assert!(page.body.contains("aria-current=\"page\">Services</a>"));
    let csrf = ui.get("/keys").await.csrf();
    let refused = ui.post("/services/relay/restart", Some(&csrf), &[]).await;
    assert_eq!(refused.status, StatusCode::CONFLICT);
    assert!(refused.body.contains("No service supervisor is running here"), "{}", refused.body);
    assert_eq!(audited(&ui, "service.restart", "relay").await, ["failure"]);
    let unknown = ui.post("/services/sshd/start", Some(&csrf), &[]).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    let forged = ui.post("/services/relay/restart", Some("forged"), &[]).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
}

async fn wait_up(ui: &Ui, name: &str, differs_from: Option<u32>) -> u32 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let list = crate::app::services::statuses(&ui.state).await.unwrap_or_default();
        if let Some(pid) = list.iter().find(|s| s.name == name && s.state == "up").and_then(|s| s.pid)
            && Some(pid) != differs_from
        {
            return pid;
        }
        assert!(Instant::now() < deadline, "{name} never came up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[actix_web::test]
async fn services_page_acts_through_a_real_s6() {
    if !s6::available() {
        eprintln!("skipping: s6 is not installed");
        return;
    }
    let scan = s6::appliance();
    let scan_dir = scan.dir.path().to_path_buf();
    let ui = ui_with(move |s| {
        s.supervisor.kind = crate::settings::SupervisorKind::S6;
        s.supervisor.service_dir = scan_dir;
    })
    .await;
    ui.set_state(OnboardingState::Completed).await;
    for name in crate::services::MANAGED {
        wait_up(&ui, name, None).await;
    }
    // "services up" is said only once the probe has seen every name serve.
    let dashboard = ui.get("/").await;
    assert!(!dashboard.body.contains("services up"), "{}", dashboard.body);
    assert!(dashboard.body.contains("4/4</span> processes running; <small>public names not probed yet"));
    let (health, report) = (crate::probe::tests::health, crate::probe::tests::report);
    ui.state
        .health
        .put(report(vec![health("panel", "panel.example.com", true), health("site:1", "docs.example.com", false)]));
    let dashboard = ui.get("/").await;
    assert!(!dashboard.body.contains("services up"), "{}", dashboard.body);
    assert!(
        dashboard.body.contains("processes running, <small class=\"bad-text\">but 1 name down"),
        "{}",
        dashboard.body
    );
    assert!(dashboard.body.contains("<strong>docs.example.com</strong>: down"), "{}", dashboard.body);
    ui.state.health.put(report(vec![health("panel", "panel.example.com", true)]));
    let dashboard = ui.get("/").await;
    assert!(dashboard.body.contains("<span class=\"num\">4/4</span> services up"), "{}", dashboard.body);
    let page = ui.get("/services").await;
    assert_eq!(page.status, StatusCode::OK);
    let rows: Vec<usize> = ["nginx", "relay", "authd", "panel"]
        .iter()
        .map(|n| page.body.find(&format!("<td><strong>{n}</strong></td>")).unwrap_or_else(|| panic!("{n} row")))
        .collect();
    assert!(rows.windows(2).all(|w| w[0] < w[1]), "display order");
    assert!(page.body.contains("action=\"/services/nginx/reload\""));
    assert!(!page.body.contains("action=\"/services/relay/reload\""));
    assert!(page.body.contains("action=\"/services/relay/stop\""));
    assert!(!page.body.contains("action=\"/services/panel/stop\""), "no stop button for the panel");
    let csrf = page.csrf();

    // Buttons follow the state: nothing to start while everything runs.
    assert!(!page.body.contains("action=\"/services/relay/start\""), "no Start on a running service");
    assert!(page.body.contains("<button type=\"submit\" class=\"secondary\">Restart"), "Restart is not primary");
    assert!(page.body.contains("id=\"services\" data-refresh=\"/services\""), "the table refreshes itself");

    // The answer comes once the new process is up; the page says what happened.
    let before = wait_up(&ui, "relay", None).await;
    let restarted = ui.post("/services/relay/restart", Some(&csrf), &[]).await;
    let location = restarted.location.clone().unwrap_or_default();
    assert_eq!(location, "/services?service=relay&did=restart&settled=true", "{}", restarted.body);
    let now = wait_up(&ui, "relay", Some(before)).await;
    let told = ui.get(&location).await;
    assert!(
        told.body.contains("relay restarted: up for ") && told.body.contains(&format!("s, pid {now}.")),
        "{}",
        told.body
    );

    let stopped = ui.post("/services/relay/stop", Some(&csrf), &[]).await;
    let location = stopped.location.clone().unwrap_or_default();
    assert_eq!(location, "/services?service=relay&did=stop&settled=true");
    let told = ui.get(&location).await;
    assert!(told.body.contains("relay stopped; it stays down until started."), "{}", told.body);
    assert!(told.body.contains("action=\"/services/relay/start\""), "Start offered once it is down");
    assert!(!told.body.contains("action=\"/services/relay/stop\""), "no Stop on a stopped service");
    let started = ui.post("/services/relay/start", Some(&csrf), &[]).await;
    let told = ui.get(&started.location.unwrap_or_default()).await;
    assert!(told.body.contains("relay started: up for"), "{}", told.body);

    // A service that fails at start: the restart is not reported as done.
    let run = scan.dir.path().join("relay/run");
    std::fs::write(&run, "#!/bin/sh\nexit 3\n").unwrap();
    let failed = ui.post("/services/relay/restart", Some(&csrf), &[]).await;
    let location = failed.location.clone().unwrap_or_default();
    assert_eq!(location, "/services?service=relay&did=restart&settled=false");
    let told = ui.get(&location).await;
    assert!(told.body.contains("class=\"flash bad\" id=\"service-result\" role=\"alert\""), "{}", told.body);
    assert!(told.body.contains("relay did not stay up after the restart"), "{}", told.body);
    std::fs::write(&run, "#!/bin/sh\nexec sleep 300\n").unwrap();
    wait_up(&ui, "relay", None).await;

    let refused = ui.post("/services/panel/stop", Some(&csrf), &[]).await;
    assert_eq!(refused.status, StatusCode::CONFLICT);
    assert!(refused.body.contains("The panel cannot stop itself; restart it instead"), "{}", refused.body);
    let reload = ui.post("/services/relay/reload", Some(&csrf), &[]).await;
    assert_eq!(reload.status, StatusCode::BAD_REQUEST);
    assert!(reload.body.contains("does not support"), "{}", reload.body);
    assert_eq!(ui.post("/services/nginx/reload", Some(&csrf), &[]).await.status, StatusCode::SEE_OTHER);
    assert_eq!(audited(&ui, "service.restart", "relay").await, ["success", "success"]);
    assert_eq!(audited(&ui, "service.stop", "panel").await, ["failure"]);
    assert_eq!(audited(&ui, "service.reload", "nginx").await, ["success"]);

    let ingress = ui.as_ingress("alice");
    let page = ingress.get("/services").await;
    assert_urls_under(&page.body, INGRESS);
    let restarted = ingress.post("/services/authd/restart", Some(&page.csrf()), &[]).await;
    let expected = format!("{INGRESS}/services?service=authd&did=restart&settled=true");
    assert_eq!(restarted.location.as_deref(), Some(&*expected));
    drop(scan);
}

#[actix_web::test]
async fn logs_page_shows_the_tail_filtered_and_the_live_stream_address() {
    let logs = tempfile::tempdir().unwrap();
    let log_dir = logs.path().to_path_buf();
    let ui = ui_with(move |s| s.supervisor.log_dir = log_dir).await;
    ui.set_state(OnboardingState::Completed).await;
    let relay = logs.path().join("relay");
    std::fs::create_dir_all(&relay).unwrap();
    std::fs::write(
        relay.join("current"),
        "2026-01-01T00:00:00Z  INFO relay: agent <garage> connected\n2026-01-01T00:00:01Z ERROR relay: tunnel nas failed\n",
    )
    .unwrap();
    let page = ui.get("/services/relay/logs").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("agent &#60;garage&#62; connected"), "escaped: {}", page.body);
    assert!(page.body.contains("tunnel nas failed"));
    assert!(page.body.contains("data-base=\"\" data-service=\"relay\""));
    assert!(page.body.contains("id=\"log-pause\""));
    let errors = ui.get("/services/relay/logs?level=error&q=").await;
    assert!(errors.body.contains("tunnel nas failed") && !errors.body.contains("connected"));
    assert!(errors.body.contains("<option value=\"error\" selected>"));
    let text = ui.get("/services/relay/logs?q=GARAGE").await;
    assert!(text.body.contains("connected") && !text.body.contains("tunnel nas failed"));
    let empty = ui.get("/services/authd/logs").await;
    assert!(empty.body.contains("No log lines yet."));
    assert_eq!(ui.get("/services/relay/logs?level=loud").await.status, StatusCode::BAD_REQUEST);
    assert_eq!(ui.get("/services/sshd/logs").await.status, StatusCode::NOT_FOUND);
    let ingress = ui.as_ingress("alice").get("/services/relay/logs").await;
    assert!(ingress.body.contains(&format!("data-base=\"{INGRESS}\"")));
    assert_urls_under(&ingress.body, INGRESS);
}

#[actix_web::test]
async fn system_page_shows_cpu_memory_disk_and_processes() {
    let ui = completed_ui().await;
    let page = ui.get("/system").await;
    assert_eq!(page.status, StatusCode::OK);
    for needle in [
        "CPU busy",
        "since the container started",
        "Portico's processes",
        "budget",
        "on the data volume",
        "id=\"mem-meter\"",
    ] {
        assert!(page.body.contains(needle), "{needle}: {}", page.body);
    }
    assert!(page.body.contains("512.0 MiB budget"), "{}", page.body);
    assert!(page.body.contains("aria-current=\"page\">System</a>"));
    let dashboard = ui.get("/").await;
    assert!(dashboard.body.contains("services not managed here"), "{}", dashboard.body);
    assert!(dashboard.body.contains("of its 512.0 MiB budget") && dashboard.body.contains("of the data volume used"));
    assert_urls_under(&ui.as_ingress("alice").get("/system").await.body, INGRESS);
}

#[actix_web::test]
async fn backups_validate_the_passphrase_take_list_and_link_the_download() {
    let ui = completed_ui().await;
    let page = ui.get("/backups").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("No backups yet."));
    assert!(page.body.contains("at least 12 characters"));
    let weak = ui.post("/backups", Some(&page.csrf()), &[("passphrase", "short")]).await;
    assert_eq!(weak.status, StatusCode::BAD_REQUEST);
    assert!(weak.body.contains("id=\"passphrase-error\">Use a passphrase of at least 12 characters"), "{}", weak.body);
    assert!(!weak.body.contains("short"), "the passphrase is never echoed");
    assert!(crate::backup::list(&ui.state.settings.backup_dir()).unwrap().is_empty());

    let taken = ui.post("/backups", Some(&page.csrf()), &[("passphrase", "correct horse battery")]).await;
    let taken = ui.follow(&taken).await;
    let list = crate::backup::list(&ui.state.settings.backup_dir()).unwrap();
    assert_eq!(list.len(), 1);
    let id = &list[0].id;
    assert!(taken.body.contains("Backup taken"));
    assert!(taken.body.contains(&format!("href=\"/api/backup/{id}\" download>Download the archive")), "{}", taken.body);
    assert_eq!(audited(&ui, "backup.create", id).await, ["success"]);

    let download = ui.get(&format!("/api/backup/{id}")).await;
    assert_eq!(download.status, StatusCode::OK, "the link works with the page's identity");
    assert!(!download.body.is_empty());
    let ingress = ui.as_ingress("alice");
    assert_eq!(ingress.get(&format!("/api/backup/{id}")).await.status, StatusCode::OK, "and under ingress");
    let ingress = ingress.get("/backups").await;
    assert!(ingress.body.contains(&format!("href=\"{INGRESS}/api/backup/{id}\"")));
    assert_urls_under(&ingress.body, INGRESS);
}

#[actix_web::test]
async fn dashboard_draws_memory_and_traffic_sparklines() {
    use crate::sysstats::{SAMPLE_EVERY, Sample};
    let ui = super::completed_ui().await;
    let first = ui.get("/").await;
    assert_eq!(first.status, StatusCode::OK);
    // One sample: drawn from zero, so a flat line at its height (the top of
    // the 120×28 box), one dot, and the tile says the history is young.
    assert!(
        first.body.contains("<polyline points=\"1.5,1.5 118.5,1.5\"/><circle cx=\"60.0\" cy=\"1.5\" r=\"1.5\"/>"),
        "{}",
        first.body
    );
    assert!(first.body.contains("Memory in use over the last 1 sample, one a minute"));
    assert!(first.body.contains("collecting: a sample a minute"));
    assert!(first.body.contains("relay traffic appears after two samples"));

    // An earlier sample, then 3 MiB relayed since: the next view adds a point.
    let earlier = Instant::now().checked_sub(SAMPLE_EVERY * 2).expect("clock far enough from boot");
    let ui2 = super::completed_ui().await;
    ui2.state.stats.sample(earlier, Sample { memory_bytes: 1, relay_bytes: 0 });
    ui2.state
        .store
        .put_relay_status(vec![crate::store::AgentStatus {
            label: "reader".into(),
            connected_since: time::OffsetDateTime::now_utc(),
            remote_addr: "192.0.2.7:40000".into(),
            protocol_version: 1,
            bytes_in: 1024 * 1024,
            bytes_out: 2 * 1024 * 1024,
            open_streams: 0,
            rtt_ms: None,
            last_contact: None,
        }])
        .await
        .unwrap();
    let page = ui2.get("/").await;
    assert!(page.body.contains("<span class=\"num\">3.0 MiB</span> relayed in the last minute"), "{}", page.body);
    assert!(page.body.contains("aria-label=\"Memory in use over the last 2 samples, one a minute\""));
    assert!(page.body.contains("points=\"1.5,26.5 118.5,1.5\""), "memory rose from the earlier sample");
    assert!(page.body.contains("points=\"1.5,1.5 118.5,1.5\""), "one traffic interval: flat line at its height");
    assert_urls_under(&ui2.as_ingress("alice").get("/").await.body, INGRESS);
}
