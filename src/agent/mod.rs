//! `portico agent`: keeps one outbound WebSocket to the relay and serves the
//! streams it opens by dialing local targets. It never listens on a port.

pub mod addon;
mod config;
mod enroll;
pub mod status_page;
pub mod tls;

use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_util::compat::FuturesAsyncReadCompatExt;

pub use config::{AgentConfig, AgentState, Status, default_dir};

use crate::protocol::{self, Handshake, OPEN_FORBIDDEN, OPEN_OK, OPEN_REFUSED, Open, Route, WsIo};

/// How long dialing the relay or a target may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a stream naming a target that is not (yet) one of this agent's
/// tunnels waits for a route update that adds it, before it is refused: the
/// relay sends the update as the tunnel appears, possibly just behind the
/// first visitor's stream.
const ROUTE_GRACE: Duration = Duration::from_secs(2);
/// Longest reason from a relay's HTTP refusal that is shown, bytes.
const MAX_REASON: usize = 512;

#[derive(Debug, thiserror::Error)]
pub enum AgentRunError {
    #[error("the relay refused this agent: {0}")]
    Refused(String),
    #[error("{0}")]
    Unsupported(String),
    #[error("connection: {0}")]
    Io(#[from] io::Error),
    #[error("websocket: {0}")]
    Ws(#[from] tokio_tungstenite::tungstenite::Error),
    #[error("the relay did not complete the handshake")]
    Handshake,
}

/// What `run` needs to connect.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// `ws://host:port/` (loopback relay, identity headers sent by the agent
    /// as nginx would) or `wss://tunnel.<domain>/`.
    pub relay: String,
    pub label: String,
    /// Certificate serial, uppercase hex.
    pub serial: String,
    /// Protocol version to announce; [`protocol::VERSION`] except in tests.
    pub version: u16,
    /// Where to write `status.json`; none in tests.
    pub status_dir: Option<PathBuf>,
    /// Client TLS (with the agent certificate) for `wss://`.
    pub tls: Option<std::sync::Arc<rustls::ClientConfig>>,
    /// Dial this address instead of resolving the relay URL's host; TLS
    /// name and `Host` still come from the URL (like curl's `--resolve`).
    pub connect_to: Option<std::net::SocketAddr>,
}

/// The wait before reconnect attempt `n` (0-based): ~250 ms for the first
/// five seconds of an outage, then doubling to a 5 s cap, with jitter of
/// up to half the wait. A session that completed its handshake resets `n`,
/// so a flapping relay never pushes the wait up.
pub fn backoff(n: u32) -> Duration {
    let base_ms: u64 = if n < 20 { 250 } else { (250u64 << (n - 19).min(5)).min(5_000) };
    let jittered = base_ms / 2 + rand::random_range(0..=base_ms / 2);
    Duration::from_millis(jittered)
}

/// Runs until `shutdown` turns true; reconnects on every failure except a
/// protocol version mismatch, which needs an upgrade.
pub async fn run(opts: RunOptions, mut shutdown: watch::Receiver<bool>) -> Result<(), AgentRunError> {
    let mut attempt = 0u32;
    let mut was_connected = false;
    loop {
        let result = tokio::select! {
            r = session(&opts, &mut attempt) => r,
            _ = shutdown.wait_for(|s| *s) => return Ok(()),
        };
        match &result {
            Ok(()) => tracing::info!(relay = %opts.relay, "relay closed the connection"),
            Err(AgentRunError::Refused(reason)) if reason.contains("version mismatch") => {
                tracing::error!(reason, "protocol version mismatch; upgrade portico");
                write_status(&opts, AgentState::Refused, Some(reason.clone()), Vec::new());
                return result;
            }
            Err(AgentRunError::Refused(reason)) => {
                tracing::error!(reason, "relay refused this agent");
                write_status(&opts, AgentState::Refused, Some(reason.clone()), Vec::new());
            }
            Err(e) if was_connected || attempt == 0 => tracing::warn!(error = %e, "relay connection lost"),
            Err(e) => tracing::debug!(error = %e, attempt, "relay still unreachable"),
        }
        if !matches!(result, Err(AgentRunError::Refused(_))) {
            write_status(&opts, AgentState::Reconnecting, result.err().map(|e| e.to_string()), Vec::new());
        }
        was_connected = attempt == 0;
        let wait = backoff(attempt);
        attempt = attempt.saturating_add(1);
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.wait_for(|s| *s) => return Ok(()),
        }
    }
}

fn write_status(opts: &RunOptions, state: AgentState, detail: Option<String>, tunnels: Vec<Route>) {
    if let Some(dir) = &opts.status_dir {
        let status =
            Status { state, relay: opts.relay.clone(), since: time::OffsetDateTime::now_utc(), detail, tunnels };
        if let Err(e) = status.write(dir) {
            tracing::warn!(error = %e, "writing status.json failed");
        }
    }
}

