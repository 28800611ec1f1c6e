//! The tunnel wire protocol, apart from sockets and session logic.
//!
//! One WebSocket per agent, binary frames only. The first binary message
//! each way is a JSON [`Handshake`] (agent → `Hello`, relay → `Welcome` or
//! `Refused`); after it the WebSocket carries a yamux session. yamux gives
//! per-stream credit whose receive window auto-tunes towards bandwidth × RTT
//! (vendored with one change, `vendor/yamux/PORTICO.md`: a window-limited
//! stream's window grows ×64 per update while the session has window to spare,
//! so a new stream on a 50 ms link is not window-bound after one round trip,
//! and no stream takes more than half of the session's headroom),
//! round-robin framing of 16 KiB chunks (so one bulk stream cannot starve the
//! others) and a bound on the receive window per session.
//!
//! Each visitor connection is one stream opened by the relay. The relay
//! writes an [`open header`](encode_open) naming the target, then the
//! visitor's bytes; the agent answers one status byte ([`OPEN_OK`] …) and
//! then the target's bytes.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::BytesMut;
use futures_util::{Sink, Stream};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, Interval, MissedTickBehavior};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Bytes, Message};

/// The protocol version both sides must speak. Version 2: a stream starts
/// with a 16 KiB window (version 1: yamux's 256 KiB), and the relay tells the
/// agent its tunnels whenever they change ([`encode_routes`]).
pub const VERSION: u16 = 2;
/// How often each side pings the other over an idle link.
pub const PING_EVERY: Duration = Duration::from_secs(1);
/// A link that carried nothing (not even a pong) for this long is dead.
pub const DEAD_AFTER: Duration = Duration::from_secs(5);
/// Concurrent streams per agent.
pub const MAX_STREAMS: usize = 1024;
/// Receive window a session may grant beyond every stream's initial window
/// (`yamux::DEFAULT_CREDIT`, 16 KiB), bytes: what lets one stream's window
/// grow past bandwidth × RTT (one stream up to half of it: 4 MiB, 80 MB/s
/// at 50 ms). With [`MAX_STREAMS`] it bounds what one session can make its
/// receiver buffer when nobody reads: 1,024 × 16 KiB + 8 MiB = 24 MiB.
pub const WINDOW_HEADROOM: usize = 8 * 1024 * 1024;

/// The vendored yamux's initial stream window, which protocol version 2
/// promises to the peer and [`WINDOW_HEADROOM`]'s bound assumes. Checked at
/// compile time against the yamux this binary is linked with: cargo names a
/// workspace path dependency by its relative path, so a target directory
/// shared with a checkout whose `vendor/yamux` differs (the upstream 256 KiB)
/// can hand this build that checkout's compiled yamux without rebuilding it.
/// That happened: the release relay then buffered 1,000 × 256 KiB (254 MB
/// RSS) for 1,000 stalled downloads. A mismatch fails the build instead.
pub const STREAM_WINDOW: u32 = 16 * 1024;
const _: () = assert!(
    yamux::DEFAULT_CREDIT == STREAM_WINDOW,
    "the yamux linked here is not vendor/yamux (16 KiB stream windows): a stale build in a shared target directory; `touch vendor/yamux/src/lib.rs` and rebuild"
);
/// Largest handshake message the agent accepts (the relay's welcome lists
/// every tunnel of the agent), bytes.
pub const MAX_HANDSHAKE: usize = 64 * 1024;
/// Largest hello the relay reads from an agent, bytes: a WebSocket message
/// or frame announcing more is refused before its body is read.
pub const MAX_HELLO: usize = 4 * 1024;
/// Largest WebSocket message or frame once the session runs, bytes: the
/// coalesced yamux frames ([`WRITE_CHUNK`] plus one frame of at most 16 KiB).
pub const MAX_WS_MESSAGE: usize = 128 * 1024;
/// Largest route update ([`encode_routes`]), bytes.
pub const MAX_ROUTES: usize = 64 * 1024;
/// How long a relayed connection may stay half-closed (one direction ended,
/// the other silent) before both are closed, by default.
pub const HALF_CLOSE_TIMEOUT: Duration = Duration::from_secs(30);
/// WebSocket messages are coalesced up to this many bytes, bytes.
const WRITE_CHUNK: usize = 64 * 1024;
/// tungstenite's read chunk and write buffer, bytes. Its default (128 KiB)
/// is zero-filled and kept per connection: ~155 KiB of heap per agent on the
/// relay. 16 KiB keeps ~35 KiB per agent with no measurable change in bulk
/// throughput (larger frames are still read whole).
const WS_BUFFER: usize = 16 * 1024;

