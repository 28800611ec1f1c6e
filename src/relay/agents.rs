//! The agent side of the relay: WebSocket upgrade with the identity nginx
//! verified, the versioned handshake, then one yamux session per agent.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use time::OffsetDateTime;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};

use super::{Counters, Relay, Session};
use crate::identity::{CertSubject, cert_subject, common_name};
use crate::pki::normalize_serial;
use crate::protocol::{self, Handshake, Route, WsIo};

/// How long an agent has to say hello after the upgrade.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);

/// The agent identity nginx passed, if the peer may pass one.
fn identity(req: &Request, trusted: bool) -> Option<(String, String)> {
    if !trusted {
        return None;
    }
    let h = |n: &str| req.headers().get(n).and_then(|v| v.to_str().ok());
    if h("x-ssl-client-verify") != Some("SUCCESS") {
        return None;
    }
    let cn = common_name(h("x-ssl-client-dn")?)?;
    match cert_subject(&cn)? {
        CertSubject::Agent(label) => Some((label, normalize_serial(h("x-ssl-client-serial")?))),
        CertSubject::Admin => None,
    }
}

async fn refuse(ws: &mut WebSocketStream<TcpStream>, peer: SocketAddr, reason: String) {
    tracing::warn!(%peer, reason, "agent refused");
    let _ = ws.send(Handshake::Refused { reason }.to_message()).await;
    let _ = ws.close(None).await;
}

impl Relay {
    pub(super) async fn agent_connection(self, tcp: TcpStream, peer: SocketAddr) {
        let trusted = self.inner.trusted.contains(&peer.ip());
        let mut who = None;
        // The error type is tungstenite's; this callback never fails.
        #[allow(clippy::result_large_err)]
        let callback = |req: &Request, resp: Response| -> Result<Response, ErrorResponse> {
            who = identity(req, trusted);
            Ok(resp)
        };
        let mut ws =
            match tokio_tungstenite::accept_hdr_async_with_config(tcp, callback, Some(protocol::ws_config())).await {
                Ok(ws) => ws,
                Err(e) => {
                    tracing::debug!(%peer, error = %e, "agent websocket upgrade failed");
                    return;
                }
            };
        let Some((label, serial)) = who else {
            return refuse(&mut ws, peer, "a verified agent client certificate is required".into()).await;
        };
        let hello = match tokio::time::timeout(HELLO_TIMEOUT, ws.next()).await {
            Ok(Some(Ok(msg))) => Handshake::from_message(&msg),
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
        match self.admit(&label, &serial).await {
            Ok(Ok(())) => {}
            Ok(Err(reason)) => return refuse(&mut ws, peer, format!("{reason}: agent '{label}'")).await,
            Err(e) => {
                tracing::error!(error = %e, "checking an agent failed");
                return refuse(&mut ws, peer, "the relay cannot check agents right now".into()).await;
            }
        }
        let tunnels: Vec<Route> = {
            let routes = self.inner.routes.read().unwrap_or_else(|e| e.into_inner());
            let mut v: Vec<Route> = routes
                .iter()
                .filter(|(_, r)| r.agent == label)
                .map(|(name, r)| Route { name: name.clone(), target: r.target.clone() })
                .collect();
            v.sort_by(|a, b| a.name.cmp(&b.name));
            v
        };
        if ws.send(Handshake::Welcome { version: protocol::VERSION, tunnels }.to_message()).await.is_err() {
            return;
        }
        self.run_session(ws, label, serial, peer, version).await;
    }

    async fn run_session(
        self,
        ws: WebSocketStream<TcpStream>,
        label: String,
        serial: String,
        peer: SocketAddr,
        version: u16,
    ) {
        let conn = yamux::Connection::new(WsIo::new(ws), protocol::yamux_config(), yamux::Mode::Client);
        let (open_tx, open_rx) = mpsc::channel(protocol::MAX_STREAMS);
        let (kick_tx, mut kick_rx) = watch::channel(false);
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let session = Session {
            id,
            serial,
            opener: open_tx,
            kick: kick_tx,
            since: OffsetDateTime::now_utc(),
            remote: peer,
            version,
            counters: Arc::new(Counters::default()),
        };
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
        {
            let mut sessions = self.inner.sessions.lock().unwrap_or_else(|e| e.into_inner());
            if sessions.get(&label).is_some_and(|s| s.id == id) {
                sessions.remove(&label);
            }
        }
        self.inner.status_dirty.send_modify(|v| *v += 1);
        match result {
            Ok(()) => tracing::info!(agent = %label, "agent disconnected"),
            Err(reason) => tracing::info!(agent = %label, reason, "agent disconnected"),
        }
    }
}
