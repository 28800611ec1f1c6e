//! The agent side of the relay. Everything that can refuse an agent without
//! its cooperation is decided from the HTTP upgrade request alone: the
//! identity nginx verified, the certificate's revocation and how many
//! connections of that agent are already being set up. A refused connection
//! gets a plain HTTP answer and is closed; nothing after its request head is
//! read. An accepted one is upgraded, its hello read under a message limit of
//! a few KiB, and then it carries one yamux session.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use time::OffsetDateTime;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{Semaphore, mpsc, oneshot, watch};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_util::compat::FuturesAsyncReadCompatExt;

use super::{Counters, Relay, Session};
use crate::identity::{CertSubject, cert_subject, common_name};
use crate::pki::normalize_serial;
use crate::protocol::{self, Handshake, OpenRequest, Route, WsIo};

/// How long an agent has to send its upgrade request, and then its hello.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest upgrade request head, bytes.
pub(crate) const MAX_UPGRADE_HEAD: usize = 8 * 1024;
/// How long a route update waits before it is tried again after a failure.
const ROUTES_RETRY: Duration = Duration::from_secs(1);

/// The parts of the upgrade request the relay uses.
#[derive(Debug, Default)]
pub(crate) struct Upgrade {
    /// Agent label and normalized certificate serial, when a trusted peer
    /// passed a verified agent certificate.
    pub(crate) who: Option<(String, String)>,
    /// `Sec-WebSocket-Key`, when the request is a WebSocket upgrade.
    pub(crate) key: Option<String>,
}

/// Reads the upgrade request head (at most [`MAX_UPGRADE_HEAD`] bytes).
/// Returns it parsed and whatever followed it; `Err` with the status to
/// answer, or `None` when the peer went away.
pub(crate) async fn read_upgrade<R: AsyncRead + Unpin>(
    tcp: &mut R,
    trusted: bool,
) -> Result<(Upgrade, Vec<u8>), Option<u16>> {
    let mut buf = Vec::with_capacity(1024);
    loop {
        let room = MAX_UPGRADE_HEAD.saturating_sub(buf.len()).min(2048);
        if room == 0 {
            return Err(Some(431));
        }
        let mut chunk = (&mut *tcp).take(room as u64);
        match chunk.read_buf(&mut buf).await {
            Ok(0) | Err(_) => return Err(None),
            Ok(_) => {}
        }
        let mut headers = [httparse::EMPTY_HEADER; 48];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(&buf) {
            Ok(httparse::Status::Complete(used)) => {
                let h = |n: &str| {
                    req.headers
                        .iter()
                        .find(|h| h.name.eq_ignore_ascii_case(n))
                        .and_then(|h| std::str::from_utf8(h.value).ok())
                };
                let upgrade = Upgrade {
                    who: identity(&h, trusted),
                    key: (req.method == Some("GET")
                        && h("upgrade").is_some_and(|u| u.eq_ignore_ascii_case("websocket"))
                        && h("sec-websocket-version") == Some("13"))
                    .then(|| h("sec-websocket-key").map(|k| k.trim().to_string()))
                    .flatten(),
                };
                return Ok((upgrade, buf[used..].to_vec()));
            }
            Ok(httparse::Status::Partial) => {}
            Err(_) => return Err(Some(400)),
        }
    }
}

/// The agent identity nginx passed, if the peer may pass one.
fn identity<'a>(h: &impl Fn(&str) -> Option<&'a str>, trusted: bool) -> Option<(String, String)> {
    if !trusted || h("x-ssl-client-verify") != Some("SUCCESS") {
        return None;
    }
    let cn = common_name(h("x-ssl-client-dn")?)?;
    match cert_subject(&cn)? {
        CertSubject::Agent(label) => Some((label, normalize_serial(h("x-ssl-client-serial")?))),
        CertSubject::Admin => None,
    }
}

/// Answers a request that is not upgraded, and closes the connection.
async fn answer(mut tcp: TcpStream, peer: SocketAddr, status: u16, reason: &str) {
    if status == 403 {
        tracing::warn!(%peer, reason, "agent refused");
    } else {
        tracing::debug!(%peer, status, reason, "agent connection refused");
    }
    let phrase = match status {
        400 => "Bad Request",
        403 => "Forbidden",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        _ => "Service Unavailable",
    };
    let out = format!(
        "HTTP/1.1 {status} {phrase}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{reason}",
        reason.len()
    );
    let _ = tokio::time::timeout(HELLO_TIMEOUT, tcp.write_all(out.as_bytes())).await;
    let _ = tcp.shutdown().await;
}

