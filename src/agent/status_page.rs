//! The agent-mode add-on's ingress page: a read-only view of the agent's
//! enrollment, connection state and tunnels, with a link to the panel. It
//! answers only the Supervisor's ingress proxy (`ingress.trusted_peers`).
//!
//! For each tunnel it also sends the target one request with the headers the
//! relay's nginx adds (`X-Forwarded-For`, `X-Forwarded-Proto`): Home
//! Assistant answers such a request with 400 unless its `http` configuration
//! trusts this add-on as a reverse proxy, and the page then says exactly
//! which address to add to `trusted_proxies`.

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use super::config::{AgentConfig, AgentState, Status};

/// How long one request to the page, or one check of a target, may take.
const IO_TIMEOUT: Duration = Duration::from_secs(3);
/// Largest request head the page reads, bytes.
const MAX_HEAD: usize = 8 * 1024;

/// Where the add-on is before the agent's own `status.json` takes over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    Starting,
    /// `agent.panel_url` or `agent.token` is missing.
    NotConfigured,
    Enrolling,
    /// The last attempt failed with this reason; retried.
    EnrollFailed(String),
    Enrolled,
}

/// What the page shows; shared with the enrollment loop.
#[derive(Debug)]
pub struct Page {
    /// The agent's config dir (`agent.json`, `status.json`).
    pub dir: PathBuf,
    pub trusted_peers: Vec<IpAddr>,
    /// From the options; `agent.json`'s panel once enrolled.
    pub panel_url: Option<String>,
    pub phase: Mutex<Phase>,
}

impl Page {
    pub fn set_phase(&self, phase: Phase) {
        if let Ok(mut p) = self.phase.lock() {
            *p = phase;
        }
    }

    fn phase(&self) -> Phase {
        self.phase.lock().map(|p| p.clone()).unwrap_or(Phase::Starting)
    }

    fn trusts(&self, peer: IpAddr) -> bool {
        let peer = peer.to_canonical();
        self.trusted_peers.iter().any(|ip| ip.to_canonical() == peer)
    }
}

/// Accepts page requests until `shutdown` turns true.
pub async fn serve(listener: TcpListener, page: Arc<Page>, mut shutdown: watch::Receiver<bool>) {
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.wait_for(|s| *s) => return,
        };
        match accepted {
            Ok((stream, peer)) => {
                let page = page.clone();
                tokio::spawn(async move {
                    let _ = tokio::time::timeout(IO_TIMEOUT * 3, answer(stream, peer, &page)).await;
                });
            }
            Err(e) => tracing::debug!(error = %e, "status page accept failed"),
        }
    }
}

async fn answer(mut stream: TcpStream, peer: SocketAddr, page: &Page) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tokio::time::timeout(IO_TIMEOUT, stream.read(&mut buf)).await.map_err(|_| timed_out())??;
        if n == 0 || head.len() + n > MAX_HEAD {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
    }
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut req = httparse::Request::new(&mut headers);
    let (status, body) = match req.parse(&head) {
        Ok(_) if !page.trusts(peer.ip()) => {
            tracing::debug!(%peer, "status page refused a peer that is not the ingress proxy");
            (403, simple("Forbidden", "This page is only served through Home Assistant's ingress."))
        }
        Ok(_) if req.method != Some("GET") && req.method != Some("HEAD") => {
            (405, simple("Method not allowed", "This page is read-only."))
        }
        Ok(_) if req.path.is_some_and(|p| p == "/" || p.starts_with("/?")) => (200, render(page).await),
        Ok(_) => (404, simple("Not found", "There is only one page here.")),
        Err(_) => (400, simple("Bad request", "The request could not be read.")),
    };
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        _ => "Method Not Allowed",
    };
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    if req.method != Some("HEAD") {
        stream.write_all(body.as_bytes()).await?;
    }
    stream.shutdown().await
}

fn timed_out() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::TimedOut, "timed out")
}

