//! The tunnel path through a real nginx (`/usr/sbin/nginx`) rendered by
//! Portico: the agent reaches the relay over `wss://tunnel.<d>/` with its
//! client certificate verified by nginx (no certificate: the relay refuses;
//! a certificate from another CA: nginx refuses), and visitors reach two tunnels over
//! keep-alive connections. Every response must come from its own tunnel's
//! target, however nginx reuses its upstream connections.

use std::net::SocketAddr;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use time::OffsetDateTime;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::{LOOPBACK, add_tunnel, eventually, spawn_agent, start_relay, state};
use crate::agent::tls::client_config;
use crate::agent::{AgentState, RunOptions};
use crate::model::Access;
use crate::nginx::state as nginx_state;
use crate::nginx::tests::support::{
    DOMAIN, Layout, NginxProcess, names, set_ports, settings, test_ports, write_certs, write_tree,
};
use crate::nginx::{CertPaths, TunnelVhost, render};
use crate::pki::Pki;
use crate::protocol;
use crate::store::{ClientCert, Store};

/// A keep-alive HTTP/1.1 target that answers every request with its own
/// name, the path it saw and how many requests its connection carried.
async fn named_target(name: &'static str) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut buf, mut chunk, mut served) = (Vec::new(), [0u8; 4096], 0u64);
                loop {
                    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                        match tcp.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                        continue;
                    };
                    let head = String::from_utf8_lossy(&buf[..end]).to_string();
                    buf.drain(..end + 4);
                    let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
                    served += 1;
                    let body = format!("{name} {path} {served}");
                    let resp = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}", body.len());
                    if tcp.write_all(resp.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

/// One visitor's keep-alive TLS connection to nginx for one host name.
pub(super) struct Visitor {
    tls: TlsStream<TcpStream>,
    host: String,
    buf: Vec<u8>,
}

impl Visitor {
    pub(super) async fn connect(cfg: Arc<rustls::ClientConfig>, host: &str, port: u16) -> Visitor {
        let tcp = TcpStream::connect((LOOPBACK, port)).await.unwrap();
        let name = ServerName::try_from(host.to_string()).unwrap();
        let tls = TlsConnector::from(cfg).connect(name, tcp).await.unwrap();
        Visitor { tls, host: host.into(), buf: Vec::new() }
    }

    /// One GET on this connection; returns (status, body, connection kept).
    pub(super) async fn get(&mut self, path: &str) -> (u16, String, bool) {
        self.request("GET", path, b"").await
    }

    /// One request with `body` (sent with a Content-Length when not empty);
    /// returns (status, body, connection kept).
    pub(super) async fn request(&mut self, method: &str, path: &str, body: &[u8]) -> (u16, String, bool) {
        let length = if body.is_empty() { String::new() } else { format!("Content-Length: {}\r\n", body.len()) };
        let req = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\n{length}\r\n", self.host);
        self.tls.write_all(req.as_bytes()).await.unwrap();
        self.tls.write_all(body).await.unwrap();
        let mut chunk = [0u8; 8192];
        let end = loop {
            if let Some(p) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break p;
            }
            let n = self.tls.read(&mut chunk).await.unwrap();
            assert!(n > 0, "nginx closed the connection before a response head");
            self.buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&self.buf[..end]).to_ascii_lowercase();
        let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .map(|v| v.trim().parse().unwrap())
            .expect("a content-length");
        self.buf.drain(..end + 4);
        while self.buf.len() < len {
            let n = self.tls.read(&mut chunk).await.unwrap();
            assert!(n > 0, "nginx closed the connection inside a body");
            self.buf.extend_from_slice(&chunk[..n]);
        }
        let body = String::from_utf8_lossy(&self.buf[..len]).to_string();
        self.buf.drain(..len);
        (status, body, !head.contains("connection: close"))
    }
}

/// `CN=agent:<label>` signed by a CA nginx does not trust; (cert, key) PEM.
fn forged_agent_cert(label: &str) -> (String, String) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, "Portico CA");
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let mut leaf = CertificateParams::new(Vec::<String>::new()).unwrap();
    leaf.distinguished_name.push(DnType::CommonName, format!("agent:{label}"));
    leaf.distinguished_name.push(DnType::OrganizationName, "Portico");
    let cert = leaf.signed_by(&key, &ca).unwrap();
    (cert.pem(), key.serialize_pem())
}

