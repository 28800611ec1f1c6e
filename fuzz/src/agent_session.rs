//! What an agent sends the relay after its upgrade: the hello under the
//! hello's message limit, then WebSocket messages carrying a yamux session,
//! read the way the relay reads them. Whatever arrives, the session ends
//! when the agent's bytes do (no hang), and no message over the limits is
//! ever taken whole.

use std::time::Duration;

use arbitrary::{Arbitrary, Unstructured};
use futures_util::StreamExt;
use portico::protocol::{self, Handshake, WsIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::Role;

use crate::block_on;

#[derive(Arbitrary, Debug)]
enum Frame {
    Binary(Vec<u8>),
    Text(String),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Close,
    /// A frame header claiming `len` bytes, then `bytes`.
    Lying { opcode: u8, fin: bool, len: u64, bytes: Vec<u8> },
    Raw(Vec<u8>),
}

#[derive(Arbitrary, Debug)]
struct Session {
    hello: Option<(u16, String)>,
    frames: Vec<Frame>,
}

/// A masked client frame.
fn frame(out: &mut Vec<u8>, fin: bool, opcode: u8, len: u64, payload: &[u8]) {
    out.push(if fin { 0x80 } else { 0 } | (opcode & 0x0f));
    match len {
        0..=125 => out.push(0x80 | len as u8),
        126..=0xffff => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            out.push(0x80 | 127);
            out.extend_from_slice(&len.to_be_bytes());
        }
    }
    let mask = [0x12, 0x34, 0x56, 0x78];
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
}

impl Session {
    fn bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        if let Some((version, label)) = &self.hello {
            let hello = serde_json::json!({ "type": "hello", "version": version, "label": label }).to_string();
            frame(&mut out, true, 2, hello.len() as u64, hello.as_bytes());
        }
        for f in self.frames.iter().take(64) {
            match f {
                Frame::Binary(b) => frame(&mut out, true, 2, b.len() as u64, b),
                Frame::Text(t) => frame(&mut out, true, 1, t.len() as u64, t.as_bytes()),
                Frame::Ping(b) => frame(&mut out, true, 9, b.len().min(125) as u64, &b[..b.len().min(125)]),
                Frame::Pong(b) => frame(&mut out, true, 10, b.len().min(125) as u64, &b[..b.len().min(125)]),
                Frame::Close => frame(&mut out, true, 8, 0, &[]),
                Frame::Lying { opcode, fin, len, bytes } => frame(&mut out, *fin, *opcode, *len, bytes),
                Frame::Raw(b) => out.extend_from_slice(b),
            }
        }
        out
    }
}

/// The relay's side of one connection, from the hello to the session's end.
async fn relay_side(io: tokio::io::DuplexStream) {
    let mut ws = WebSocketStream::from_raw_socket(io, Role::Server, Some(protocol::hello_ws_config())).await;
    let hello = match ws.next().await {
        Some(Ok(msg)) => {
            assert!(msg.len() <= protocol::MAX_HELLO, "a {} byte hello was read", msg.len());
            Handshake::from_message(&msg)
        }
        _ => None,
    };
    let Some(Handshake::Hello { .. }) = hello else { return };
    let ws = WebSocketStream::from_raw_socket(ws.into_inner(), Role::Server, Some(protocol::ws_config())).await;
    let conn = yamux::Connection::new(WsIo::new(ws), protocol::yamux_config(), yamux::Mode::Client);
    let (_open_tx, open_rx) = tokio::sync::mpsc::channel(protocol::MAX_STREAMS);
    let _ = protocol::drive(conn, open_rx, drop).await;
}

pub fn run(data: &[u8]) {
    let (mode, rest) = crate::split_mode(data);
    // The agent's bytes as they come (a captured session), or built.
    let bytes = if mode & 1 == 0 {
        rest.to_vec()
    } else {
        let Ok(session) = Session::arbitrary(&mut Unstructured::new(rest)) else { return };
        session.bytes()
    };
    block_on(async {
        let (agent, relay) = tokio::io::duplex(64 * 1024);
        let (mut from_relay, mut to_relay) = tokio::io::split(agent);
        let send = async move {
            let _ = to_relay.write_all(&bytes).await;
            let _ = to_relay.shutdown().await;
        };
        // The agent reads whatever the relay answers (pongs, yamux frames).
        let drain = async move {
            let mut sink = Vec::new();
            let _ = (&mut from_relay).take(64 * 1024 * 1024).read_to_end(&mut sink).await;
        };
        let ended = tokio::time::timeout(Duration::from_secs(10), async {
            tokio::join!(send, drain, relay_side(relay));
        })
        .await;
        assert!(ended.is_ok(), "the session did not end after the agent's last byte");
    });
}
