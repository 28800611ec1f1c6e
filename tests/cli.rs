//! The `portico` binary as an operator runs it: real processes, real sockets.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn portico(data_dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_portico"));
    cmd.env_clear()
        .env("PORTICO__DATA_DIR", data_dir)
        .env("PORTICO_OPTIONS", data_dir.join("options.json"))
        .env("PORTICO__LOG__LEVEL", "warn");
    cmd
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("portico runs")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Kills the server when the test ends, pass or fail.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One HTTP/1.0 request; returns (status, body).
fn http(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)]) -> std::io::Result<(u16, String)> {
    http_body(addr, method, path, headers, "")
}

/// One HTTP/1.0 request with a JSON body; returns (status, body).
fn http_body(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut req = format!("{method} {path} HTTP/1.0\r\nHost: localhost\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() {
        req.push_str(&format!("Content-Type: application/json\r\nContent-Length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    req.push_str(body);
    stream.write_all(req.as_bytes())?;
    let mut raw = String::new();
    stream.read_to_string(&mut raw)?;
    let status = raw.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = raw.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    Ok((status, body))
}

/// `portico serve` on a free loopback port, answering health.
fn serve(data_dir: &Path) -> (Server, SocketAddr) {
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let server = Server(
        portico(data_dir)
            .arg("serve")
            .env("PORTICO__PANEL__LISTEN", addr.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for_health(addr);
    (server, addr)
}

fn wait_for_health(addr: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if matches!(http(addr, "GET", "/api/health", &[]), Ok((200, _))) {
            return;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!("panel did not answer on {addr}");
}

fn admin_serial(data_dir: &Path) -> String {
    let out =
        run(Command::new("openssl").args(["x509", "-noout", "-serial", "-in"]).arg(data_dir.join("pki/admin.crt")));
    String::from_utf8(out.stdout).unwrap().trim().trim_start_matches("serial=").to_string()
}

#[test]
fn serve_on_an_empty_data_dir_answers_health_fresh_and_the_admin() {
    let dir = tempfile::tempdir().unwrap();
    let init = run(portico(dir.path()).arg("init"));
    assert!(init.status.success(), "{}", String::from_utf8_lossy(&init.stderr));
    let (_server, addr) = serve(dir.path());
    let serial = admin_serial(dir.path());
    let admin = [
        ("X-SSL-Client-Verify", "SUCCESS"),
        ("X-SSL-Client-DN", "CN=admin,O=Portico"),
        ("X-SSL-Client-Serial", serial.as_str()),
    ];
    let (status, body) = http(addr, "GET", "/api/onboarding/status", &admin).unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"status\":\"FRESH\""), "{body}");
    let (status, _) = http(addr, "GET", "/api/onboarding/status", &[]).unwrap();
    assert_eq!(status, 401);

    let health = run(portico(dir.path())
        .args(["healthcheck", "--timeout", "2"])
        .env("PORTICO__PANEL__LISTEN", addr.to_string()));
    assert!(health.status.success(), "{}", String::from_utf8_lossy(&health.stderr));
}

#[test]
fn healthcheck_fails_when_nothing_listens() {
    let dir = tempfile::tempdir().unwrap();
    let out =
        run(portico(dir.path()).arg("healthcheck").env("PORTICO__PANEL__LISTEN", format!("127.0.0.1:{}", free_port())));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not reachable"));
}

#[test]
fn init_twice_changes_nothing_and_prints_the_same_fingerprints() {
    let dir = tempfile::tempdir().unwrap();
    let first = run(portico(dir.path()).arg("init"));
    assert!(first.status.success());
    let snapshot = |p: &Path| -> Vec<(String, Vec<u8>)> {
        let mut files: Vec<_> = std::fs::read_dir(p.join("pki"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_file())
            .map(|p| (p.display().to_string(), std::fs::read(&p).unwrap()))
            .collect();
        files.sort();
        files
    };
    let before = snapshot(dir.path());
    let second = run(portico(dir.path()).arg("init"));
    assert!(second.status.success());
    assert_eq!(before, snapshot(dir.path()));
    let fingerprints = |out: &Output| -> Vec<String> {
        String::from_utf8_lossy(&out.stdout).lines().filter(|l| l.contains("sha256")).map(str::to_string).collect()
    };
    assert_eq!(fingerprints(&first), fingerprints(&second));
    assert_eq!(fingerprints(&first).len(), 3);
    assert!(String::from_utf8_lossy(&second.stdout).contains("already initialized"));

    // The bundle opens with Debian's openssl and the chain verifies.
    let pki = dir.path().join("pki");
    let p12 = run(Command::new("openssl")
        .args(["pkcs12", "-info", "-legacy", "-noout", "-in"])
        .arg(pki.join("admin.p12"))
        .arg("-passin")
        .arg(format!("file:{}", pki.join("admin.p12.password").display())));
    assert!(p12.status.success(), "{}", String::from_utf8_lossy(&p12.stderr));
    for cert in ["admin.crt", "server.crt"] {
        let verify =
            run(Command::new("openssl").arg("verify").arg("-CAfile").arg(pki.join("ca.crt")).arg(pki.join(cert)));
        assert!(verify.status.success(), "{cert}: {}", String::from_utf8_lossy(&verify.stdout));
    }
}

#[test]
fn print_config_shows_layers_and_masks_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yaml");
    std::fs::write(&config, "log:\n  level: debug\n").unwrap();
    let secret = "0123456789abcdef0123456789abcdef-secret";
    let out = run(portico(dir.path())
        .arg("print-config")
        .env_remove("PORTICO__LOG__LEVEL")
        .env("PORTICO_CONFIG", &config)
        .env("PORTICO__PANEL__SECRET", secret));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let yaml = String::from_utf8(out.stdout).unwrap();
    assert!(yaml.contains("level: debug"), "{yaml}");
    assert!(!yaml.contains(secret), "{yaml}");
    assert!(yaml.contains("***"), "{yaml}");
}

#[test]
fn bad_input_exits_non_zero_with_a_one_line_reason() {
    let dir = tempfile::tempdir().unwrap();
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);
    let cases: [Case; 5] = [
        (&["serve", "--bogus"], &[], "--bogus"),
        (&["healthcheck", "--timeout", "0"], &[], "timeout"),
        (&["frobnicate"], &[], "frobnicate"),
        (&["print-config"], &[("PORTICO__PANEL__LISTEN", "nowhere")], "PORTICO__PANEL__LISTEN"),
        (&["relay"], &[("PORTICO__RELAY__VISITORS_LISTEN", "0.0.0.0:9080")], "relay.visitors_listen"),
    ];
    for (args, env, needle) in cases {
        let mut cmd = portico(dir.path());
        cmd.args(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = run(&mut cmd);
        assert!(!out.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
        assert!(
            stderr.lines().next().is_some_and(|l| l.contains("error") || l.contains("portico:")),
            "{args:?}: {stderr}"
        );
    }
}

/// A service's log as the container keeps it: `portico serve` writes to a
/// pipe (not a terminal) read by s6-log with the directives of the image's
/// `log-run`. Each line, in the live-logs file and on the container's
/// stdout, has one timestamp and no colour codes.
#[test]
fn service_logs_have_one_timestamp_and_no_colour_codes() {
    if Command::new("s6-log").arg("-h").output().is_err() {
        eprintln!("skipping: s6-log is not installed (apt-get install s6)");
        return;
    }
    let log_run =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/rootfs/usr/local/lib/portico/log-run")).unwrap();
    let directives: Vec<&str> = log_run
        .lines()
        .find_map(|l| l.strip_prefix("s6-log "))
        .expect("log-run runs s6-log")
        .split_whitespace()
        .collect();
    let (logdir, directives) = directives.split_last().unwrap();
    assert!(logdir.starts_with("/var/log/portico/"), "{logdir}");

    let dir = tempfile::tempdir().unwrap();
    assert!(run(portico(dir.path()).arg("init")).status.success());
    let logs = dir.path().join("service-log");
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let mut server = portico(dir.path())
        .arg("serve")
        .env("PORTICO__PANEL__LISTEN", addr.to_string())
        .env("PORTICO__LOG__LEVEL", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = server.stderr.take().unwrap();
    let _server = Server(server);
    let s6_log = Command::new("s6-log")
        .args(directives)
        .arg(&logs)
        .stdin(Stdio::from(stderr))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut s6_log = Server(s6_log);
    wait_for_health(addr);
    let (status, _) = http(addr, "GET", "/api/onboarding/status", &[]).unwrap();
    assert_eq!(status, 401);

    let current = logs.join("current");
    let deadline = Instant::now() + Duration::from_secs(10);
    let line = loop {
        let text = std::fs::read_to_string(&current).unwrap_or_default();
        if let Some(line) = text.lines().find(|l| l.contains("/api/onboarding/status")) {
            break line.to_string();
        }
        assert!(Instant::now() < deadline, "no request line in the service log:\n{text}");
        std::thread::sleep(Duration::from_millis(50)); // poll interval
    };
    let _ = s6_log.0.kill();
    let mut forwarded = String::new();
    s6_log.0.stdout.take().unwrap().read_to_string(&mut forwarded).unwrap();
    let forwarded = forwarded.lines().find(|l| l.contains("/api/onboarding/status")).unwrap_or_default().to_string();
    for (place, line) in [("live-logs file", &line), ("container stdout", &forwarded)] {
        assert!(!line.contains('\u{1b}'), "colour codes in the {place}: {line:?}");
        assert_eq!(timestamps(line), 1, "timestamps in the {place}: {line}");
    }
}

/// Dates (`2026-12-07`) in a line: one per timestamp, ISO 8601 or RFC 3339.
fn timestamps(line: &str) -> usize {
    let b = line.as_bytes();
    (0..b.len().saturating_sub(9))
        .filter(|&i| {
            let d = |j: usize| b[i + j].is_ascii_digit();
            d(0) && d(1) && d(2) && d(3) && b[i + 4] == b'-' && d(5) && d(6) && b[i + 7] == b'-' && d(8) && d(9)
        })
        .count()
}

/// The panel's view of a client certificate with this serial, as nginx passes it.
fn admin_headers(serial: &str) -> [(&'static str, String); 3] {
    [
        ("X-SSL-Client-Verify", "SUCCESS".into()),
        ("X-SSL-Client-DN", "CN=admin,O=Portico".into()),
        ("X-SSL-Client-Serial", serial.into()),
    ]
}

/// The way back from a hardware-bound admin certificate whose key is lost:
/// `portico recover-admin` on the data directory, while the panel runs.
#[test]
fn recover_admin_brings_back_a_p12_when_the_hardware_key_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    assert!(run(portico(dir.path()).arg("init")).status.success());
    // Onboarded (the certificate routes are management routes).
    let state = portico::onboarding::OnboardingState::Completed.as_str().to_string();
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
        let store = portico::store::Store::open(&dir.path().join("portico.db")).unwrap();
        store.put_settings(vec![(portico::onboarding::keys::STATE, state)]).await.unwrap();
    });
    let (_server, addr) = serve(dir.path());
    let as_admin = |serial: &str, method: &str, path: &str, body: &str| {
        let h = admin_headers(serial);
        let headers: Vec<(&str, &str)> = h.iter().map(|(k, v)| (*k, v.as_str())).collect();
        http_body(addr, method, path, &headers, body).unwrap()
    };

    // Not bound: nothing to recover, nothing changed.
    let refused = run(portico(dir.path()).arg("recover-admin"));
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("not hardware-bound"), "{refused:?}");

    // Bound to a key made elsewhere (openssl stands in for the token).
    let p12_serial = admin_serial(dir.path());
    let csr = run(Command::new("openssl")
        .args(["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=x"])
        .arg("-keyout")
        .arg(dir.path().join("token.key")));
    let body = format!("{{\"csr\": {:?}}}", String::from_utf8(csr.stdout).unwrap());
    let (status, answer) = as_admin(&p12_serial, "POST", "/api/certs/admin/upgrade-to-hardware-bound", &body);
    assert_eq!(status, 200, "{answer}");
    let bound_serial = admin_serial(dir.path());
    assert!(!dir.path().join("pki/admin.p12").exists());

    // Someone else than the data directory's owner is refused (files they
    // wrote would be unreadable to the services).
    let root = run(Command::new("id").arg("-u")).stdout == b"0\n";
    if root {
        let chown = |who: &str| assert!(run(Command::new("chown").args([who]).arg(dir.path())).status.success());
        chown("65534");
        let other = run(portico(dir.path()).arg("recover-admin"));
        assert!(!other.status.success());
        assert!(String::from_utf8_lossy(&other.stderr).contains("s6-setuidgid portico"), "{other:?}");
        assert_eq!(admin_serial(dir.path()), bound_serial);
        chown("0");
    }

    let out = run(portico(dir.path()).arg("recover-admin"));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains(&format!("(serial {bound_serial}) is revoked")), "{text}");
    let password = text.lines().find_map(|l| l.strip_prefix("Password: ")).unwrap().split(' ').next().unwrap();
    let p12 = dir.path().join("pki/admin.p12");
    let opened = run(Command::new("openssl")
        .args(["pkcs12", "-legacy", "-nokeys", "-passin", &format!("pass:{password}"), "-in"])
        .arg(&p12));
    assert!(opened.status.success(), "the new .p12 does not open with the printed password");

    // The running panel sees it at once: the bound certificate is refused,
    // the new one is the admin, and the audit log says who did it.
    let new_serial = admin_serial(dir.path());
    assert_ne!(new_serial, bound_serial);
    assert_eq!(as_admin(&bound_serial, "GET", "/api/certs/admin/auth-mode", "").0, 403);
    let (status, mode) = as_admin(&new_serial, "GET", "/api/certs/admin/auth-mode", "");
    assert_eq!(status, 200);
    assert!(mode.contains("\"mode\":\"p12\""), "{mode}");
    let (_, audit) = as_admin(&new_serial, "GET", "/api/audit?action=cert.admin.recover", "");
    assert!(audit.contains("\"actor\":\"cli\""), "{audit}");
}
