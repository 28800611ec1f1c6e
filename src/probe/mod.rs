//! Health that tells the truth: every public name probed the way a visitor
//! reaches it.
//!
//! For each name: DNS through the system resolver (compared with the public
//! IP), a TLS handshake with SNI against nginx's public HTTPS listener (the
//! certificate actually served: names and expiry), the HTTP status through
//! nginx, and for tunnels one request straight to the relay's visitor side,
//! which tells "agent offline" and "target refused" apart. Probes run
//! concurrently, each bounded by a timeout, all by an overall deadline.
//!
//! A name *serves* when TLS, HTTP and the relay are fine; it is *up* when it
//! also resolves to the public IP. A configuration change cannot alter DNS,
//! so [`regressions`] compares `serves` before and after a change.
//!
//! [`check_all`] is the one entry point for "is the appliance healthy now"
//! (after a restore, in `portico doctor`, in the periodic task).

mod cache;
mod guard;
mod wire;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::Serialize;
use time::OffsetDateTime;

pub use cache::HealthCache;
pub use guard::{Guard, Verdict};
pub use wire::{Https, Relay, Served, raw_tls_request, recording_config, relay as relay_request};

use crate::settings::Settings;
use crate::store::{Store, StoreError};

/// The probe's `User-Agent`; nginx does not count its requests as visitors.
pub const USER_AGENT: &str = "portico-probe";

/// How long one step (DNS, TLS + HTTP, relay) may take.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a whole run may take, all names together.
pub const DEADLINE: Duration = Duration::from_secs(8);
/// Probes in flight at once (a 512 MB box: bounded sockets and tasks).
const CONCURRENCY: usize = 32;
/// A certificate expiring sooner than this is reported (still serving).
const EXPIRY_WARN_DAYS: i64 = 14;

/// What a name is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// `panel.<d>`: the admin panel (client certificate required).
    Panel,
    /// `auth.<d>`: the visitor login portal.
    Auth,
    /// `tunnel.<d>`: the agents' WebSocket endpoint.
    Agents,
    /// A tunnel to a home app.
    Tunnel,
    /// A static site.
    Site,
}

/// One public name to probe.
#[derive(Debug, Clone)]
pub struct Target {
    /// Stable across renames: `panel`, `auth`, `agents`, `tunnel:<id>`, `site:<id>`.
    pub key: String,
    /// The fully qualified name.
    pub name: String,
    pub kind: Kind,
    /// The site's directory, for sites.
    pub site_dir: Option<PathBuf>,
}

/// One check of a name.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Step {
    pub ok: bool,
    /// What was seen, in plain words.
    pub detail: String,
}

impl Step {
    fn ok(detail: impl Into<String>) -> Step {
        Step { ok: true, detail: detail.into() }
    }
    fn bad(detail: impl Into<String>) -> Step {
        Step { ok: false, detail: detail.into() }
    }
}

/// The probe's evidence for one name.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NameHealth {
    pub key: String,
    pub name: String,
    pub kind: Kind,
    /// Serves and resolves to the public IP.
    pub up: bool,
    /// TLS, HTTP and (for tunnels) the relay are fine.
    pub serves: bool,
    /// The first failing check, in plain words; `None` when up.
    pub reason: Option<String>,
    pub dns: Step,
    pub tls: Step,
    pub http: Step,
    /// Tunnels only: relay → agent → target.
    pub relay: Option<Step>,
    /// Names on the certificate nginx served.
    pub cert_names: Vec<String>,
    /// Expiry of the served certificate, unix seconds.
    pub cert_expires_at: Option<i64>,
    /// Certificates in the served chain, leaf included.
    pub cert_chain_len: usize,
    /// Each certificate of the served chain was issued by the next one.
    pub cert_chain_linked: bool,
    /// HTTP status through nginx.
    pub status: Option<u16>,
    /// Milliseconds this name took.
    pub took_ms: u64,
}

/// One probe run over every public name.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// Unix seconds.
    pub checked_at: i64,
    pub took_ms: u64,
    /// The address DNS answers were compared with.
    pub public_ip: Option<String>,
    /// Names that are up.
    pub up: usize,
    pub total: usize,
    pub names: Vec<NameHealth>,
}

impl Report {
    /// The result for one key (`tunnel:<id>`, `site:<id>`, `panel`…).
    pub fn get(&self, key: &str) -> Option<&NameHealth> {
        self.names.iter().find(|n| n.key == key)
    }

