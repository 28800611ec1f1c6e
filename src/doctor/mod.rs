//! `portico doctor` and the panel's Doctor page: the checks an operator
//! would otherwise run by hand, each finding with a next step in plain words.
//!
//! The per-name checks (DNS, TLS with SNI, certificate chain and expiry,
//! HTTP through nginx, relay → agent → target) are the probe's
//! ([`crate::probe::check_all`]); the rest lives in [`checks`].

mod checks;

use std::net::IpAddr;
use std::time::Instant;

use serde::Serialize;
use time::OffsetDateTime;

use crate::probe::{self, Kind, NameHealth, Report};
use crate::settings::Settings;
use crate::store::Store;

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Ok,
    /// Works now, or cannot be known from here; worth a look.
    Warn,
    /// Broken: visitors, agents or renewals are affected.
    Fail,
}

/// One thing the doctor looked at.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    /// Which check: `dns`, `ports`, `clock`, `certificate`, `acme`, `websocket`,
    /// `agent`, `name`, `memory`, `disk`, `secrets`.
    pub check: String,
    /// What it is about (a name, a port, a path).
    pub subject: String,
    pub level: Level,
    /// What was seen.
    pub summary: String,
    /// What to do about it; empty when nothing is needed.
    pub next_step: String,
}

impl Finding {
    pub(crate) fn new(check: &str, subject: impl Into<String>, level: Level, summary: impl Into<String>) -> Finding {
        Finding {
            check: check.into(),
            subject: subject.into(),
            level,
            summary: summary.into(),
            next_step: String::new(),
        }
    }

    pub(crate) fn next(mut self, step: impl Into<String>) -> Finding {
        self.next_step = step.into();
        self
    }
}

/// A whole doctor run.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DoctorReport {
    /// Unix seconds.
    pub started_at: i64,
    pub took_ms: u64,
    pub findings: Vec<Finding>,
    /// Findings at level `fail`.
    pub problems: usize,
    pub warnings: usize,
}

impl DoctorReport {
    fn from(findings: Vec<Finding>, started_at: i64, took_ms: u64) -> DoctorReport {
        let problems = findings.iter().filter(|f| f.level == Level::Fail).count();
        let warnings = findings.iter().filter(|f| f.level == Level::Warn).count();
        DoctorReport { started_at, took_ms, findings, problems, warnings }
    }
}

/// Runs every check; `progress` sees each finding as it is made (the Doctor
/// page shows them while the run goes on). The name probe runs first and
/// the other checks beside it, so a run takes about one probe deadline at most.
pub async fn run(
    settings: &Settings,
    store: &Store,
    public_ip: Option<IpAddr>,
    progress: impl Fn(&Finding),
) -> DoctorReport {
    let started = Instant::now();
    let started_at = OffsetDateTime::now_utc().unix_timestamp();
    let mut findings = Vec::new();
    let mut push = |f: Finding| {
        progress(&f);
        findings.push(f);
    };

    let domain = store.setting(crate::onboarding::keys::DOMAIN).await.ok().flatten().filter(|d| !d.is_empty());
    if public_ip.is_none() {
        push(
            Finding::new(
                "dns",
                "public IP",
                Level::Warn,
                "the public IP is not known, so DNS answers cannot be compared",
            )
            .next("set public_ip in the configuration (PORTICO__PUBLIC_IP)"),
        );
    }
    let (report, local) = tokio::join!(probe::check_all(settings, store, public_ip), async {
        let mut out = Vec::new();
        out.extend(checks::ports(settings, public_ip).await);
        out.push(checks::clock(settings).await);
        out.extend(checks::acme(settings, store).await);
        out.extend(checks::agents(store, settings.relay.visitors_listen, domain.as_deref()).await);
        out.extend(checks::resources(settings).await);
        out.extend(checks::secrets(settings).await);
        out
    });
    match (&domain, report) {
        (None, _) => push(
            Finding::new("name", "domain", Level::Warn, "no domain is set yet: no public name to check")
                .next("finish onboarding in the panel (https://<server ip>:9292)"),
        ),
        (Some(_), Err(e)) => push(
            Finding::new("name", "store", Level::Fail, format!("cannot read the names to check: {e}"))
                .next("check that the data directory is readable and the disk not full"),
        ),
        (Some(_), Ok(report)) => {
            for f in name_findings(&report) {
                push(f);
            }
            if let Some(d) = &domain {
                push(checks::websocket(settings, d).await);
            }
        }
    }
    for f in local {
        push(f);
    }
    DoctorReport::from(findings, started_at, started.elapsed().as_millis() as u64)
}

/// The probe's evidence as findings: DNS, certificate and serving per name.
pub fn name_findings(report: &Report) -> Vec<Finding> {
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let mut out = Vec::new();
    for n in &report.names {
        out.push(dns_finding(n));
        out.push(cert_finding(n, now));
        out.push(serving_finding(n));
    }
    out
}

fn dns_finding(n: &NameHealth) -> Finding {
    if n.dns.ok {
        return Finding::new("dns", &n.name, Level::Ok, n.dns.detail.clone());
    }
    Finding::new("dns", &n.name, Level::Fail, n.dns.detail.clone()).next(format!(
        "at your DNS provider, create an A record for {} (or a wildcard *.{}) pointing to this server's public IP",
        n.name,
        n.name.split_once('.').map_or("", |(_, d)| d)
    ))
}

