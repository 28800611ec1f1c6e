//! The visitor side of the relay: read the first request head, route it by
//! `Host`, then relay bytes both ways untouched.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio_util::compat::FuturesAsyncReadCompatExt;

use super::Relay;
use super::counting::Counted;
use crate::protocol::{self, OPEN_OK};

/// Largest request head the relay reads to find `Host`, bytes.
pub(crate) const MAX_HEAD: usize = 16 * 1024;
/// How long a visitor has to send a request head.
const HEAD_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the agent has to open a stream and dial the target.
const OPEN_TIMEOUT: Duration = Duration::from_secs(10);

/// The tunnel name a `Host` header addresses: its first DNS label.
pub(crate) fn tunnel_name(host: &str) -> String {
    let host = host.rsplit_once(':').filter(|(_, p)| p.bytes().all(|b| b.is_ascii_digit())).map_or(host, |(h, _)| h);
    host.split('.').next().unwrap_or_default().to_ascii_lowercase()
}

/// Bytes the relay reads at a time while looking for the end of a head.
pub(crate) const HEAD_CHUNK: usize = 2048;

/// Reads until the end of the first request head; returns its `Host`, or
/// `None` when the visitor went away first. Never holds more than
/// [`MAX_HEAD`] + [`HEAD_CHUNK`] bytes in `buf`.
pub(crate) async fn read_head<R: AsyncRead + Unpin>(tcp: &mut R, buf: &mut Vec<u8>) -> Result<Option<String>, u16> {
    loop {
        // Straight into `buf`: a read buffer inside this future would stay
        // allocated for the whole life of the visitor's connection.
        let mut chunk = (&mut *tcp).take(HEAD_CHUNK as u64);
        match tokio::time::timeout(HEAD_TIMEOUT, chunk.read_buf(buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return Ok(None),
            Ok(Ok(_)) => {}
        }
        let mut headers = [httparse::EMPTY_HEADER; 96];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(buf) {
            Ok(httparse::Status::Complete(_)) => {
                let host = req
                    .headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case("host"))
                    .and_then(|h| std::str::from_utf8(h.value).ok())
                    .map(|h| h.trim().to_string());
                return host.filter(|h| !h.is_empty()).map(Some).ok_or(400);
            }
            Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD => {}
            Ok(httparse::Status::Partial) => return Err(431),
            Err(_) => return Err(400),
        }
    }
}

/// A small branded error page.
pub(super) fn page(status: u16, title: &str, text: &str) -> Vec<u8> {
    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title} · Portico</title>\
         <style>body{{font:16px system-ui,sans-serif;color:#1f2937;background:#f8fafc;display:grid;place-items:center;\
         min-height:90vh}}main{{max-width:32rem;text-align:center}}h1{{font-size:1.4rem}}small{{color:#64748b}}</style>\
         </head><body><main><h1>{title}</h1><p>{text}</p><small>{status} · Portico</small></main></body></html>\n"
    );
    let reason = match status {
        400 => "Bad Request",
        404 => "Not Found",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Bad Gateway",
    };
    let mut out = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body.as_bytes());
    out
}

async fn reply(mut tcp: TcpStream, page: Vec<u8>) {
    let _ = tcp.write_all(&page).await;
    let _ = tcp.shutdown().await;
}

fn offline() -> Vec<u8> {
    page(502, "This app is offline", "The machine that serves it is not connected right now. Try again in a moment.")
}

fn busy() -> Vec<u8> {
    page(503, "This app is busy", "Too many visitors are connected to it right now. Try again in a moment.")
}

fn unreachable() -> Vec<u8> {
    page(
        502,
        "This app is not answering",
        "Its home machine is connected, but the app behind it refused the connection.",
    )
}

/// Counts a relayed stream as open (for its agent and its tunnel) until dropped.
struct OpenGuard([Arc<super::Counters>; 2]);

impl OpenGuard {
    fn new(counters: [Arc<super::Counters>; 2]) -> Self {
        for c in &counters {
            c.open_streams.fetch_add(1, Ordering::Relaxed);
        }
        OpenGuard(counters)
    }
}

impl Drop for OpenGuard {
    fn drop(&mut self) {
        for c in &self.0 {
            c.open_streams.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

impl Relay {
    pub(super) async fn visitor(self, mut tcp: TcpStream) {
        let mut head = Vec::new();
        let host = match read_head(&mut tcp, &mut head).await {
            Ok(Some(h)) => h,
            Ok(None) => return,
            Err(status) => return reply(tcp, page(status, "Bad request", "The request could not be read.")).await,
        };
        let name = tunnel_name(&host);
        let route = self.inner.routes.read().unwrap_or_else(|e| e.into_inner()).get(&name).cloned();
        let Some(route) = route else {
            return reply(tcp, page(404, "No such app", "Nothing is published under this name.")).await;
        };
        let session = {
            let sessions = self.inner.sessions.lock().unwrap_or_else(|e| e.into_inner());
            sessions.get(&route.agent).map(|s| (s.opener.clone(), s.counters.clone(), s.streams.clone()))
        };
        let Some((opener, counters, streams)) = session else {
            return reply(tcp, offline()).await;
        };
        // At the agent's stream limit a visitor waits for a stream to end,
        // then gets a 503 page; the session and its other streams go on.
        let _permit = match tokio::time::timeout(self.inner.limits.stream_wait, streams.acquire_owned()).await {
            Ok(Ok(permit)) => permit,
            Ok(Err(_)) => return reply(tcp, offline()).await,
            Err(_) => {
                tracing::warn!(tunnel = %name, agent = %route.agent, "stream limit reached; visitor refused");
                return reply(tcp, busy()).await;
            }
        };
        let (tx, rx) = oneshot::channel();
        if opener.send(tx).await.is_err() {
            return reply(tcp, offline()).await;
        }
        let stream = match tokio::time::timeout(OPEN_TIMEOUT, rx).await {
            Ok(Ok(Ok(stream))) => stream,
            Ok(Ok(Err(yamux::ConnectionError::TooManyStreams))) => return reply(tcp, busy()).await,
            _ => return reply(tcp, offline()).await,
        };
        let counters = [counters, self.tunnel_counters(&name)];
        let _guard = OpenGuard::new(counters.clone());
        let mut stream = stream.compat();
        let mut first = protocol::encode_open(&route.target);
        first.extend_from_slice(&head);
        if stream.write_all(&first).await.is_err() || stream.flush().await.is_err() {
            return reply(tcp, offline()).await;
        }
        match tokio::time::timeout(OPEN_TIMEOUT, stream.read_u8()).await {
            Ok(Ok(OPEN_OK)) => {}
            Ok(Ok(_)) => return reply(tcp, unreachable()).await,
            _ => return reply(tcp, offline()).await,
        }
        let mut tcp = Counted::new(tcp, counters);
        tcp.count_in(head.len());
        drop(head);
        let _ = crate::pipe::copy_bidirectional(&mut tcp, &mut stream, self.inner.limits.half_close).await;
    }
}

#[cfg(test)]
mod tests {
    use super::tunnel_name;

    #[test]
    fn tunnel_name_is_the_first_label() {
        for (host, name) in [
            ("app.example.com", "app"),
            ("App.Example.com:443", "app"),
            ("localhost:9080", "localhost"),
            ("[::1]:80", "[::1]"),
        ] {
            assert_eq!(tunnel_name(host), name, "{host}");
        }
    }
}
