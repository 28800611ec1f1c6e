//! `portico relay`: agents connect on one port (behind nginx's mTLS), visitors
//! arrive from nginx on another; each visitor connection is routed by the
//! `Host` of its first request to the agent serving that tunnel and relayed
//! as one multiplexed stream.
//!
//! Routing is per connection, so nginx must keep one upstream (keep-alive
//! pool) per tunnel: a pooled connection then never carries another Host.

pub(crate) mod agents;
mod counting;
pub(crate) mod visitor;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use time::OffsetDateTime;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, mpsc, watch};

use crate::protocol::{OpenRequest, Route};
use crate::store::{AgentStatus, ProcessCounter, Store, StoreError};

/// How often the relay asks SQLite whether anything changed.
const WATCH_EVERY: Duration = Duration::from_millis(250);
/// How often counters are written to `relay_status` while they change.
const STATUS_EVERY: Duration = Duration::from_secs(5);
/// How often the agents' round trips and last contacts alone are written
/// by default (they change with every ping; a write per ping would wake
/// every store watcher each second).
const LINK_EVERY: Duration = Duration::from_secs(30);

/// The relay's name in `process_counters`, and its per-tunnel metrics there
/// (labels `tunnel=<name>`).
pub const PROCESS: &str = "relay";
pub const TUNNEL_BYTES_IN: &str = "relay_tunnel_bytes_in";
pub const TUNNEL_BYTES_OUT: &str = "relay_tunnel_bytes_out";
pub const TUNNEL_OPEN_STREAMS: &str = "relay_tunnel_open_streams";

#[derive(Debug, thiserror::Error)]
pub enum TunnelError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}

/// What the relay lets agents and visitors hold at once. The defaults are
/// the production values; tests shorten them.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Streams one agent session carries at once. A visitor beyond it waits
    /// up to `stream_wait` for one to end, then gets a 503 page. Below
    /// yamux's own limit ([`crate::protocol::MAX_STREAMS`]) so that streams
    /// the agent is still closing and route updates always fit.
    pub streams_per_agent: usize,
    pub stream_wait: Duration,
    /// How long a visitor connection may stay half-closed (see
    /// [`crate::pipe::copy_bidirectional`]).
    pub half_close: Duration,
    /// Connections of one agent between their request head and a running
    /// session (the running session itself is replaced by a newer one).
    pub pending_per_agent: usize,
    /// How often round trips and last contacts alone are written to
    /// `relay_status`.
    pub link_every: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            streams_per_agent: crate::protocol::MAX_STREAMS - 24,
            stream_wait: Duration::from_secs(10),
            half_close: crate::protocol::HALF_CLOSE_TIMEOUT,
            pending_per_agent: 2,
            link_every: LINK_EVERY,
        }
    }
}

/// A tunnel as the relay routes it.
#[derive(Debug, Clone)]
struct RouteEntry {
    agent: String,
    target: String,
}

/// Counters of one agent session, or of one tunnel since the relay started.
#[derive(Debug, Default)]
struct Counters {
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    open_streams: AtomicU64,
}

/// A connected agent.
struct Session {
    id: u64,
    serial: String,
    opener: mpsc::Sender<OpenRequest>,
    kick: watch::Sender<bool>,
    since: OffsetDateTime,
    remote: SocketAddr,
    version: u16,
    counters: Arc<Counters>,
    /// One permit per stream the session may carry (`Limits::streams_per_agent`).
    streams: Arc<Semaphore>,
    /// The agent's tunnels, sent to it whenever they change.
    routes: watch::Sender<Vec<Route>>,
    /// Round trip and last contact, measured by the link's keepalive.
    link: Arc<crate::protocol::LinkStats>,
}

struct Inner {
    store: Store,
    trusted: Vec<IpAddr>,
    limits: Limits,
    /// Connections per agent label being set up.
    pending: Mutex<HashMap<String, usize>>,
    routes: RwLock<HashMap<String, RouteEntry>>,
    sessions: Mutex<HashMap<String, Session>>,
    /// Per tunnel name, since the relay started; taken once per visitor
    /// connection, then counted into without a lock.
    tunnels: Mutex<HashMap<String, Arc<Counters>>>,
    next_id: AtomicU64,
    /// Bumped whenever sessions change, so the status writer knows.
    status_dirty: watch::Sender<u64>,
}

