//! Every change visitors see is proved by the probe, with the real parts
//! (nginx rendered from the store, the relay, certificate files as the ACME
//! store keeps them):
//!
//! - a site creation or deletion that stops a working name is undone (row,
//!   files, nginx) and audited; a new site without a certificate is kept
//!   and flagged;
//! - a certificate renewal whose new certificate does not serve the name
//!   goes back to the previous version behind `certs/<name>`;
//! - an nginx rollback to a snapshot that stops a working name is undone;
//! - the start-up probe audits the names that do not serve;
//! - the relay measures each agent's round trip and keeps its last contact,
//!   which `/api/agents` and the doctor show.

use std::os::unix::fs::PermissionsExt;

use rcgen::{CertificateParams, DnType, KeyPair};

use super::eventually;
use super::health::{Appliance, DOMAIN, appliance};
use crate::app::Error as AppError;
use crate::app::sites::{create as create_site, delete as delete_site};
use crate::sites::NewSite;
use crate::store::AuditQuery;

/// nginx accepts it, but every TLS vhost inherits it and refuses handshakes.
const BREAKS_TLS: &str = "ssl_reject_handshake on;";

fn public_site(name: &str) -> NewSite {
    NewSite { name: name.into(), access: Some("public".into()), ..NewSite::default() }
}

/// `(action, outcome, details)` of every audit entry with `action`, newest first.
async fn audited(a: &Appliance, action: &str) -> Vec<(String, String, String)> {
    let q = AuditQuery { action: Some(action.into()), limit: 50, ..Default::default() };
    let (entries, _) = a.state.store.audit_entries(q).await.unwrap();
    entries.into_iter().map(|e| (e.target, e.outcome, e.details.map(|d| d.to_string()).unwrap_or_default())).collect()
}

