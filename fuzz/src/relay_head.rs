//! The relay's reader of a visitor's request head: it routes by `Host`,
//! never to a tunnel other than the one `Host` names, never holds more than
//! its head limit, and answers malformed heads with 400 (431 when too long).

use arbitrary::{Arbitrary, Unstructured};
use portico::fuzzing::{HEAD_CHUNK, MAX_HEAD, tunnel_name, visitor_head};

use crate::{Chunked, block_on, chunk_size, split_mode};

/// A well-formed head around a `Host` the target chose.
#[derive(Arbitrary, Debug)]
struct Head {
    method: String,
    path: String,
    label: String,
    port: Option<u16>,
    before: Vec<(String, String)>,
    after: Vec<(String, String)>,
    body: Vec<u8>,
}

fn token(s: &str, fallback: &str) -> String {
    let t: String = s.chars().filter(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(*c)).collect();
    if t.is_empty() { fallback.into() } else { t }
}

fn path(s: &str) -> String {
    s.chars().filter(|c| c.is_ascii_alphanumeric() || "/-._~%?=&".contains(*c)).collect()
}

fn value(s: &str) -> String {
    s.chars().filter(|c| c.is_ascii_graphic() || *c == ' ').collect::<String>().trim().to_string()
}

impl Head {
    /// The bytes and the tunnel its `Host` names.
    fn render(&self) -> (Vec<u8>, String) {
        let mut label: String =
            self.label.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-').take(63).collect();
        if label.is_empty() {
            label.push('a');
        }
        let mut out = format!("{} /{} HTTP/1.1\r\n", token(&self.method, "GET"), path(&self.path));
        let header = |out: &mut String, (k, v): &(String, String)| {
            let k = token(k, "X-A");
            if !k.eq_ignore_ascii_case("host") {
                out.push_str(&format!("{k}: {}\r\n", value(v)));
            }
        };
        self.before.iter().take(20).for_each(|h| header(&mut out, h));
        let port = self.port.map(|p| format!(":{p}")).unwrap_or_default();
        out.push_str(&format!("Host: {label}.example.com{port}\r\n"));
        self.after.iter().take(20).for_each(|h| header(&mut out, h));
        out.push_str("\r\n");
        let mut bytes = out.into_bytes();
        bytes.extend_from_slice(&self.body);
        (bytes, label.to_ascii_lowercase())
    }
}

pub fn run(data: &[u8]) {
    let (mode, rest) = split_mode(data);
    let chunk = chunk_size(mode);
    if mode & 1 == 1 {
        let Ok(head) = Head::arbitrary(&mut Unstructured::new(rest)) else { return };
        let (bytes, label) = head.render();
        let mut peer = Chunked::new(&bytes, chunk);
        let mut buf = Vec::new();
        match block_on(visitor_head(&mut peer, &mut buf)) {
            Ok(Some(host)) => assert_eq!(tunnel_name(&host), label, "routed {host:?} elsewhere"),
            // Only a head longer than the limit may be refused.
            Err(431) => assert!(buf.len() >= MAX_HEAD),
            other => panic!("a well-formed head got {other:?}"),
        }
        assert!(buf.len() <= MAX_HEAD + HEAD_CHUNK, "held {} bytes", buf.len());
        return;
    }
    let mut peer = Chunked::new(rest, chunk);
    let mut buf = Vec::new();
    let result = block_on(visitor_head(&mut peer, &mut buf));
    assert_eq!(peer.read, buf.len(), "read bytes it did not keep for the agent");
    assert!(buf.len() <= MAX_HEAD + HEAD_CHUNK, "held {} bytes", buf.len());
    let mut headers = [httparse::EMPTY_HEADER; 96];
    let mut req = httparse::Request::new(&mut headers);
    let parsed = req.parse(&buf);
    match result {
        Ok(Some(host)) => {
            assert!(matches!(parsed, Ok(httparse::Status::Complete(_))));
            let first = req.headers.iter().find(|h| h.name.eq_ignore_ascii_case("host")).expect("a Host header");
            assert_eq!(std::str::from_utf8(first.value).unwrap().trim(), host, "not the first Host header");
            let name = tunnel_name(&host);
            assert!(!name.contains('.') && host.to_ascii_lowercase().starts_with(&name), "{name:?} from {host:?}");
        }
        // The visitor went away before a whole head.
        Ok(None) => assert_eq!(peer.read, rest.len()),
        Err(400) => assert!(parsed.is_err() || matches!(parsed, Ok(httparse::Status::Complete(_)))),
        Err(431) => assert!(buf.len() >= MAX_HEAD && matches!(parsed, Ok(httparse::Status::Partial))),
        Err(other) => panic!("answered {other}"),
    }
}
