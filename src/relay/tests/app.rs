//! A small local app for the tunnel tests (plain tokio, HTTP/1.1 keep-alive):
//! `/small`, `/big?n=`, `/upload`, `/chunked`, `/sse`, `/ws` (echo).

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;

/// Byte `i` of every generated body.
pub fn pattern(i: u64) -> u8 {
    (i.wrapping_mul(31) % 251) as u8
}

pub fn pattern_sha256(n: u64) -> String {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut i = 0;
    while i < n {
        let len = (n - i).min(buf.len() as u64) as usize;
        for (k, b) in buf[..len].iter_mut().enumerate() {
            *b = pattern(i + k as u64);
        }
        h.update(&buf[..len]);
        i += len as u64;
    }
    hex::encode(h.finalize())
}

pub async fn start() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(connection(tcp));
        }
    });
    addr
}

async fn connection(mut tcp: TcpStream) {
    let _ = tcp.set_nodelay(true);
    let mut buf = Vec::new();
    loop {
        let (path, content_length, ws_key, close, used) = loop {
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut req = httparse::Request::new(&mut headers);
            if let Ok(httparse::Status::Complete(used)) = req.parse(&buf) {
                let h = |n: &str| {
                    req.headers
                        .iter()
                        .find(|h| h.name.eq_ignore_ascii_case(n))
                        .map(|h| String::from_utf8_lossy(h.value).to_string())
                };
                let len = h("content-length").and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
                let close = h("connection").is_some_and(|v| v.eq_ignore_ascii_case("close"));
                break (req.path.unwrap_or("/").to_string(), len, h("sec-websocket-key"), close, used);
            }
            let mut chunk = [0u8; 8192];
            match tcp.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        buf.drain(..used);
        let ok = match path.split('?').next().unwrap_or("") {
            "/small" => respond(&mut tcp, "text/plain", b"hello through the tunnel").await,
            "/big" => {
                let n: u64 = path.split("n=").nth(1).and_then(|v| v.parse().ok()).unwrap_or(1024);
                big(&mut tcp, n).await
            }
            "/upload" => {
                let mut h = Sha256::new();
                let mut left = content_length;
                let take = (buf.len() as u64).min(left) as usize;
                h.update(&buf[..take]);
                buf.drain(..take);
                left -= take as u64;
                let mut chunk = vec![0u8; 64 * 1024];
                while left > 0 {
                    let n = match tcp.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n.min(left as usize),
                    };
                    h.update(&chunk[..n]);
                    left -= n as u64;
                }
                respond(&mut tcp, "text/plain", hex::encode(h.finalize()).as_bytes()).await
            }
            "/status" => {
                let code: u16 = path.split("code=").nth(1).and_then(|v| v.parse().ok()).unwrap_or(500);
                let out = format!("HTTP/1.1 {code} Status\r\nContent-Length: 0\r\n\r\n");
                tcp.write_all(out.as_bytes()).await.is_ok()
            }
            "/chunked" => {
                let mut ok = tcp
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n")
                    .await
                    .is_ok();
                for part in ["first;", "second;", "third"] {
                    ok &= tcp.write_all(format!("{:x}\r\n{part}\r\n", part.len()).as_bytes()).await.is_ok();
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                ok && tcp.write_all(b"0\r\n\r\n").await.is_ok()
            }
            "/sse" => {
                let _ = tcp
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n\r\ndata: tick 1\n\n")
                    .await;
                // The stream stays open: the visitor must see the first event now.
                tokio::time::sleep(Duration::from_secs(30)).await;
                return;
            }
            "/ws" => {
                let Some(key) = ws_key else { return };
                let resp = format!(
                    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
                    derive_accept_key(key.as_bytes())
                );
                if tcp.write_all(resp.as_bytes()).await.is_err() {
                    return;
                }
                let mut ws = WebSocketStream::from_raw_socket(tcp, Role::Server, None).await;
                while let Some(Ok(msg)) = ws.next().await {
                    if (msg.is_text() || msg.is_binary()) && ws.send(msg).await.is_err() {
                        return;
                    }
                }
                return;
            }
            _ => respond(&mut tcp, "text/plain", b"not found").await,
        };
        if !ok || close {
            let _ = tcp.shutdown().await;
            return;
        }
    }
}

async fn respond(tcp: &mut TcpStream, ctype: &str, body: &[u8]) -> bool {
    let mut out =
        format!("HTTP/1.1 200 OK\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
    out.extend_from_slice(body);
    tcp.write_all(&out).await.is_ok()
}

async fn big(tcp: &mut TcpStream, n: u64) -> bool {
    let head = format!("HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {n}\r\n\r\n");
    if tcp.write_all(head.as_bytes()).await.is_err() {
        return false;
    }
    let mut buf = vec![0u8; 64 * 1024];
    let mut i = 0;
    while i < n {
        let len = (n - i).min(buf.len() as u64) as usize;
        for (k, b) in buf[..len].iter_mut().enumerate() {
            *b = pattern(i + k as u64);
        }
        if tcp.write_all(&buf[..len]).await.is_err() {
            return false;
        }
        i += len as u64;
    }
    true
}
