//! End-to-end tunnel tests: a real relay, real agents and a real local app on
//! loopback ports, a real SQLite store.

mod app;
mod health;
mod health_changes;
mod limits;
mod metrics;
mod nginx;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use super::Relay;
use crate::agent::{self, AgentRunError, AgentState, RunOptions, Status};
use crate::protocol;
use crate::store::{ClientCert, Store, TunnelFields};
use crate::testing;

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

struct World {
    dir: tempfile::TempDir,
    store: Store,
    agents: SocketAddr,
    visitors: SocketAddr,
    relay: Relay,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

async fn bind_retrying(addr: SocketAddr) -> TcpListener {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match TcpListener::bind(addr).await {
            Ok(l) => return l,
            Err(e) if Instant::now() > deadline => panic!("bind {addr}: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

async fn start_relay(store: &Store, trusted: Vec<IpAddr>, agents: SocketAddr, visitors: SocketAddr) -> World {
    let a = bind_retrying(agents).await;
    let v = bind_retrying(visitors).await;
    let (agents, visitors) = (a.local_addr().unwrap(), v.local_addr().unwrap());
    // Round trips reach the status table within a second here.
    let limits = super::Limits { link_every: Duration::from_millis(500), ..super::Limits::default() };
    let relay = Relay::with_limits(store.clone(), trusted, limits);
    let (stop, rx) = watch::channel(false);
    let r = relay.clone();
    let task = tokio::spawn(async move {
        r.run(a, v, rx).await.unwrap();
    });
    World { dir: tempfile::tempdir().unwrap(), store: store.clone(), agents, visitors, relay, stop, task }
}

async fn world_trusting(trusted: Vec<IpAddr>) -> World {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("portico.db")).unwrap();
    let any = SocketAddr::new(LOOPBACK, 0);
    let mut w = start_relay(&store, trusted, any, any).await;
    w.dir = dir;
    w
}

async fn world() -> World {
    world_trusting(vec![LOOPBACK]).await
}

impl World {
    async fn stop_relay(self) -> (tempfile::TempDir, Store, SocketAddr, SocketAddr) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
        (self.dir, self.store, self.agents, self.visitors)
    }

    fn agent(&self, label: &str, serial: &str) -> RunOptions {
        RunOptions {
            relay: format!("ws://{}/", self.agents),
            label: label.into(),
            serial: serial.into(),
            version: protocol::VERSION,
            status_dir: None,
            tls: None,
            connect_to: None,
        }
    }
}

/// A running agent; stops when dropped.
struct AgentHandle {
    stop: watch::Sender<bool>,
    task: JoinHandle<Result<(), AgentRunError>>,
}

impl Drop for AgentHandle {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        self.task.abort();
    }
}

fn spawn_agent(opts: RunOptions) -> AgentHandle {
    let (stop, rx) = watch::channel(false);
    AgentHandle { stop, task: tokio::spawn(agent::run(opts, rx)) }
}

async fn add_agent(store: &Store, label: &str) -> String {
    let serial = format!("{:X}", rand::random::<u64>() | 1);
    let now = OffsetDateTime::now_utc();
    let cert = ClientCert {
        serial: serial.clone(),
        kind: "agent".into(),
        label: Some(label.into()),
        fingerprint: format!("fp-{serial}"),
        not_after: now + time::Duration::days(1),
        revoked_at: None,
    };
    store.create_agent(vec!["tunnels:read".into()], cert, now).await.unwrap();
    serial
}

async fn add_tunnel(store: &Store, name: &str, agent: &str, target: SocketAddr) {
    let fields = testing::tunnel_fields(name, agent, target);
    store.insert_tunnel(fields, OffsetDateTime::now_utc()).await.unwrap();
}

struct Response {
    status: u16,
    head: String,
    body: Vec<u8>,
}

/// One request with `Connection: close`; reads the response to EOF.
async fn fetch(visitors: SocketAddr, host: &str, path: &str) -> Response {
    let mut tcp = TcpStream::connect(visitors).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    tcp.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tcp.read_to_end(&mut raw).await.unwrap();
    parse(raw)
}

fn parse(raw: Vec<u8>) -> Response {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("no response head") + 4;
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    Response { status, head, body: raw[split..].to_vec() }
}

/// Polls until `f` holds, at most `secs` seconds.
async fn eventually<F, Fut>(secs: u64, what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f().await {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn until_live(visitors: SocketAddr, host: &str) {
    eventually(10, &format!("{host} to answer 200"), || async { fetch(visitors, host, "/small").await.status == 200 })
        .await;
}

/// A world with one app, one agent `home` serving tunnel `app`, live.
async fn live_world() -> (World, AgentHandle, SocketAddr) {
    let w = world().await;
    let app = app::start().await;
    let serial = add_agent(&w.store, "home").await;
    add_tunnel(&w.store, "app", "home", app).await;
    let agent = spawn_agent(w.agent("home", &serial));
    until_live(w.visitors, "app.example.test").await;
    (w, agent, app)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_streaming_sse_and_websocket_pass_through() {
    let (w, _agent, _) = live_world().await;
    let host = "app.example.test";

    let small = fetch(w.visitors, host, "/small").await;
    assert_eq!((small.status, small.body.as_slice()), (200, &b"hello through the tunnel"[..]));

    // 100 MB download, hashed while streaming.
    const N: u64 = 100 * 1024 * 1024;
    let mut tcp = TcpStream::connect(w.visitors).await.unwrap();
    let req = format!("GET /big?n={N} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    tcp.write_all(req.as_bytes()).await.unwrap();
    let (mut hasher, mut got, mut head, mut buf) = (Sha256::new(), 0u64, Vec::new(), vec![0u8; 256 * 1024]);
    loop {
        let n = tcp.read(&mut buf).await.unwrap();
        if n == 0 {
            break;
        }
        let mut data = &buf[..n];
        if got == 0 && !head.ends_with(b"\r\n\r\n") {
            let mut i = 0;
            while i < data.len() && !head.ends_with(b"\r\n\r\n") {
                head.push(data[i]);
                i += 1;
            }
            data = &data[i..];
        }
        hasher.update(data);
        got += data.len() as u64;
    }
    assert_eq!(got, N);
    assert_eq!(hex::encode(hasher.finalize()), app::pattern_sha256(N));

    // 100 MB upload.
    let mut tcp = TcpStream::connect(w.visitors).await.unwrap();
    let req = format!("POST /upload HTTP/1.1\r\nHost: {host}\r\nContent-Length: {N}\r\nConnection: close\r\n\r\n");
    tcp.write_all(req.as_bytes()).await.unwrap();
    let mut i = 0;
    while i < N {
        let len = (N - i).min(buf.len() as u64) as usize;
        for (k, b) in buf[..len].iter_mut().enumerate() {
            *b = app::pattern(i + k as u64);
        }
        tcp.write_all(&buf[..len]).await.unwrap();
        i += len as u64;
    }
    let mut raw = Vec::new();
    tcp.read_to_end(&mut raw).await.unwrap();
    let up = parse(raw);
    assert_eq!(up.status, 200);
    assert_eq!(String::from_utf8(up.body).unwrap(), app::pattern_sha256(N));

    // Chunked response passes with its framing untouched.
    let chunked = fetch(w.visitors, host, "/chunked").await;
    assert!(chunked.head.to_ascii_lowercase().contains("transfer-encoding: chunked"), "{}", chunked.head);
    assert_eq!(String::from_utf8(chunked.body).unwrap(), "6\r\nfirst;\r\n7\r\nsecond;\r\n5\r\nthird\r\n0\r\n\r\n");

    // SSE: the first event arrives while the stream stays open.
    let mut tcp = TcpStream::connect(w.visitors).await.unwrap();
    tcp.write_all(format!("GET /sse HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut seen = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), async {
        while !seen.windows(12).any(|w| w == b"data: tick 1") {
            let n = tcp.read(&mut buf).await.unwrap();
            assert!(n > 0, "sse stream closed early");
            seen.extend_from_slice(&buf[..n]);
        }
    })
    .await
    .expect("first server-sent event did not arrive while the stream is open");

    // WebSocket echo through the tunnel.
    let mut request = format!("ws://{}/ws", w.visitors).into_client_request().unwrap();
    request.headers_mut().insert("host", host.parse().unwrap());
    let tcp = TcpStream::connect(w.visitors).await.unwrap();
    let (mut ws, _) = tokio_tungstenite::client_async(request, tcp).await.unwrap();
    for i in 0..10 {
        ws.send(Message::text(format!("ping {i}"))).await.unwrap();
        assert_eq!(ws.next().await.unwrap().unwrap(), Message::text(format!("ping {i}")));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_streams_over_one_agent() {
    let (w, _agent, _) = live_world().await;
    // Open all connections first so the streams are concurrent, then request.
    let mut conns = Vec::new();
    for _ in 0..1000 {
        conns.push(TcpStream::connect(w.visitors).await.unwrap());
    }
    let tasks: Vec<_> = conns
        .into_iter()
        .map(|mut tcp| {
            tokio::spawn(async move {
                tcp.write_all(b"GET /small HTTP/1.1\r\nHost: app.example.test\r\nConnection: close\r\n\r\n").await?;
                let mut raw = Vec::new();
                tcp.read_to_end(&mut raw).await?;
                Ok::<_, std::io::Error>(parse(raw))
            })
        })
        .collect();
    let mut ok = 0;
    for t in tasks {
        let r = t.await.unwrap().unwrap();
        assert_eq!((r.status, r.body.as_slice()), (200, &b"hello through the tunnel"[..]));
        ok += 1;
    }
    assert_eq!(ok, 1000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_requests_succeed_while_a_bulk_download_runs() {
    let (w, _agent, _) = live_world().await;
    let visitors = w.visitors;
    let bulk = tokio::spawn(async move {
        let r = fetch(visitors, "app.example.test", &format!("/big?n={}", 100 * 1024 * 1024)).await;
        (r.status, r.body.len())
    });
    let mut worst = Duration::ZERO;
    for _ in 0..50 {
        let t = Instant::now();
        let r = fetch(w.visitors, "app.example.test", "/small").await;
        assert_eq!(r.status, 200);
        worst = worst.max(t.elapsed());
    }
    eprintln!("worst small-request latency during bulk download: {worst:?}");
    assert_eq!(bulk.await.unwrap(), (200, 100 * 1024 * 1024));
}

fn body_text(r: &Response) -> String {
    String::from_utf8_lossy(&r.body).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_agent_gets_502_and_comes_back_and_survives_a_relay_restart() {
    let (w, agent, _) = live_world().await;
    drop(agent);
    eventually(5, "agent to drop", || async { w.relay.connected().is_empty() }).await;
    let t = Instant::now();
    let r = fetch(w.visitors, "app.example.test", "/small").await;
    eprintln!("502 when the agent is offline took {:?}", t.elapsed());
    assert_eq!(r.status, 502);
    assert!(r.head.contains("text/html") && body_text(&r).contains("offline"), "{}", body_text(&r));

    let serial = w.store.client_cert_serial_for_test("home").await;
    let _agent = spawn_agent(w.agent("home", &serial));
    until_live(w.visitors, "app.example.test").await;

    // Relay restart on the same ports: the agent reconnects by itself.
    let (dir, store, agents, visitors) = w.stop_relay().await;
    let mut w2 = start_relay(&store, vec![LOOPBACK], agents, visitors).await;
    w2.dir = dir;
    until_live(w2.visitors, "app.example.test").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_target_gets_502_and_unknown_names_404() {
    let w = world().await;
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
    let serial = add_agent(&w.store, "home").await;
    add_tunnel(&w.store, "dead", "home", closed).await;
    let _agent = spawn_agent(w.agent("home", &serial));
    eventually(5, "agent to connect", || async { w.relay.connected() == ["home"] }).await;
    eventually(5, "route to appear", || async { fetch(w.visitors, "dead.example.test", "/").await.status == 502 })
        .await;
    let r = fetch(w.visitors, "dead.example.test", "/").await;
    assert!(body_text(&r).contains("not answering"), "{}", body_text(&r));
    assert_eq!(fetch(w.visitors, "nope.example.test", "/").await.status, 404);
}

/// A TCP proxy that can be told to stop forwarding without closing.
async fn freezing_proxy(upstream: SocketAddr) -> (SocketAddr, watch::Sender<bool>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (freeze, rx) = watch::channel(false);
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let Ok(server) = TcpStream::connect(upstream).await else { continue };
            let (cr, cw) = client.into_split();
            let (sr, sw) = server.into_split();
            for (mut r, mut wr) in [
                (
                    Box::new(cr) as Box<dyn tokio::io::AsyncRead + Unpin + Send>,
                    Box::new(sw) as Box<dyn tokio::io::AsyncWrite + Unpin + Send>,
                ),
                (Box::new(sr), Box::new(cw)),
            ] {
                let rx = rx.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 16 * 1024];
                    loop {
                        let n = match r.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => n,
                        };
                        if *rx.borrow() {
                            // Frozen: swallow everything, close nothing.
                            std::future::pending::<()>().await;
                        }
                        if wr.write_all(&buf[..n]).await.is_err() {
                            return;
                        }
                    }
                });
            }
        }
    });
    (addr, freeze)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_link_death_is_noticed_by_both_sides() {
    let w = world().await;
    let app = app::start().await;
    let serial = add_agent(&w.store, "home").await;
    add_tunnel(&w.store, "app", "home", app).await;
    let (proxy, freeze) = freezing_proxy(w.agents).await;
    let status_dir = w.dir.path().join("agent");
    let mut opts = w.agent("home", &serial);
    opts.relay = format!("ws://{proxy}/");
    opts.status_dir = Some(status_dir.clone());
    let _agent = spawn_agent(opts);
    until_live(w.visitors, "app.example.test").await;
    let frozen_at = Instant::now();
    freeze.send(true).unwrap();
    let bound = protocol::DEAD_AFTER.as_secs() + 3;
    eventually(bound, "relay to drop the silent agent", || async { w.relay.connected().is_empty() }).await;
    let relay_noticed = frozen_at.elapsed();
    eventually(bound, "agent to notice the silent link", || async {
        state(&status_dir) != Some(AgentState::Connected)
    })
    .await;
    eprintln!("relay noticed after {relay_noticed:?}, agent after {:?}", frozen_at.elapsed());
}

fn state(dir: &Path) -> Option<AgentState> {
    Status::read(dir).ok().map(|s| s.state)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_agent_is_disconnected_and_refused_afterwards() {
    let (w, _agent, _) = live_world().await;
    w.store.revoke_agent("home".into(), OffsetDateTime::now_utc()).await.unwrap();
    eventually(5, "revoked agent to be disconnected", || async { w.relay.connected().is_empty() }).await;
    assert_eq!(fetch(w.visitors, "app.example.test", "/small").await.status, 502);

    let serial = w.store.client_cert_serial_for_test("home").await;
    let (_stop, rx) = watch::channel(false);
    let mut opts = w.agent("home", &serial);
    opts.status_dir = Some(w.dir.path().join("revoked"));
    let run = tokio::spawn(agent::run(opts, rx));
    eventually(5, "revoked agent to be refused", || async {
        state(&w.dir.path().join("revoked")) == Some(AgentState::Refused)
    })
    .await;
    let detail = Status::read(&w.dir.path().join("revoked")).unwrap().detail.unwrap_or_default();
    assert!(detail.contains("revoked"), "{detail}");
    run.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_version_unknown_agents_and_untrusted_peers_are_refused() {
    let w = world().await;
    let app = app::start().await;
    let serial = add_agent(&w.store, "home").await;
    let other = add_agent(&w.store, "other").await;
    add_tunnel(&w.store, "app", "home", app).await;

    // A protocol version mismatch ends `run` with a clear message.
    let mut opts = w.agent("home", &serial);
    opts.version = protocol::VERSION + 1;
    let (_s, rx) = watch::channel(false);
    let err = tokio::time::timeout(Duration::from_secs(5), agent::run(opts, rx)).await.unwrap().unwrap_err();
    let expected = format!("agent speaks {}, relay speaks {}", protocol::VERSION + 1, protocol::VERSION);
    assert!(err.to_string().contains(&expected), "{err}");

    // Unknown label, and a serial that is not this agent's.
    for (label, serial, why) in
        [("ghost", serial.as_str(), "unknown agent"), ("home", other.as_str(), "another identity")]
    {
        let dir = w.dir.path().join(format!("{label}-{serial}"));
        let mut opts = w.agent(label, serial);
        opts.status_dir = Some(dir.clone());
        let h = spawn_agent(opts);
        eventually(5, why, || async { state(&dir) == Some(AgentState::Refused) }).await;
        let detail = Status::read(&dir).unwrap().detail.unwrap_or_default();
        assert!(detail.contains(why), "{detail}");
        drop(h);
    }

    // Agent `other` connects fine but cannot serve `home`'s tunnel.
    let _other = spawn_agent(w.agent("other", &other));
    eventually(5, "other to connect", || async { w.relay.connected() == ["other"] }).await;
    eventually(5, "home's tunnel to stay offline", || async {
        fetch(w.visitors, "app.example.test", "/small").await.status == 502
    })
    .await;

    // Identity headers from a peer that is not trusted are ignored.
    let strict = world_trusting(vec![]).await;
    let s2 = add_agent(&strict.store, "home").await;
    let dir = strict.dir.path().join("untrusted");
    let mut opts = strict.agent("home", &s2);
    opts.status_dir = Some(dir.clone());
    let _h = spawn_agent(opts);
    eventually(5, "untrusted peer to be refused", || async { state(&dir) == Some(AgentState::Refused) }).await;
    assert!(strict.relay.connected().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_table_shows_connected_agents() {
    let (w, _agent, _) = live_world().await;
    eventually(10, "relay_status row", || async {
        w.store
            .relay_status()
            .await
            .unwrap()
            .iter()
            .any(|s| s.label == "home" && s.protocol_version == protocol::VERSION)
    })
    .await;
}

impl Store {
    /// The newest certificate serial of an agent.
    async fn client_cert_serial_for_test(&self, label: &str) -> String {
        self.agent(label.into()).await.unwrap().unwrap().serial.unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tunnel_changes_apply_without_a_restart() {
    let (w, _agent, _) = live_world().await;
    let tunnel = w.store.tunnels().await.unwrap().remove(0);
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
    let mut fields = TunnelFields::from(&tunnel);
    fields.target = closed.to_string();
    w.store.update_tunnel(tunnel.id, fields.clone(), OffsetDateTime::now_utc()).await.unwrap();
    eventually(3, "new target to be used", || async {
        body_text(&fetch(w.visitors, "app.example.test", "/small").await).contains("not answering")
    })
    .await;
    fields.enabled = false;
    w.store.update_tunnel(tunnel.id, fields, OffsetDateTime::now_utc()).await.unwrap();
    eventually(3, "disabled tunnel to disappear", || async {
        fetch(w.visitors, "app.example.test", "/small").await.status == 404
    })
    .await;
}
