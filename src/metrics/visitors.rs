//! Visitor requests by tunnel (or site) and status class, from nginx's access
//! log. nginx is the one place that sees every visitor request, including the
//! 302 to the login portal, authd's 403 page and the relay's 502 pages (the
//! relay itself only reads the first request head of a connection). The
//! tunnel and site vhosts send one syslog datagram per request to a loopback
//! UDP port (`panel.visitor_log_port`); the panel counts them in memory.
//! No store write and no lock per byte: one uncontended mutex per request,
//! taken by the single listening task.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::UdpSocket;

use crate::model::is_label;

/// Syslog tags of the two kinds of vhost (nginx allows `[A-Za-z0-9_]{1,32}`).
pub const TAG_TUNNEL: &str = "portico_tunnel";
pub const TAG_SITE: &str = "portico_site";
/// The nginx `log_format` the vhosts use: `<server_name> <status>`.
pub const LOG_FORMAT: &str = "portico_visitor";

/// Status classes, in label order.
pub const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// Most distinct names kept: the rendered config produces one per tunnel or
/// site; anything beyond is not from it and is dropped.
const MAX_NAMES: usize = 4096;

/// What served the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Tunnel,
    Site,
}

/// Requests per vhost and status class since the panel started.
#[derive(Debug, Default)]
pub struct VisitorCounts {
    counts: Mutex<BTreeMap<(Kind, String), [u64; 5]>>,
}

impl VisitorCounts {
    /// Counts one request; false when the status is not 100–599 or the
    /// table is full.
    pub fn count(&self, kind: Kind, name: &str, status: u16) -> bool {
        let Some(class) = (status / 100).checked_sub(1).map(usize::from).filter(|c| *c < CLASSES.len()) else {
            return false;
        };
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(row) = counts.get_mut(&(kind, name.to_string())) {
            row[class] += 1;
            return true;
        }
        if counts.len() >= MAX_NAMES {
            return false;
        }
        let mut row = [0; 5];
        row[class] = 1;
        counts.insert((kind, name.to_string()), row);
        true
    }

    /// Every counted vhost with its counts per class (in [`CLASSES`] order).
    pub fn snapshot(&self) -> Vec<(Kind, String, [u64; 5])> {
        let counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        counts.iter().map(|((kind, name), row)| (*kind, name.clone(), *row)).collect()
    }
}

/// Parses one datagram as nginx sends it with `nohostname`:
/// `<190>Mar  9 12:00:00 portico_tunnel: app.example.com 200`.
/// Returns the vhost's first label and the status.
pub fn parse(datagram: &[u8]) -> Option<(Kind, String, u16)> {
    let text = std::str::from_utf8(datagram).ok()?;
    let (head, message) = text.split_once(": ")?;
    let kind = match head.rsplit(' ').next()? {
        TAG_TUNNEL => Kind::Tunnel,
        TAG_SITE => Kind::Site,
        _ => return None,
    };
    let (server, status) = message.trim_end().rsplit_once(' ')?;
    let name = server.split('.').next()?;
    if !is_label(name) {
        return None;
    }
    Some((kind, name.to_string(), status.parse().ok()?))
}

/// How much the kernel may queue for the panel: nginx sends one datagram per
/// request and drops what does not fit, so a burst of visitors while the
/// panel waits for a core must find room (≈ 4,000 lines at ≈ 1 KiB of kernel
/// accounting each). The kernel caps it at `net.core.rmem_max`.
const RECEIVE_BUFFER: usize = 4 << 20;

/// Binds the loopback UDP port nginx sends to, with a large receive queue.
pub async fn bind(port: u16) -> std::io::Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    if let Err(err) = socket.set_recv_buffer_size(RECEIVE_BUFFER) {
        tracing::warn!(task = "visitor-log", %err, "cannot enlarge the visitor log receive buffer");
    }
    socket.bind(&SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port).into())?;
    socket.set_nonblocking(true)?;
    UdpSocket::from_std(socket.into())
}