/// The relay's shared state. Cheap to clone.
#[derive(Clone)]
pub struct Relay {
    inner: Arc<Inner>,
}

impl Relay {
    pub fn new(store: Store, trusted: Vec<IpAddr>) -> Relay {
        Relay::with_limits(store, trusted, Limits::default())
    }

    pub fn with_limits(store: Store, trusted: Vec<IpAddr>, limits: Limits) -> Relay {
        Relay {
            inner: Arc::new(Inner {
                store,
                trusted,
                limits,
                pending: Mutex::default(),
                routes: RwLock::default(),
                sessions: Mutex::default(),
                tunnels: Mutex::default(),
                next_id: AtomicU64::new(1),
                status_dirty: watch::channel(0).0,
            }),
        }
    }

    /// Serves agents and visitors until `shutdown` turns true.
    pub async fn run(
        self,
        agents: TcpListener,
        visitors: TcpListener,
        mut shutdown: watch::Receiver<bool>,
    ) -> Result<(), TunnelError> {
        self.reload().await?;
        self.inner.store.put_relay_status(Vec::new()).await?;
        self.inner.store.put_process_counters(PROCESS, Vec::new()).await?;
        let tasks = [
            tokio::spawn(self.clone().watch_store()),
            tokio::spawn(self.clone().write_status()),
            tokio::spawn(self.clone().accept_agents(agents)),
            tokio::spawn(self.clone().accept_visitors(visitors)),
        ];
        let _ = shutdown.wait_for(|s| *s).await;
        for t in &tasks {
            t.abort();
        }
        for (_, s) in self.inner.sessions.lock().unwrap_or_else(|e| e.into_inner()).drain() {
            let _ = s.kick.send(true);
        }
        Ok(())
    }

