//! 1,000 visitors at once on one public tunnel, from one address, through a
//! real nginx on the rendered tree: every request is in flight at the same
//! time (the upstream answers only once all have arrived), so nginx holds
//! 2,000 connections. With too few `worker_connections`, or a per-address
//! connection limit below the load, visitors get errors.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio_rustls::TlsConnector;

use super::support::{
    DOMAIN, Layout, NginxProcess, onboarded_input, set_ports, settings, test_ports, write_certs, write_tree,
};
use crate::agent::tls::client_config;
use crate::nginx::{Access, TunnelVhost, render};

const VISITORS: usize = 1000;

/// Reads each request head, then waits until [`VISITORS`] requests are held
/// before answering them all.
async fn holding_upstream(held: Arc<AtomicUsize>, all_in: Arc<Notify>) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let (held, all_in) = (held.clone(), all_in.clone());
            tokio::spawn(async move {
                let (mut buf, mut chunk) = (Vec::new(), [0u8; 4096]);
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tcp.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let waiting = all_in.notified();
                if held.fetch_add(1, Ordering::SeqCst) + 1 >= VISITORS {
                    all_in.notify_waiters();
                } else {
                    waiting.await;
                }
                let _ = tcp.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok").await;
            });
        }
    });
    addr
}

/// One visitor: a fresh TLS connection, one GET; the status code, or 0 when
/// the connection failed.
async fn visit(cfg: Arc<rustls::ClientConfig>, port: u16) -> u16 {
    let attempt = async {
        let tcp = TcpStream::connect(("127.0.0.1", port)).await.ok()?;
        let name = ServerName::try_from(format!("app.{DOMAIN}")).ok()?;
        let mut tls = TlsConnector::from(cfg).connect(name, tcp).await.ok()?;
        let req = format!("GET / HTTP/1.1\r\nHost: app.{DOMAIN}\r\nConnection: close\r\n\r\n");
        tls.write_all(req.as_bytes()).await.ok()?;
        let mut out = Vec::new();
        let _ = tls.read_to_end(&mut out).await;
        let head = String::from_utf8_lossy(&out).to_string();
        head.split(' ').nth(1).and_then(|s| s.parse().ok())
    };
    tokio::time::timeout(Duration::from_secs(30), attempt).await.ok().flatten().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_visitors_from_one_address_are_all_served() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_path_buf();
    let layout = Layout::temp(&root);
    let ca = write_certs(&layout);
    let (held, all_in) = (Arc::new(AtomicUsize::new(0)), Arc::new(Notify::new()));
    let mut settings = settings(&layout, None);
    set_ports(&mut settings, test_ports());
    settings.relay.visitors_listen = holding_upstream(held.clone(), all_in).await;
    let mut input = onboarded_input(&layout, &settings);
    input.tunnels = vec![TunnelVhost { name: "app".into(), access: Access::Public, enabled: true }];
    write_tree(&layout.conf_dir, &render(&input).unwrap());
    let port = input.ports.https;
    let nginx = NginxProcess::start(&root, &layout.conf_dir.join("nginx.conf"), port);

    let cfg = Arc::new(client_config(None, Some(&std::fs::read_to_string(&ca).unwrap()), None).unwrap());
    let visitors: Vec<_> = (0..VISITORS).map(|_| tokio::spawn(visit(cfg.clone(), port))).collect();
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    for v in visitors {
        *statuses.entry(v.await.unwrap()).or_default() += 1;
    }
    let errors = std::fs::read_to_string(&nginx.stderr).unwrap_or_default();
    assert_eq!(statuses.get(&200).copied(), Some(VISITORS), "statuses {statuses:?}; nginx said: {errors}");
    assert_eq!(held.load(Ordering::SeqCst), VISITORS);
    assert!(!errors.contains("worker_connections are not enough"), "{errors}");
}