/// One connection to the relay, from dial to loss. Resets `attempt` once
/// the relay welcomed the agent.
async fn session(opts: &RunOptions, attempt: &mut u32) -> Result<(), AgentRunError> {
    let mut request = opts.relay.as_str().into_client_request()?;
    let uri = request.uri().clone();
    if !matches!(uri.scheme_str(), Some("ws" | "wss")) {
        return Err(AgentRunError::Unsupported(format!(
            "relay URL {} must be wss:// (or ws:// to a loopback relay)",
            opts.relay
        )));
    }
    let host = uri.host().unwrap_or("127.0.0.1").trim_matches(['[', ']']).to_string();
    let timed_out = || io::Error::new(io::ErrorKind::TimedOut, "connecting to the relay timed out");
    if uri.scheme_str() == Some("wss") {
        let Some(tls) = opts.tls.clone() else {
            return Err(AgentRunError::Unsupported("wss:// needs the agent certificate; enroll first".into()));
        };
        let port = uri.port_u16().unwrap_or(443);
        let stream = tokio::time::timeout(CONNECT_TIMEOUT, tls::connect(tls, &host, port, opts.connect_to))
            .await
            .map_err(|_| timed_out())??;
        let (ws, _) = tokio_tungstenite::client_async_with_config(request, stream, Some(protocol::ws_config()))
            .await
            .map_err(upgrade_error)?;
        return serve_ws(opts, ws, attempt).await;
    }
    let port = uri.port_u16().unwrap_or(80);
    // Plain ws:// reaches a loopback relay directly: send what nginx passes
    // after verifying the client certificate.
    let headers = request.headers_mut();
    headers.insert("x-ssl-client-verify", HeaderValue::from_static("SUCCESS"));
    let dn = format!("CN=agent:{},O=Portico", opts.label);
    headers.insert("x-ssl-client-dn", HeaderValue::from_str(&dn).map_err(|_| AgentRunError::Handshake)?);
    headers.insert("x-ssl-client-serial", HeaderValue::from_str(&opts.serial).map_err(|_| AgentRunError::Handshake)?);
    let dial = async {
        match opts.connect_to {
            Some(addr) => TcpStream::connect(addr).await,
            None => TcpStream::connect((host.as_str(), port)).await,
        }
    };
    let tcp = tokio::time::timeout(CONNECT_TIMEOUT, dial).await.map_err(|_| timed_out())??;
    tcp.set_nodelay(true)?;
    let (ws, _) = tokio_tungstenite::client_async_with_config(request, tcp, Some(protocol::ws_config()))
        .await
        .map_err(upgrade_error)?;
    serve_ws(opts, ws, attempt).await
}

/// A relay that refuses the upgrade (403) says why in the body: the agent
/// was revoked, is unknown, or its certificate is not trusted.
fn upgrade_error(e: tokio_tungstenite::tungstenite::Error) -> AgentRunError {
    match e {
        tokio_tungstenite::tungstenite::Error::Http(resp) if resp.status().as_u16() == 403 => {
            let body = resp.body().as_deref().unwrap_or_default();
            let reason = String::from_utf8_lossy(&body[..body.len().min(MAX_REASON)]).trim().to_string();
            AgentRunError::Refused(if reason.is_empty() { "the relay refused this agent".into() } else { reason })
        }
        e => AgentRunError::Ws(e),
    }
}

/// Handshake, then serve streams until the session ends.
async fn serve_ws<S>(
    opts: &RunOptions,
    mut ws: tokio_tungstenite::WebSocketStream<S>,
    attempt: &mut u32,
) -> Result<(), AgentRunError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    ws.send(Handshake::Hello { version: opts.version, label: opts.label.clone() }.to_message()).await?;
    let reply = tokio::time::timeout(CONNECT_TIMEOUT, ws.next()).await.map_err(|_| AgentRunError::Handshake)?;
    let tunnels = match reply.and_then(|m| m.ok()).as_ref().and_then(Handshake::from_message) {
        Some(Handshake::Welcome { version, tunnels }) if version == opts.version => tunnels,
        Some(Handshake::Welcome { version, .. }) => {
            return Err(AgentRunError::Refused(protocol::version_mismatch(opts.version, version)));
        }
        Some(Handshake::Refused { reason }) => return Err(AgentRunError::Refused(reason)),
        _ => return Err(AgentRunError::Handshake),
    };
    *attempt = 0;
    let started = Instant::now();
    tracing::info!(relay = %opts.relay, tunnels = tunnels.len(), "connected to relay");
    write_status(opts, AgentState::Connected, None, tunnels.clone());
    let conn = yamux::Connection::new(WsIo::new(ws), protocol::yamux_config(), yamux::Mode::Server);
    let (_open_tx, open_rx) = mpsc::channel(1);
    let routes = Arc::new(watch::Sender::new(tunnels));
    let status = Arc::new(opts.clone());
    let result = protocol::drive(conn, open_rx, |stream| {
        tokio::spawn(serve_stream(stream, routes.clone(), status.clone()));
    })
    .await;
    tracing::info!(after_ms = started.elapsed().as_millis() as u64, "relay session ended");
    result.map_err(|e| AgentRunError::Io(io::Error::other(e)))
}

