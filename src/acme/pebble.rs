//! Test support: a real pebble ACME server (and pebble-challtestsrv as its
//! DNS, answering 127.0.0.1 for every name) on loopback ports, plus a
//! minimal HTTP-01 file server for tests that run without nginx.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Pebble {
    _dir: tempfile::TempDir,
    children: Vec<Child>,
    /// `https://127.0.0.1:<port>/dir`.
    pub directory: String,
    /// The CA of pebble's own listener certificate (for `acme.ca_bundle`).
    pub ca_bundle: PathBuf,
}

impl Drop for Pebble {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn wait_for_port(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "{what} did not start on port {port}");
        std::thread::sleep(Duration::from_millis(20)); // poll interval
    }
}

/// Whether pebble is installed; tests print why they skip when not.
pub fn available() -> bool {
    let ok = Path::new("/usr/bin/pebble").exists() && Path::new("/usr/bin/pebble-challtestsrv").exists();
    if !ok {
        eprintln!("skipping: pebble is not installed (apt-get install pebble)");
    }
    ok
}

impl Pebble {
    /// Starts pebble; its VA validates HTTP-01 on `http_port` of 127.0.0.1.
    /// `validity_secs` sets the lifetime of issued certificates.
    pub fn start(http_port: u16, validity_secs: Option<u64>) -> Pebble {
        let dir = tempfile::tempdir().unwrap();
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca.distinguished_name.push(rcgen::DnType::CommonName, "pebble listener test CA");
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca, &ca_key);
        let key = rcgen::KeyPair::generate().unwrap();
        let leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .unwrap()
            .signed_by(&key, &issuer)
            .unwrap();
        let ca_bundle = dir.path().join("ca.pem");
        std::fs::write(&ca_bundle, ca_cert.pem()).unwrap();
        std::fs::write(dir.path().join("cert.pem"), leaf.pem()).unwrap();
        std::fs::write(dir.path().join("key.pem"), key.serialize_pem()).unwrap();

        let (listen, management, dns, dns_management) = (free_port(), free_port(), free_port(), free_port());
        let mut config = serde_json::json!({"pebble": {
            "listenAddress": format!("127.0.0.1:{listen}"),
            "managementListenAddress": format!("127.0.0.1:{management}"),
            "certificate": dir.path().join("cert.pem"),
            "privateKey": dir.path().join("key.pem"),
            "httpPort": http_port,
            "tlsPort": free_port(),
            "ocspResponderURL": "",
            "externalAccountBindingRequired": false
        }});
        if let Some(v) = validity_secs {
            config["pebble"]["certificateValidityPeriod"] = v.into();
        }
        let config_path = dir.path().join("pebble.json");
        std::fs::write(&config_path, config.to_string()).unwrap();

        let quiet = || (Stdio::null(), Stdio::null());
        let (o, e) = quiet();
        let dns_server = Command::new("/usr/bin/pebble-challtestsrv")
            .args(["-dns01", &format!("127.0.0.1:{dns}"), "-http01", "", "-https01", "", "-tlsalpn01", ""])
            .args(["-management", &format!("127.0.0.1:{dns_management}")])
            .args(["-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""])
            .stdout(o)
            .stderr(e)
            .spawn()
            .unwrap();
        let mut children = vec![dns_server];
        wait_for_port(dns_management, "pebble-challtestsrv");
        let (o, e) = quiet();
        let pebble = Command::new("/usr/bin/pebble")
            .arg("-config")
            .arg(&config_path)
            .args(["-dnsserver", &format!("127.0.0.1:{dns}")])
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_WFE_NONCEREJECT", "0")
            .env("PEBBLE_AUTHZREUSE", "0")
            .stdout(o)
            .stderr(e)
            .spawn()
            .unwrap();
        children.push(pebble);
        wait_for_port(listen, "pebble");
        Pebble { _dir: dir, children, directory: format!("https://127.0.0.1:{listen}/dir"), ca_bundle }
    }
}

/// Serves `<challenges>/<token>` at `/.well-known/acme-challenge/<token>` on
/// `127.0.0.1:port`, like nginx's `:80` vhost does. Lives as long as the test process.
pub fn serve_challenges(port: u16, challenges: PathBuf) {
    let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let challenges = challenges.clone();
            std::thread::spawn(move || {
                let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                let mut buf = [0u8; 4096];
                let n = stream.read(&mut buf).unwrap_or(0);
                let request = String::from_utf8_lossy(&buf[..n]);
                let path = request.split_whitespace().nth(1).unwrap_or("");
                let token = path.strip_prefix("/.well-known/acme-challenge/").unwrap_or("");
                let valid =
                    !token.is_empty() && token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
                let body = if valid { std::fs::read(challenges.join(token)).ok() } else { None };
                let response = match body {
                    Some(b) => {
                        let mut r =
                            format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", b.len())
                                .into_bytes();
                        r.extend(b);
                        r
                    }
                    None => b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec(),
                };
                let _ = stream.write_all(&response);
            });
        }
    });
}
