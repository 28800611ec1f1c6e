//! The doctor's checks beyond the per-name probe: ports, clock, ACME,
//! agents, memory and disk, secret file modes, the agents' WebSocket path.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use time::OffsetDateTime;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{Finding, Level};
use crate::settings::Settings;
use crate::store::Store;

/// How long one connection attempt may take.
const CONNECT: Duration = Duration::from_secs(2);
/// The memory budget of the whole container, bytes.
pub const MEMORY_BUDGET: u64 = 512 * 1024 * 1024;

async fn connects(addr: SocketAddr) -> bool {
    matches!(tokio::time::timeout(CONNECT, TcpStream::connect(addr)).await, Ok(Ok(_)))
}

/// Ports 80, 443 and 9292 at the public IP, connected to from inside the
/// server. What the outside sees cannot be known without a third party:
/// a cloud firewall in front of the server, or a NAT that does not hairpin,
/// can differ, and the findings say so.
pub async fn ports(settings: &Settings, public_ip: Option<IpAddr>) -> Vec<Finding> {
    let n = &settings.nginx;
    let mut out = Vec::new();
    for (port, what) in
        [(n.http_port, "HTTP (ACME challenges)"), (n.https_port, "HTTPS"), (n.admin_port, "admin panel")]
    {
        let subject = format!("port {port}");
        let local = match n.bind {
            ip if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            ip => ip,
        };
        if !connects(SocketAddr::new(local, port)).await {
            out.push(
                Finding::new(
                    "ports",
                    subject,
                    Level::Fail,
                    format!("nginx does not accept {what} connections on port {port}"),
                )
                .next(
                    "restart nginx under Services; if it will not start, the nginx page shows the live configuration",
                ),
            );
            continue;
        }
        let Some(ip) = public_ip else {
            out.push(
                Finding::new("ports", subject, Level::Warn, format!("nginx listens on port {port}; the public IP is unknown, so reachability from outside was not tried"))
                    .next("set public_ip in the configuration"),
            );
            continue;
        };
        if connects(SocketAddr::new(ip, port)).await {
            out.push(Finding::new(
                "ports",
                subject,
                Level::Ok,
                format!(
                    "{ip}:{port} accepts connections when tried from inside the server; a cloud firewall in front of \
                     the server is not seen from here, so also try `curl -kI https://{ip}:{port}` from another network"
                ),
            ));
        } else {
            out.push(
                Finding::new(
                    "ports",
                    subject,
                    Level::Warn,
                    format!(
                        "nginx listens, but {ip}:{port} does not answer from inside the server; this is normal behind a \
                         NAT without hairpinning, so it says nothing certain about the outside"
                    ),
                )
                .next(format!("from another network run `curl -kI https://{ip}:{port}`; open port {port} in the firewall if it fails")),
            );
        }
    }
    out
}

/// Clock skew against the `Date` header of the ACME server (the one clock
/// this appliance already talks to). ACME, certificates and two-factor codes
/// all need a clock within seconds.
pub async fn clock(settings: &Settings) -> Finding {
    let url = settings.acme.directory.clone();
    let started = OffsetDateTime::now_utc();
    let sent = Instant::now();
    match tokio::time::timeout(Duration::from_secs(4), date_header(&url)).await {
        Ok(Ok(date)) => {
            let midpoint = started + sent.elapsed() / 2;
            let skew = (midpoint - date).whole_seconds();
            // The header has one-second resolution.
            let summary = format!(
                "the clock is {} s {} the ACME server's",
                skew.abs(),
                if skew >= 0 { "ahead of" } else { "behind" }
            );
            match skew.abs() {
                0..=5 => Finding::new("clock", "system clock", Level::Ok, summary),
                6..=29 => Finding::new("clock", "system clock", Level::Warn, summary)
                    .next("enable time synchronisation (NTP, e.g. systemd-timesyncd) on the host"),
                _ => Finding::new("clock", "system clock", Level::Fail, summary).next(
                    "set the host's clock with NTP (e.g. `timedatectl set-ntp true`); two-factor codes and certificates fail with a wrong clock",
                ),
            }
        }
        Ok(Err(why)) => Finding::new(
            "clock",
            "system clock",
            Level::Warn,
            format!("the clock could not be compared: the ACME server did not answer ({why})"),
        )
        .next("check outbound HTTPS from the server; compare `date -u` with a trusted clock by hand"),
        Err(_) => Finding::new(
            "clock",
            "system clock",
            Level::Warn,
            "the clock could not be compared: the ACME server did not answer in time",
        )
        .next("check outbound HTTPS from the server; compare `date -u` with a trusted clock by hand"),
    }
}