/// Open status: the agent dialed the target.
pub const OPEN_OK: u8 = 0;
/// Open status: the target refused or did not answer.
pub const OPEN_REFUSED: u8 = 1;
/// Open status: the target is not one of this agent's tunnels.
pub const OPEN_FORBIDDEN: u8 = 2;

/// The first message each way.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum Handshake {
    /// Agent → relay.
    Hello { version: u16, label: String },
    /// Relay → agent: accepted, with the tunnels this agent serves now.
    Welcome { version: u16, tunnels: Vec<Route> },
    /// Relay → agent: refused, and why (shown to the operator).
    Refused { reason: String },
}

/// A tunnel as the agent sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    pub name: String,
    pub target: String,
}

impl Handshake {
    pub fn to_message(&self) -> Message {
        Message::Binary(Bytes::from(serde_json::to_vec(self).unwrap_or_default()))
    }

    /// Decodes a handshake message; `None` for anything else.
    pub fn from_message(msg: &Message) -> Option<Handshake> {
        match msg {
            Message::Binary(b) if b.len() <= MAX_HANDSHAKE => serde_json::from_slice(b).ok(),
            Message::Text(t) if t.len() <= MAX_HANDSHAKE => serde_json::from_str(t).ok(),
            _ => None,
        }
    }
}

/// The message both sides show when their versions differ.
pub fn version_mismatch(agent: u16, relay: u16) -> String {
    format!("protocol version mismatch: agent speaks {agent}, relay speaks {relay}; upgrade the older side")
}

/// The stream-open header: target length (u16, big endian) and target.
pub fn encode_open(target: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(2 + target.len());
    out.extend_from_slice(&(target.len().min(u16::MAX as usize) as u16).to_be_bytes());
    out.extend_from_slice(&target.as_bytes()[..target.len().min(u16::MAX as usize)]);
    out
}

/// The open header's length field that marks a route update instead of a target.
const ROUTES_MARK: u16 = u16::MAX;

/// A route update (protocol version 2): the relay opens a stream, writes
/// [`ROUTES_MARK`], a u32 length (big endian) and the agent's tunnels as JSON,
/// and closes it. The agent dials only targets of its current tunnels.
pub fn encode_routes(routes: &[Route]) -> Vec<u8> {
    let json = serde_json::to_vec(routes).unwrap_or_default();
    let mut out = Vec::with_capacity(6 + json.len());
    out.extend_from_slice(&ROUTES_MARK.to_be_bytes());
    out.extend_from_slice(&(json.len() as u32).to_be_bytes());
    out.extend_from_slice(&json);
    out
}

/// What a stream opened by the relay asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Open {
    /// Dial this target and relay bytes.
    Target(String),
    /// The agent's tunnels changed to these.
    Routes(Vec<Route>),
}

fn invalid(what: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}

/// Reads the stream-open header.
pub async fn read_open<R: AsyncRead + Unpin>(r: &mut R) -> io::Result<Open> {
    let len = r.read_u16().await?;
    if len == ROUTES_MARK {
        let len = r.read_u32().await? as usize;
        if len > MAX_ROUTES {
            return Err(invalid("route update too long"));
        }
        let mut buf = vec![0; len];
        r.read_exact(&mut buf).await?;
        return serde_json::from_slice(&buf).map(Open::Routes).map_err(|_| invalid("route update not valid"));
    }
    if len > 1024 {
        return Err(invalid("open header too long"));
    }
    let mut buf = vec![0; len as usize];
    r.read_exact(&mut buf).await?;
    String::from_utf8(buf).map(Open::Target).map_err(|_| invalid("open header not utf-8"))
}