    async fn accept_agents(self, listener: TcpListener) {
        loop {
            match listener.accept().await {
                Ok((tcp, peer)) => {
                    let _ = tcp.set_nodelay(true);
                    tokio::spawn(self.clone().agent_connection(tcp, peer));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accepting an agent connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }

    async fn accept_visitors(self, listener: TcpListener) {
        loop {
            match listener.accept().await {
                Ok((tcp, _)) => {
                    let _ = tcp.set_nodelay(true);
                    tokio::spawn(self.clone().visitor(tcp));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accepting a visitor connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }

    /// Reloads routes and drops sessions of agents that lost their right to connect.
    async fn reload(&self) -> Result<(), StoreError> {
        let store = &self.inner.store;
        let routes: HashMap<String, RouteEntry> = store
            .tunnels()
            .await?
            .into_iter()
            .filter(|t| t.enabled)
            .map(|t| (t.name, RouteEntry { agent: t.agent, target: t.target }))
            .collect();
        // Counters of tunnels that are gone (deleted or disabled) go with them
        // once their last stream ended.
        self.inner
            .tunnels
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|name, c| routes.contains_key(name) || c.open_streams.load(Ordering::Relaxed) > 0);
        *self.inner.routes.write().unwrap_or_else(|e| e.into_inner()) = routes;
        let connected: Vec<(String, String)> = {
            let sessions = self.inner.sessions.lock().unwrap_or_else(|e| e.into_inner());
            for (label, s) in sessions.iter() {
                let now = self.routes_of(label);
                s.routes.send_if_modified(|r| {
                    let changed = *r != now;
                    *r = now;
                    changed
                });
            }
            sessions.iter().map(|(l, s)| (l.clone(), s.serial.clone())).collect()
        };
        for (label, serial) in connected {
            if let Err(reason) = self.admit(&label, &serial).await? {
                tracing::info!(agent = %label, reason, "disconnecting agent");
                if let Some(s) = self.inner.sessions.lock().unwrap_or_else(|e| e.into_inner()).remove(&label) {
                    let _ = s.kick.send(true);
                }
                self.inner.status_dirty.send_modify(|v| *v += 1);
            }
        }
        Ok(())
    }

    /// Whether an agent with this certificate serial may connect; the reason if not.
    async fn admit(&self, label: &str, serial: &str) -> Result<Result<(), &'static str>, StoreError> {
        let store = &self.inner.store;
        let Some(agent) = store.agent(label.to_string()).await? else {
            return Ok(Err("unknown agent"));
        };
        if agent.revoked_at.is_some() {
            return Ok(Err("agent revoked"));
        }
        let Some(cert) = store.client_cert(serial.to_string()).await? else {
            return Ok(Err("unknown certificate"));
        };
        if cert.revoked_at.is_some() {
            return Ok(Err("certificate revoked"));
        }
        if cert.kind != "agent" || cert.label.as_deref() != Some(label) {
            return Ok(Err("certificate belongs to another identity"));
        }
        if cert.not_after <= OffsetDateTime::now_utc() {
            return Ok(Err("certificate expired"));
        }
        Ok(Ok(()))
    }

    /// Polls `PRAGMA data_version` and reloads on change.
    async fn watch_store(self) {
        let store = self.inner.store.clone();
        let mut watcher = match tokio::task::spawn_blocking(move || store.change_watcher()).await {
            Ok(Ok(w)) => w,
            Ok(Err(e)) => {
                tracing::error!(error = %e, "cannot watch the store; tunnel changes need a relay restart");
                return;
            }
            Err(_) => return,
        };
        let mut tick = tokio::time::interval(WATCH_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let (w, changed) = match tokio::task::spawn_blocking(move || {
                let c = watcher.changed();
                (watcher, c)
            })
            .await
            {
                Ok(v) => v,
                Err(_) => return,
            };
            watcher = w;
            match changed {
                Ok(true) => {
                    if let Err(e) = self.reload().await {
                        tracing::warn!(error = %e, "reloading tunnels failed");
                    }
                }
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, "checking the store for changes failed"),
            }
        }
    }

    /// The counters of tunnel `name`, created on first use.
    fn tunnel_counters(&self, name: &str) -> Arc<Counters> {
        let mut tunnels = self.inner.tunnels.lock().unwrap_or_else(|e| e.into_inner());
        tunnels.entry(name.to_string()).or_default().clone()
    }

    /// Agent rows for `relay_status` and per-tunnel rows for `process_counters`.
    fn snapshot(&self) -> (Vec<AgentStatus>, Vec<ProcessCounter>) {
        let agents = {
            let sessions = self.inner.sessions.lock().unwrap_or_else(|e| e.into_inner());
            sessions
                .iter()
                .map(|(label, s)| AgentStatus {
                    label: label.clone(),
                    connected_since: s.since,
                    remote_addr: s.remote.to_string(),
                    protocol_version: s.version,
                    bytes_in: s.counters.bytes_in.load(Ordering::Relaxed),
                    bytes_out: s.counters.bytes_out.load(Ordering::Relaxed),
                    open_streams: s.counters.open_streams.load(Ordering::Relaxed),
                    // Tenths of a millisecond are all a reader needs.
                    rtt_ms: s.link.rtt().map(|d| (d.as_secs_f64() * 10_000.0).round() / 10.0),
                    last_contact: s.link.last_contact(),
                })
                .collect()
        };
        let tunnels = self.inner.tunnels.lock().unwrap_or_else(|e| e.into_inner());
        let mut rows = Vec::with_capacity(tunnels.len() * 3);
        for (name, c) in tunnels.iter() {
            let labels = format!("tunnel={name}");
            for (metric, value) in [
                (TUNNEL_BYTES_IN, &c.bytes_in),
                (TUNNEL_BYTES_OUT, &c.bytes_out),
                (TUNNEL_OPEN_STREAMS, &c.open_streams),
            ] {
                rows.push(ProcessCounter {
                    process: PROCESS.into(),
                    name: metric.into(),
                    labels: labels.clone(),
                    value: value.load(Ordering::Relaxed),
                });
            }
        }
        rows.sort();
        (agents, rows)
    }

    /// Writes the agent status table and the per-tunnel counters now.
    pub async fn publish_status(&self) -> Result<(), StoreError> {
        let (agents, tunnels) = self.snapshot();
        self.inner.store.put_relay_status(agents).await?;
        self.inner.store.put_process_counters(PROCESS, tunnels).await
    }

    /// Writes `relay_status` on connect/disconnect at once, counters every
    /// [`STATUS_EVERY`] while they move, and round trips and last contacts
    /// alone every `Limits::link_every`.
    async fn write_status(self) {
        let mut dirty = self.inner.status_dirty.subscribe();
        let mut last = (Vec::new(), Vec::new());
        let mut link_written = tokio::time::Instant::now();
        let link_every = self.inner.limits.link_every;
        loop {
            let _ = tokio::time::timeout(STATUS_EVERY.min(link_every), dirty.changed()).await;
            let now = self.snapshot();
            let link_only = without_link(&now.0) == without_link(&last.0);
            let agents_due = now.0 != last.0 && (!link_only || link_written.elapsed() >= link_every);
            if agents_due || now.1 != last.1 {
                let store = &self.inner.store;
                if agents_due {
                    match store.put_relay_status(now.0.clone()).await {
                        Ok(()) => link_written = tokio::time::Instant::now(),
                        Err(e) => tracing::warn!(error = %e, "recording relay status failed"),
                    }
                }
                if now.1 != last.1
                    && let Err(e) = store.put_process_counters(PROCESS, now.1.clone()).await
                {
                    tracing::warn!(error = %e, "recording tunnel counters failed");
                }
                last = (if agents_due { now.0 } else { last.0 }, now.1);
            }
        }
    }

    /// Labels of connected agents (for tests and status).
    pub fn connected(&self) -> Vec<String> {
        let mut v: Vec<String> =
            self.inner.sessions.lock().unwrap_or_else(|e| e.into_inner()).keys().cloned().collect();
        v.sort();
        v
    }
}

/// Status rows without what the keepalive measures, to tell a change of
/// connections and counters from a new round trip.
fn without_link(rows: &[AgentStatus]) -> Vec<AgentStatus> {
    rows.iter().map(|r| AgentStatus { rtt_ms: None, last_contact: None, ..r.clone() }).collect()
}

/// The relay's runtime: one thread for all sockets, and no more blocking
/// threads than the store has connections (a burst of agents connecting at
/// once would otherwise start a thread, with its stack and malloc arena, per
/// pending query).
///
/// One thread because the relay's time goes to socket calls, not to its own
/// code: a visitor's copy task and its agent's session task then wake each
/// other without crossing threads. On two cores that took the relay from 20
/// to 14 µs of CPU per small request at 16 connections and from 15.5 to
/// 10.5 µs at 64 (`bench/tunnel.sh`, path 3); one core moves far more than a
/// VPS link carries, and TLS, the costly part, is nginx's.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .max_blocking_threads(crate::store::POOL_SIZE as usize)
        .enable_all()
        .build()
}

/// `portico relay`: binds `relay.agents_listen` and `relay.visitors_listen`
/// and runs until SIGTERM or Ctrl-C.
pub async fn serve(settings: crate::settings::Settings) -> anyhow::Result<()> {
    use anyhow::Context;
    let store =
        Store::open(&settings.db_path()).with_context(|| format!("while opening {}", settings.db_path().display()))?;
    // The relay's runtime log level applies from its start.
    match crate::runtime_settings::load(&store, &settings).await {
        Ok((values, _)) => crate::logging::LevelControl::process().set(&values.relay_log_level),
        Err(err) => tracing::error!(%err, "cannot read runtime settings; keeping log.level"),
    }
    let listen = &settings.relay;
    let agents = TcpListener::bind(listen.agents_listen)
        .await
        .with_context(|| format!("while binding relay.agents_listen on {}", listen.agents_listen))?;
    let visitors = TcpListener::bind(listen.visitors_listen)
        .await
        .with_context(|| format!("while binding relay.visitors_listen on {}", listen.visitors_listen))?;
    tracing::info!(agents = %listen.agents_listen, visitors = %listen.visitors_listen, "relay listening");
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => return,
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        let _ = tx.send(true);
    });
    let limits = Limits { half_close: Duration::from_secs(listen.half_close_timeout_secs.into()), ..Limits::default() };
    Relay::with_limits(store, settings.trusted_proxies.clone(), limits).run(agents, visitors, rx).await?;
    Ok(())
}