    /// The result for a fully qualified name.
    pub fn by_name(&self, name: &str) -> Option<&NameHealth> {
        self.names.iter().find(|n| n.name == name)
    }

    /// Every name is up.
    pub fn all_up(&self) -> bool {
        self.up == self.total
    }
}

/// Where the probe connects and what it compares with.
#[derive(Debug, Clone)]
pub struct Config {
    /// nginx's public HTTPS listener, reached from inside the box.
    pub https: SocketAddr,
    /// The relay's visitor listener.
    pub relay: SocketAddr,
    /// What DNS should answer; `None` skips nothing but reports it unknown.
    pub public_ip: Option<IpAddr>,
    /// DNS server for the check; the system resolver when `None`.
    pub resolver: Option<SocketAddr>,
    pub step_timeout: Duration,
    pub deadline: Duration,
    /// Resolve names too. Off for the before/after comparison of a change,
    /// which cannot alter DNS.
    pub check_dns: bool,
}

impl Config {
    /// From the settings: nginx's bind address (loopback when it binds all)
    /// and HTTPS port, the relay's visitor listener, the onboarding resolver.
    pub fn from_settings(settings: &Settings, public_ip: Option<IpAddr>) -> Config {
        let host = match settings.nginx.bind {
            ip if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            ip => ip,
        };
        Config {
            https: SocketAddr::new(host, settings.nginx.https_port),
            relay: settings.relay.visitors_listen,
            public_ip,
            resolver: settings.dns.resolver,
            step_timeout: STEP_TIMEOUT,
            deadline: DEADLINE,
            check_dns: true,
        }
    }
}

/// Every public name the store's state publishes: the three service names,
/// enabled tunnels and sites. Empty before a domain is set.
pub async fn targets(settings: &Settings, store: &Store) -> Result<Vec<Target>, StoreError> {
    let Some(domain) = store.setting(crate::onboarding::keys::DOMAIN).await?.filter(|d| !d.is_empty()) else {
        return Ok(Vec::new());
    };
    let fixed = |key: &str, label: &str, kind| Target {
        key: key.into(),
        name: format!("{label}.{domain}"),
        kind,
        site_dir: None,
    };
    let mut out = vec![fixed("panel", "panel", Kind::Panel), fixed("auth", "auth", Kind::Auth)];
    out.push(fixed("agents", "tunnel", Kind::Agents));
    for t in store.tunnels().await?.into_iter().filter(|t| t.enabled) {
        out.push(Target {
            key: format!("tunnel:{}", t.id),
            name: format!("{}.{domain}", t.name),
            kind: Kind::Tunnel,
            site_dir: None,
        });
    }
    for s in store.sites().await? {
        out.push(Target {
            key: format!("site:{}", s.id),
            name: format!("{}.{domain}", s.name),
            kind: Kind::Site,
            site_dir: Some(crate::sites::site_dir(&settings.data_dir, &s.name)),
        });
    }
    Ok(out)
}

/// Probes every name the store publishes now. The function to call after
/// any change or restore to prove the appliance serves what it should.
pub async fn check_all(settings: &Settings, store: &Store, public_ip: Option<IpAddr>) -> Result<Report, StoreError> {
    let targets = targets(settings, store).await?;
    Ok(check(&Config::from_settings(settings, public_ip), targets).await)
}

/// Probes `targets` concurrently; a name still running at the deadline is
/// reported as not answering.
pub async fn check(cfg: &Config, targets: Vec<Target>) -> Report {
    let started = Instant::now();
    let tls = recording_config();
    let limit = std::sync::Arc::new(tokio::sync::Semaphore::new(CONCURRENCY));
    let mut set = tokio::task::JoinSet::new();
    for (i, t) in targets.iter().cloned().enumerate() {
        let (cfg, tls, limit) = (cfg.clone(), tls.clone(), limit.clone());
        set.spawn(async move {
            let _permit = limit.acquire_owned().await;
            (i, probe(&cfg, &t, tls).await)
        });
    }
    let mut results: Vec<Option<NameHealth>> = vec![None; targets.len()];
    let deadline = tokio::time::Instant::now() + cfg.deadline;
    loop {
        match tokio::time::timeout_at(deadline, set.join_next()).await {
            Ok(Some(Ok((i, h)))) => results[i] = Some(h),
            Ok(Some(Err(_))) => {}
            Ok(None) | Err(_) => break,
        }
    }
    set.abort_all();
    let names: Vec<NameHealth> =
        results.into_iter().zip(&targets).map(|(r, t)| r.unwrap_or_else(|| timed_out(t, cfg.deadline))).collect();
    let up = names.iter().filter(|n| n.up).count();
    Report {
        checked_at: OffsetDateTime::now_utc().unix_timestamp(),
        took_ms: started.elapsed().as_millis() as u64,
        public_ip: cfg.public_ip.map(|ip| ip.to_string()),
        up,
        total: names.len(),
        names,
    }
}