/// Escapes text for HTML element content and quoted attributes.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font:15px/1.5 system-ui,sans-serif;margin:2rem;color:#1b1f24;max-width:46rem}\
h1{font-size:1.4rem;color:#2557d6}table{border-collapse:collapse}td,th{padding:.3rem .8rem .3rem 0;text-align:left}\
.state{font-weight:600}.ok{color:#15803d}.bad{color:#b91c1c}.warn{background:#fff7e6;border:1px solid #f0b429;\
padding:.6rem .8rem;border-radius:6px;margin:.6rem 0}code,pre{background:#f3f4f6;padding:.1rem .3rem;border-radius:4px}";

fn simple(title: &str, text: &str) -> String {
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{t}</title><style>{STYLE}</style></head>\
         <body><h1>{t}</h1><p>{x}</p></body></html>",
        t = esc(title),
        x = esc(text)
    )
}

/// The page: enrollment phase or connection state, tunnels, target checks.
pub async fn render(page: &Page) -> String {
    let cfg = AgentConfig::load(&page.dir).ok();
    let status = Status::read(&page.dir).ok();
    let panel = cfg.as_ref().map(|c| c.panel.clone()).or_else(|| page.panel_url.clone());
    let mut h = String::new();
    let _ = write!(
        h,
        "<!doctype html><html><head><meta charset=\"utf-8\"><meta http-equiv=\"refresh\" content=\"10\">\
         <title>Portico agent</title><style>{STYLE}</style></head><body><h1>Portico agent</h1>"
    );
    match (&cfg, &status, page.phase()) {
        (_, Some(s), _) => {
            let (class, word) = match s.state {
                AgentState::Connected => ("ok", "connected"),
                AgentState::Reconnecting => ("bad", "reconnecting"),
                AgentState::Refused => ("bad", "refused by the relay"),
            };
            let _ = write!(
                h,
                "<p>State: <span class=\"state {class}\" id=\"state\">{word}</span> since {since}</p>",
                since = esc(&s.since.to_string())
            );
            if let Some(c) = &cfg {
                let _ = write!(h, "<p>Agent <code>{}</code>, relay <code>{}</code></p>", esc(&c.label), esc(&s.relay));
            }
            if let Some(d) = &s.detail {
                let _ = write!(h, "<p class=\"bad\">{}</p>", esc(d));
            }
        }
        (Some(c), None, _) => {
            let _ = write!(
                h,
                "<p>State: <span class=\"state\" id=\"state\">enrolled, connecting</span></p>\
                 <p>Agent <code>{}</code>, relay <code>{}</code></p>",
                esc(&c.label),
                esc(&c.relay)
            );
        }
        (None, None, phase) => {
            let (word, more) = match phase {
                Phase::NotConfigured => (
                    "not configured",
                    "Set <b>Panel URL</b> and <b>Enrollment token</b> on this add-on's <b>Configuration</b> tab \
                     (the token comes from the panel: Agents → Enroll an agent), save, and restart the add-on."
                        .to_string(),
                ),
                Phase::EnrollFailed(reason) => (
                    "enrollment failed",
                    format!(
                        "{}<br>Tried again every 30 seconds; a used or expired token needs a new one.",
                        esc(&reason)
                    ),
                ),
                Phase::Enrolling | Phase::Enrolled => ("enrolling", String::new()),
                Phase::Starting => ("starting", String::new()),
            };
            let _ = write!(h, "<p>State: <span class=\"state bad\" id=\"state\">{word}</span></p><p>{more}</p>");
        }
    }
    let tunnels = status.as_ref().map(|s| s.tunnels.clone()).unwrap_or_default();
    if tunnels.is_empty() {
        h.push_str("<p>No tunnels are served by this agent yet. Create one in the panel with this agent and a target such as <code>homeassistant:8123</code>.</p>");
    } else {
        h.push_str("<h2>Tunnels</h2><table><tr><th>Name</th><th>Target</th><th>Check</th></tr>");
        let checks = futures_util::future::join_all(tunnels.iter().map(|t| check_target(&t.target))).await;
        let mut warnings = String::new();
        for (t, check) in tunnels.iter().zip(checks) {
            let verdict = match &check {
                Check::Answered(code) => format!("<span class=\"ok\">answers ({code})</span>"),
                Check::RefusesForwarded { .. } => "<span class=\"bad\">refuses forwarded requests (400)</span>".into(),
                Check::Unreachable(e) => format!("<span class=\"bad\">unreachable: {}</span>", esc(e)),
            };
            let _ = write!(
                h,
                "<tr><td>{}</td><td><code>{}</code></td><td>{verdict}</td></tr>",
                esc(&t.name),
                esc(&t.target)
            );
            if let Check::RefusesForwarded { via } = check {
                let _ = write!(
                    warnings,
                    "<div class=\"warn\" id=\"trusted-proxies\"><b>{target}</b> answered <b>400 Bad Request</b> to a \
                     request carrying <code>X-Forwarded-For</code>, as Home Assistant does when it does not trust the \
                     proxy. Add this to Home Assistant's <code>configuration.yaml</code> and restart it:\
                     <pre>http:\n  use_x_forwarded_for: true\n  trusted_proxies:\n    - {via}</pre>\
                     ({via} is this add-on's address as the target sees it.)</div>",
                    target = esc(&t.target),
                    via = esc(&via.to_string()),
                );
            }
        }
        h.push_str("</table>");
        h.push_str(&warnings);
    }
    if let Some(p) = panel {
        let _ = write!(
            h,
            "<p>Tunnels, users and access are managed in the panel: <a href=\"{u}\" target=\"_blank\" rel=\"noopener\">{u}</a></p>",
            u = esc(&p)
        );
    }
    h.push_str("</body></html>");
    h
}

/// What a target said to a forwarded request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// Any status but 400.
    Answered(u16),
    /// 400: not trusting this proxy. `via` is the address it saw.
    RefusesForwarded {
        via: IpAddr,
    },
    Unreachable(String),
}

/// Sends `GET /` with the headers the relay's nginx adds and reads the status.
pub async fn check_target(target: &str) -> Check {
    let attempt = async {
        let mut tcp = TcpStream::connect(target).await?;
        let via = tcp.local_addr()?.ip().to_canonical();
        let host = target.split(':').next().unwrap_or(target);
        let req = format!(
            "GET / HTTP/1.1\r\nHost: {host}\r\nX-Forwarded-For: 192.0.2.10\r\nX-Forwarded-Proto: https\r\n\
             X-Forwarded-Host: {host}\r\nUser-Agent: portico-agent-check\r\nConnection: close\r\n\r\n"
        );
        tcp.write_all(req.as_bytes()).await?;
        let mut line = Vec::new();
        let mut buf = [0u8; 256];
        while !line.contains(&b'\n') && line.len() < 1024 {
            let n = tcp.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            line.extend_from_slice(&buf[..n]);
        }
        let text = String::from_utf8_lossy(&line);
        let code = text.split_whitespace().nth(1).and_then(|c| c.parse::<u16>().ok());
        Ok::<_, std::io::Error>((code, via))
    };
    match tokio::time::timeout(IO_TIMEOUT, attempt).await {
        Ok(Ok((Some(400), via))) => Check::RefusesForwarded { via },
        Ok(Ok((Some(code), _))) => Check::Answered(code),
        Ok(Ok((None, _))) => Check::Unreachable("no HTTP answer".into()),
        Ok(Err(e)) => Check::Unreachable(e.kind().to_string()),
        Err(_) => Check::Unreachable("timed out".into()),
    }
}

#[cfg(test)]
mod tests;
