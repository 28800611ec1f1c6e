//! The relay's reader of an agent's upgrade request: an agent identity only
//! from a trusted peer (the local nginx) that verified a certificate whose
//! CN is exactly `agent:<label>`; never an admin; never more than the head
//! limit read.

use arbitrary::{Arbitrary, Unstructured};
use portico::fuzzing::{MAX_UPGRADE_HEAD, agent_upgrade};

use crate::client_dn::Dn;
use crate::{Chunked, block_on, chunk_size, split_mode};

#[derive(Arbitrary, Debug)]
struct Request {
    verify: bool,
    dn: Dn,
    serial: String,
    websocket: bool,
    extra: Vec<(String, String)>,
    after: Vec<u8>,
}

fn clean(s: &str) -> String {
    s.chars().filter(|c| c.is_ascii_graphic() || *c == ' ').collect::<String>().trim().to_string()
}

impl Request {
    fn render(&self, dn: &str) -> Vec<u8> {
        let mut out = String::from("GET /agent HTTP/1.1\r\nHost: relay\r\n");
        if self.websocket {
            out.push_str("Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n");
            out.push_str("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n");
        }
        let verify = if self.verify { "SUCCESS" } else { "FAILED:unsupported certificate purpose" };
        out.push_str(&format!("X-SSL-Client-Verify: {verify}\r\nX-SSL-Client-DN: {}\r\n", clean(dn)));
        out.push_str(&format!("X-SSL-Client-Serial: {}\r\n", clean(&self.serial)));
        for (k, v) in self.extra.iter().take(8) {
            let k: String = k.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-').collect();
            let lower = k.to_ascii_lowercase();
            if !k.is_empty() && !lower.starts_with("x-ssl") && !lower.starts_with("sec-") && lower != "upgrade" {
                out.push_str(&format!("{k}: {}\r\n", clean(v)));
            }
        }
        out.push_str("\r\n");
        let mut bytes = out.into_bytes();
        bytes.extend_from_slice(&self.after);
        bytes
    }
}

pub fn run(data: &[u8]) {
    let (mode, rest) = split_mode(data);
    let trusted = mode & 2 == 2;
    let chunk = chunk_size(mode);
    if mode & 1 == 1 {
        let Ok(req) = Request::arbitrary(&mut Unstructured::new(rest)) else { return };
        let Some(dn) = req.dn.render() else { return };
        if clean(&dn) != dn {
            return;
        }
        let bytes = req.render(&dn);
        let mut peer = Chunked::new(&bytes, chunk);
        match block_on(agent_upgrade(&mut peer, trusted)) {
            Ok(up) => {
                if let Some((label, _)) = &up.who {
                    assert!(trusted && req.verify, "an identity from an untrusted or unverified peer");
                    let want = format!("agent:{label}");
                    assert!(req.dn.common_names().iter().any(|n| n.trim() == want), "{label} from {dn:?}");
                }
                assert_eq!(up.key.is_some(), req.websocket);
            }
            Err(Some(431)) => assert!(bytes.len() >= MAX_UPGRADE_HEAD),
            Err(other) => panic!("a well-formed request got {other:?}"),
        }
        return;
    }
    let mut peer = Chunked::new(rest, chunk);
    let result = block_on(agent_upgrade(&mut peer, trusted));
    assert!(peer.read <= MAX_UPGRADE_HEAD, "read {} bytes", peer.read);
    match result {
        Ok(up) => {
            assert!(trusted || up.who.is_none(), "an identity from an untrusted peer");
            if let Some((label, _)) = up.who {
                assert!(!label.is_empty() && label.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'));
            }
        }
        Err(Some(431)) => assert!(peer.read >= MAX_UPGRADE_HEAD),
        Err(Some(400)) | Err(None) => {}
        Err(other) => panic!("answered {other:?}"),
    }
}
