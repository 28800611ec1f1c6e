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
        stop(&mut self.children);
    }
}

fn stop(children: &mut [Child]) {
    for child in children {
        let _ = child.kill();
        let _ = child.wait();
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Waits until `child` listens on `port`. False when it exits first (another
/// test took one of its ports between `free_port` and its bind) or stays
/// silent for 30 s on a loaded machine.
fn listens(child: &mut Child, port: u16) -> bool {
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline || !matches!(child.try_wait(), Ok(None)) {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20)); // poll interval
    }
    true
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
    /// `validity_secs` sets the lifetime of issued certificates. Ports are
    /// picked free just before the start; when one is taken in between by a
    /// parallel test, the start is tried again on new ports.
    pub fn start(http_port: u16, validity_secs: Option<u64>) -> Pebble {
        for _ in 0..5 {
            if let Some(pebble) = Pebble::try_start(http_port, validity_secs) {
                return pebble;
            }
        }
        panic!("pebble did not start after 5 tries on fresh ports");
    }

    fn try_start(http_port: u16, validity_secs: Option<u64>) -> Option<Pebble> {
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
        if !listens(&mut children[0], dns_management) {
            stop(&mut children);
            return None;
        }
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
        if !listens(&mut children[1], listen) {
            stop(&mut children);
            return None;
        }
        Some(Pebble { _dir: dir, children, directory: format!("https://127.0.0.1:{listen}/dir"), ca_bundle })
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
