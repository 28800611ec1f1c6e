//! `portico healthcheck` (Docker's HEALTHCHECK): the panel answers
//! `/api/health`, the store opens, and in the appliance (`supervisor.kind:
//! s6`) the relay and authd accept connections. [`components`] is the same
//! check for `GET /api/health` seen by an admin.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::time::Duration;

use anyhow::{Context, bail};

use serde::Serialize;

use crate::settings::{Settings, SupervisorKind};

/// One component's health.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Component {
    pub name: &'static str,
    pub ok: bool,
    /// Why it is not ok.
    pub detail: Option<String>,
}

/// The local listeners of the sibling processes: (name, address).
pub fn sibling_listeners(settings: &Settings) -> [(&'static str, SocketAddr); 3] {
    [
        ("relay-agents", settings.relay.agents_listen),
        ("relay-visitors", settings.relay.visitors_listen),
        ("authd", settings.authd.listen),
    ]
}

fn loopback(mut addr: SocketAddr) -> SocketAddr {
    if addr.ip().is_unspecified() {
        addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), addr.port());
    }
    addr
}

/// Checks the sibling listeners and the store file. Blocking (connects with `timeout`).
pub fn components(settings: &Settings, timeout: Duration) -> Vec<Component> {
    let mut out: Vec<Component> = sibling_listeners(settings)
        .into_iter()
        .map(|(name, addr)| {
            let addr = loopback(addr);
            match TcpStream::connect_timeout(&addr, timeout) {
                Ok(_) => Component { name, ok: true, detail: None },
                Err(e) => Component { name, ok: false, detail: Some(format!("{addr}: {e}")) },
            }
        })
        .collect();
    let store = crate::store::Store::probe(&settings.db_path());
    out.push(Component { name: "store", ok: store.is_ok(), detail: store.err().map(|e| e.to_string()) });
    out
}

/// Connects to the panel listener (loopback when it listens on all
/// addresses) and expects `200` from `/api/health`.
pub fn run(settings: &Settings, timeout: Duration) -> anyhow::Result<()> {
    if settings.mode == crate::settings::Mode::Agent {
        // The agent-mode add-on runs no panel: its status page must answer.
        let addr = loopback(settings.ingress.listen);
        TcpStream::connect_timeout(&addr, timeout)
            .with_context(|| format!("agent status page not reachable on {addr}"))?;
        return Ok(());
    }
    check_panel(settings, timeout)?;
    for c in components(settings, timeout) {
        // Outside the appliance only the panel and the store must be there.
        let required = c.name == "store" || settings.supervisor.kind == SupervisorKind::S6;
        if required && !c.ok {
            bail!("{} is not healthy: {}", c.name, c.detail.unwrap_or_default());
        }
    }
    Ok(())
}

fn check_panel(settings: &Settings, timeout: Duration) -> anyhow::Result<()> {
    let addr = loopback(settings.panel.listen);
    let mut stream =
        TcpStream::connect_timeout(&addr, timeout).with_context(|| format!("panel not reachable on {addr}"))?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    stream.write_all(b"GET /api/health HTTP/1.0\r\nHost: localhost\r\nConnection: close\r\n\r\n")?;
    let mut head = [0u8; 64];
    let n = stream.read(&mut head).context("panel did not answer")?;
    let line = String::from_utf8_lossy(&head[..n]);
    let status = line.split_whitespace().nth(1).unwrap_or("");
    if status != "200" {
        bail!("panel answered {status:?} to /api/health");
    }
    Ok(())
}