async fn refuse(ws: &mut WebSocketStream<TcpStream>, peer: SocketAddr, reason: String) {
    tracing::warn!(%peer, reason, "agent refused");
    let _ = ws.send(Handshake::Refused { reason }.to_message()).await;
    let _ = ws.close(None).await;
}

/// Counts one agent's connection between its request head and its session;
/// uncounted when dropped.
struct Pending {
    relay: Relay,
    label: String,
}

impl Drop for Pending {
    fn drop(&mut self) {
        let mut pending = self.relay.inner.pending.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = pending.get_mut(&self.label) {
            *n -= 1;
            if *n == 0 {
                pending.remove(&self.label);
            }
        }
    }
}

impl Relay {
    /// Counts a connection of `label` being set up, unless it already has
    /// as many as the limits allow.
    fn pending(&self, label: &str) -> Option<Pending> {
        let mut pending: std::sync::MutexGuard<'_, HashMap<String, usize>> =
            self.inner.pending.lock().unwrap_or_else(|e| e.into_inner());
        let n = pending.entry(label.to_string()).or_default();
        if *n >= self.inner.limits.pending_per_agent {
            return None;
        }
        *n += 1;
        Some(Pending { relay: self.clone(), label: label.to_string() })
    }

    pub(super) async fn agent_connection(self, mut tcp: TcpStream, peer: SocketAddr) {
        let trusted = self.inner.trusted.contains(&peer.ip());
        let (upgrade, rest) = match tokio::time::timeout(HELLO_TIMEOUT, read_upgrade(&mut tcp, trusted)).await {
            Ok(Ok(v)) => v,
            Ok(Err(Some(status))) => return answer(tcp, peer, status, "the upgrade request could not be read").await,
            Ok(Err(None)) | Err(_) => return,
        };
        let Some((label, serial)) = upgrade.who else {
            return answer(tcp, peer, 403, "a verified agent client certificate is required").await;
        };
        match self.admit(&label, &serial).await {
            Ok(Ok(())) => {}
            Ok(Err(reason)) => return answer(tcp, peer, 403, &format!("{reason}: agent '{label}'")).await,
            Err(e) => {
                tracing::error!(error = %e, "checking an agent failed");
                return answer(tcp, peer, 503, "the relay cannot check agents right now").await;
            }
        }
        let Some(key) = upgrade.key else {
            return answer(tcp, peer, 426, "a WebSocket upgrade is required").await;
        };
        let Some(_pending) = self.pending(&label) else {
            return answer(tcp, peer, 429, &format!("agent '{label}' is already connecting")).await;
        };
        let accept = format!(
            "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
             Sec-WebSocket-Accept: {}\r\n\r\n",
            derive_accept_key(key.as_bytes())
        );
        if tcp.write_all(accept.as_bytes()).await.is_err() {
            return;
        }
        let mut ws =
            WebSocketStream::from_partially_read(tcp, rest, Role::Server, Some(protocol::hello_ws_config())).await;
        let hello = match tokio::time::timeout(HELLO_TIMEOUT, ws.next()).await {
            Ok(Some(Ok(msg))) => Handshake::from_message(&msg),
            Ok(Some(Err(e))) => {
                tracing::debug!(%peer, error = %e, "reading the hello failed");
                None
            }
            _ => None,
        };
        let version = match hello {
            Some(Handshake::Hello { version, .. }) if version != protocol::VERSION => {
                return refuse(&mut ws, peer, protocol::version_mismatch(version, protocol::VERSION)).await;
            }
            Some(Handshake::Hello { version, label: claimed }) if claimed == label => version,
            Some(Handshake::Hello { .. }) => {
                return refuse(&mut ws, peer, "the hello names another agent than the certificate".into()).await;
            }
            _ => return refuse(&mut ws, peer, "expected a hello message".into()).await,
        };
        // The session's message limit from here on. A well-behaved agent
        // sends nothing between its hello and the welcome, so nothing the
        // handshake stream read ahead is lost.
        let mut ws = WebSocketStream::from_raw_socket(ws.into_inner(), Role::Server, Some(protocol::ws_config())).await;
        let tunnels = self.routes_of(&label);
        if ws
            .send(Handshake::Welcome { version: protocol::VERSION, tunnels: tunnels.clone() }.to_message())
            .await
            .is_err()
        {
            return;
        }
        self.run_session(ws, label, serial, peer, version, tunnels).await;
    }

