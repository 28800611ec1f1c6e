//! `/metrics`: the appliance's state in the Prometheus text format
//! (OpenMetrics flavour), built at scrape time from the store (which the
//! relay and authd already write: relay status rows, process counters, audit
//! entries), the panel's own in-memory counters (visitor requests, nginx
//! applies, ACME renewals), the supervisor and `/proc`. Nothing is counted on
//! a hot path here: the relay counts bytes with relaxed atomics and flushes
//! them to the store on its own.

pub mod visitors;

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use time::OffsetDateTime;

use crate::store::{Store, StoreError};
use crate::supervisor::Supervisor;

/// The content type of [`render`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

type Labels = Vec<(String, String)>;

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn gauges(registry: &mut Registry, name: &str, help: &str) -> Family<Labels, Gauge> {
    let family = Family::<Labels, Gauge>::default();
    registry.register(name, help, family.clone());
    family
}

fn counters(registry: &mut Registry, name: &str, help: &str) -> Family<Labels, Counter> {
    let family = Family::<Labels, Counter>::default();
    registry.register(name, help, family.clone());
    family
}

fn clamp(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Whole days from `now` until `not_after` (negative once expired).
fn days_left(not_after: OffsetDateTime, now: OffsetDateTime) -> i64 {
    (not_after - now).whole_days()
}

/// How often an operation ended each way, counted with relaxed atomics by
/// whoever runs it (the nginx pipeline, the ACME renewer).
#[derive(Debug)]
pub struct Outcomes<const N: usize> {
    names: [&'static str; N],
    counts: [AtomicU64; N],
}

impl<const N: usize> Outcomes<N> {
    pub fn new(names: [&'static str; N]) -> Self {
        Outcomes { names, counts: std::array::from_fn(|_| AtomicU64::new(0)) }
    }

    /// Counts one operation that ended as `outcome` (one of the names given to [`Outcomes::new`]).
    pub fn add(&self, outcome: &str) {
        match self.names.iter().position(|n| *n == outcome) {
            Some(i) => {
                self.counts[i].fetch_add(1, Ordering::Relaxed);
            }
            None => debug_assert!(false, "unknown outcome {outcome}"),
        }
    }

    /// Every outcome with its count, in the order of [`Outcomes::new`].
    pub fn snapshot(&self) -> Vec<(&'static str, u64)> {
        self.names.iter().zip(&self.counts).map(|(n, c)| (*n, c.load(Ordering::Relaxed))).collect()
    }
}

/// Counters the panel process keeps in memory, since it started. Both nginx
/// applies and ACME renewals happen in `portico serve` (handlers, the
/// `acme-renewal` task, provisioning), so the panel's own counts are complete.
#[derive(Debug, Clone, Default)]
pub struct PanelCounters {
    /// Visitor requests per vhost and status class (see [`visitors`]).
    pub visitors: Vec<(visitors::Kind, String, [u64; 5])>,
    /// nginx applies and rollbacks by outcome: `ok`, `refused`, `error`.
    pub nginx_applies: Vec<(&'static str, u64)>,
    /// ACME issuances and renewals by outcome: `ok`, `error`.
    pub acme_renewals: Vec<(&'static str, u64)>,
    /// The last probe of every public name.
    pub health: Option<std::sync::Arc<crate::probe::Report>>,
}

/// Renders every metric. Reads the store and, on the blocking pool, the
/// supervisor, certificate files and `/proc`.
pub async fn render(
    store: &Store,
    supervisor: &Supervisor,
    data_dir: &Path,
    panel: &PanelCounters,
) -> Result<String, StoreError> {
    let snapshot = store.metrics_snapshot().await?;
    let relay = store.relay_status().await?;
    let (sup, dir) = (supervisor.clone(), data_dir.to_path_buf());
    let (services, processes, certs) = tokio::task::spawn_blocking(move || {
        (crate::services::list(&sup).unwrap_or_default(), crate::sysstats::portico_processes(), acme_certificates(&dir))
    })
    .await
    .map_err(|e| StoreError::Task(e.to_string()))?;
    let now = OffsetDateTime::now_utc();

    let mut r = Registry::with_prefix("portico");
    let connected = gauges(&mut r, "agents_connected", "Agents connected to the relay");
    connected.get_or_create(&Vec::new()).set(relay.len() as i64);

    let tunnels = gauges(&mut r, "tunnels", "Tunnels by state: online (agent connected), offline, disabled");
    let tunnel_up = gauges(&mut r, "tunnel_up", "1 when the tunnel's agent is connected and the tunnel enabled");
    for state in ["online", "offline", "disabled"] {
        tunnels.get_or_create(&labels(&[("state", state)])).set(0);
    }
    for (name, agent, enabled) in &snapshot.tunnels {
        let online = *enabled && relay.iter().any(|a| &a.label == agent);
        let state = match (enabled, online) {
            (false, _) => "disabled",
            (true, true) => "online",
            (true, false) => "offline",
        };
        tunnels.get_or_create(&labels(&[("state", state)])).inc();
        tunnel_up.get_or_create(&labels(&[("tunnel", name), ("agent", agent)])).set(online as i64);
    }

    let bytes_in = counters(&mut r, "relay_bytes_in", "Bytes relayed from visitors to the agent");
    let bytes_out = counters(&mut r, "relay_bytes_out", "Bytes relayed from the agent to visitors");
    let streams = gauges(&mut r, "relay_open_streams", "Streams open through the agent");
    for a in &relay {
        let l = labels(&[("agent", &a.label)]);
        bytes_in.get_or_create(&l).inc_by(a.bytes_in);
        bytes_out.get_or_create(&l).inc_by(a.bytes_out);
        streams.get_or_create(&l).set(clamp(a.open_streams));
    }
    let tunnel_in = counters(
        &mut r,
        "relay_tunnel_bytes_in",
        "Bytes relayed from visitors to a tunnel's app, since the relay started",
    );
    let tunnel_out = counters(
        &mut r,
        "relay_tunnel_bytes_out",
        "Bytes relayed from a tunnel's app to visitors, since the relay started",
    );
    let tunnel_streams = gauges(&mut r, "relay_tunnel_open_streams", "Streams open through a tunnel");

    let requests = counters(
        &mut r,
        "visitor_requests",
        "Visitor requests to a tunnel by status class, as nginx answered them (login redirects, denials and offline pages included)",
    );
    let site_requests = counters(&mut r, "site_requests", "Visitor requests to a static site by status class");
    for (name, _, _) in &snapshot.tunnels {
        for class in visitors::CLASSES {
            let _ = requests.get_or_create(&labels(&[("tunnel", name), ("class", class)]));
        }
    }
    for (kind, name, row) in &panel.visitors {
        let (family, key) = match kind {
            visitors::Kind::Tunnel => (&requests, "tunnel"),
            visitors::Kind::Site => (&site_requests, "site"),
        };
        for (class, n) in visitors::CLASSES.iter().zip(row) {
            family.get_or_create(&labels(&[(key, name), ("class", *class)])).inc_by(*n);
        }
    }

    let applies = counters(
        &mut r,
        "nginx_applies",
        "nginx configuration applies and rollbacks by outcome: ok, refused (nginx -t), error (reload or probe failed, previous config restored)",
    );
    for (outcome, n) in &panel.nginx_applies {
        applies.get_or_create(&labels(&[("outcome", *outcome)])).inc_by(*n);
    }
    let renewals = counters(
        &mut r,
        "acme_renewals",
        "ACME certificate issuances and renewals (renewal task and renew action) by outcome",
    );
    for (outcome, n) in &panel.acme_renewals {
        renewals.get_or_create(&labels(&[("outcome", *outcome)])).inc_by(*n);
    }

    let events = counters(
        &mut r,
        "events",
        "Audited events by action and outcome (authd logins, nginx applies, ACME renewals, backups, service actions), within the audit retention",
    );
    for (action, outcome, count) in &snapshot.audit_counts {
        events.get_or_create(&labels(&[("action", action), ("outcome", outcome)])).inc_by(*count);
    }

    // Counters other processes publish through the store (authd, relay).
    let decisions =
        counters(&mut r, "authd_decisions", "authd answers to nginx: allow, deny, login (redirect to the portal)");
    for d in ["allow", "deny", "login"] {
        let _ = decisions.get_or_create(&labels(&[("decision", d)]));
    }
    let login_failures = counters(
        &mut r,
        "authd_login_failures",
        "Visitor sign-ins the portal refused after a check (wrong credentials), by step: password, totp",
    );
    for step in ["password", "totp"] {
        let _ = login_failures.get_or_create(&labels(&[("step", step)]));
    }
    let bans = gauges(
        &mut r,
        "authd_bans_active",
        "Login bans in force (per user and client, per client, per user's TOTP step)",
    );
    bans.get_or_create(&Vec::new()).set(0);
    let refused = counters(
        &mut r,
        "authd_login_refused",
        "Sign-in attempts answered 429 before any password check: banned, or every check busy",
    );
    for (reason, step) in [("banned", "password"), ("banned", "totp"), ("busy", "password")] {
        let _ = refused.get_or_create(&labels(&[("reason", reason), ("step", step)]));
    }
    let password_checks =
        counters(&mut r, "authd_password_checks", "Password checks (bcrypt verifications) the login portal ran");
    let _ = password_checks.get_or_create(&Vec::new());
    for c in &snapshot.process_counters {
        let l: Labels = c
            .labels
            .split(',')
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        match c.name.as_str() {
            "authd_decisions" => {
                decisions.get_or_create(&l).inc_by(c.value);
            }
            "authd_login_failures" => {
                login_failures.get_or_create(&l).inc_by(c.value);
            }
            "authd_bans_active" => {
                bans.get_or_create(&l).set(clamp(c.value));
            }
            "authd_login_refused" => {
                refused.get_or_create(&l).inc_by(c.value);
            }
            "authd_password_checks" => {
                password_checks.get_or_create(&l).inc_by(c.value);
            }
            crate::relay::TUNNEL_BYTES_IN => {
                tunnel_in.get_or_create(&l).inc_by(c.value);
            }
            crate::relay::TUNNEL_BYTES_OUT => {
                tunnel_out.get_or_create(&l).inc_by(c.value);
            }
            crate::relay::TUNNEL_OPEN_STREAMS => {
                tunnel_streams.get_or_create(&l).set(clamp(c.value));
            }
            _ => {}
        }
    }

    let cert_days = gauges(&mut r, "certificate_days_left", "Days until a certificate expires");
    for (name, not_after) in &snapshot.client_certs {
        cert_days.get_or_create(&labels(&[("name", name), ("kind", "client")])).set(days_left(*not_after, now));
    }
    for (name, not_after) in &certs {
        cert_days.get_or_create(&labels(&[("name", name), ("kind", "acme")])).set(days_left(*not_after, now));
    }

    let up = gauges(&mut r, "service_up", "1 when the supervised service runs");
    let restarts = counters(&mut r, "service_restarts", "Exits of the service that s6 restarted");
    for s in &services {
        let l = labels(&[("service", &s.name)]);
        up.get_or_create(&l).set((s.state == "up") as i64);
        restarts.get_or_create(&l).inc_by(s.restarts);
    }

    let rss = gauges(&mut r, "process_resident_memory_bytes", "Resident memory of each Portico process");
    for p in &processes {
        rss.get_or_create(&labels(&[("role", &p.role), ("pid", &p.pid.to_string())])).set(clamp(p.rss_bytes));
    }

    if let Some(report) = &panel.health {
        let name_up = gauges(&mut r, "name_up", "1 when the public name serves visitors and resolves to the public IP");
        let serves = gauges(&mut r, "name_serves", "1 when TLS, HTTP through nginx and (tunnels) the relay answer");
        for n in &report.names {
            let kind = serde_json::to_value(n.kind).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default();
            let l = labels(&[("name", &n.name), ("kind", &kind)]);
            name_up.get_or_create(&l).set(n.up as i64);
            serves.get_or_create(&l).set(n.serves as i64);
        }
        let checked = gauges(&mut r, "names_checked_timestamp_seconds", "When the public names were last probed");
        checked.get_or_create(&Vec::new()).set(report.checked_at);
    }

    let mut out = String::new();
    encode(&mut out, &r).map_err(|e| StoreError::Task(format!("metrics encoding: {e}")))?;
    Ok(out)
}

/// The certificates nginx serves: `<data_dir>/acme/certs/<fqdn>/fullchain.pem`
/// (each a link to the live version), by name: (name, not after). Older
/// versions kept beside them are not reported.
fn acme_certificates(data_dir: &Path) -> Vec<(String, OffsetDateTime)> {
    let Ok(entries) = std::fs::read_dir(data_dir.join("acme/certs")) else { return Vec::new() };
    let mut out: Vec<(String, OffsetDateTime)> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let pem = std::fs::read(e.path().join("fullchain.pem")).ok()?;
            let name = e.file_name().to_str()?.replace("_wildcard", "*");
            Some((name, first_certificate_expiry(&pem)?))
        })
        .collect();
    out.sort();
    out
}

fn first_certificate_expiry(pem: &[u8]) -> Option<OffsetDateTime> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(pem).ok()?;
    if pem.label != "CERTIFICATE" {
        return None;
    }
    let cert = pem.parse_x509().ok()?;
    OffsetDateTime::from_unix_timestamp(cert.validity().not_after.timestamp()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_left_rounds_toward_zero() {
        let now = OffsetDateTime::UNIX_EPOCH + time::Duration::days(100);
        assert_eq!(days_left(now + time::Duration::hours(24 * 30 + 5), now), 30);
        assert_eq!(days_left(now - time::Duration::days(2), now), -2);
    }
}