fn timed_out(t: &Target, deadline: Duration) -> NameHealth {
    let why = format!("the probe did not finish within {} s", deadline.as_secs());
    NameHealth {
        key: t.key.clone(),
        name: t.name.clone(),
        kind: t.kind,
        up: false,
        serves: false,
        reason: Some(why.clone()),
        dns: Step::bad(why.clone()),
        tls: Step::bad(why.clone()),
        http: Step::bad(why),
        relay: None,
        cert_names: vec![],
        cert_expires_at: None,
        cert_chain_len: 0,
        cert_chain_linked: false,
        status: None,
        took_ms: deadline.as_millis() as u64,
    }
}

/// DNS answer for one name compared with the public IP.
pub async fn dns(cfg: &Config, name: &str) -> Step {
    let Some(expected) = cfg.public_ip else {
        return Step::bad("the public IP is unknown; set public_ip so DNS can be compared");
    };
    let fut = crate::onboarding::check_dns(cfg.resolver, vec![name.to_string()], expected);
    match wire::within(cfg.step_timeout, "the DNS lookup", fut).await {
        Err(e) => Step::bad(e),
        Ok(report) => match report.names.into_iter().next() {
            Some(c) if c.ok => Step::ok(format!("resolves to {expected}")),
            Some(c) => Step::bad(c.message.unwrap_or_else(|| "does not resolve to the public IP".into())),
            None => Step::bad("no answer"),
        },
    }
}

async fn probe(cfg: &Config, t: &Target, tls: std::sync::Arc<rustls::ClientConfig>) -> NameHealth {
    let started = Instant::now();
    let (dns, https, relay) = tokio::join!(
        async { if cfg.check_dns { dns(cfg, &t.name).await } else { Step::bad(DNS_NOT_CHECKED) } },
        wire::within(cfg.step_timeout, "the TLS handshake and request", wire::https(cfg.https, &t.name, tls)),
        async { if t.kind == Kind::Tunnel { Some(relay_step(cfg, &t.name).await) } else { None } }
    );
    let https = https.and_then(|r| r);
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let (tls, cert, status) = match &https {
        Err(e) => (Step::bad(e.clone()), None, None),
        Ok(h) => (tls_step(h.cert.as_ref(), &t.name, now), h.cert.clone(), h.status.as_ref().ok().copied()),
    };
    let http = match &https {
        Err(_) => Step::bad("no HTTP answer (the TLS step failed)"),
        Ok(h) => http_step(t, &h.status),
    };
    let serves = tls.ok && http.ok && relay.as_ref().is_none_or(|r| r.ok);
    let up = serves && dns.ok;
    let reason = [Some(&tls), relay.as_ref(), Some(&http), Some(&dns)]
        .into_iter()
        .flatten()
        .find(|s| !s.ok)
        .map(|s| s.detail.clone());
    NameHealth {
        key: t.key.clone(),
        name: t.name.clone(),
        kind: t.kind,
        up,
        serves,
        reason,
        dns,
        tls,
        http,
        relay,
        cert_names: cert.as_ref().map(|c| c.names.clone()).unwrap_or_default(),
        cert_expires_at: cert.as_ref().map(|c| c.not_after),
        cert_chain_len: cert.as_ref().map_or(0, |c| c.chain_len),
        cert_chain_linked: cert.as_ref().is_some_and(|c| c.chain_linked),
        status,
        took_ms: started.elapsed().as_millis() as u64,
    }
}

