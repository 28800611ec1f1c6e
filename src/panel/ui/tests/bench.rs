//! Page render benchmark (run by `bench/ui-render`, ignored in normal test
//! runs): server-side time of each page with 100 agents, 100 tunnels, 100
//! visitor users, 10 groups, 20 invitations, 20 sites (one with 200 files), 100 API keys,
//! 5000 audit entries, 5000 log lines and 20 backup archives, through the full handler stack (identity chain,
//! store, template), next to the 50 ms budget. Prints; asserts nothing.

use std::time::{Duration, Instant};

use actix_web::App;
use actix_web::dev::Service;
use actix_web::test::{TestRequest, init_service, read_body};
use time::OffsetDateTime;

use super::ui_with;
use crate::onboarding::OnboardingState;
use crate::panel::{Channel, configure};
use crate::store::{ClientCert, NewApiKey, NewAuditEntry, SiteFields, TunnelFields};

const RUNS: usize = 40;
const BUDGET_MS: f64 = 50.0;

#[actix_web::test]
#[ignore = "benchmark; run bench/ui-render"]
async fn page_render_times() {
    let ui = ui_with(|s| {
        s.supervisor.log_dir = s.data_dir.join("service-logs");
        // The nginx pages read the installed tree; its check is not measured
        // here (and the served names have no certificate files).
        s.nginx.bin = "/bin/true".into();
    })
    .await;
    let store = &ui.state.store;
    let relay_logs = ui.state.settings.supervisor.log_dir.join("relay");
    std::fs::create_dir_all(&relay_logs).unwrap();
    let lines: String = (0..5000)
        .map(|i| format!("2026-01-01T00:00:00Z  INFO relay: request {i} for app-{} done\n", i % 100))
        .collect();
    std::fs::write(relay_logs.join("current"), lines).unwrap();
    let backups = ui.state.settings.backup_dir();
    std::fs::create_dir_all(&backups).unwrap();
    for i in 0..20 {
        std::fs::write(backups.join(format!("20260101T0000{i:02}Z-0000abcd{}", crate::backup::SUFFIX)), [0u8; 64])
            .unwrap();
    }
    let now = OffsetDateTime::now_utc();
    for i in 0..100 {
        let cert = ClientCert {
            serial: format!("{:X}", 0xA000 + i),
            kind: "agent".into(),
            label: Some(format!("agent-{i}")),
            fingerprint: "AA:BB".into(),
            not_after: now + time::Duration::days(300),
            revoked_at: None,
        };
        store.create_agent(vec!["tunnels:read".into(), "tunnels:write".into()], cert, now).await.unwrap();
        let key = NewApiKey {
            id: format!("{:016x}", i),
            name: format!("key {i}"),
            hash: "x".into(),
            scopes: vec!["read".into()],
            created_at: now,
            expires_at: Some(now + time::Duration::days(30)),
        };
        store.insert_api_key(key).await.unwrap();
    }
    for i in 0..10 {
        store.insert_group(format!("group-{i}"), format!("group {i}"), now).await.unwrap();
    }
    for i in 0..100 {
        let new = crate::users::NewUser {
            username: format!("user-{i}"),
            display_name: format!("User {i}"),
            email: format!("user{i}@example.com"),
            password: "a long enough secret".into(),
            groups: vec![format!("group-{}", i % 10)],
            totp: true,
        };
        crate::users::create_user(store, new).await.unwrap();
        let restricted = i % 3 == 0;
        let fields = TunnelFields {
            name: format!("app-{i}"),
            agent: format!("agent-{i}"),
            target: format!("10.0.0.{}:8080", i % 250 + 1),
            enabled: i % 7 != 0,
            access: if restricted { "restricted" } else { "authenticated" }.into(),
            allowed_users: if restricted { vec![format!("user-{i}")] } else { vec![] },
            allowed_groups: if restricted { vec![format!("group-{}", i % 10)] } else { vec![] },
            description: String::new(),
        };
        store.insert_tunnel(fields, now).await.unwrap();
    }
    for i in 0..20 {
        let site = SiteFields {
            name: format!("site-{i}"),
            spa_fallback: i % 2 == 0,
            access: "public".into(),
            allowed_users: vec![],
            allowed_groups: vec![],
            max_bytes: crate::sites::DEFAULT_MAX_BYTES,
        };
        store.insert_site(site, now).await.unwrap();
        let groups = vec![format!("group-{}", i % 10)];
        crate::users::create_invitation(store, "admin:1", format!("guest-{i}"), String::new(), groups, None)
            .await
            .unwrap();
    }
    // One site with 200 files for its detail page.
    let site = store.sites().await.unwrap().into_iter().find(|s| s.name == "site-0").unwrap();
    let site_path = format!("/sites/{}", site.id);
    let dir = crate::sites::site_dir(&ui.state.settings.data_dir, "site-0");
    for i in 0..200 {
        let file = dir.join(format!("assets/dir-{}/file-{i}.js", i % 10));
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(file, vec![b'x'; 100 + i]).unwrap();
    }
    let tunnel_id = store.tunnels().await.unwrap()[50].id;
    let tunnel_path = format!("/tunnels/{tunnel_id}");
    for i in 0..5000 {
        let entry = NewAuditEntry {
            at: now - time::Duration::seconds(i),
            actor: "admin:1".into(),
            action: if i % 3 == 0 { "key.create" } else { "tunnel.update" }.into(),
            target: format!("t{i}"),
            outcome: "success".into(),
            details: Some(serde_json::json!({ "n": i })),
        };
        store.append_audit(entry).await.unwrap();
    }
    // A domain, so /certs lists every served name (3 + 100 tunnels + 20 sites).
    store.put_settings(vec![(crate::onboarding::keys::DOMAIN, "example.com".into())]).await.unwrap();
    // The nginx tree for all of the above, installed three times: two
    // snapshots whose side-by-side diff (with the live tree, with each
    // other) changes every directive line of 100 vhosts. Without
    // certificate files the tunnels render no vhost of their own, so 100
    // copies of the largest server file stand in for them.
    let settings = &ui.state.settings;
    let mut tree = crate::nginx::state::render_state(settings, store).await.unwrap();
    let vhost =
        tree.files.iter().filter(|(p, _)| p.starts_with("servers")).map(|(_, b)| b.clone()).max_by_key(String::len);
    for i in 0..100 {
        tree.files.insert(format!("servers/20-tunnel-app-{i}.conf").into(), vhost.clone().unwrap_or_default());
    }
    let edit = |tree: &crate::nginx::RenderedTree, mark: &str| {
        let mut t = tree.clone();
        for body in t.files.values_mut() {
            *body = body.replace(";\n", &format!("; # {mark}\n"));
        }
        t
    };
    let applier = crate::nginx::state::applier(settings);
    applier.install(&edit(&tree, "first"), "first start").unwrap();
    let snapshot = applier.install(&tree, "bench").unwrap().snapshot.unwrap();
    let other = applier.install(&edit(&tree, "third"), "bench again").unwrap().snapshot.unwrap();
    let snapshot_path = format!("/nginx/snapshots/{snapshot}");
    let snapshots_path = format!("/nginx/snapshots/{snapshot}?against={other}");
    let app = init_service(App::new().configure(configure(ui.state.clone(), Channel::Panel))).await;
    let serial = ui.state.pki.admin_info().unwrap().serial;
    let mut rows = Vec::new();
    for (path, completed) in [
        ("/onboarding", false),
        ("/", true),
        ("/tunnels", true),
        (tunnel_path.as_str(), true),
        ("/sites", true),
        (site_path.as_str(), true),
        ("/agents", true),
        ("/agents/agent-50", true),
        ("/users", true),
        ("/users/user-50", true),
        ("/groups", true),
        ("/invitations", true),
        ("/settings", true),
        ("/keys", true),
        ("/certs", true),
        ("/services", true),
        ("/services/relay/logs", true),
        ("/system", true),
        ("/backups", true),
        ("/nginx", true),
        (snapshot_path.as_str(), true),
        (snapshots_path.as_str(), true),
        ("/audit", true),
        ("/audit?action=key.create&page=20", true),
    ] {
        let state = if completed { OnboardingState::Completed } else { OnboardingState::DomainSet };
        ui.set_state(state).await;
        let mut times = Vec::with_capacity(RUNS);
        let mut bytes = 0;
        for _ in 0..RUNS {
            let req = TestRequest::get()
                .uri(path)
                .peer_addr("127.0.0.1:5000".parse().unwrap())
                .insert_header(("X-SSL-Client-Verify", "SUCCESS"))
                .insert_header(("X-SSL-Client-DN", "CN=admin"))
                .insert_header(("X-SSL-Client-Serial", serial.clone()))
                .to_request();
            let start = Instant::now();
            let resp = app.call(req).await.unwrap();
            assert!(resp.status().is_success(), "{path}: {}", resp.status());
            bytes = read_body(resp).await.len();
            times.push(start.elapsed());
        }
        times.sort();
        let label = if path == snapshot_path {
            "/nginx/snapshots/<id> (vs live)"
        } else if path == snapshots_path {
            "/nginx/snapshots/<id>?against=<id>"
        } else {
            path
        };
        rows.push((label, times[RUNS / 2], times[RUNS * 95 / 100], bytes));
    }
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "\npage render time, {RUNS} runs each (100 agents, 100 tunnels, 100 users, 10 groups, 20 invitations, \
         20 sites, 100 API keys, 5000 audit entries, 5000 log lines, 20 backups)"
    );
    println!(
        "{:<44} {:>10} {:>10} {:>10} {:>14} {:>9}",
        "page", "median ms", "p95 ms", "budget ms", "budget/median", "HTML KB"
    );
    for (path, median, p95, bytes) in rows {
        println!(
            "{:<44} {:>10.2} {:>10.2} {:>10.0} {:>13.1}x {:>9.1}",
            path,
            ms(median),
            ms(p95),
            BUDGET_MS,
            BUDGET_MS / ms(median),
            bytes as f64 / 1024.0
        );
    }
    let size = crate::panel::ui::assets::total_size();
    println!(
        "static assets: {:.1} KB of a 100 KB budget ({:.1}x headroom)",
        size as f64 / 1024.0,
        102400.0 / size as f64
    );
}
