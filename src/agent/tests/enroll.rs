//! `portico agent enroll` against the real panel behind a TLS front that
//! serves the panel's self-signed IP certificate.

use std::net::SocketAddr;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;

use crate::agent::config::AgentConfig;
use crate::agent::enroll::enroll;
use crate::panel::{AppState, Channel};
use crate::settings::Settings;

/// Starts the panel on a thread of its own and a TLS front for it; returns
/// the front's address, the certificate fingerprint and the panel state.
/// Also returns the panel's own (plain HTTP) address.
pub(crate) async fn panel_behind_tls(
    dir: &std::path::Path,
) -> (SocketAddr, String, actix_web::web::Data<AppState>, SocketAddr) {
    let state = crate::testing::init_panel(Settings { data_dir: dir.to_path_buf(), ..Default::default() }).await;
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let panel = std_listener.local_addr().unwrap();
    let s = state.clone();
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            actix_web::HttpServer::new(move || {
                actix_web::App::new().configure(crate::panel::configure(s.clone(), Channel::Panel))
            })
            .workers(1)
            .listen(std_listener)
            .unwrap()
            .run()
            .await
        })
    });
    let (crt, key) = state.pki.server_cert_paths();
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_file_iter(&crt).unwrap().collect::<Result<_, _>>().unwrap();
    let fingerprint = hex::encode(Sha256::digest(chain[0].as_ref()));
    let key = PrivateKeyDer::from_pem_file(&key).unwrap();
    let addr = tls_front(panel, chain, key).await;
    (addr, fingerprint, state, panel)
}

/// A TLS front for `panel` serving `chain`; returns its address.
async fn tls_front(panel: SocketAddr, chain: Vec<CertificateDer<'static>>, key: PrivateKeyDer<'static>) -> SocketAddr {
    let cfg = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
    let front = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = front.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = front.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else { return };
                let Ok(mut up) = tokio::net::TcpStream::connect(panel).await else { return };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut up).await;
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enroll_pins_the_panel_and_stores_key_and_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let (front, fingerprint, state, _) = panel_behind_tls(&dir.path().join("data")).await;
    let grant = crate::agents::create_enrollment(&state.store, "home".into(), vec![], 10).await.unwrap();
    let panel = format!("https://{front}");
    let cfg_dir = dir.path().join("agent");
    let relay = Some("wss://tunnel.example.com/".to_string());

    // Wrong fingerprint: refused before the token is sent.
    let wrong = "00".repeat(32);
    let err = enroll(&cfg_dir, &panel, &grant.token, Some(&wrong), relay.clone()).await.unwrap_err();
    assert!(format!("{err:#}").contains("fingerprint"), "{err:#}");
    // By IP without a fingerprint: refused with advice.
    let err = enroll(&cfg_dir, &panel, &grant.token, None, relay.clone()).await.unwrap_err();
    assert!(err.to_string().contains("--fingerprint"), "{err}");

    let cfg = enroll(&cfg_dir, &panel, &grant.token, Some(&fingerprint), relay.clone()).await.unwrap();
    assert_eq!(cfg.label, "home");
    assert_eq!(AgentConfig::load(&cfg_dir).unwrap(), cfg);
    let agent = state.store.agent("home".into()).await.unwrap().unwrap();
    assert_eq!(agent.serial.as_deref(), Some(cfg.serial.as_str()));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(cfg_dir.join("agent.key")).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    // The stored key and certificate make a usable client config for the relay.
    crate::agent::tls::relay_config(&cfg_dir).unwrap();

    // The token is spent.
    let err = enroll(&dir.path().join("again"), &panel, &grant.token, Some(&fingerprint), relay).await.unwrap_err();
    assert!(err.to_string().contains("refused"), "{err}");
}

/// A panel reached by name whose certificate comes from a private CA (a test
/// ACME server, say): refused until the CA is put in `extra-ca.crt` beside
/// the agent's files, then enrolled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enroll_by_name_trusts_the_extra_ca_file() {
    let dir = tempfile::tempdir().unwrap();
    let (_, _, state, plain) = panel_behind_tls(&dir.path().join("data")).await;
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(rcgen::DnType::CommonName, "private test CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let ca_issuer = rcgen::Issuer::new(ca_params, &ca_key);
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf =
        rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap().signed_by(&leaf_key, &ca_issuer).unwrap();
    let front =
        tls_front(plain, vec![leaf.der().clone()], PrivateKeyDer::try_from(leaf_key.serialize_der()).unwrap()).await;
    let panel = format!("https://localhost:{}", front.port());
    let relay = Some("wss://tunnel.example.com/".to_string());
    let cfg_dir = dir.path().join("agent");
    std::fs::create_dir_all(&cfg_dir).unwrap();
    let grant = crate::agents::create_enrollment(&state.store, "home".into(), vec![], 10).await.unwrap();

    let err = enroll(&cfg_dir, &panel, &grant.token, None, relay.clone()).await.unwrap_err();
    assert!(format!("{err:#}").contains("UnknownIssuer"), "{err:#}");
    std::fs::write(cfg_dir.join(crate::agent::tls::EXTRA_CA_FILE), ca.pem()).unwrap();
    let cfg = enroll(&cfg_dir, &panel, &grant.token, None, relay).await.unwrap();
    assert_eq!(cfg.label, "home");
}