fn cert_finding(n: &NameHealth, now: i64) -> Finding {
    if !n.tls.ok {
        return Finding::new("certificate", &n.name, Level::Fail, n.tls.detail.clone()).next(
            "open Certificates in the panel and issue (or renew) the certificate for this name; \
             if issuing fails, check DNS and that port 80 is reachable",
        );
    }
    let days = n.cert_expires_at.map(|t| (t - now).div_euclid(86_400));
    let chain = match (n.cert_chain_len, n.cert_chain_linked) {
        (0 | 1, _) => Some("the chain holds only the leaf; some visitors' devices will not trust it"),
        (_, false) => Some("the chain's certificates are not in issuing order"),
        _ => None,
    };
    match (days, chain) {
        (Some(d), _) if d < 14 => {
            Finding::new("certificate", &n.name, Level::Warn, format!("the certificate expires in {d} days"))
                .next("check the ACME findings below; renew it from Certificates in the panel")
        }
        (_, Some(why)) => Finding::new("certificate", &n.name, Level::Warn, why)
            .next("upload the full chain (leaf first, then intermediates) or let ACME issue it"),
        _ => Finding::new("certificate", &n.name, Level::Ok, n.tls.detail.clone()),
    }
}

fn serving_finding(n: &NameHealth) -> Finding {
    let check = "name";
    let failing = [n.relay.as_ref(), Some(&n.http)].into_iter().flatten().find(|s| !s.ok);
    let Some(step) = failing else {
        let how = n.relay.as_ref().map_or(n.http.detail.clone(), |r| format!("{}; {}", n.http.detail, r.detail));
        return Finding::new(check, &n.name, Level::Ok, format!("serves visitors ({how})"));
    };
    let next = match n.kind {
        Kind::Tunnel if step.detail.contains("agent is offline") => {
            "start the agent on the home machine (`portico agent run`) and check its network; its status shows the last error"
        }
        Kind::Tunnel if step.detail.contains("refused") => {
            "start the app on the home machine, or fix the tunnel's target (host:port as the agent sees it)"
        }
        Kind::Tunnel => "check the relay service under Services and the tunnel's agent",
        Kind::Site => "upload the site's files again under Sites",
        _ => "check nginx and the service under Services; the nginx page keeps snapshots to roll back to",
    };
    Finding::new(check, &n.name, Level::Fail, step.detail.clone()).next(next)
}

#[cfg(test)]
mod tests;

/// What the Doctor page polls: the findings so far and, once done, the report.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunState {
    pub running: bool,
    /// Unix seconds; `None` before the first run.
    pub started_at: Option<i64>,
    /// Findings made so far in the current (or last) run.
    pub findings: Vec<Finding>,
    /// The finished run.
    pub report: Option<DoctorReport>,
}

/// The panel's doctor runs: one at a time, the last one kept.
#[derive(Default)]
pub struct Runs {
    state: std::sync::Arc<std::sync::Mutex<RunState>>,
}

impl Runs {
    /// The current or last run.
    pub fn snapshot(&self) -> RunState {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Starts a run in the background unless one is running; returns the state.
    pub fn start(&self, settings: std::sync::Arc<Settings>, store: Store, public_ip: Option<IpAddr>) -> RunState {
        {
            let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
            if s.running {
                return s.clone();
            }
            *s = RunState {
                running: true,
                started_at: Some(OffsetDateTime::now_utc().unix_timestamp()),
                findings: Vec::new(),
                report: None,
            };
        }
        let state = self.state.clone();
        tokio::spawn(async move {
            let progress = state.clone();
            let report = run(&settings, &store, public_ip, move |f| {
                progress.lock().unwrap_or_else(|e| e.into_inner()).findings.push(f.clone());
            })
            .await;
            let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
            s.running = false;
            s.findings = report.findings.clone();
            s.report = Some(report);
        });
        self.snapshot()
    }
}

/// `portico doctor`: runs every check against the local appliance and
/// prints the findings (JSON with `json`). `Err` (exit code 1) when a
/// finding is a problem.
pub fn command(settings: &Settings, json: bool) -> anyhow::Result<()> {
    use anyhow::Context;
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let store =
        Store::open(&settings.db_path()).with_context(|| format!("while opening {}", settings.db_path().display()))?;
    let public_ip = settings.public_ip.or_else(crate::onboarding::detect_public_ip);
    let report = rt.block_on(run(settings, &store, public_ip, |_| {}));
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", text(&report));
    }
    if report.problems > 0 {
        anyhow::bail!("{} found", crate::wording::count(report.problems, "problem", "problems"));
    }
    Ok(())
}

/// The report as lines for a terminal.
pub fn text(report: &DoctorReport) -> String {
    let mut out = String::new();
    for f in &report.findings {
        let level = match f.level {
            Level::Ok => "ok  ",
            Level::Warn => "WARN",
            Level::Fail => "FAIL",
        };
        out.push_str(&format!("{level}  {:<12} {}: {}\n", f.check, f.subject, f.summary));
        if !f.next_step.is_empty() {
            out.push_str(&format!("      next: {}\n", f.next_step));
        }
    }
    out.push_str(&format!(
        "{}, {} in {}, {} ms\n",
        crate::wording::count(report.problems, "problem", "problems"),
        crate::wording::count(report.warnings, "warning", "warnings"),
        crate::wording::count(report.findings.len(), "check", "checks"),
        report.took_ms
    ));
    out
}