/// The WebSocket settings of a running session, both sides.
pub fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(WS_BUFFER)
        .write_buffer_size(WS_BUFFER)
        .max_message_size(Some(MAX_WS_MESSAGE))
        .max_frame_size(Some(MAX_WS_MESSAGE))
}

/// The relay's WebSocket settings until the agent's hello was read.
pub fn hello_ws_config() -> WebSocketConfig {
    ws_config().max_message_size(Some(MAX_HELLO)).max_frame_size(Some(MAX_HELLO))
}

/// The yamux settings of both sides.
pub fn yamux_config() -> yamux::Config {
    let mut cfg = yamux::Config::default();
    // Every stream's initial credit (16 KiB, the patched yamux's floor);
    // stream windows grow (towards 2 × bandwidth × RTT; ×64 per step while
    // at most half of the headroom left goes to one step, ×2 after; one
    // stream at most half of it) only into the headroom above it.
    cfg.set_max_connection_receive_window(Some(MAX_STREAMS * yamux::DEFAULT_CREDIT as usize + WINDOW_HEADROOM));
    cfg.set_max_num_streams(MAX_STREAMS);
    cfg
}

/// What one side measures of its link: the round trip of its last answered
/// ping and when the peer was last heard (a ping or a pong). Shared between
/// the link's [`WsIo`] and whoever reports it (the relay's status table).
#[derive(Debug, Default)]
pub struct LinkStats {
    /// Microseconds; 0 before the first answer.
    rtt_us: AtomicU64,
    /// Unix seconds; 0 before the peer was heard.
    last_contact: AtomicI64,
}

impl LinkStats {
    /// Round trip of the last answered ping.
    pub fn rtt(&self) -> Option<Duration> {
        match self.rtt_us.load(Ordering::Relaxed) {
            0 => None,
            us => Some(Duration::from_micros(us)),
        }
    }

    /// When the peer was last heard.
    pub fn last_contact(&self) -> Option<time::OffsetDateTime> {
        match self.last_contact.load(Ordering::Relaxed) {
            0 => None,
            t => time::OffsetDateTime::from_unix_timestamp(t).ok(),
        }
    }

    fn heard(&self) {
        self.last_contact.store(time::OffsetDateTime::now_utc().unix_timestamp(), Ordering::Relaxed);
    }
}

/// A WebSocket seen as a byte stream for yamux, with keepalive: it pings
/// every [`PING_EVERY`] and fails reads once nothing arrived for
/// [`DEAD_AFTER`]. Each ping carries the time it was sent (8 bytes, the
/// microseconds since the link started), which the peer's pong echoes as
/// WebSocket requires, so the round trip is measured without any protocol
/// change. Writes are coalesced into messages of up to [`WRITE_CHUNK`]
/// bytes and sent when yamux next waits for input.
pub struct WsIo<S> {
    ws: WebSocketStream<S>,
    rbuf: Bytes,
    wbuf: BytesMut,
    ping: Interval,
    last_rx: Instant,
    ping_due: bool,
    /// yamux asked for a flush that was put off until it has nothing more
    /// to write (see [`WsIo::poll_read`]).
    flush_owed: bool,
    /// When the link started; pings carry the time since.
    started: Instant,
    stats: Option<std::sync::Arc<LinkStats>>,
}

impl<S> WsIo<S> {
    pub fn new(ws: WebSocketStream<S>) -> WsIo<S> {
        let mut ping = tokio::time::interval(PING_EVERY);
        ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
        WsIo {
            ws,
            rbuf: Bytes::new(),
            wbuf: BytesMut::new(),
            ping,
            last_rx: Instant::now(),
            ping_due: false,
            flush_owed: false,
            started: Instant::now(),
            stats: None,
        }
    }

    /// Records the round trip and the last contact in `stats`.
    pub fn with_stats(mut self, stats: std::sync::Arc<LinkStats>) -> WsIo<S> {
        self.stats = Some(stats);
        self
    }