pub(super) fn tls_config(ca_pem: &str, client: Option<(&str, &str)>) -> Arc<rustls::ClientConfig> {
    let client = client.map(|(cert, key)| {
        let chain = CertificateDer::pem_slice_iter(cert.as_bytes()).collect::<Result<Vec<_>, _>>().unwrap();
        (chain, PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap())
    });
    Arc::new(client_config(None, Some(ca_pem), client).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_over_wss_and_two_tunnels_over_keepalive_through_real_nginx() {
    let tmp = tempfile::tempdir().unwrap();
    // The Portico CA (agent certificates) and the test CA (server names).
    let pki = Pki::new(&tmp.path().join("portico"));
    pki.init(Some(LOOPBACK)).unwrap();
    let layout = Layout::temp(&tmp.path().join("edge"));
    let server_ca = std::fs::read_to_string(write_certs(&layout)).unwrap();

    let store = Store::open(&tmp.path().join("portico.db")).unwrap();
    let any = SocketAddr::new(LOOPBACK, 0);
    let relay = start_relay(&store, vec![LOOPBACK], any, any).await;
    let issued = pki.issue_agent("home").unwrap();
    let cert = ClientCert {
        serial: issued.info.serial.clone(),
        kind: "agent".into(),
        label: Some("home".into()),
        fingerprint: issued.info.sha256_fingerprint.clone(),
        not_after: issued.info.not_after,
        revoked_at: None,
    };
    store.create_agent(vec!["tunnels:read".into()], cert, OffsetDateTime::now_utc()).await.unwrap();
    let (app, wiki) = (named_target("app-target").await, named_target("wiki-target").await);
    add_tunnel(&store, "app", "home", app).await;
    add_tunnel(&store, "wiki", "home", wiki).await;

    let mut settings = settings(&layout, None);
    set_ports(&mut settings, test_ports());
    (settings.relay.agents_listen, settings.relay.visitors_listen) = (relay.agents, relay.visitors);
    let mut input = nginx_state::settings_input(&settings);
    input.client_ca = pki.ca_cert_path();
    input.domain = Some(DOMAIN.into());
    input.certs = names()
        .into_iter()
        .map(|n| {
            let dir = layout.data_dir.join("acme/certs").join(&n);
            (n, CertPaths { fullchain: dir.join("fullchain.pem"), key: dir.join("privkey.pem") })
        })
        .collect();
    input.tunnels = ["app", "wiki"]
        .into_iter()
        .map(|name| TunnelVhost { name: name.into(), access: Access::Public, enabled: true })
        .collect();
    write_tree(&layout.conf_dir, &render(&input).unwrap());
    let root = tmp.path().join("edge");
    let _nginx = NginxProcess::start(&root, &layout.conf_dir.join("nginx.conf"), input.ports.https);
    let port = input.ports.https;
    let edge = SocketAddr::new(LOOPBACK, port);

    // Without a client certificate nginx passes no verified identity and the
    // relay refuses the agent.
    let status_dir = tmp.path().join("agent-anon");
    let anon = spawn_agent(RunOptions {
        relay: format!("wss://tunnel.{DOMAIN}:{port}/"),
        label: "home".into(),
        serial: issued.info.serial.clone(),
        version: protocol::VERSION,
        status_dir: Some(status_dir.clone()),
        tls: Some(tls_config(&server_ca, None)),
        connect_to: Some(edge),
    });
    eventually(10, "the anonymous agent to be refused", || async { state(&status_dir) == Some(AgentState::Refused) })
        .await;
    drop(anon);

    // A certificate with the right name from another CA: nginx's verification
    // fails and it answers 400 before the relay ever sees the upgrade.
    let forged = forged_agent_cert("home");
    let status_dir = tmp.path().join("agent-forged");
    let impostor = spawn_agent(RunOptions {
        relay: format!("wss://tunnel.{DOMAIN}:{port}/"),
        label: "home".into(),
        serial: issued.info.serial.clone(),
        version: protocol::VERSION,
        status_dir: Some(status_dir.clone()),
        tls: Some(tls_config(&server_ca, Some((&forged.0, &forged.1)))),
        connect_to: Some(edge),
    });
    eventually(10, "nginx to turn the forged certificate away", || async {
        crate::agent::Status::read(&status_dir)
            .is_ok_and(|s| s.state == AgentState::Reconnecting && s.detail.is_some_and(|d| d.contains("400")))
    })
    .await;
    drop(impostor);

    // With its certificate, verified by nginx against the Portico CA.
    let status_dir = tmp.path().join("agent");
    let _agent = spawn_agent(RunOptions {
        relay: format!("wss://tunnel.{DOMAIN}:{port}/"),
        label: "home".into(),
        serial: issued.info.serial.clone(),
        version: protocol::VERSION,
        status_dir: Some(status_dir.clone()),
        tls: Some(tls_config(&server_ca, Some((&issued.cert_pem, &issued.key_pem)))),
        connect_to: Some(edge),
    });
    eventually(10, "the agent to connect through nginx", || async {
        state(&status_dir) == Some(AgentState::Connected)
    })
    .await;

    let cfg = tls_config(&server_ca, None);
    for name in ["app", "wiki"] {
        let host = format!("{name}.{DOMAIN}");
        eventually(10, &format!("{host} to answer through nginx"), || async {
            Visitor::connect(cfg.clone(), &host, port).await.get("/ready").await.0 == 200
        })
        .await;
    }

    // Several visitor connections per tunnel so that requests of both tunnels
    // meet in the same nginx worker and its upstream keep-alive pools.
    let mut visitors = Vec::new();
    for _ in 0..4 {
        for name in ["app", "wiki"] {
            visitors.push((name, Visitor::connect(cfg.clone(), &format!("{name}.{DOMAIN}"), port).await));
        }
    }
    let mut reused = 0;
    for i in 0..400 {
        let (name, v) = &mut visitors[i % 8];
        let path = format!("/r{i}");
        let (status, body, kept) = v.get(&path).await;
        assert_eq!(status, 200, "request {i} to {name}: {body}");
        let mut words = body.split(' ');
        let (target, seen, served) = (words.next(), words.next(), words.next());
        assert_eq!(target, Some(format!("{name}-target").as_str()), "request {i} to {name} answered by {body}");
        assert_eq!(seen, Some(path.as_str()));
        assert!(kept, "nginx closed visitor connection {i}");
        if served.is_some_and(|n| n != "1") {
            reused += 1;
        }
    }
    // The upstream pools were really used: most requests rode a connection
    // from nginx to the relay that had carried an earlier request.
    assert!(reused > 200, "only {reused} of 400 requests reused an upstream connection");
}
