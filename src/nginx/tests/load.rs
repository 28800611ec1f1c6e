//! 1,000 visitors at once on one public tunnel, from one address, through a
//! real nginx on the rendered tree: every request is in flight at the same
//! time (the upstream answers only once all have arrived), so nginx holds
//! 2,000 connections. With too few `worker_connections`, or a per-address
//! connection limit below the load, visitors get errors. After such bursts,
//! nginx running on the allocator the appliance gives it must hand the
//! memory back.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio_rustls::TlsConnector;

use super::support::{
    DOMAIN, Layout, NginxProcess, onboarded_input, set_ports, settings, test_ports, wait_for, write_certs, write_tree,
};
use crate::agent::tls::client_config;
use crate::model::Access;
use crate::nginx::{TunnelVhost, render};

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
/// the connection failed. The upstream answers no one until all are in, so
/// the bound is generous: on a busy machine the last of 1,000 handshakes can
/// come well after the first.
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
    tokio::time::timeout(Duration::from_secs(120), attempt).await.ok().flatten().unwrap_or(0)
}

/// A public tunnel `app` on a real nginx whose relay port is a
/// [`holding_upstream`], started with `env`.
struct Burst {
    _tmp: tempfile::TempDir,
    nginx: NginxProcess,
    port: u16,
    cfg: Arc<rustls::ClientConfig>,
    held: Arc<AtomicUsize>,
}

impl Burst {
    async fn start(env: &[(String, String)]) -> Burst {
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
        let nginx = NginxProcess::start_with_env(&root, &layout.conf_dir.join("nginx.conf"), port, env);
        let cfg = Arc::new(client_config(None, Some(&std::fs::read_to_string(&ca).unwrap()), None).unwrap());
        Burst { _tmp: tmp, nginx, port, cfg, held }
    }

    /// [`VISITORS`] visitors at once; asserts every one got a 200.
    async fn run(&self) {
        self.held.store(0, Ordering::SeqCst);
        let visitors: Vec<_> = (0..VISITORS).map(|_| tokio::spawn(visit(self.cfg.clone(), self.port))).collect();
        let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
        for v in visitors {
            *statuses.entry(v.await.unwrap()).or_default() += 1;
        }
        let errors = std::fs::read_to_string(&self.nginx.stderr).unwrap_or_default();
        assert_eq!(statuses.get(&200).copied(), Some(VISITORS), "statuses {statuses:?}; nginx said: {errors}");
        assert_eq!(self.held.load(Ordering::SeqCst), VISITORS);
        assert!(!errors.contains("worker_connections are not enough"), "{errors}");
    }
}

/// The environment the nginx service's run script gives nginx
/// (`rootfs/etc/portico/nginx/allocator.env`).
fn deployed_allocator_env() -> Vec<(String, String)> {
    let file = concat!(env!("CARGO_MANIFEST_DIR"), "/rootfs/etc/portico/nginx/allocator.env");
    let text = std::fs::read_to_string(file).unwrap();
    let env: Vec<(String, String)> = text
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let preload = env.iter().find(|(k, _)| k == "LD_PRELOAD").map(|(_, v)| v.clone()).unwrap_or_default();
    let installed = std::fs::read_dir("/usr/lib")
        .unwrap()
        .flatten()
        .any(|dir| dir.file_name().to_string_lossy().ends_with("-linux-gnu") && dir.path().join(&preload).exists());
    assert!(installed, "{preload} is not installed: apt-get install libjemalloc2");
    env
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_visitors_are_all_served_and_the_workers_give_the_memory_back() {
    let burst = Burst::start(&deployed_allocator_env()).await;
    let sum = |kib: Vec<u64>| kib.iter().sum::<u64>() / 1024;
    wait_for("nginx's workers", Duration::from_secs(10), || {
        let anon = burst.nginx.worker_anon_kib();
        (!anon.is_empty() && anon.iter().all(|&kib| kib > 0)).then_some(())
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let idle = sum(burst.nginx.worker_anon_kib());
    for _ in 0..2 {
        burst.run().await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = sum(burst.nginx.worker_anon_kib());
    // On glibc's malloc the two workers kept ~35 MiB more than at idle.
    assert!(after <= idle + 8, "nginx workers hold {after} MiB of heap after the bursts, {idle} MiB at idle");
}
