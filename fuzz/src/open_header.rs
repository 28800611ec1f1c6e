//! What the relay sends an agent: the welcome (as the agent decodes it) and
//! the header of every stream it opens. A target header is at most 1 KiB, a
//! route update at most its limit, and the agent reads no further than the
//! header it was told about.

use portico::protocol::{self, Handshake, MAX_ROUTES, Open};
use tokio_tungstenite::tungstenite::{Bytes, Message};

use crate::{Chunked, block_on, chunk_size, split_mode};

pub fn run(data: &[u8]) {
    let (mode, rest) = split_mode(data);
    if mode & 1 == 1 {
        let msg = Message::Binary(Bytes::copy_from_slice(rest));
        if let Some(Handshake::Welcome { tunnels, .. }) = Handshake::from_message(&msg) {
            assert!(rest.len() <= protocol::MAX_HANDSHAKE);
            // What the agent took is what it re-encodes to.
            let again = Handshake::Welcome { version: 0, tunnels: tunnels.clone() };
            let Some(Handshake::Welcome { tunnels: back, .. }) = Handshake::from_message(&again.to_message()) else {
                panic!("a welcome does not decode again");
            };
            assert_eq!(back, tunnels);
        }
        return;
    }
    let mut peer = Chunked::new(rest, chunk_size(mode));
    match block_on(protocol::read_open(&mut peer)) {
        Ok(Open::Target(t)) => {
            assert!(t.len() <= 1024);
            assert_eq!(peer.read, 2 + t.len(), "read past the open header");
        }
        Ok(Open::Routes(routes)) => {
            assert!(peer.read <= 6 + MAX_ROUTES, "read {} bytes of a route update", peer.read);
            assert!(protocol::encode_routes(&routes).len() <= 6 + MAX_ROUTES);
        }
        Err(_) => assert!(peer.read <= 6 + MAX_ROUTES, "read {} bytes before refusing", peer.read),
    }
}