/// A self-signed pair for `fqdn` (the probe judges names and expiry).
fn pair(fqdn: &str) -> (String, String) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec![fqdn.to_string()]).unwrap();
    params.distinguished_name.push(DnType::CommonName, fqdn);
    (params.self_signed(&key).unwrap().pem(), key.serialize_pem())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_site_change_that_stops_a_working_name_is_undone_and_a_new_name_without_certificate_is_flagged() {
    let a = appliance(&["docs", "blog"]).await;
    let data = a.state.settings.data_dir.clone();
    let (_, kept) = create_site(&a.state, &a.admin, public_site("docs")).await.unwrap();
    assert!(kept.warning().is_none(), "{:?}", kept.warning());
    a.until_serves("docs", true).await;

    // A creation whose nginx tree stops docs from serving: undone.
    a.state.nginx.inject_once_for_tests(BREAKS_TLS.into());
    let err = create_site(&a.state, &a.admin, public_site("blog")).await.unwrap_err();
    let AppError::NamesBroken(evidence) = &err else { panic!("expected NamesBroken, got {err:?}") };
    assert!(evidence.iter().any(|r| r.name == format!("docs.{DOMAIN}")), "{evidence:?}");
    let names: Vec<String> = a.state.store.sites().await.unwrap().into_iter().map(|s| s.name).collect();
    assert_eq!(names, ["docs"], "the new site's row is gone");
    assert!(!crate::sites::site_dir(&data, "blog").exists(), "the new site's files are gone");
    let rollbacks = audited(&a, "health.rollback").await;
    assert_eq!(rollbacks.len(), 1, "{rollbacks:?}");
    assert!(rollbacks[0].2.contains("site.create") && rollbacks[0].2.contains("docs.example.test"), "{rollbacks:?}");
    assert_eq!(audited(&a, "site.create").await[0].1, "failure");
    assert!(a.state.probe_now().await.unwrap().by_name("docs.example.test").unwrap().serves);

    // The same creation when nothing breaks: kept.
    let (blog, _) = create_site(&a.state, &a.admin, public_site("blog")).await.unwrap();
    a.until_serves("blog", true).await;

    // A deletion that stops docs from serving: the row comes back with its
    // files (they are removed only once the deletion is proved).
    std::fs::write(crate::sites::site_dir(&data, "blog").join("page.html"), "mine").unwrap();
    a.state.nginx.inject_once_for_tests(BREAKS_TLS.into());
    let err = delete_site(&a.state, &a.admin, blog.id).await.unwrap_err();
    assert!(matches!(err, AppError::NamesBroken(_)), "{err:?}");
    assert_eq!(a.state.store.site(blog.id).await.unwrap().unwrap().name, "blog", "the row is back");
    let page = crate::sites::site_dir(&data, "blog").join("page.html");
    assert_eq!(std::fs::read_to_string(&page).unwrap(), "mine", "files kept");
    let report = a.state.probe_now().await.unwrap();
    assert!(report.by_name("blog.example.test").unwrap().serves && report.by_name("docs.example.test").unwrap().serves);
    assert_eq!(audited(&a, "health.rollback").await.len(), 2);

    // A deletion that breaks nothing removes the files.
    delete_site(&a.state, &a.admin, blog.id).await.unwrap();
    assert!(!crate::sites::site_dir(&data, "blog").exists());

    // A new site without a certificate does not serve, and nothing that
    // served stopped: kept, flagged.
    let (_, kept) = create_site(&a.state, &a.admin, public_site("nocert")).await.unwrap();
    let warning = kept.warning().expect("flagged");
    assert!(warning.contains("nocert.example.test") && warning.contains("no certificate"), "{warning}");
    assert!(!warning.contains("docs.example.test"), "{warning}");

    // The start-up probe reports what does not serve, and audits it.
    let report =
        crate::tasks::startup_probe(&a.state, std::time::Duration::ZERO, std::time::Duration::ZERO).await.unwrap();
    assert!(!report.by_name("nocert.example.test").unwrap().serves);
    let startup = audited(&a, "health.startup").await;
    assert_eq!(startup[0].1, "failure", "{startup:?}");
    assert!(startup[0].2.contains("nocert.example.test") && !startup[0].2.contains("docs.example.test"), "{startup:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewal_that_stops_a_name_goes_back_to_the_previous_certificate() {
    use crate::acme::{AcmeError, Issued, Source, files};
    let a = appliance(&[]).await;
    let data = a.state.settings.data_dir.clone();
    let fqdn = format!("docs.{DOMAIN}");
    let (chain, key) = pair(&fqdn);
    files::install(&data, &fqdn, &chain, &key).unwrap();
    create_site(&a.state, &a.admin, public_site("docs")).await.unwrap();
    a.until_serves("docs", true).await;
    let link = data.join("acme/certs").join(&fqdn);
    let live = std::fs::read_link(&link).unwrap();

    // The CA answered with a certificate for another name: nginx takes it,
    // the probe sees docs stop serving, and the link goes back.
    let (wrong, wrong_key) = pair(&format!("other.{DOMAIN}"));
    let issued = Issued { fullchain: wrong, key: wrong_key };
    let certs = &a.state.certs;
    let err = certs
        .install_and_apply(&a.state.nginx, vec![(fqdn.clone(), issued, Source::Auto)], "certificate renewed", "system")
        .await
        .unwrap_err();
    let AcmeError::NamesBroken(evidence) = &err else { panic!("expected NamesBroken, got {err:?}") };
    assert_eq!(evidence[0].name, fqdn, "{evidence:?}");
    assert!(err.to_string().contains("the previous certificate is back"), "{err}");
    assert_eq!(std::fs::read_link(&link).unwrap(), live, "certs/<name> points at the previous version again");
    assert_eq!(files::read(&data, &fqdn).unwrap().unwrap(), (chain.clone(), key.clone()));
    assert!(a.state.store.certificates().await.unwrap().iter().all(|r| r.name != fqdn), "no record of the undone one");
    let rollbacks = audited(&a, "health.rollback").await;
    assert!(rollbacks[0].0.contains(&fqdn) && rollbacks[0].2.contains("certificate renewed"), "{rollbacks:?}");
    assert!(a.state.probe_now().await.unwrap().by_name(&fqdn).unwrap().serves);
    let mode = std::fs::metadata(link.join("privkey.pem")).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

    // A good renewal is kept and recorded.
    let (fresh, fresh_key) = pair(&fqdn);
    let issued = Issued { fullchain: fresh.clone(), key: fresh_key };
    certs
        .install_and_apply(&a.state.nginx, vec![(fqdn.clone(), issued, Source::Auto)], "certificate renewed", "system")
        .await
        .unwrap();
    assert_ne!(std::fs::read_link(&link).unwrap(), live);
    assert_eq!(files::read(&data, &fqdn).unwrap().unwrap().0, fresh);
    assert!(a.state.store.certificates().await.unwrap().iter().any(|r| r.name == fqdn));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_nginx_rollback_that_stops_a_working_name_is_undone() {
    let a = appliance(&["docs"]).await;
    create_site(&a.state, &a.admin, public_site("docs")).await.unwrap();
    a.until_serves("docs", true).await;
    let live = a.state.nginx.live_tree().await.unwrap();
    // The newest snapshot is the tree the site's apply replaced: no docs.
    let before_docs = a.state.nginx.snapshots().await.unwrap()[0].id.clone();

    let admin = crate::testing::admin("admin:test");
    let err = crate::app::nginx::rollback(&a.state, &admin, before_docs.clone()).await.unwrap_err();
    let crate::app::Error::NamesBroken(evidence) = &err else { panic!("expected NamesBroken, got {err:?}") };
    assert_eq!(evidence[0].name, "docs.example.test", "{evidence:?}");
    assert_eq!(a.state.nginx.live_tree().await.unwrap(), live, "the tree before the rollback is live again");
    assert!(a.state.probe_now().await.unwrap().by_name("docs.example.test").unwrap().serves);
    let rollbacks = audited(&a, "health.rollback").await;
    assert!(rollbacks[0].2.contains("nginx.rollback"), "{rollbacks:?}");
    assert_eq!(audited(&a, "nginx.rollback").await[0].1, "failure");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_measures_each_agents_round_trip_and_keeps_its_last_contact() {
    let a = appliance(&["app"]).await;
    let agent = a.agent("home").await;
    let target = super::app::start().await;
    a.tunnel("app", "home", target).await;
    a.until_serves("app", true).await;

    eventually(15, "a round trip in relay_status", || async {
        a.state.store.relay_status().await.unwrap().iter().any(|s| s.rtt_ms.is_some() && s.last_contact.is_some())
    })
    .await;
    let s = a.state.store.relay_status().await.unwrap().into_iter().find(|s| s.label == "home").unwrap();
    let rtt = s.rtt_ms.unwrap();
    assert!(rtt > 0.0, "{s:?}");
    println!("round trip relay → agent → relay on loopback: {rtt:.1} ms");
    let doctor = crate::doctor::run(&a.state.settings, &a.state.store, a.state.public_ip(), |_| {}).await;
    let f = doctor.findings.iter().find(|f| f.check == "agent" && f.subject == "home").unwrap();
    assert_eq!(f.level, crate::doctor::Level::Ok, "{f:?}");
    assert!(f.summary.contains("round trip") && f.summary.contains("last heard"), "{f:?}");
    println!("doctor run with one agent: {} ms", doctor.took_ms);

    // The home link is cut: the last contact stays, and the doctor says when
    // it was and what to do.
    drop(agent);
    eventually(15, "the agent's last contact kept", || async {
        a.state.store.relay_status().await.unwrap().is_empty()
            && a.state.store.agent_contacts().await.unwrap().iter().any(|c| c.label == "home")
    })
    .await;
    let contact = a.state.store.agent_contacts().await.unwrap().into_iter().find(|c| c.label == "home").unwrap();
    assert!(contact.rtt_ms.is_some(), "{contact:?}");
    assert!((time::OffsetDateTime::now_utc() - contact.last_contact).whole_seconds() < 60, "{contact:?}");
    let doctor = crate::doctor::run(&a.state.settings, &a.state.store, a.state.public_ip(), |_| {}).await;
    let f = doctor.findings.iter().find(|f| f.check == "agent" && f.subject == "home").unwrap();
    assert_eq!(f.level, crate::doctor::Level::Fail, "{f:?}");
    assert!(f.summary.contains("last contact") && f.summary.contains("app"), "{f:?}");
    assert!(f.next_step.contains("portico agent status"), "{f:?}");

    // /api/agents as an admin reads it.
    let app = actix_web::test::init_service(
        actix_web::App::new().configure(crate::panel::configure(a.state.clone(), crate::panel::Channel::Panel)),
    )
    .await;
    let serial = a.state.pki.admin_info().unwrap().serial;
    let req = actix_web::test::TestRequest::get()
        .uri("/api/agents")
        .peer_addr("127.0.0.1:50000".parse().unwrap())
        .insert_header(("X-SSL-Client-Verify", "SUCCESS"))
        .insert_header(("X-SSL-Client-DN", "CN=admin"))
        .insert_header(("X-SSL-Client-Serial", serial.as_str()))
        .to_request();
    let body: serde_json::Value = actix_web::test::call_and_read_body_json(&app, req).await;
    let home = body.as_array().unwrap().iter().find(|v| v["label"] == "home").unwrap();
    assert_eq!(home["online"], false, "{home}");
    assert!(home["lastContact"].is_string() && home["rttMs"].is_number(), "{home}");
}
