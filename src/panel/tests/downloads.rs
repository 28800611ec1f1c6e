//! `/download/`: public, fixed names only, checksums that match the bytes,
//! and an install script that carries this panel's pins.

use sha2::{Digest, Sha256};

use super::*;

const BINARY: &[u8] = b"\x7fELF pretend agent binary";

/// A world whose downloads dir holds an amd64 binary (and no arm64 one).
async fn world_with_binary() -> World {
    let w = world_with(|s| s.panel.downloads_dir = s.data_dir.join("downloads")).await;
    let dir = &w.state.settings.panel.downloads_dir;
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("portico-linux-amd64"), BINARY).unwrap();
    // Beside the binaries but never a download: only fixed names are served.
    std::fs::write(dir.join("secret.txt"), b"not for you").unwrap();
    w
}

async fn get(w: &World, path: &str) -> (u16, Vec<u8>, ServiceResponse<()>) {
    let res = w.call(Who::Nobody, TestRequest::get().uri(path)).await;
    let status = res.status().as_u16();
    let (req, res) = res.into_parts();
    let (head, body) = res.into_parts();
    let bytes = actix_web::body::to_bytes(body).await.map_err(|_| ()).unwrap().to_vec();
    (status, bytes, ServiceResponse::new(req, head.drop_body()))
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[actix_web::test]
async fn downloads_serve_the_binary_with_its_checksum() {
    let w = world_with_binary().await;
    let (s, body, _) = get(&w, "/download/").await;
    assert_eq!(s, 200);
    let index: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(index["files"].as_array().unwrap().len(), 1, "only what exists: {index}");
    assert_eq!(index["files"][0]["name"], "portico-linux-amd64");
    assert_eq!(index["files"][0]["sha256"], sha256(BINARY));
    assert_eq!(index["files"][0]["size"], BINARY.len());
    assert_eq!(index["install"], "/download/install.sh");

    let (s, body, res) = get(&w, "/download/portico-linux-amd64").await;
    assert_eq!((s, body.as_slice()), (200, BINARY));
    let h = res.headers();
    assert_eq!(h.get("content-length").unwrap(), &BINARY.len().to_string());
    assert_eq!(h.get("etag").unwrap().to_str().unwrap(), format!("\"{}\"", sha256(BINARY)));
    assert_eq!(h.get("cache-control").unwrap(), "no-cache");
    let (s, body, _) = get(&w, "/download/portico-linux-amd64.sha256").await;
    assert_eq!((s, String::from_utf8(body).unwrap()), (200, format!("{}  portico-linux-amd64\n", sha256(BINARY))));
    let (s, body, _) = get(&w, "/download/SHA256SUMS").await;
    assert_eq!((s, String::from_utf8(body).unwrap()), (200, format!("{}  portico-linux-amd64\n", sha256(BINARY))));

    // HEAD answers the same headers; a matching entity tag answers 304.
    let res = w
        .call(
            Who::Nobody,
            TestRequest::default().method(actix_web::http::Method::HEAD).uri("/download/portico-linux-amd64"),
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers().get("content-length").unwrap(), &BINARY.len().to_string());
    let tag = format!("\"{}\"", sha256(BINARY));
    let req = TestRequest::get().uri("/download/portico-linux-amd64").insert_header(("If-None-Match", tag));
    assert_eq!(w.call(Who::Nobody, req).await.status(), 304);
    // Other verbs are not served.
    let res = w.call(Who::Nobody, TestRequest::post().uri("/download/portico-linux-amd64")).await;
    assert_eq!(res.status(), 404);
}

#[actix_web::test]
async fn downloads_serve_fixed_names_only() {
    let w = world_with_binary().await;
    for path in [
        "/download/portico-linux-arm64",
        "/download/portico-linux-arm64.sha256",
        "/download/secret.txt",
        "/download/portico",
        "/download/install.sh.sha256",
        "/download/../downloads/secret.txt",
        "/download/..%2Fsecret.txt",
        "/download/%2e%2e%2fportico.db",
        "/download/portico-linux-amd64%2F..%2Fsecret.txt",
        "/download/sub/portico-linux-amd64",
        "/download/portico-linux-amd64/",
        "/download/.sha256",
    ] {
        let (s, body, _) = get(&w, path).await;
        assert_eq!(s, 404, "{path}");
        let body = String::from_utf8(body).unwrap();
        assert!(!body.contains("not for you") && !body.contains("ELF"), "{path}: {body}");
        if !body.is_empty() {
            assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["error"], "No such download", "{path}");
        }
    }
}

#[actix_web::test]
async fn install_script_carries_the_pins_and_checksums() {
    let w = world_with_binary().await;
    let (s, body, res) = get(&w, "/download/install.sh").await;
    assert_eq!(s, 200);
    assert_eq!(res.headers().get("cache-control").unwrap(), "no-store");
    let script = String::from_utf8(body).unwrap();
    // No domain yet: the panel by IP, pinned to its self-signed certificate.
    let crt = std::fs::read_to_string(w.state.pki.server_cert_paths().0).unwrap();
    let (_, pem) = x509_parser::pem::parse_x509_pem(crt.as_bytes()).unwrap();
    let spki = Sha256::digest(pem.parse_x509().unwrap().public_key().raw);
    use base64::Engine;
    let pin = format!("sha256//{}", base64::engine::general_purpose::STANDARD.encode(spki));
    assert!(script.contains("PANEL_URL='https://203.0.113.10:9292'\n"), "{script}");
    assert!(script.contains(&format!("CURL_TLS='-k --pinnedpubkey {pin}'\n")), "{script}");
    assert!(script.contains(&format!("FINGERPRINT='{}'\n", sha256(&pem.contents))), "{script}");
    assert!(script.contains(&format!("CHECKSUMS='{}  portico-linux-amd64\n'\n", sha256(BINARY))), "{script}");
    assert!(script.contains("RELAY=''\n"), "no domain, no relay yet: {script}");

    // With a domain and a certificate for panel.<d>, the script addresses
    // the panel by name and pins that certificate.
    w.state.store.put_settings(vec![(onboarding::keys::DOMAIN, "example.test".into())]).await.unwrap();
    let paths = crate::nginx::state::cert_paths(&w.state.settings.data_dir, "panel.example.test");
    std::fs::create_dir_all(paths.fullchain.parent().unwrap()).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["panel.example.test".into()]).unwrap().self_signed(&key).unwrap();
    std::fs::write(&paths.fullchain, cert.pem()).unwrap();
    let (_, body, _) = get(&w, "/download/install.sh").await;
    let script = String::from_utf8(body).unwrap();
    assert!(script.contains("PANEL_URL='https://panel.example.test'\n"), "{script}");
    assert!(script.contains(&format!("FINGERPRINT='{}'\n", sha256(cert.der()))), "{script}");
    assert!(script.contains("RELAY='wss://tunnel.example.test/'\n"), "{script}");
    assert!(script.contains("CURL_TLS='--pinnedpubkey sha256//"), "by name curl checks the CA too: {script}");
}