/// `visitor-log`: counts every well-formed datagram from a loopback peer.
/// Runs until the task is dropped.
pub async fn listen(socket: UdpSocket, counts: Arc<VisitorCounts>) {
    // A datagram is one short line; longer ones are not ours and get cut.
    let mut buf = [0u8; 1024];
    loop {
        match socket.recv_from(&mut buf).await {
            Ok((n, peer)) if peer.ip().to_canonical().is_loopback() => match parse(&buf[..n]) {
                Some((kind, name, status)) => {
                    if !counts.count(kind, &name, status) {
                        tracing::debug!(task = "visitor-log", %name, status, "visitor log line not counted");
                    }
                }
                None => tracing::debug!(task = "visitor-log", len = n, "ignoring a malformed visitor log datagram"),
            },
            Ok(_) => {}
            Err(err) => {
                tracing::warn!(task = "visitor-log", %err, "receiving visitor log datagrams failed");
                tokio::time::sleep(Duration::from_millis(100)).await; // no busy loop on a persistent error
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Case = (&'static str, Option<(Kind, &'static str, u16)>);

    #[test]
    fn parses_what_nginx_sends() {
        let cases: [Case; 8] = [
            ("<190>Mar  9 12:00:00 portico_tunnel: app.example.com 200", Some((Kind::Tunnel, "app", 200))),
            ("<190>Mar 19 01:02:03 portico_site: dash.example.com 404\n", Some((Kind::Site, "dash", 404))),
            ("<190>Mar 19 01:02:03 portico_tunnel: my-app.example.com 502", Some((Kind::Tunnel, "my-app", 502))),
            ("<190>Mar 19 01:02:03 other: app.example.com 200", None),
            ("<190>Mar 19 01:02:03 portico_tunnel: App.example.com 200", None),
            ("<190>Mar 19 01:02:03 portico_tunnel: app.example.com ok", None),
            ("<190>Mar 19 01:02:03 portico_tunnel: ", None),
            ("garbage", None),
        ];
        for (line, want) in cases {
            assert_eq!(parse(line.as_bytes()), want.map(|(k, n, s)| (k, n.to_string(), s)), "{line}");
        }
    }

    #[test]
    fn counts_by_class_and_refuses_odd_statuses() {
        let c = VisitorCounts::default();
        for status in [200, 204, 302, 404, 499, 502, 101] {
            assert!(c.count(Kind::Tunnel, "app", status));
        }
        assert!(!c.count(Kind::Tunnel, "app", 99));
        assert!(!c.count(Kind::Tunnel, "app", 600));
        assert!(c.count(Kind::Site, "app", 200));
        assert_eq!(
            c.snapshot(),
            vec![(Kind::Tunnel, "app".into(), [1, 2, 1, 2, 1]), (Kind::Site, "app".into(), [0, 1, 0, 0, 0])]
        );
    }

    /// nginx drops a line the kernel cannot queue: a burst that arrives while
    /// the panel is not reading must still be counted in full.
    #[tokio::test]
    async fn a_burst_sent_while_nobody_reads_is_counted_in_full() {
        let rmem_max: usize = std::fs::read_to_string("/proc/sys/net/core/rmem_max")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0);
        // The kernel caps the queue at rmem_max; below 1 MiB fewer lines fit.
        let burst = if rmem_max >= 1 << 20 { 2000 } else { 200 };
        let socket = bind(0).await.unwrap();
        let addr = socket.local_addr().unwrap();
        let sender = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let line = b"<190>Dec  4 18:00:00 portico_tunnel: pub.example.com 200";
        for _ in 0..burst {
            sender.send_to(line, addr).unwrap();
        }
        let counts = Arc::new(VisitorCounts::default());
        let task = tokio::spawn(listen(socket, counts.clone()));
        let mut counted = 0;
        for _ in 0..100 {
            counted = counts.snapshot().first().map_or(0, |(_, _, c)| c[1]);
            if counted == burst {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        task.abort();
        assert_eq!(counted, burst, "lines counted of a {burst}-line burst (rmem_max {rmem_max})");
    }

    #[test]
    fn the_table_is_bounded() {
        let c = VisitorCounts::default();
        for i in 0..MAX_NAMES {
            assert!(c.count(Kind::Site, &format!("s{i}"), 200));
        }
        assert!(!c.count(Kind::Site, "one-more", 200));
        assert!(c.count(Kind::Site, "s0", 200), "known names still count");
    }
}