/// Serves one stream: a route update, or a target to dial (only one of
/// this agent's tunnels), answer the status byte, relay bytes.
async fn serve_stream(stream: yamux::Stream, routes: Arc<watch::Sender<Vec<Route>>>, opts: Arc<RunOptions>) {
    let mut stream = stream.compat();
    let target = match protocol::read_open(&mut stream).await {
        Ok(Open::Target(target)) => target,
        Ok(Open::Routes(update)) => {
            tracing::info!(tunnels = update.len(), "tunnels changed");
            write_status(&opts, AgentState::Connected, None, update.clone());
            routes.send_replace(update);
            return;
        }
        Err(_) => return,
    };
    if !assigned(&routes, &target).await {
        tracing::warn!(%target, "refusing a target that is not one of this agent's tunnels");
        let _ = stream.write_all(&[OPEN_FORBIDDEN]).await;
        let _ = stream.shutdown().await;
        return;
    }
    let dialed = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(target.as_str())).await;
    let mut tcp = match dialed {
        Ok(Ok(tcp)) => tcp,
        Ok(Err(e)) => {
            tracing::debug!(%target, error = %e, "target refused");
            let _ = stream.write_all(&[OPEN_REFUSED]).await;
            let _ = stream.shutdown().await;
            return;
        }
        Err(_) => {
            tracing::debug!(%target, "target did not answer");
            let _ = stream.write_all(&[OPEN_REFUSED]).await;
            let _ = stream.shutdown().await;
            return;
        }
    };
    let _ = tcp.set_nodelay(true);
    if stream.write_all(&[OPEN_OK]).await.is_err() {
        return;
    }
    let _ = crate::pipe::copy_bidirectional(&mut stream, &mut tcp, protocol::HALF_CLOSE_TIMEOUT).await;
}

/// Whether `target` is the target of one of this agent's tunnels, waiting
/// up to [`ROUTE_GRACE`] for a route update that makes it one.
async fn assigned(routes: &watch::Sender<Vec<Route>>, target: &str) -> bool {
    let mut rx = routes.subscribe();
    tokio::time::timeout(ROUTE_GRACE, rx.wait_for(|r| r.iter().any(|t| t.target == target)))
        .await
        .is_ok_and(|r| r.is_ok())
}

/// Entry point of `portico agent …` (called by `main`).
pub fn command(config_dir: Option<PathBuf>, command: crate::cli::AgentCommand) -> anyhow::Result<()> {
    use anyhow::Context;
    let dir = config_dir.unwrap_or_else(default_dir);
    match command {
        crate::cli::AgentCommand::Status => {
            let status = Status::read(&dir).with_context(|| {
                format!("while reading {}; is the agent running?", dir.join("status.json").display())
            })?;
            print!("{}", status.describe());
            Ok(())
        }
        crate::cli::AgentCommand::Enroll { panel, token, fingerprint, relay } => {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            let cfg = rt.block_on(enroll::enroll(&dir, &panel, &token, fingerprint.as_deref(), relay))?;
            println!("enrolled as agent '{}'; files in {}; relay {}", cfg.label, dir.display(), cfg.relay);
            println!("next: portico agent run");
            Ok(())
        }
        crate::cli::AgentCommand::Run { relay } => {
            let cfg = AgentConfig::load(&dir)
                .with_context(|| format!("while reading {}; enroll first", dir.join("agent.json").display()))?;
            let relay = relay.unwrap_or(cfg.relay);
            let tls = if relay.starts_with("wss://") {
                Some(std::sync::Arc::new(tls::relay_config(&dir).context("while loading the agent certificate")?))
            } else {
                None
            };
            let opts = RunOptions {
                relay,
                tls,
                label: cfg.label,
                serial: cfg.serial,
                version: protocol::VERSION,
                status_dir: Some(dir),
                connect_to: None,
            };
            // One thread: the agent only moves bytes between sockets; this
            // saves the worker threads' stacks and malloc arenas.
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            rt.block_on(async move {
                let (tx, rx) = watch::channel(false);
                tokio::spawn(async move {
                    let _ = tokio::signal::ctrl_c().await;
                    let _ = tx.send(true);
                });
                run(opts, rx).await
            })?;
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests;