    /// A ping's payload: microseconds since the link started.
    fn ping_payload(&self) -> Bytes {
        Bytes::copy_from_slice(&(self.started.elapsed().as_micros() as u64).to_be_bytes())
    }

    /// Notes a control frame from the peer: it was heard, and a pong to one
    /// of this side's pings gives the round trip.
    fn control(&self, msg: &Message) {
        let Some(stats) = &self.stats else { return };
        match msg {
            Message::Pong(p) => {
                stats.heard();
                if let Ok(sent) = <[u8; 8]>::try_from(p.as_ref()) {
                    let now = self.started.elapsed().as_micros() as u64;
                    let rtt = now.saturating_sub(u64::from_be_bytes(sent)).max(1);
                    stats.rtt_us.store(rtt, Ordering::Relaxed);
                }
            }
            Message::Ping(_) => stats.heard(),
            _ => {}
        }
    }
}

fn ws_err(e: tokio_tungstenite::tungstenite::Error) -> io::Error {
    io::Error::other(e)
}

impl<S: AsyncRead + AsyncWrite + Unpin> WsIo<S> {
    /// Sends the coalesced write buffer as one binary message.
    fn poll_send_buffer(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.wbuf.is_empty() {
            return Poll::Ready(Ok(()));
        }
        ready!(Pin::new(&mut self.ws).poll_ready(cx)).map_err(ws_err)?;
        let data = self.wbuf.split().freeze();
        Pin::new(&mut self.ws).start_send(Message::Binary(data)).map_err(ws_err)?;
        Poll::Ready(Ok(()))
    }

    /// Sends the write buffer and flushes the WebSocket.
    fn poll_flush_now(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_send_buffer(cx))?;
        ready!(Pin::new(&mut self.ws).poll_flush(cx)).map_err(ws_err)?;
        self.flush_owed = false;
        Poll::Ready(Ok(()))
    }

    fn poll_keepalive(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        while self.ping.poll_tick(cx).is_ready() {
            if self.last_rx.elapsed() >= DEAD_AFTER {
                return Err(io::Error::new(io::ErrorKind::TimedOut, "keepalive: the peer went silent"));
            }
            self.ping_due = true;
        }
        if self.ping_due {
            match Pin::new(&mut self.ws).poll_ready(cx) {
                Poll::Ready(Ok(())) => {
                    self.ping_due = false;
                    let payload = self.ping_payload();
                    Pin::new(&mut self.ws).start_send(Message::Ping(payload)).map_err(ws_err)?;
                    let _ = Pin::new(&mut self.ws).poll_flush(cx).map_err(ws_err)?;
                }
                Poll::Ready(Err(e)) => return Err(ws_err(e)),
                Poll::Pending => {}
            }
        }
        Ok(())
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> futures_util::io::AsyncRead for WsIo<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        loop {
            if !this.rbuf.is_empty() {
                let n = buf.len().min(this.rbuf.len());
                buf[..n].copy_from_slice(&this.rbuf[..n]);
                this.rbuf = this.rbuf.slice(n..);
                return Poll::Ready(Ok(n));
            }
            match Pin::new(&mut this.ws).poll_next(cx) {
                Poll::Ready(Some(Ok(msg))) => {
                    this.last_rx = Instant::now();
                    match msg {
                        Message::Binary(b) => this.rbuf = b,
                        Message::Close(_) => return Poll::Ready(Ok(0)),
                        other => this.control(&other),
                    }
                }
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Err(ws_err(e))),
                Poll::Ready(None) => return Poll::Ready(Ok(0)),
                Poll::Pending => {
                    this.poll_keepalive(cx)?;
                    if this.flush_owed {
                        // Pending flushes are done here, also when the socket is busy.
                        if let Poll::Ready(Err(e)) = this.poll_flush_now(cx) {
                            return Poll::Ready(Err(e));
                        }
                    }
                    return Poll::Pending;
                }
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> futures_util::io::AsyncWrite for WsIo<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.wbuf.len() + buf.len() > WRITE_CHUNK {
            ready!(this.poll_send_buffer(cx))?;
        }
        this.wbuf.extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // yamux flushes after every frame; sending each as its own message
        // cost a syscall per frame. The flush is owed instead and paid in
        // `poll_read` once yamux has no more to write for now, so frames of
        // all streams ready in one wake-up leave in one send (measured: about
        // a third less CPU per request in relay and agent).
        self.flush_owed = true;
        Poll::Ready(Ok(()))
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        ready!(this.poll_send_buffer(cx))?;
        Pin::new(&mut this.ws).poll_close(cx).map_err(ws_err)
    }
}