/// `HEAD`s `url` and parses its `Date` header. Only the date is used, so the
/// server's certificate is not judged here.
async fn date_header(url: &str) -> Result<OffsetDateTime, String> {
    let (tls, rest) = if let Some(r) = url.strip_prefix("https://") {
        (true, r)
    } else if let Some(r) = url.strip_prefix("http://") {
        (false, r)
    } else {
        return Err("acme.directory is not an http(s) URL".into());
    };
    let (authority, path) = rest.split_once('/').map_or((rest, "/".to_string()), |(a, p)| (a, format!("/{p}")));
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if p.parse::<u16>().is_ok() => (h.to_string(), p.parse::<u16>().unwrap_or(443)),
        _ => (authority.to_string(), if tls { 443 } else { 80 }),
    };
    let tcp = TcpStream::connect((host.as_str(), port)).await.map_err(|e| format!("cannot connect: {e}"))?;
    let req =
        format!("HEAD {path} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: portico-doctor\r\nConnection: close\r\n\r\n");
    let mut buf = Vec::new();
    if tls {
        let name = rustls::pki_types::ServerName::try_from(host.clone()).map_err(|_| "bad host name".to_string())?;
        let mut s = tokio_rustls::TlsConnector::from(crate::probe::recording_config())
            .connect(name, tcp)
            .await
            .map_err(|e| format!("TLS: {e}"))?;
        s.write_all(req.as_bytes()).await.map_err(|e| e.to_string())?;
        let _ = s.take(8192).read_to_end(&mut buf).await;
    } else {
        let mut s = tcp;
        s.write_all(req.as_bytes()).await.map_err(|e| e.to_string())?;
        let _ = s.take(8192).read_to_end(&mut buf).await;
    }
    let text = String::from_utf8_lossy(&buf);
    let value = text
        .lines()
        .find_map(|l| {
            l.split_once(':').filter(|(k, _)| k.eq_ignore_ascii_case("date")).map(|(_, v)| v.trim().to_string())
        })
        .ok_or_else(|| "no Date header".to_string())?;
    parse_http_date(&value).ok_or_else(|| format!("unreadable Date header {value:?}"))
}

/// `Sun, 06 Nov 1994 08:49:37 GMT`.
pub fn parse_http_date(s: &str) -> Option<OffsetDateTime> {
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    time::PrimitiveDateTime::parse(s, &format).ok().map(|t| t.assume_utc())
}

