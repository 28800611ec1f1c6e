//! What agents and visitors cannot make the relay hold: refused agents are
//! answered from their request head, handshakes and sessions have message
//! limits, an agent has a bounded number of connections being set up and of
//! streams, half-closed connections end, and the agent dials only its own
//! tunnels' targets.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use time::OffsetDateTime;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, watch};
use tokio_util::compat::FuturesAsyncReadCompatExt;

use super::*;
use crate::relay::Limits;

/// A world whose relay runs with `limits`.
async fn world_with(limits: Limits) -> World {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("portico.db")).unwrap();
    let a = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let v = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (agents, visitors) = (a.local_addr().unwrap(), v.local_addr().unwrap());
    let relay = Relay::with_limits(store.clone(), vec![LOOPBACK], limits);
    let (stop, rx) = watch::channel(false);
    let r = relay.clone();
    let task = tokio::spawn(async move {
        r.run(a, v, rx).await.unwrap();
    });
    World { dir, store, agents, visitors, relay, stop, task }
}

/// The upgrade request nginx forwards for an agent certificate.
fn upgrade_request(label: &str, serial: &str) -> String {
    format!(
        "GET / HTTP/1.1\r\nHost: tunnel.example.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         X-SSL-Client-Verify: SUCCESS\r\nX-SSL-Client-DN: CN=agent:{label},O=Portico\r\n\
         X-SSL-Client-Serial: {serial}\r\n\r\n"
    )
}

/// Size of the message [`push_large_message`] sends, bytes: four frames of
/// 15 MiB, each under tungstenite's default frame limit (16 MiB) and
/// together under its default message limit (64 MiB), and far more than
/// loopback socket buffers hold.
const LARGE: u64 = 4 * 15 * 1024 * 1024;

/// Writes one masked binary WebSocket message of [`LARGE`] bytes in four
/// fragments. Returns how many bytes were written before the peer stopped
/// taking them (an error), or all of them.
async fn push_large_message(mut w: tokio::net::tcp::OwnedWriteHalf, written: Arc<AtomicU64>) -> io::Result<()> {
    let frame = 15 * 1024 * 1024u64;
    let zeros = vec![0u8; 256 * 1024];
    for opcode in [0x02u8, 0x00, 0x00, 0x80] {
        let mut head = vec![opcode, 0x80 | 127];
        head.extend_from_slice(&frame.to_be_bytes());
        head.extend_from_slice(&[0, 0, 0, 0]); // mask key: zeros leave the payload as it is
        w.write_all(&head).await?;
        let mut left = frame;
        while left > 0 {
            let n = left.min(zeros.len() as u64) as usize;
            w.write_all(&zeros[..n]).await?;
            left -= n as u64;
            written.fetch_add(n as u64, Ordering::Relaxed);
        }
    }
    Ok(())
}