fn tls_step(cert: Option<&Served>, name: &str, now: i64) -> Step {
    let Some(c) = cert else { return Step::bad("nginx sent no certificate") };
    if !crate::acme::inspect::covers(&c.names, name) {
        return Step::bad(format!(
            "nginx serves a certificate for {} instead of {name} (no certificate for this name yet)",
            if c.names.is_empty() { "no name".to_string() } else { c.names.join(", ") }
        ));
    }
    let days = (c.not_after - now).div_euclid(86_400);
    if c.not_after <= now {
        return Step::bad("the certificate served has expired");
    }
    if days < EXPIRY_WARN_DAYS {
        return Step::ok(format!("certificate valid, but expires in {days} days"));
    }
    Step::ok(format!("certificate for {name}, expires in {days} days"))
}

fn http_step(t: &Target, status: &Result<u16, String>) -> Step {
    let status = match status {
        Err(e) => return Step::bad(e.clone()),
        Ok(s) => *s,
    };
    if let Some(dir) = &t.site_dir
        && !dir.is_dir()
    {
        return Step::bad(format!("HTTP {status}; the site's files are missing (upload them again)"));
    }
    match (t.kind, status) {
        (_, 500..) => Step::bad(format!("nginx answered HTTP {status}")),
        // A tunnel's 404 may be the home app's own answer; the relay step
        // tells "no such tunnel" apart.
        (Kind::Site, 404) => Step::bad("nginx answered HTTP 404: nothing is served under this name"),
        _ => Step::ok(format!("HTTP {status}")),
    }
}

/// Relay → agent → target. The relay reloads its routes a few hundred
/// milliseconds after a store change, so "no route" is asked again briefly.
async fn relay_step(cfg: &Config, name: &str) -> Step {
    let limit = cfg.step_timeout;
    let run = async {
        let until = Instant::now() + Duration::from_millis(1500);
        loop {
            let r = wire::relay(cfg.relay, name).await;
            if matches!(r, Relay::NoRoute) && Instant::now() < until {
                tokio::time::sleep(Duration::from_millis(100)).await; // the relay's reload interval is 250 ms
                continue;
            }
            return r;
        }
    };
    match wire::within(limit, "the relay request", run).await {
        Err(e) => Step::bad(e),
        Ok(Relay::Answered(s)) => Step::ok(format!("agent connected, target answered HTTP {s}")),
        Ok(Relay::Busy) => Step::ok("agent connected, at its stream limit"),
        Ok(Relay::NoRoute) => Step::bad("the relay has no route for this tunnel"),
        Ok(Relay::AgentOffline) => Step::bad("the tunnel's agent is offline"),
        Ok(Relay::TargetRefused) => Step::bad("the agent is connected but the target refused the connection"),
        Ok(Relay::Failed(e)) => Step::bad(e),
    }
}

const DNS_NOT_CHECKED: &str = "DNS not checked yet";

/// Copies DNS answers from `last` (a full run) into `report` (a run without
/// DNS), by name, and recomputes `up`.
pub fn carry_dns(report: &mut Report, last: &Report) {
    for n in &mut report.names {
        if let Some(old) = last.by_name(&n.name) {
            n.dns = old.dns.clone();
        }
        n.up = n.serves && n.dns.ok;
        if n.serves && !n.dns.ok {
            n.reason = Some(n.dns.detail.clone());
        }
    }
    report.up = report.names.iter().filter(|n| n.up).count();
}

/// A name that served before the change and does not after: the evidence.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Regression {
    pub key: String,
    /// The name before the change.
    pub before: String,
    /// The name after the change (differs after a rename).
    pub name: String,
    /// Why it does not serve now.
    pub reason: String,
}

/// Names (by key, so a rename compares the old name with the new) that
/// served in `before` and do not in `after`. A key absent after the change
/// (deleted, disabled) is not a regression.
pub fn regressions(before: &Report, after: &Report) -> Vec<Regression> {
    after
        .names
        .iter()
        .filter(|a| !a.serves)
        .filter_map(|a| {
            let b = before.get(&a.key)?;
            b.serves.then(|| Regression {
                key: a.key.clone(),
                before: b.name.clone(),
                name: a.name.clone(),
                reason: a.reason.clone().unwrap_or_default(),
            })
        })
        .collect()
}

/// Names that do not serve after a change, whether or not they did before.
pub fn broken(after: &Report) -> Vec<&NameHealth> {
    after.names.iter().filter(|n| !n.serves).collect()
}

#[cfg(test)]
pub(crate) mod tests;