    /// The tunnels agent `label` serves now, by name.
    pub(super) fn routes_of(&self, label: &str) -> Vec<Route> {
        let routes = self.inner.routes.read().unwrap_or_else(|e| e.into_inner());
        let mut v: Vec<Route> = routes
            .iter()
            .filter(|(_, r)| r.agent == label)
            .map(|(name, r)| Route { name: name.clone(), target: r.target.clone() })
            .collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    async fn run_session(
        self,
        ws: WebSocketStream<TcpStream>,
        label: String,
        serial: String,
        peer: SocketAddr,
        version: u16,
        tunnels: Vec<Route>,
    ) {
        let link = Arc::new(protocol::LinkStats::default());
        let since = OffsetDateTime::now_utc();
        let io = WsIo::new(ws).with_stats(link.clone());
        let conn = yamux::Connection::new(io, protocol::yamux_config(), yamux::Mode::Client);
        let (open_tx, open_rx) = mpsc::channel(protocol::MAX_STREAMS);
        let (kick_tx, mut kick_rx) = watch::channel(false);
        let (routes_tx, routes_rx) = watch::channel(tunnels);
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let pusher = tokio::spawn(push_routes(open_tx.clone(), routes_rx));
        let session = Session {
            id,
            serial,
            opener: open_tx,
            kick: kick_tx,
            since,
            remote: peer,
            version,
            counters: Arc::new(Counters::default()),
            streams: Arc::new(Semaphore::new(self.inner.limits.streams_per_agent)),
            routes: routes_tx,
            link: link.clone(),
        };
        // A new connection of a connected agent replaces the old session: it
        // is how an agent comes back after a link died before the relay
        // noticed. At most one session and `pending_per_agent` connections
        // being set up exist per agent.
        if let Some(old) = self.inner.sessions.lock().unwrap_or_else(|e| e.into_inner()).insert(label.clone(), session)
        {
            let _ = old.kick.send(true);
        }
        self.inner.status_dirty.send_modify(|v| *v += 1);
        tracing::info!(agent = %label, %peer, "agent connected");
        let result = tokio::select! {
            r = protocol::drive(conn, open_rx, drop) => r.map_err(|e| e.to_string()),
            _ = kick_rx.wait_for(|k| *k) => Err("replaced or revoked".to_string()),
        };
        pusher.abort();
        {
            let mut sessions = self.inner.sessions.lock().unwrap_or_else(|e| e.into_inner());
            if sessions.get(&label).is_some_and(|s| s.id == id) {
                sessions.remove(&label);
            }
        }
        self.inner.status_dirty.send_modify(|v| *v += 1);
        let rtt_ms = link.rtt().map(|d| (d.as_secs_f64() * 10_000.0).round() / 10.0);
        let last_contact = link.last_contact().unwrap_or(since);
        let contact = crate::store::AgentContact { label: label.clone(), last_contact, rtt_ms };
        if let Err(e) = self.inner.store.put_agent_contact(contact).await {
            tracing::warn!(agent = %label, error = %e, "recording the agent's last contact failed");
        }
        match result {
            Ok(()) => tracing::info!(agent = %label, "agent disconnected"),
            Err(reason) => tracing::info!(agent = %label, reason, "agent disconnected"),
        }
    }
}

/// Sends the agent its tunnels whenever they change (the agent dials only
/// targets of its own tunnels), the latest list first when several changes
/// came quickly.
async fn push_routes(opener: mpsc::Sender<OpenRequest>, mut routes: watch::Receiver<Vec<Route>>) {
    let mut failed = false;
    loop {
        if !failed && routes.changed().await.is_err() {
            return;
        }
        let update = protocol::encode_routes(&routes.borrow_and_update());
        let (tx, rx) = oneshot::channel();
        if opener.send(tx).await.is_err() {
            return;
        }
        failed = match rx.await {
            Ok(Ok(stream)) => {
                let mut stream = stream.compat();
                let sent = stream.write_all(&update).await.is_ok() && stream.shutdown().await.is_ok();
                !sent
            }
            _ => true,
        };
        if failed {
            tracing::debug!("sending a route update failed; trying again");
            tokio::time::sleep(ROUTES_RETRY).await;
        }
    }
}