/// Reads an HTTP response head from `r`.
async fn read_head(r: &mut tokio::net::tcp::OwnedReadHalf) -> String {
    let mut raw = Vec::new();
    let mut byte = [0u8; 1];
    while !raw.ends_with(b"\r\n\r\n") {
        match r.read(&mut byte).await {
            Ok(1) => raw.push(byte[0]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&raw).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_certificate_is_refused_before_its_first_message_is_read() {
    let w = world().await;
    let serial = add_agent(&w.store, "home").await;
    w.store.revoke_agent("home".into(), OffsetDateTime::now_utc()).await.unwrap();

    let tcp = TcpStream::connect(w.agents).await.unwrap();
    let (mut r, mut wr) = tcp.into_split();
    wr.write_all(upgrade_request("home", &serial).as_bytes()).await.unwrap();
    let written = Arc::new(AtomicU64::new(0));
    let pusher = tokio::spawn(push_large_message(wr, written.clone()));
    let head = tokio::time::timeout(Duration::from_secs(10), read_head(&mut r)).await.expect("an answer");
    assert!(head.starts_with("HTTP/1.1 403"), "{head}");
    let mut body = vec![0u8; 256];
    let n = r.read(&mut body).await.unwrap_or(0);
    assert!(String::from_utf8_lossy(&body[..n]).contains("revoked"), "{}", String::from_utf8_lossy(&body[..n]));
    // The relay closed the connection without taking the message.
    let pushed = tokio::time::timeout(Duration::from_secs(30), pusher).await.expect("the push ended").unwrap();
    assert!(pushed.is_err(), "the relay read the whole {LARGE}-byte message");
    assert!(written.load(Ordering::Relaxed) < LARGE / 2, "{} bytes taken", written.load(Ordering::Relaxed));
    assert!(w.relay.connected().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_hello_is_refused_before_it_is_read() {
    let w = world().await;
    let serial = add_agent(&w.store, "home").await;

    let tcp = TcpStream::connect(w.agents).await.unwrap();
    let (mut r, mut wr) = tcp.into_split();
    wr.write_all(upgrade_request("home", &serial).as_bytes()).await.unwrap();
    let head = tokio::time::timeout(Duration::from_secs(10), read_head(&mut r)).await.expect("an answer");
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    let written = Arc::new(AtomicU64::new(0));
    let pushed = tokio::time::timeout(Duration::from_secs(30), push_large_message(wr, written.clone()))
        .await
        .expect("the push ended");
    assert!(pushed.is_err(), "the relay read the whole {LARGE}-byte hello");
    assert!(written.load(Ordering::Relaxed) < LARGE / 2, "{} bytes taken", written.load(Ordering::Relaxed));
    assert!(w.relay.connected().is_empty());

    // A well-behaved agent still connects.
    let _agent = spawn_agent(w.agent("home", &serial));
    eventually(5, "the agent to connect", || async { w.relay.connected() == ["home"] }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_of_one_agent_being_set_up_are_bounded() {
    let w = world_with(Limits { pending_per_agent: 2, ..Limits::default() }).await;
    let serial = add_agent(&w.store, "home").await;
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut tcp = TcpStream::connect(w.agents).await.unwrap();
        tcp.write_all(upgrade_request("home", &serial).as_bytes()).await.unwrap();
        let (mut r, wr) = tcp.into_split();
        let head = read_head(&mut r).await;
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        held.push((r, wr)); // upgraded, and silent
    }
    let mut tcp = TcpStream::connect(w.agents).await.unwrap();
    tcp.write_all(upgrade_request("home", &serial).as_bytes()).await.unwrap();
    let (mut r, _wr) = tcp.into_split();
    let head = read_head(&mut r).await;
    assert!(head.starts_with("HTTP/1.1 429"), "{head}");

    // Once they are gone, the agent connects.
    drop(held);
    let _agent = spawn_agent(w.agent("home", &serial));
    eventually(5, "the agent to connect", || async { w.relay.connected() == ["home"] }).await;
}

/// Opens an SSE stream through the relay; the status and the connection.
async fn open_sse(visitors: SocketAddr) -> (u16, TcpStream) {
    let mut tcp = TcpStream::connect(visitors).await.unwrap();
    tcp.write_all(b"GET /sse HTTP/1.1\r\nHost: app.example.test\r\n\r\n").await.unwrap();
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    // Read until the first event (200) or the end of a refusal page.
    loop {
        let n = tcp.read(&mut buf).await.unwrap_or(0);
        if n == 0 {
            break;
        }
        raw.extend_from_slice(&buf[..n]);
        if raw.windows(12).any(|w| w == b"data: tick 1") {
            break;
        }
    }
    (parse(raw).status, tcp)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_stream_limit_visitors_get_503_and_the_session_goes_on() {
    // Visitors that leave free their stream after the half-close timeout
    // (the SSE app never reads), so that one is short too.
    let w = world_with(Limits {
        stream_wait: Duration::from_millis(500),
        half_close: Duration::from_secs(1),
        ..Limits::default()
    })
    .await;
    let app = app::start().await;
    let serial = add_agent(&w.store, "home").await;
    add_tunnel(&w.store, "app", "home", app).await;
    let _agent = spawn_agent(w.agent("home", &serial));
    until_live(w.visitors, "app.example.test").await;

    let first = session_id(&w);
    // More long-lived streams than yamux's own limit of 1,024 per session.
    let opened: Vec<_> = (0..protocol::MAX_STREAMS + 16).map(|_| tokio::spawn(open_sse(w.visitors))).collect();
    let mut open = Vec::new();
    let mut busy = 0;
    for t in opened {
        let (status, tcp) = t.await.unwrap();
        match status {
            200 => open.push(tcp),
            503 => busy += 1,
            other => panic!("a visitor got {other}"),
        }
    }
    let limit = Limits::default().streams_per_agent;
    assert_eq!((open.len(), busy), (limit, protocol::MAX_STREAMS + 16 - limit));
    assert_eq!(session_id(&w), first, "the session stayed up");
    // The open streams are intact: still open, nothing unexpected on them.
    for tcp in &open {
        let mut byte = [0u8; 1];
        let r = tcp.try_read(&mut byte);
        assert!(matches!(&r, Err(e) if e.kind() == io::ErrorKind::WouldBlock), "a stream ended: {r:?}");
    }
    // Freeing streams lets new visitors in at once.
    open.truncate(limit - 10);
    eventually(10, "a new visitor to get through", || async {
        fetch(w.visitors, "app.example.test", "/small").await.status == 200
    })
    .await;
    assert_eq!(session_id(&w), first, "the session stayed up");
}

/// The id of agent `home`'s session.
fn session_id(w: &World) -> u64 {
    w.relay.inner.sessions.lock().unwrap().get("home").expect("home is connected").id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_left_half_closed_is_closed_after_the_timeout() {
    // The waits below are upper bounds for a loaded machine, not timings.
    let w = world_with(Limits { half_close: Duration::from_millis(300), ..Limits::default() }).await;
    // A target that takes the request and never answers nor closes.
    let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target = silent.local_addr().unwrap();
    let (held_tx, mut held_rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = silent.accept().await {
            let _ = held_tx.send(tcp);
        }
    });
    let serial = add_agent(&w.store, "home").await;
    add_tunnel(&w.store, "silent", "home", target).await;
    let _agent = spawn_agent(w.agent("home", &serial));
    eventually(30, "the agent to connect", || async { w.relay.connected() == ["home"] }).await;

    // Right after connecting, the agent may not have its tunnel list yet and
    // refuses the dial; the visitor then gets an error, so ask again.
    let deadline = Instant::now() + Duration::from_secs(30);
    let (mut tcp, _held) = loop {
        let mut tcp = TcpStream::connect(w.visitors).await.unwrap();
        tcp.write_all(b"GET / HTTP/1.1\r\nHost: silent.example.test\r\n\r\n").await.unwrap();
        if let Ok(held) = tokio::time::timeout(Duration::from_secs(2), held_rx.recv()).await {
            break (tcp, held);
        }
        assert!(Instant::now() < deadline, "the target was never dialed");
    };
    // The visitor's side is done (nginx closed), the target stays silent.
    tcp.shutdown().await.unwrap();
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(30), tcp.read_to_end(&mut rest)).await;
    assert!(closed.is_ok(), "the relay kept a half-closed connection open");
    let counters = w.relay.tunnel_counters("silent");
    eventually(30, "the stream to be counted as closed", || async {
        counters.open_streams.load(Ordering::Relaxed) == 0
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_dials_only_targets_of_its_own_tunnels() {
    let (w, _agent, app) = live_world().await;
    // Something else on the agent's network that no tunnel names.
    let other = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let other_addr = other.local_addr().unwrap();

    let opener = w.relay.inner.sessions.lock().unwrap().get("home").unwrap().opener.clone();
    let open = |target: String| {
        let opener = opener.clone();
        async move {
            let (tx, rx) = oneshot::channel();
            opener.send(tx).await.unwrap();
            let mut stream = rx.await.unwrap().unwrap().compat();
            stream.write_all(&protocol::encode_open(&target)).await.unwrap();
            stream.flush().await.unwrap();
            stream.read_u8().await.unwrap()
        }
    };
    assert_eq!(open(other_addr.to_string()).await, protocol::OPEN_FORBIDDEN);
    assert!(
        tokio::time::timeout(Duration::from_millis(200), other.accept()).await.is_err(),
        "the agent dialed a target no tunnel names"
    );
    assert_eq!(open(app.to_string()).await, protocol::OPEN_OK);

    // A tunnel added later is dialed: the relay sent the agent its new routes.
    add_tunnel(&w.store, "other", "home", other_addr).await;
    eventually(5, "the new tunnel to answer", || async {
        let (tx, rx) = oneshot::channel();
        opener.send(tx).await.unwrap();
        let mut stream = rx.await.unwrap().unwrap().compat();
        stream.write_all(&protocol::encode_open(&other_addr.to_string())).await.unwrap();
        stream.flush().await.unwrap();
        stream.read_u8().await.ok() == Some(protocol::OPEN_OK)
    })
    .await;
}
