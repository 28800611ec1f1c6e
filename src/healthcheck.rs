//! `portico healthcheck`: asks the local panel for `/api/health`.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::time::Duration;

use anyhow::{Context, bail};

use crate::settings::Settings;

/// Connects to the panel listener (loopback when it listens on all
/// addresses) and expects `200` from `/api/health`.
pub fn run(settings: &Settings, timeout: Duration) -> anyhow::Result<()> {
    let mut addr = settings.panel.listen;
    if addr.ip().is_unspecified() {
        addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), addr.port());
    }
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