/// A request to open an outbound stream; answered with the stream, or with
/// the reason it cannot be opened now (the session goes on).
pub type OpenRequest = oneshot::Sender<Result<yamux::Stream, yamux::ConnectionError>>;

/// Drives a yamux session until it ends: opens outbound streams for
/// requests on `open`, and hands every inbound stream to `inbound`.
pub async fn drive<T>(
    mut conn: yamux::Connection<T>,
    mut open: mpsc::Receiver<OpenRequest>,
    mut inbound: impl FnMut(yamux::Stream),
) -> Result<(), yamux::ConnectionError>
where
    T: futures_util::io::AsyncRead + futures_util::io::AsyncWrite + Unpin,
{
    let mut waiting: std::collections::VecDeque<OpenRequest> = Default::default();
    let mut open_closed = false;
    std::future::poll_fn(|cx| {
        while !open_closed {
            match open.poll_recv(cx) {
                Poll::Ready(Some(req)) => waiting.push_back(req),
                Poll::Ready(None) => open_closed = true,
                Poll::Pending => break,
            }
        }
        while !waiting.is_empty() {
            match conn.poll_new_outbound(cx) {
                Poll::Ready(Ok(stream)) => {
                    if let Some(req) = waiting.pop_front() {
                        let _ = req.send(Ok(stream));
                    }
                }
                // The stream limit refuses this stream, never the session.
                Poll::Ready(Err(yamux::ConnectionError::TooManyStreams)) => {
                    if let Some(req) = waiting.pop_front() {
                        let _ = req.send(Err(yamux::ConnectionError::TooManyStreams));
                    }
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => break,
            }
        }
        loop {
            match conn.poll_next_inbound(cx) {
                Poll::Ready(Some(Ok(stream))) => inbound(stream),
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Err(e)),
                Poll::Ready(None) => return Poll::Ready(Ok(())),
                Poll::Pending => return Poll::Pending,
            }
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handshake_round_trips_and_rejects_garbage() {
        let hello = Handshake::Hello { version: VERSION, label: "home".into() };
        assert_eq!(Handshake::from_message(&hello.to_message()), Some(hello));
        assert_eq!(Handshake::from_message(&Message::Binary(Bytes::from_static(b"\x00yamux"))), None);
        assert!(version_mismatch(2, 1).contains("agent speaks 2, relay speaks 1"));
    }

    #[tokio::test]
    async fn open_header_round_trips() {
        let bytes = encode_open("127.0.0.1:8080");
        assert_eq!(read_open(&mut &bytes[..]).await.unwrap(), Open::Target("127.0.0.1:8080".into()));
        let routes = vec![Route { name: "app".into(), target: "127.0.0.1:8080".into() }];
        assert_eq!(read_open(&mut &encode_routes(&routes)[..]).await.unwrap(), Open::Routes(routes));
    }

    /// Frames flushed one by one leave together, as one message, once the
    /// reader waits for input; nothing stays behind.
    #[tokio::test]
    async fn flushed_frames_leave_in_one_message_when_reading_waits() {
        use futures_util::io::{AsyncReadExt as _, AsyncWriteExt as _};
        use futures_util::{FutureExt as _, StreamExt as _};
        use tokio_tungstenite::tungstenite::protocol::Role;

        let (a, b) = tokio::io::duplex(1 << 20);
        let mut io = WsIo::new(WebSocketStream::from_raw_socket(a, Role::Client, Some(ws_config())).await);
        let mut peer = WebSocketStream::from_raw_socket(b, Role::Server, Some(ws_config())).await;
        for frame in [&b"first frame "[..], b"second frame"] {
            io.write_all(frame).await.unwrap();
            io.flush().await.unwrap();
        }
        // The read finds nothing and pays the owed flush before waiting.
        let mut buf = [0u8; 16];
        assert!(io.read(&mut buf).now_or_never().is_none(), "nothing was sent to read");
        let msg = peer.next().await.unwrap().unwrap();
        assert_eq!(msg, Message::Binary(Bytes::from_static(b"first frame second frame")));
    }

    /// Streams whose reader stops reading (a visitor that never reads its
    /// download) make the receiving side buffer at most every stream's
    /// initial window plus the session's headroom, also after their windows
    /// grew while they were read fast.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_session_buffers_a_bounded_amount_for_readers_that_stall() {
        use futures_util::io::{AsyncReadExt as _, AsyncWriteExt as _};
        use std::sync::Arc;
        use std::sync::atomic::{AtomicU64, Ordering};
        use tokio_tungstenite::tungstenite::protocol::Role;

        const STREAMS: usize = 64;
        const READ_FIRST: u64 = 1024 * 1024;
        const DUPLEX: usize = 1 << 20;
        let (a, b) = tokio::io::duplex(DUPLEX);
        let relay = WsIo::new(WebSocketStream::from_raw_socket(a, Role::Client, Some(ws_config())).await);
        let agent = WsIo::new(WebSocketStream::from_raw_socket(b, Role::Server, Some(ws_config())).await);
        let relay = yamux::Connection::new(relay, yamux_config(), yamux::Mode::Client);
        let agent = yamux::Connection::new(agent, yamux_config(), yamux::Mode::Server);
        let written = Arc::new(AtomicU64::new(0));
        let (open_tx, open_rx) = mpsc::channel(STREAMS);
        tokio::spawn(drive(relay, open_rx, drop));
        let (_agent_open, agent_open) = mpsc::channel(1);
        let w = written.clone();
        tokio::spawn(drive(agent, agent_open, move |mut stream| {
            // The agent side sends as fast as the stream takes it.
            let w = w.clone();
            tokio::spawn(async move {
                let chunk = vec![7u8; 16 * 1024];
                while let Ok(n) = stream.write(&chunk).await {
                    w.fetch_add(n as u64, Ordering::Relaxed);
                }
            });
        }));
        let read = Arc::new(AtomicU64::new(0));
        let mut readers = Vec::new();
        for _ in 0..STREAMS {
            let (tx, rx) = oneshot::channel();
            open_tx.send(tx).await.unwrap();
            let mut stream = rx.await.unwrap().unwrap();
            stream.write_all(b"x").await.unwrap(); // opens it on the other side
            let read = read.clone();
            readers.push(tokio::spawn(async move {
                // Read fast for a while, so the window grows; then stall.
                let mut buf = vec![0u8; 64 * 1024];
                let mut got = 0;
                while got < READ_FIRST {
                    let n = stream.read(&mut buf[..(READ_FIRST - got).min(64 * 1024) as usize]).await.unwrap();
                    got += n as u64;
                    read.fetch_add(n as u64, Ordering::Relaxed);
                }
                stream
            }));
        }
        let mut held = Vec::new();
        for r in readers {
            held.push(r.await.unwrap());
        }
        // Nobody reads now; wait until the senders stopped being able to send.
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut last = written.load(Ordering::Relaxed);
        loop {
            tokio::time::sleep(Duration::from_millis(300)).await;
            let now = written.load(Ordering::Relaxed);
            if now == last {
                break;
            }
            assert!(Instant::now() < deadline, "the senders never stalled");
            last = now;
        }
        let buffered = (last - read.load(Ordering::Relaxed)) as usize;
        // What the receiver may hold, plus what can be in flight in between.
        let bound = STREAMS * yamux::DEFAULT_CREDIT as usize + WINDOW_HEADROOM + DUPLEX + 2 * MAX_WS_MESSAGE;
        assert!(buffered <= bound, "{buffered} bytes buffered for stalled readers, more than {bound}");
        drop(held);
    }
}