/// The ACME account and the renewal task's last outcome, and names whose
/// automatic issuance keeps failing.
pub async fn acme(settings: &Settings, store: &Store) -> Vec<Finding> {
    let mut out = Vec::new();
    let account = settings.data_dir.join("acme/account.json");
    out.push(if account.is_file() {
        Finding::new(
            "acme",
            "account",
            Level::Ok,
            format!("an ACME account is registered with {}", settings.acme.directory),
        )
    } else {
        Finding::new("acme", "account", Level::Warn, "no ACME account yet; it is registered with the first certificate")
            .next("finish onboarding, or issue a certificate under Certificates")
    });
    match store.last_acme_run().await {
        Ok(None) => out.push(
            Finding::new("acme", "renewal", Level::Warn, "the renewal check has not run yet")
                .next("nothing to do: it runs on its schedule (acme.renew_schedule) once onboarding is complete"),
        ),
        Ok(Some(run)) => {
            let when = run.finished_at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
            let summary = format!(
                "last renewal check {when}: {} ({} renewed, {} failed) {}",
                run.result, run.renewed, run.failed, run.message
            );
            out.push(if run.failed == 0 {
                Finding::new("acme", "renewal", Level::Ok, summary)
            } else {
                Finding::new("acme", "renewal", Level::Fail, summary)
                    .next("see the failing names below; most failures are DNS not pointing here or port 80 closed")
            });
        }
        Err(e) => {
            out.push(Finding::new("acme", "renewal", Level::Warn, format!("cannot read the renewal history: {e}")))
        }
    }
    if let Ok(failing) = store.certificate_failures().await {
        for f in failing {
            let retry = f.retry_at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
            out.push(
                Finding::new(
                    "acme",
                    &f.name,
                    Level::Fail,
                    format!("{} failed attempts; last: {}", f.failures, f.last_error),
                )
                .next(format!(
                    "fix the cause above; the next automatic attempt is at {retry}, or renew now under Certificates"
                )),
            );
        }
    }
    out
}

/// A round trip above this makes every visitor request slow, milliseconds.
const SLOW_RTT_MS: f64 = 500.0;
/// The relay writes a connected agent's last contact at least this often
/// (its `LINK_EVERY` plus slack); older means the relay's status is stale.
const STALE_CONTACT_SECS: i64 = 90;

