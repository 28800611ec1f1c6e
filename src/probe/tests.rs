//! Unit tests of the probe's judgement; live probes against nginx are in
//! `src/nginx/tests/health.rs`.

use super::*;

pub(crate) fn health(key: &str, name: &str, serves: bool) -> NameHealth {
    let step = |ok| Step { ok, detail: String::new() };
    NameHealth {
        key: key.into(),
        name: name.into(),
        kind: Kind::Tunnel,
        up: serves,
        serves,
        reason: (!serves).then(|| "down".into()),
        dns: step(true),
        tls: step(serves),
        http: step(serves),
        relay: None,
        cert_names: vec![],
        cert_expires_at: None,
        cert_chain_len: 0,
        cert_chain_linked: false,
        status: None,
        took_ms: 0,
    }
}

pub(crate) fn report(names: Vec<NameHealth>) -> Report {
    let up = names.iter().filter(|n| n.up).count();
    Report { checked_at: 0, took_ms: 0, public_ip: None, up, total: names.len(), names }
}

#[test]
fn regressions_compare_by_key_not_by_name() {
    let before = report(vec![
        health("tunnel:1", "app.d", true),
        health("tunnel:2", "old.d", false),
        health("site:1", "www2.d", true),
    ]);
    // Renamed tunnel 1 no longer serves; tunnel 2 still broken; site deleted;
    // a new tunnel 3 does not serve yet.
    let after = report(vec![
        health("tunnel:1", "app2.d", false),
        health("tunnel:2", "old.d", false),
        health("tunnel:3", "new.d", false),
    ]);
    let r = regressions(&before, &after);
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!((r[0].before.as_str(), r[0].name.as_str()), ("app.d", "app2.d"));
    assert_eq!(broken(&after).len(), 3);
}

#[test]
fn tls_step_judges_the_served_certificate() {
    let cert = |names: &[&str], not_after| Served {
        names: names.iter().map(|s| s.to_string()).collect(),
        not_after,
        chain_len: 1,
        chain_linked: true,
        issuer: "x".into(),
    };
    let now = 1_000_000;
    assert!(tls_step(Some(&cert(&["app.d"], now + 90 * 86_400)), "app.d", now).ok);
    assert!(tls_step(Some(&cert(&["*.d"], now + 90 * 86_400)), "app.d", now).ok);
    let wrong = tls_step(Some(&cert(&["panel.d"], now + 90 * 86_400)), "app.d", now);
    assert!(!wrong.ok && wrong.detail.contains("instead of app.d"), "{wrong:?}");
    assert!(!tls_step(Some(&cert(&["app.d"], now - 1)), "app.d", now).ok);
    assert!(tls_step(Some(&cert(&["app.d"], now + 3 * 86_400)), "app.d", now).detail.contains("expires in 3 days"));
    assert!(!tls_step(None, "app.d", now).ok);
}

#[test]
fn http_step_by_kind() {
    let t = |kind| Target { key: "k".into(), name: "n.d".into(), kind, site_dir: None };
    assert!(http_step(&t(Kind::Panel), &Ok(403)).ok, "the panel wants a client certificate");
    assert!(http_step(&t(Kind::Tunnel), &Ok(302)).ok, "login redirect");
    assert!(!http_step(&t(Kind::Tunnel), &Ok(502)).ok);
    assert!(!http_step(&t(Kind::Site), &Ok(404)).ok);
    assert!(!http_step(&t(Kind::Auth), &Err("closed".into())).ok);
    let gone = Target { site_dir: Some("/nonexistent/portico/site".into()), ..t(Kind::Site) };
    assert!(!http_step(&gone, &Ok(200)).ok);
}