/// "3 s ago", "4 min ago", "2 h ago", "5 days ago".
fn ago(then: OffsetDateTime, now: OffsetDateTime) -> String {
    let s = (now - then).whole_seconds().max(0);
    match s {
        0..120 => format!("{s} s ago"),
        120..7200 => format!("{} min ago", s / 60),
        7200..172_800 => format!("{} h ago", s / 3600),
        _ => format!("{} days ago", s / 86_400),
    }
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

/// Each agent: connected (since when, from where), the round trip of the
/// relay's WebSocket ping through nginx to it and back, its last contact,
/// and the time of one request through it to one of its tunnels' targets
/// (all agents at once, so a run stays short). Offline agents with tunnels
/// are problems; a slow link or a stale status is worth a look.
pub async fn agents(store: &Store, relay: SocketAddr, domain: Option<&str>) -> Vec<Finding> {
    let (Ok(agents), Ok(status), Ok(tunnels), Ok(contacts)) =
        (store.agents().await, store.relay_status().await, store.tunnels().await, store.agent_contacts().await)
    else {
        return vec![
            Finding::new("agent", "store", Level::Warn, "cannot read the agents")
                .next("check that the data directory is readable and the disk not full"),
        ];
    };
    let now = OffsetDateTime::now_utc();
    let checks = agents.iter().filter(|a| a.revoked_at.is_none()).map(|a| {
        let theirs: Vec<&crate::store::Tunnel> = tunnels.iter().filter(|t| t.agent == a.label && t.enabled).collect();
        let online = status.iter().find(|s| s.label == a.label);
        let contact = contacts.iter().find(|c| c.label == a.label);
        async move {
            let Some(s) = online else { return offline(&a.label, &theirs, contact, now) };
            let mut summary = format!("connected since {} from {}", rfc3339(s.connected_since), s.remote_addr);
            match s.rtt_ms {
                Some(ms) => {
                    summary.push_str(&format!("; round trip {ms:.1} ms (WebSocket ping, relay → nginx → agent → back)"))
                }
                None => summary.push_str("; no round trip measured yet"),
            }
            let last = s.last_contact.or(contact.map(|c| c.last_contact));
            if let Some(t) = last {
                summary.push_str(&format!("; last heard {}", ago(t, now)));
            }
            if let (Some(t), Some(d)) = (theirs.first(), domain) {
                let started = Instant::now();
                let name = format!("{}.{d}", t.name);
                let r = tokio::time::timeout(Duration::from_secs(2), crate::probe::relay_request(relay, &name)).await;
                if let Ok(crate::probe::Relay::Answered(_)) = r {
                    let ms = started.elapsed().as_millis();
                    summary.push_str(&format!(
                        "; a request through it to {} took {ms} ms (relay → agent → app → back)",
                        t.name
                    ));
                }
            }
            if let Some(ms) = s.rtt_ms.filter(|ms| *ms > SLOW_RTT_MS) {
                return Finding::new("agent", &a.label, Level::Warn, summary).next(format!(
                    "the link to the home machine takes {ms:.0} ms per round trip, so every visitor request waits at \
                     least that long: check the home machine's uplink (a saturated upload or weak Wi-Fi)"
                ));
            }
            if let Some(t) = last.filter(|t| (now - *t).whole_seconds() > STALE_CONTACT_SECS) {
                return Finding::new("agent", &a.label, Level::Warn, summary).next(format!(
                    "the relay's status has not been updated since {}: restart the relay under Services",
                    rfc3339(t)
                ));
            }
            Finding::new("agent", &a.label, Level::Ok, summary)
        }
    });
    futures_util::future::join_all(checks).await
}

/// An agent the relay does not list as connected.
fn offline(
    label: &str,
    theirs: &[&crate::store::Tunnel],
    contact: Option<&crate::store::AgentContact>,
    now: OffsetDateTime,
) -> Finding {
    let last = match contact {
        Some(c) => {
            let rtt = c.rtt_ms.map(|ms| format!(", round trip then {ms:.1} ms")).unwrap_or_default();
            format!("last contact {} ({}{rtt})", rfc3339(c.last_contact), ago(c.last_contact, now))
        }
        None => "it has never connected".to_string(),
    };
    if theirs.is_empty() {
        return Finding::new("agent", label, Level::Ok, format!("not connected; it serves no enabled tunnel; {last}"));
    }
    let names: Vec<&str> = theirs.iter().map(|t| t.name.as_str()).collect();
    let down = crate::wording::count(theirs.len(), "tunnel is", "tunnels are");
    let summary = format!("not connected; {last}; {down} down: {}", names.join(", "));
    let next = if contact.is_some() {
        "on the home machine run `portico agent status` (it shows the last error), then start it with \
         `portico agent run` (or its service); if it runs, check that the home machine reaches tunnel.<domain> on port 443"
    } else {
        "enroll the agent on the home machine with the command under Tunnels → the tunnel's agent setup, then \
         start it with `portico agent run`"
    };
    Finding::new("agent", label, Level::Fail, summary).next(next)
}

/// Memory against the 512 MB budget and disk space of the data directory.
pub async fn resources(settings: &Settings) -> Vec<Finding> {
    let data = settings.data_dir.clone();
    let Ok(stats) = tokio::task::spawn_blocking(move || crate::sysstats::StatsCache::new(data).get()).await else {
        return vec![Finding::new("memory", "system", Level::Warn, "cannot read system statistics")];
    };
    let mb = |b: u64| b / (1024 * 1024);
    let mut out = Vec::new();
    let m = &stats.memory;
    let ours: u64 = stats.processes.iter().map(|p| p.rss_bytes).sum();
    // In a container with a limit: its usage against it. Elsewhere the
    // machine's use says nothing about the appliance: Portico's own
    // processes against the 512 MB budget.
    let (used, limit, of) = match (m.cgroup_usage_bytes, m.cgroup_limit_bytes) {
        (Some(used), Some(limit)) => (used, limit, "the container's limit"),
        _ => (ours, MEMORY_BUDGET, "the 512 MB budget (Portico's processes; no container limit is set)"),
    };
    let headroom = limit.saturating_sub(used);
    let summary = format!(
        "{} MB used of {} MB, {of} ({} MB headroom); Portico's processes hold {} MB",
        mb(used),
        mb(limit),
        mb(headroom),
        mb(ours)
    );
    out.push(match headroom {
        h if h < 64 * 1024 * 1024 => Finding::new("memory", "memory", Level::Fail, summary)
            .next("lower the load (fewer open visitor connections) or give the container more memory; the dashboard shows which process grew"),
        h if h < 128 * 1024 * 1024 => Finding::new("memory", "memory", Level::Warn, summary)
            .next("watch the dashboard's memory graph; the appliance is built for 512 MB"),
        _ => Finding::new("memory", "memory", Level::Ok, summary),
    });
    if let Some(d) = &stats.disk {
        let summary = format!("{} MB free of {} MB on {}", mb(d.available_bytes), mb(d.total_bytes), d.path);
        out.push(match d.available_bytes {
            a if a < 200 * 1024 * 1024 => Finding::new("disk", &d.path, Level::Fail, summary)
                .next("free space: delete old backups under Backups and large site files; the store and certificates need room to write"),
            a if a < 1024 * 1024 * 1024 => Finding::new("disk", &d.path, Level::Warn, summary)
                .next("keep an eye on backups and site files"),
            _ => Finding::new("disk", &d.path, Level::Ok, summary),
        });
    }
    out
}

/// Secret files and directories must not be readable by others (the same
/// places `portico init` and the panel's start tighten).
pub async fn secrets(settings: &Settings) -> Vec<Finding> {
    let places = crate::init::secret_places(settings);
    let bad: Vec<String> = places
        .iter()
        .filter_map(|(path, mask)| {
            let meta = std::fs::symlink_metadata(path).ok()?;
            if meta.file_type().is_symlink() {
                return None;
            }
            let mode = meta.permissions().mode() & 0o7777;
            (mode & !mask != 0).then(|| format!("{} is {mode:04o} (at most {mask:04o})", path.display()))
        })
        .collect();
    if bad.is_empty() {
        return vec![Finding::new(
            "secrets",
            "file modes",
            Level::Ok,
            format!("{} secret files and directories are private", places.len()),
        )];
    }
    bad.into_iter()
        .map(|b| {
            Finding::new("secrets", "file modes", Level::Fail, b)
                .next("restart the panel (it tightens these at start) or run `chmod go-rwx` on the file")
        })
        .collect()
}

/// A WebSocket upgrade to `tunnel.<domain>` through nginx, as an agent
/// makes it but without an agent certificate: nginx must pass it to the
/// relay, which must refuse it. A 101 would mean the relay accepts
/// anonymous agents; a 404 or 5xx that the path is broken.
pub async fn websocket(settings: &Settings, domain: &str) -> Finding {
    let name = format!("tunnel.{domain}");
    let cfg = crate::probe::Config::from_settings(settings, None);
    let req = format!(
        "GET / HTTP/1.1\r\nHost: {name}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: cG9ydGljby1kb2N0b3IxMg==\r\nUser-Agent: portico-doctor\r\n\r\n"
    );
    match tokio::time::timeout(Duration::from_secs(3), crate::probe::raw_tls_request(cfg.https, &name, &req)).await {
        Ok(Ok(status @ (400 | 401 | 403 | 426))) => Finding::new(
            "websocket",
            &name,
            Level::Ok,
            format!(
                "nginx passes the upgrade to the relay, which refused it without an agent certificate (HTTP {status}), as it should"
            ),
        ),
        Ok(Ok(101)) => {
            Finding::new("websocket", &name, Level::Fail, "the relay accepted a WebSocket without an agent certificate")
                .next("check the relay service and the tunnel vhost on the nginx page")
        }
        Ok(Ok(status)) => Finding::new(
            "websocket",
            &name,
            Level::Fail,
            format!("the upgrade got HTTP {status}; agents cannot connect"),
        )
        .next("check the relay service under Services and the tunnel.<domain> certificate"),
        Ok(Err(e)) => Finding::new("websocket", &name, Level::Fail, e)
            .next("check nginx under Services and the tunnel.<domain> certificate"),
        Err(_) => Finding::new("websocket", &name, Level::Fail, "no answer within 3 s")
            .next("check the relay service under Services"),
    }
}
